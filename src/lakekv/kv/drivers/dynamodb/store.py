"""``dynamodb://TABLE?region=…&endpoint=…`` — Amazon DynamoDB (boto3), in lakeFS's table layout.

URL
    ``dynamodb://kvstore?region=us-east-1`` opens table ``kvstore`` (the lakeFS default, also
    used when the URL names no table). Host names are case-folded by URL parsing: a table name
    with capital letters must be given as ``?table=MyTable``, which also overrides the host.
    Credentials come from ``open_store(..., credentials={"aws_access_key_id": ...,
    "aws_secret_access_key": ..., "aws_session_token": ...})`` when given (for this store
    only), else from the standard AWS chain (environment, shared files, ``profile``, instance
    or container roles); they are never part of the URL.

Parameters (anything else is a ConfigurationError)
    ``table``            table name (see above).
    ``region``           AWS region (default: from the AWS configuration chain).
    ``endpoint``         endpoint URL, e.g. ``http://127.0.0.1:8000`` for a local server.
    ``profile``          shared-config profile to take credentials and region from.
    ``page_size``        first scan page (default 1024, at most 1024); ``page_cap``: later pages
                         double up to it (default 4096). DynamoDB also ends a page at 1 MB.
    ``max_attempts``     attempts per request, first one included (default 10).
    ``retry_budget``     seconds one request may spend retrying (default 20).
    ``connect_timeout``  / ``read_timeout``: socket timeouts in seconds (default 5 / 20).
    ``scan_segments``    parallel ``Scan`` segments for ``list_partitions`` (default 4).
    ``write_concurrency`` requests in flight in ``write_batch`` (default 8).
    ``max_connections``  HTTP connection pool size (default: enough for the two above, ≥ 10).
    ``create_table``     create the table when it is missing (default ``true``); ``false`` for
                         a least-privilege role without ``dynamodb:CreateTable``. Opening
                         with ``create=False`` or ``read_only=True`` never creates it either:
                         a missing table is StoreNotFoundError naming it.

Layout (identical to lakeFS ``pkg/kv/dynamodb``)
    One table, on-demand billing (``PAY_PER_REQUEST``), no secondary index. ``PartitionKey``
    (binary, HASH) and ``ItemKey`` (binary, RANGE) hold partition and key; ``ItemValue``
    (binary) holds the value. Opening calls ``DescribeTable`` first and creates the table only
    when it is missing; a concurrent create by another process is fine; it then waits until the
    table is ``ACTIVE`` (``UPDATING`` is usable too). A table whose key schema differs is a
    ConfigurationError. An unreachable endpoint fails ``from_url`` with StoreUnavailableError
    after one connection attempt (bounded by ``connect_timeout``).

Operations
    ``get`` is a ``GetItem`` with ``ConsistentRead``. ``set`` is a ``PutItem``. ``set_if`` is a
    ``PutItem`` with ``attribute_not_exists(ItemValue)`` (``None``), ``attribute_exists(ItemValue)``
    (``MUST_EXIST``) or ``ItemValue = :pred`` (a predicate from ``get``, which is the value
    bytes, as in lakeFS); ``ConditionalCheckFailedException`` means the predicate failed.
    Scans are ``Query`` pages (``ItemKey >= start`` or ``> start``, ``ConsistentRead``,
    ``Limit`` = the page size the iterator asks for); a page that DynamoDB returns empty with a
    ``LastEvaluatedKey`` is followed inside the same call.

Legacy empty values
    lakeFS versions before late 2023 stored an empty value as ``ItemValue: {NULL: true}``. Such
    an item reads as ``b""`` (in ``get`` and scans) and its predicate is ``b""``. An empty
    predicate matches both encodings of the empty value (``ItemValue = :empty OR
    attribute_type(ItemValue, NULL)``), so get → set_if works on legacy items; new writes always
    store a binary ``ItemValue`` (an empty one for ``b""``), as current lakeFS does.

Limits (declared in ``capabilities``; the base class refuses larger writes before any request)
    Partition ≤ 2048 bytes, key ≤ 1024 bytes, and an item ≤ 400 KB = 409,600 bytes, which
    DynamoDB counts including attribute names: 12 + 7 + 9 = 28 bytes for ``PartitionKey``,
    ``ItemKey`` and ``ItemValue``, so partition + key + value ≤ 409,572 bytes.

Retries
    boto3's own retries are off; lakekv retries under one policy. Throttling
    (``ProvisionedThroughputExceededException``, ``ThrottlingException``,
    ``RequestLimitExceeded``, …), server errors (HTTP 5xx) and connection failures are retried
    with exponential backoff and full jitter (a random sleep in ``[0, min(2 s, 25 ms·2^n)]``)
    until ``max_attempts`` or ``retry_budget`` runs out; then throttling raises SlowDownError
    and anything else StoreUnavailableError. Other errors are not retried: a rejected request
    raises StoreError, missing credentials or region ConfigurationError, and everything else
    from botocore StoreUnavailableError. No botocore exception reaches the caller.

    A conditional write whose outcome is unknown (a timeout or a 5xx after the request was
    sent) is retried too; if the retry then fails its condition, the item is read back and the
    write counts as done when the stored value is the one written (with value predicates that
    state is indistinguishable from success).

``list_partitions``
    A parallel ``Scan`` (``scan_segments`` segments, projecting only ``PartitionKey``, consistent)
    collects the distinct partition names, then yields them sorted bytewise. It reads the whole
    table, and holds one copy of every partition name (not of every entry) in memory.

``write_batch`` (the bulk path used by migrations)
    A key repeated in one batch is InvalidArgumentError. Entries are handled in windows of
    8192. For each window, the stored state of its keys is read first, in parallel: a
    partition with 8 or more keys in the window is read with one consistent ``Query`` per 1024
    keys over their key range (``Limit`` twice the keys: one cheap request when the range is
    empty, as in a load into a new table); keys that such a Query did not reach (a range
    crowded with other keys) and partitions with few keys go to consistent ``BatchGetItem``
    requests of 100 keys. Each entry is then classified (absent → write; same value →
    ``unchanged``; different value → written under ``overwrite``, else ``skipped`` or a
    conflict) and the entries to write are interleaved across partitions (round-robin, so a load
    spreads over DynamoDB's partitions) into ``BatchWriteItem`` requests of 25, with
    ``write_concurrency`` requests in flight. ``UnprocessedKeys`` and ``UnprocessedItems`` are
    re-sent with backoff until none remain; the retry budget counts only rounds in which
    nothing was processed, and a stall beyond it raises SlowDownError.

    Trade-off: ``BatchWriteItem`` cannot be conditional, so an entry is classified when its
    window is read, not when it is written. The next window is read while the current one is
    written, so the gap is about the time to write two windows (a second or two). An item
    that another writer creates or changes within that gap is overwritten and not reported.
    For a migration into a store that nothing else writes meanwhile, the result is exact, and a
    load into an empty table costs one extra (empty) ``Query`` per partition and window
    instead of one conditional ``PutItem`` per entry. A caller that needs create-only
    atomicity against concurrent writers uses ``set_if(None)``.

Threads
    One boto3 client (thread-safe) serves every thread; ``write_batch`` and ``list_partitions``
    use a small thread pool owned by the store and shut down by ``close``.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ParamValidationError,
)

from lakekv.errors import (
    ConfigurationError,
    LakekvError,
    SlowDownError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from lakekv.kv.drivers.dynamodb.bulk import write_batch
from lakekv.kv.drivers.dynamodb.client import (
    AMBIGUOUS,
    CONFIG_CODES,
    CONFIG_ERRORS,
    CREDENTIALS,
    NOT_SENT,
    REJECTED_CODES,
    SERVER_CODES,
    THROTTLE_CODES,
    RequestAttempts,
    error_code,
    http_status,
    make_client,
    retry_policy,
)
from lakekv.kv.drivers.dynamodb.items import (
    KEY_ATTR,
    PARTITION_ATTR,
    VALUE_ATTR,
    item_of,
    item_value,
)
from lakekv.kv.store import (
    MUST_EXIST,
    BatchResult,
    Capabilities,
    Entry,
    OnConflict,
    OpenOptions,
    ScanPaging,
    Store,
    ValueWithPredicate,
    value_predicate,
)
from lakekv.kv.url import ParamReader, StoreURL
from lakekv.retry import RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

R = TypeVar("R")
_NONE: Any = object()
DEFAULT_TABLE = "kvstore"

MAX_ITEM_BYTES = 400 * 1024
"""DynamoDB's item limit, attribute names included."""
ATTRIBUTE_NAME_BYTES = len(PARTITION_ATTR) + len(KEY_ATTR) + len(VALUE_ATTR)
MAX_PAGE_SIZE = 1024
"""Largest first scan page (lakeFS's ``ScanLimit``)."""
_TABLE_RE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_TABLE_WAIT = 300.0
"""Seconds to wait for a table to become ACTIVE or to disappear."""


@dataclass(frozen=True)
class DynamoDBSettings:
    """What a ``dynamodb://`` URL says, besides paging (see the module docstring)."""

    table: str
    region: str | None
    endpoint: str | None
    profile: str | None
    retry: RetryPolicy
    connect_timeout: float
    read_timeout: float
    scan_segments: int
    write_concurrency: int
    max_connections: int
    create_table: bool
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    """The credentials handed to this store (``open_store(credentials=...)``); none: the
    standard AWS chain."""
    client: DynamoDBClient | None = field(default=None, repr=False, compare=False)
    """A boto3 client to use instead of one built from the settings above, injected as
    ``DynamoDBStore.from_url(url, client=...)`` (tests, instrumentation). The URL's region,
    endpoint, profile, timeouts and the credentials then do not apply, and the caller keeps
    the client: the store never closes it."""


class DynamoDBStore(Store):
    """The DynamoDB driver; see the module docstring for URL, layout and semantics."""

    scheme = "dynamodb"
    capabilities = Capabilities(
        list_partitions=True,
        native_write_batch=True,
        max_partition_size=2048,
        max_key_size=1024,
        max_item_size=MAX_ITEM_BYTES - ATTRIBUTE_NAME_BYTES,
    )
    driver_errors = (BotoCoreError, ClientError)

    default_paging = ScanPaging(page_size=MAX_PAGE_SIZE, page_cap=4096)

    @classmethod
    def parse_settings(
        cls, url: StoreURL, params: ParamReader, options: OpenOptions
    ) -> DynamoDBSettings:
        """The table, the client's configuration and the credentials; see the module
        docstring. A ``client`` override replaces the client built from them."""
        table = params.take_str("table", url.host or DEFAULT_TABLE)
        if not _TABLE_RE.match(table):
            raise ConfigurationError(
                f"{url}: {table!r} is not a valid DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)"
            )
        if url.path.strip("/") or url.username or url.port:
            raise ConfigurationError(f"{url}: write dynamodb://TABLE?region=...&endpoint=...")
        region = params.take_optional("region") or None
        endpoint = params.take_optional("endpoint") or None
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(f"{url}: endpoint must be an http:// or https:// URL")
        profile = params.take_optional("profile") or None
        retry = retry_policy(
            max_attempts=params.take_int("max_attempts", 10, minimum=1),
            budget=params.take_float("retry_budget", 20.0),
        )
        connect_timeout = params.take_float("connect_timeout", 5.0, minimum=0.001)
        read_timeout = params.take_float("read_timeout", 20.0, minimum=0.001)
        segments = params.take_int("scan_segments", 4, minimum=1)
        concurrency = params.take_int("write_concurrency", 8, minimum=1)
        connections = params.take_int(
            "max_connections", max(10, segments, concurrency) + 2, minimum=1
        )
        create = params.take_bool("create_table", True)
        return DynamoDBSettings(
            table=table,
            region=region,
            endpoint=endpoint,
            profile=profile,
            retry=retry,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            scan_segments=segments,
            write_concurrency=concurrency,
            max_connections=connections,
            create_table=create,
            credentials=options.take_credentials(url, CREDENTIALS),
        )

    def __init__(
        self,
        url: StoreURL,
        paging: ScanPaging,
        options: OpenOptions,
        settings: DynamoDBSettings,
    ) -> None:
        if paging.page_size > MAX_PAGE_SIZE:
            raise ConfigurationError(f"{url}: page_size must be <= {MAX_PAGE_SIZE}")
        super().__init__(url, paging, options)
        self._settings = settings
        self.table = settings.table
        self.throttled = 0
        """Throttling answers received so far, retried or not (a rate limiter slows down when
        it grows)."""
        self._owns_client = settings.client is None
        """Whether the client is built (in :meth:`_open`) and closed by this store."""
        if settings.client is not None:
            self._client = settings.client
        self._retry = settings.retry
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    _client: DynamoDBClient
    """The settings' client, or one built from the settings by :meth:`_open`."""

    def _open(self) -> None:
        """Build the client (unless one was given), then make sure the table exists (see the
        module docstring). StoreUnavailableError when the endpoint cannot be reached,
        ConfigurationError when the table cannot be used."""
        if self._owns_client:
            self._client = make_client(self._url, self._settings)
        self._ensure_table()

    def _identity(self) -> str:
        endpoint = self._client.meta.endpoint_url or self._settings.endpoint or ""
        parts = urlsplit(endpoint.lower())
        host = parts.hostname or ""
        if host in ("localhost", "127.0.0.1", "::1"):
            host = "localhost"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        region = self._client.meta.region_name or self._settings.region or ""
        return f"dynamodb://{parts.scheme}:{host}:{port}/{region}/{self.table}"

    def _incarnation(self) -> str | None:
        """The table's creation time: a table deleted and created again has another."""
        desc = self._describe(RequestAttempts(self._retry))
        if desc is None or desc.get("CreationDateTime") is None:
            return None
        created = desc["CreationDateTime"]
        stamp = created.isoformat() if hasattr(created, "isoformat") else str(created)
        return f"created-{stamp}"

    # --- requests and retries --------------------------------------------------------------------

    def _request(
        self, fn: Callable[..., R], kwargs: dict[str, Any], attempts: RequestAttempts | None = None
    ) -> R:
        """Call one client method, retrying throttling, 5xx and connection errors per policy.

        Raises SlowDownError / StoreUnavailableError when retries run out; other errors
        propagate unchanged (the base class translates them).
        """
        state = RequestAttempts(self._retry) if attempts is None else attempts
        while True:
            try:
                return fn(**kwargs)
            except ClientError as exc:
                code = error_code(exc)
                if code in THROTTLE_CODES:
                    self.throttled += 1
                    if not state.backoff():
                        spent = state.elapsed
                        raise SlowDownError(
                            f"dynamodb table {self.table}: throttled ({code}); gave up after "
                            f"{state.retries} attempt(s) in {spent:.1f} s"
                        ) from exc
                    continue
                if code in SERVER_CODES or http_status(exc) >= 500:
                    state.ambiguous = True
                    if not state.backoff():
                        raise StoreUnavailableError(
                            f"dynamodb table {self.table}: server error {code or http_status(exc)} "
                            f"after {state.retries} attempt(s): {exc}"
                        ) from exc
                    continue
                raise
            except (*NOT_SENT, *AMBIGUOUS) as exc:
                if isinstance(exc, AMBIGUOUS):
                    state.ambiguous = True
                if not state.reconnect or not state.backoff():
                    raise StoreUnavailableError(
                        f"dynamodb endpoint {self._endpoint_name()} unreachable after "
                        f"{state.retries} attempt(s): {exc}"
                    ) from exc

    def _endpoint_name(self) -> str:
        return self._settings.endpoint or f"(AWS, region {self._settings.region or 'default'})"

    def _translate_error(self, exc: BaseException) -> LakekvError:
        where = f"dynamodb table {self.table}"
        if isinstance(exc, ClientError):
            code = error_code(exc)
            if code in THROTTLE_CODES:
                return SlowDownError(f"{where}: throttled ({code})")
            if code in REJECTED_CODES:
                return StoreError(f"{where}: request rejected ({code}): {exc}")
            if code in CONFIG_CODES:
                return ConfigurationError(f"{where}: not authorised ({code}): {exc}")
            if code == "ResourceNotFoundException":
                return StoreUnavailableError(f"{where} does not exist (deleted?): {exc}")
            return StoreUnavailableError(f"{where}: {code or 'error'}: {exc}")
        if isinstance(exc, CONFIG_ERRORS):
            return ConfigurationError(f"{where}: AWS configuration: {exc}")
        if isinstance(exc, ParamValidationError):
            return StoreError(f"{where}: invalid request: {exc}")
        return StoreUnavailableError(f"{where} at {self._endpoint_name()}: {exc}")

    # --- the table -------------------------------------------------------------------------

    def _describe(self, attempts: RequestAttempts) -> dict[str, Any] | None:
        """The table description, or ``None`` when it does not exist."""
        try:
            out = self._request(self._client.describe_table, {"TableName": self.table}, attempts)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        return dict(out["Table"])

    def _ensure_table(self) -> None:
        # One attempt for connection failures (fail fast on a wrong endpoint); throttling of
        # the control plane is still retried.
        desc = self._describe(RequestAttempts(self._retry, reconnect=False))
        deadline = time.monotonic() + _TABLE_WAIT
        pause = 0.02
        while True:
            if desc is None:
                if not self.options.may_create:
                    raise StoreNotFoundError(
                        f"dynamodb table {self.table} does not exist at {self._endpoint_name()}"
                    )
                if not self._settings.create_table:
                    raise ConfigurationError(
                        f"dynamodb table {self.table} does not exist and create_table=false"
                    )
                self._create_table()
            else:
                status = str(desc.get("TableStatus", ""))
                if status in {"ACTIVE", "UPDATING"}:
                    self._check_schema(desc)
                    return
                if status not in {"CREATING", "DELETING"}:
                    raise ConfigurationError(
                        f"dynamodb table {self.table} is {status or 'in an unknown state'}"
                    )
            if time.monotonic() > deadline:
                raise StoreUnavailableError(
                    f"dynamodb table {self.table} did not become ACTIVE in {_TABLE_WAIT:.0f} s"
                )
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
            desc = self._describe(RequestAttempts(self._retry))

    def _create_table(self) -> None:
        try:
            self._request(
                self._client.create_table,
                {
                    "TableName": self.table,
                    "KeySchema": [
                        {"AttributeName": PARTITION_ATTR, "KeyType": "HASH"},
                        {"AttributeName": KEY_ATTR, "KeyType": "RANGE"},
                    ],
                    "AttributeDefinitions": [
                        {"AttributeName": PARTITION_ATTR, "AttributeType": "B"},
                        {"AttributeName": KEY_ATTR, "AttributeType": "B"},
                    ],
                    "BillingMode": "PAY_PER_REQUEST",
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":  # created concurrently: fine
                raise

    def _check_schema(self, desc: dict[str, Any]) -> None:
        keys = {(k["AttributeName"], k["KeyType"]) for k in desc.get("KeySchema", [])}
        types = {
            a["AttributeName"]: a["AttributeType"] for a in desc.get("AttributeDefinitions", [])
        }
        expected = {(PARTITION_ATTR, "HASH"), (KEY_ATTR, "RANGE")}
        if keys != expected or types.get(PARTITION_ATTR) != "B" or types.get(KEY_ATTR) != "B":
            raise ConfigurationError(
                f"dynamodb table {self.table} exists but its key schema is not lakeFS's "
                f"({PARTITION_ATTR} binary HASH, {KEY_ATTR} binary RANGE): {sorted(keys)}"
            )

    # --- the contract ------------------------------------------------------------------------

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        out = self._request(
            self._client.get_item,
            {
                "TableName": self.table,
                "Key": {PARTITION_ATTR: {"B": partition}, KEY_ATTR: {"B": key}},
                "ConsistentRead": True,
            },
        )
        item = out.get("Item")
        if item is None:
            return None
        value = item_value(item)
        return ValueWithPredicate(value, value)

    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        self._request(
            self._client.put_item,
            {"TableName": self.table, "Item": item_of(partition, key, value)},
        )

    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        request: dict[str, Any] = {"TableName": self.table, "Item": item_of(partition, key, value)}
        if predicate is None:
            request["ConditionExpression"] = f"attribute_not_exists({VALUE_ATTR})"
        elif predicate is MUST_EXIST:
            request["ConditionExpression"] = f"attribute_exists({VALUE_ATTR})"
        else:
            expected = value_predicate(predicate)
            if expected:
                request["ConditionExpression"] = f"{VALUE_ATTR} = :pred"
                request["ExpressionAttributeValues"] = {":pred": {"B": expected}}
            else:  # the empty value, stored as B "" or as lakeFS's legacy NULL
                request["ConditionExpression"] = (
                    f"{VALUE_ATTR} = :pred OR attribute_type({VALUE_ATTR}, :null)"
                )
                request["ExpressionAttributeValues"] = {
                    ":pred": {"B": b""},
                    ":null": {"S": "NULL"},
                }
        attempts = RequestAttempts(self._retry)
        try:
            self._request(self._client.put_item, request, attempts)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            if attempts.ambiguous:
                # An earlier attempt may have been applied, making this one fail its condition.
                current = self._get(partition, key)
                return current is not None and current.value == value
            return False
        return True

    def _delete(self, partition: bytes, key: bytes) -> None:
        self._request(
            self._client.delete_item,
            {
                "TableName": self.table,
                "Key": {PARTITION_ATTR: {"B": partition}, KEY_ATTR: {"B": key}},
            },
        )

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "ConsistentRead": True,
            "Limit": limit,
        }
        if start:
            op = ">=" if inclusive else ">"
            request["KeyConditionExpression"] = f"{PARTITION_ATTR} = :p AND {KEY_ATTR} {op} :s"
            request["ExpressionAttributeValues"] = {":p": {"B": partition}, ":s": {"B": start}}
        else:  # every key is non-empty, so ">= b''" and "> b''" are the whole partition
            request["KeyConditionExpression"] = f"{PARTITION_ATTR} = :p"
            request["ExpressionAttributeValues"] = {":p": {"B": partition}}
        while True:
            out = self._request(self._client.query, request)
            items = out.get("Items", [])
            last = out.get("LastEvaluatedKey")
            if items or last is None:
                return [(bytes(i[KEY_ATTR]["B"]), item_value(i)) for i in items], last is not None
            request["ExclusiveStartKey"] = last  # an empty page that is not the end: go on

    def _list_partitions(self) -> Iterator[bytes]:
        total = self._settings.scan_segments
        names: set[bytes] = set()
        if total == 1:
            names = self._scan_segment(0, 1)
        else:
            scans = self._parallel(lambda seg: self._scan_segment(seg, total), range(total), total)
            for part in scans:
                names |= part
        yield from sorted(names)

    def _scan_segment(self, segment: int, total: int) -> set[bytes]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "#p",
            "ExpressionAttributeNames": {"#p": PARTITION_ATTR},
            "ConsistentRead": True,
        }
        if total > 1:
            request["Segment"] = segment
            request["TotalSegments"] = total
        names: set[bytes] = set()
        while True:
            out = self._request(self._client.scan, request)
            names.update(bytes(i[PARTITION_ATTR]["B"]) for i in out.get("Items", []))
            last = out.get("LastEvaluatedKey")
            if last is None:
                return names
            request["ExclusiveStartKey"] = last

    # --- bulk writes -------------------------------------------------------------------------

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        """Classified by windows, written with ``BatchWriteItem`` (:mod:`.bulk`)."""
        return write_batch(self, entries, on_conflict)

    def _parallel(
        self, fn: Callable[[Any], R], tasks: Iterable[Any], window: int = 0
    ) -> Iterator[R]:
        """Run ``fn`` over ``tasks`` in the store's pool, ``window`` (default:
        ``write_concurrency``) at a time.

        Yields results as they complete (a single task runs in the calling thread). The first
        failure, of a task or of the task iterator, stops new submissions, lets running tasks
        finish and is raised.
        """
        todo = iter(tasks)
        first = next(todo, _NONE)
        if first is _NONE:
            return
        second = next(todo, _NONE)
        if second is _NONE:  # one task: no thread hop
            yield fn(first)
            return
        todo = itertools.chain((first, second), todo)
        pool = self._executor()
        window = max(1, window or self._settings.write_concurrency)
        pending: set[Future[R]] = set()
        error: BaseException | None = None

        def refill() -> None:
            nonlocal error
            try:
                while len(pending) < window:
                    task = next(todo, _NONE)
                    if task is _NONE:
                        return
                    pending.add(pool.submit(fn, task))
            except BaseException as exc:
                error = exc

        refill()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                exc = fut.exception()
                if exc is not None:
                    error = error or exc
                elif error is None:
                    yield fut.result()
            if error is None:
                refill()
        if error is not None:
            raise error

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            self._check_open()
            if self._pool is None:
                workers = max(self._settings.write_concurrency, self._settings.scan_segments)
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="lakekv-dynamodb")
            return self._pool

    # --- lifecycle ---------------------------------------------------------------------------

    def _destroy(self) -> None:
        try:
            self._request(self._client.delete_table, {"TableName": self.table})
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            return
        deadline = time.monotonic() + _TABLE_WAIT
        pause = 0.02
        while self._describe(RequestAttempts(self._retry)) is not None:
            if time.monotonic() > deadline:
                raise StoreUnavailableError(
                    f"dynamodb table {self.table} still exists {_TABLE_WAIT:.0f} s after delete"
                )
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        client: DynamoDBClient | None = getattr(self, "_client", None)
        if self._owns_client and client is not None:  # None: _open failed before building it
            client.close()
