"""DynamoDB driver: lakeFS layout, limits, retries under injected faults, bulk writes.

Runs against a DynamoDB-protocol server: the endpoint of a ``--store dynamodb://…`` option,
else a dynalite already started by ``scripts/dynalite.sh start``, else one this module starts
(and stops) when dynalite is installed. Without any, the tests skip — or fail when ``CI`` is set.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

boto3 = pytest.importorskip("boto3")

import botocore.config  # noqa: E402
from botocore.exceptions import ClientError, ReadTimeoutError  # noqa: E402

from lakekv.errors import (  # noqa: E402
    ConfigurationError,
    InvalidArgumentError,
    KeyNotFoundError,
    PredicateFailedError,
    RetryableError,
    SlowDownError,
    StoreError,
    StoreUnavailableError,
)
from lakekv.kv.drivers.dynamodb import DynamoDBStore  # noqa: E402
from lakekv.kv.registry import open_store  # noqa: E402
from lakekv.kv.store import MUST_EXIST, Entry, OnConflict  # noqa: E402
from lakekv.kv.url import StoreURL  # noqa: E402
from lakekv.testing.plugin import RUN_ID, configured_stores, require_available  # noqa: E402

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "dynalite.sh"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


# --- the server ------------------------------------------------------------------------------


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"dynamodb tests need a server: {reason} (required because CI is set)")
    pytest.skip(reason)


@pytest.fixture(scope="module", autouse=True)
def _dummy_credentials() -> Iterator[None]:
    """Local servers accept any credentials, but botocore signs only with some."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in DUMMY_CREDENTIALS.items():
            if not os.environ.get(name):
                mp.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def endpoint(request: pytest.FixtureRequest, _dummy_credentials: None) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a DynamoDB-protocol server (see module docstring)."""
    started = False
    urls = [u for u in configured_stores(request.config) if u.startswith("dynamodb://")]
    found: str | None = None
    if urls:
        require_available(urls[0])
        found = StoreURL.parse(urls[0]).params().get("endpoint")
        if not found:
            pytest.skip("--store dynamodb:// has no endpoint: these tests need a local server")
    else:
        found = os.environ.get("LAKEKV_TEST_DYNAMODB") or _script("url")
        if found is None:
            if shutil.which("node") is None or not (ROOT / ".tools" / "dynalite").is_dir():
                _unavailable("dynalite is not installed (run scripts/dynalite.sh install)")
            found = _script("start")
            started = found is not None
            if found is None:
                _unavailable("scripts/dynalite.sh start failed")
    assert found is not None
    try:
        yield found
    finally:
        if started:
            _script("stop")


def _script(command: str) -> str | None:
    try:
        out = subprocess.run(
            ["bash", str(SCRIPT), command], capture_output=True, text=True, timeout=60, check=True
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return out.stdout.strip() or None


@pytest.fixture
def table_url(endpoint: str) -> Iterator[str]:
    """URL of a fresh table, deleted after the test."""
    table = f"lakekv_t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    url = f"dynamodb://{table}?region=us-east-1&endpoint={endpoint}"
    yield url
    if _table_exists(endpoint, table):
        _raw_client(endpoint).delete_table(TableName=table)


def _raw_client(endpoint: str) -> DynamoDBClient:
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=endpoint,
        config=botocore.config.Config(retries={"total_max_attempts": 1}),
    )


def _table_exists(endpoint: str, table: str) -> bool:
    try:
        _raw_client(endpoint).describe_table(TableName=table)
    except ClientError:
        return False
    return True


def _table_of(url: str) -> str:
    return StoreURL.parse(url).host or ""


# --- fault injection -------------------------------------------------------------------------


def _client_error(code: str, op: str, status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        op,
    )


class FaultyClient:
    """A boto3 DynamoDB client proxy that injects faults into a share of calls.

    ``throttle``: method → share of calls that raise a throttling ``ClientError`` before
    reaching the server. ``unprocessed``: share of ``batch_write_item`` / ``batch_get_item``
    calls that forward only a random part of the request and hand the rest back as
    ``UnprocessedItems`` / ``UnprocessedKeys``. ``fail``: method → an error code raised on
    every call. ``lose_response``: method → share of calls that reach the server and then
    raise a read timeout (the outcome is unknown to the caller). Thread-safe; counts
    everything, including every put the server really received.
    """

    def __init__(
        self,
        real: DynamoDBClient,
        *,
        throttle: dict[str, float] | None = None,
        unprocessed: float = 0.0,
        fail: dict[str, str] | None = None,
        lose_response: dict[str, float] | None = None,
        throttle_code: str = "ProvisionedThroughputExceededException",
        seed: int = 1,
    ) -> None:
        self._real = real
        self._throttle = throttle or {}
        self._unprocessed = unprocessed
        self._fail = fail or {}
        self._lose = lose_response or {}
        self._code = throttle_code
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.landed: Counter[tuple[bytes, bytes]] = Counter()
        """(partition, key) → how many times a put for it reached the server."""

    def _roll(self, share: float) -> bool:
        with self._lock:
            return self._rng.random() < share

    def __getattr__(self, name: str) -> Callable[..., Any]:
        real = getattr(self._real, name)

        def call(**kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
            if name in self._fail:
                raise _client_error(self._fail[name], name)
            if self._roll(self._throttle.get(name, 0.0)):
                with self._lock:
                    self.injected[f"{name}:throttle"] += 1
                raise _client_error(self._code, name)
            if name == "batch_write_item" and self._roll(self._unprocessed):
                return self._partial_write(kwargs)
            if name == "batch_get_item" and self._roll(self._unprocessed):
                return self._partial_get(kwargs)
            out = real(**kwargs)
            self._count_landed(name, kwargs)
            if self._roll(self._lose.get(name, 0.0)):
                with self._lock:
                    self.injected[f"{name}:lost"] += 1
                raise ReadTimeoutError(endpoint_url="injected")
            return out

        return call

    def _count_landed(self, name: str, kwargs: dict[str, Any]) -> None:
        items: list[dict[str, Any]] = []
        if name == "put_item":
            items = [kwargs["Item"]]
        elif name == "batch_write_item":
            for requests in kwargs["RequestItems"].values():
                items.extend(r["PutRequest"]["Item"] for r in requests)
        with self._lock:
            for item in items:
                self.landed[(item["PartitionKey"]["B"], item["ItemKey"]["B"])] += 1

    def _split(self, items: list[Any]) -> tuple[list[Any], list[Any]]:
        with self._lock:
            cut = self._rng.randrange(len(items))  # forward [0, cut), hand back the rest
            self.injected["unprocessed"] += 1
        return items[:cut], items[cut:]

    def _partial_write(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        ((table, requests),) = kwargs["RequestItems"].items()
        sent, kept = self._split(list(requests))
        if sent:
            self._real.batch_write_item(RequestItems={table: sent})
            self._count_landed("batch_write_item", {"RequestItems": {table: sent}})
        return {"UnprocessedItems": {table: kept}}

    def _partial_get(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        ((table, spec),) = kwargs["RequestItems"].items()
        sent, kept = self._split(list(spec["Keys"]))
        responses: list[Any] = []
        if sent:
            out = self._real.batch_get_item(RequestItems={table: {**spec, "Keys": sent}})
            responses = out.get("Responses", {}).get(table, [])
            assert not out.get("UnprocessedKeys")
        return {"Responses": {table: responses}, "UnprocessedKeys": {table: {**spec, "Keys": kept}}}


def _open_faulty(url: str, endpoint: str, **faults: Any) -> tuple[DynamoDBStore, FaultyClient]:
    faulty = FaultyClient(_raw_client(endpoint), **faults)
    store = DynamoDBStore.from_url(StoreURL.parse(url), client=cast("DynamoDBClient", faulty))
    return store, faulty


# --- lakeFS layout ---------------------------------------------------------------------------


def test_creates_lakefs_layout(table_url: str, endpoint: str) -> None:
    with open_store(table_url) as store:
        store.set(b"p", b"empty", b"")
    desc = _raw_client(endpoint).describe_table(TableName=_table_of(table_url))["Table"]
    assert sorted((k["AttributeName"], k["KeyType"]) for k in desc["KeySchema"]) == [
        ("ItemKey", "RANGE"),
        ("PartitionKey", "HASH"),
    ]
    assert {a["AttributeName"]: a["AttributeType"] for a in desc["AttributeDefinitions"]} == {
        "PartitionKey": "B",
        "ItemKey": "B",
    }
    assert desc.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST"
    assert not desc.get("GlobalSecondaryIndexes") and not desc.get("LocalSecondaryIndexes")
    item = _raw_client(endpoint).get_item(
        TableName=_table_of(table_url),
        Key={"PartitionKey": {"B": b"p"}, "ItemKey": {"B": b"empty"}},
        ConsistentRead=True,
    )["Item"]
    assert item["ItemValue"] == {"B": b""}  # an empty value is stored as empty binary


def test_reads_a_table_written_in_lakefs_layout(table_url: str, endpoint: str) -> None:
    client = _raw_client(endpoint)
    table = _table_of(table_url)
    client.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "PartitionKey", "KeyType": "HASH"},
            {"AttributeName": "ItemKey", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "PartitionKey", "AttributeType": "B"},
            {"AttributeName": "ItemKey", "AttributeType": "B"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    # dynalite makes even a 0 ms table creation asynchronous: wait until the table answers.
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.1})
    rows: dict[tuple[bytes, bytes], dict[str, Any]] = {
        (b"graveler", b"repos/r1"): {"B": b"\x0a\x02r1"},
        (b"graveler", b"repos/r2"): {"NULL": True},  # legacy empty value
        (b"graveler", b"repos/r3"): {"B": b""},
        (b"kv-internal-metadata", b"kv/schema/version"): {"B": b"4"},
        (b"\x00\xff", b"\xff\x00"): {"B": b"\x00"},
    }
    for (p, k), v in rows.items():
        client.put_item(
            TableName=table, Item={"PartitionKey": {"B": p}, "ItemKey": {"B": k}, "ItemValue": v}
        )
    with open_store(f"{table_url}&page_size=1&page_cap=2&create_table=false") as store:
        assert store.get(b"graveler", b"repos/r1").value == b"\x0a\x02r1"
        legacy = store.get(b"graveler", b"repos/r2")
        assert legacy.value == b""
        assert store.get(b"graveler", b"repos/r3").value == b""
        assert store.get(b"kv-internal-metadata", b"kv/schema/version").value == b"4"
        assert list(store.scan(b"graveler")) == [
            Entry(b"graveler", b"repos/r1", b"\x0a\x02r1"),
            Entry(b"graveler", b"repos/r2", b""),
            Entry(b"graveler", b"repos/r3", b""),
        ]
        assert [e.key for e in store.scan(b"graveler", start=b"repos/r2")] == [
            b"repos/r2",
            b"repos/r3",
        ]
        assert list(store.list_partitions()) == [b"\x00\xff", b"graveler", b"kv-internal-metadata"]
        # The predicate of a legacy NULL value works, once; then the value is binary.
        store.set_if(b"graveler", b"repos/r2", b"new", legacy.predicate)
        with pytest.raises(PredicateFailedError):
            store.set_if(b"graveler", b"repos/r2", b"newer", legacy.predicate)
        assert store.get(b"graveler", b"repos/r2").value == b"new"
        # A wrong predicate fails on a legacy NULL too.
        client.put_item(
            TableName=table,
            Item={
                "PartitionKey": {"B": b"graveler"},
                "ItemKey": {"B": b"repos/r4"},
                "ItemValue": {"NULL": True},
            },
        )
        with pytest.raises(PredicateFailedError):
            store.set_if(b"graveler", b"repos/r4", b"x", b"something")
        with pytest.raises(PredicateFailedError):
            store.set_if(b"graveler", b"repos/r4", b"x", None)
        store.set_if(b"graveler", b"repos/r4", b"x", MUST_EXIST)
        assert store.get(b"graveler", b"repos/r4").value == b"x"


def test_refuses_a_table_with_another_key_schema(table_url: str, endpoint: str) -> None:
    _raw_client(endpoint).create_table(
        TableName=_table_of(table_url),
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(ConfigurationError, match="key schema"):
        open_store(table_url)


def test_missing_table_without_create(table_url: str) -> None:
    with pytest.raises(ConfigurationError, match="create_table=false"):
        open_store(table_url + "&create_table=false")


def test_concurrent_opens_create_the_table_once(table_url: str) -> None:
    results: list[object] = []

    def opener() -> None:
        try:
            with open_store(table_url) as s:
                s.set(b"p", b"k", b"v")
            results.append(True)
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 4


# --- URL and limits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "bogus=1",
        "page_size=2000",
        "max_attempts=0",
        "endpoint=127.0.0.1:1",
        "create_table=maybe",
        "profile=lakekv-no-such-profile",
    ],
)
def test_bad_parameters(query: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(f"dynamodb://kvstore?region=us-east-1&{query}")


def test_bad_table_name() -> None:
    with pytest.raises(ConfigurationError, match="table name"):
        open_store("dynamodb://x?region=us-east-1&endpoint=http://127.0.0.1:1")


def test_a_client_passed_in_is_used_and_left_open(table_url: str, endpoint: str) -> None:
    """``from_url(url, client=...)``: the store uses that client and leaves closing it to the
    caller, who owns it."""
    store, faulty = _open_faulty(table_url, endpoint)
    with store:
        store.set(b"p", b"k", b"v")
    assert faulty.calls["put_item"] == 1
    assert faulty.calls["close"] == 0


def test_limits_named_before_any_request(table_url: str, endpoint: str) -> None:
    store, faulty = _open_faulty(table_url, endpoint)
    with store:
        before = sum(faulty.calls.values())
        cases: list[tuple[Callable[[], object], str]] = [
            (lambda: store.set(b"p" * 2049, b"k", b"v"), "2048"),
            (lambda: store.set(b"p", b"k" * 1025, b"v"), "1024"),
            (lambda: store.get(b"p" * 2049, b"k"), "2048"),
            (lambda: store.get(b"p", b"k" * 1025), "1024"),
            (lambda: store.set_if(b"p", b"k", b"v" * 409_571, None), "409572"),
            (lambda: store.write_batch([Entry(b"p", b"k", b"v" * 409_571)]), "409572"),
            (lambda: store.scan(b"p" * 2049), "2048"),
        ]
        for call, limit in cases:
            with pytest.raises(InvalidArgumentError, match=limit):
                call()
        assert sum(faulty.calls.values()) == before
        # Exactly at the limits works: 400 KB including the 28 bytes of attribute names.
        p, k = b"P" * 2048, b"K" * 1024
        v = b"v" * (409_600 - 28 - len(p) - len(k))
        store.set(p, k, v)
        assert store.get(p, k).value == v
        store.set(b"p", b"k", b"v" * (409_600 - 28 - 2))
        assert store.capabilities.max_item_size == 409_572


def test_unreachable_endpoint_fails_fast() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as info:
        open_store(f"dynamodb://kvstore?region=us-east-1&endpoint=http://127.0.0.1:{port}")
    assert time.monotonic() - started < 5
    assert isinstance(info.value, RetryableError)
    assert isinstance(info.value.__cause__, Exception)
    # A black-holed address: bounded by connect_timeout, not by minutes of retries.
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        open_store(
            "dynamodb://kvstore?region=us-east-1&endpoint=http://10.255.255.1:9&connect_timeout=0.5"
        )
    assert time.monotonic() - started < 5


# --- retries under injected faults ------------------------------------------------------------


def test_point_writes_succeed_through_throttling(table_url: str, endpoint: str) -> None:
    store, faulty = _open_faulty(
        table_url + "&max_attempts=50",
        endpoint,
        throttle={"put_item": 0.3, "get_item": 0.3, "query": 0.3, "delete_item": 0.3},
        seed=3,
    )
    with store:
        for i in range(40):
            store.set(b"p", b"k%02d" % i, b"v%d" % i)
        for i in range(40):
            assert store.get(b"p", b"k%02d" % i).value == b"v%d" % i
        assert [e.value for e in store.scan(b"p", batch_size=7)] == [b"v%d" % i for i in range(40)]
        store.set_if(b"p", b"new", b"1", None)
        with pytest.raises(PredicateFailedError):
            store.set_if(b"p", b"new", b"2", None)
        got = store.get(b"p", b"new")
        store.set_if(b"p", b"new", b"3", got.predicate)
        store.delete(b"p", b"new")
        with pytest.raises(KeyNotFoundError):
            store.get(b"p", b"new")
    assert faulty.injected["put_item:throttle"] > 5
    assert faulty.injected["get_item:throttle"] > 5


@pytest.mark.parametrize(
    "code",
    ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"],
)
def test_point_write_raises_slow_down_after_its_budget(
    table_url: str, endpoint: str, code: str
) -> None:
    budget = 0.3
    store, faulty = _open_faulty(
        f"{table_url}&max_attempts=1000&retry_budget={budget}",
        endpoint,
        throttle={"put_item": 1.0},
        throttle_code=code,
    )
    with store:
        started = time.monotonic()
        with pytest.raises(SlowDownError, match=code) as info:
            store.set(b"p", b"k", b"v")
        elapsed = time.monotonic() - started
        assert elapsed <= budget + 0.2
        assert isinstance(info.value, RetryableError)
        assert isinstance(info.value.__cause__, ClientError)
        assert faulty.calls["put_item"] >= 3  # it did retry
        with pytest.raises(KeyNotFoundError):
            store.get(b"p", b"k")


def test_max_attempts_bounds_the_retries(table_url: str, endpoint: str) -> None:
    store, faulty = _open_faulty(
        table_url + "&max_attempts=3", endpoint, throttle={"put_item": 1.0, "query": 1.0}
    )
    with store:
        with pytest.raises(SlowDownError):
            store.set_if(b"p", b"k", b"v", None)
        assert faulty.calls["put_item"] == 3
        with pytest.raises(SlowDownError):
            list(store.scan(b"p"))
        assert faulty.calls["query"] == 3


def test_server_errors_are_retried_then_unavailable(table_url: str, endpoint: str) -> None:
    store, faulty = _open_faulty(
        table_url + "&max_attempts=4", endpoint, fail={"get_item": "InternalServerError"}
    )
    with store, pytest.raises(StoreUnavailableError) as info:
        store.get(b"p", b"k")
    assert not isinstance(info.value, SlowDownError)
    assert faulty.calls["get_item"] == 4


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("ValidationException", StoreError),
        ("AccessDeniedException", ConfigurationError),
        ("ResourceNotFoundException", StoreUnavailableError),
        ("SomethingNew", StoreUnavailableError),
    ],
)
def test_other_errors_are_translated_not_retried(
    table_url: str, endpoint: str, code: str, kind: type[Exception]
) -> None:
    store, faulty = _open_faulty(table_url, endpoint, fail={"put_item": code})
    with store:
        with pytest.raises(kind, match=code) as info:
            store.set(b"p", b"k", b"v")
        assert isinstance(info.value.__cause__, ClientError)
        assert faulty.calls["put_item"] == 1


def test_conditional_write_with_lost_response(table_url: str, endpoint: str) -> None:
    # The first PutItem is applied but its response is lost; the retry then fails its condition.
    store, faulty = _open_faulty(table_url, endpoint, lose_response={"put_item": 1.0})
    with store:
        store.set_if(b"p", b"k", b"mine", None)  # recognised as our own write
        assert store.get(b"p", b"k").value == b"mine"
        assert faulty.injected["put_item:lost"] >= 1
    plain = open_store(table_url)
    with plain:
        plain.set(b"p", b"other", b"theirs")
    store2, _ = _open_faulty(table_url, endpoint, lose_response={"put_item": 1.0})
    with store2, pytest.raises(PredicateFailedError):
        store2.set_if(b"p", b"other", b"mine", None)  # a real conflict is still one


def test_bulk_write_lands_every_item_exactly_once(table_url: str, endpoint: str) -> None:
    n = 10_000
    partitions = [b"part-%d" % i for i in range(7)] + [b"hot"]
    entries = [
        Entry(partitions[i % 3 if i % 2 else -1], b"key/%06d" % i, b"value-%d" % i)
        for i in range(n)
    ]
    store, faulty = _open_faulty(
        table_url + "&write_concurrency=8&max_attempts=30",
        endpoint,
        throttle={"batch_write_item": 0.2, "batch_get_item": 0.1, "query": 0.1},
        unprocessed=0.3,
        seed=7,
    )
    with store:
        result = store.write_batch(entries)
        assert (result.written, result.unchanged, result.skipped) == (n, 0, 0)
        assert not result.conflicts
        assert faulty.injected["batch_write_item:throttle"] > 10
        assert faulty.injected["unprocessed"] > 10
        # Every put reached the server exactly once, and nothing else did.
        assert len(faulty.landed) == n
        assert set(faulty.landed.values()) == {1}
        expected: dict[bytes, list[tuple[bytes, bytes]]] = {}
        for e in entries:
            expected.setdefault(e.partition, []).append((e.key, e.value))
        for p, rows in expected.items():
            assert [(e.key, e.value) for e in store.scan(p)] == sorted(rows)
        assert list(store.list_partitions()) == sorted(expected)
        # Again: all unchanged, nothing written.
        landed = sum(faulty.landed.values())
        again = store.write_batch(entries)
        assert (again.written, again.unchanged) == (0, n)
        assert sum(faulty.landed.values()) == landed


@pytest.mark.parametrize("layout", ["one-partition", "scattered", "crowded"])
def test_bulk_write_policies_and_classification(table_url: str, endpoint: str, layout: str) -> None:
    """Each lookup path classifies right under faults: a range Query (one partition), a
    BatchGetItem (a few keys per partition), a range Query crowded with other keys that
    falls back to BatchGetItem."""
    store, faulty = _open_faulty(
        table_url + "&max_attempts=30",
        endpoint,
        unprocessed=0.5,
        throttle={"batch_get_item": 0.2, "query": 0.2, "batch_write_item": 0.1},
    )

    def part(i: int) -> bytes:
        return b"p%d" % (i % 150) if layout == "scattered" else b"p"

    with store:
        if layout == "crowded":  # 10 foreign keys around every key of the batch
            store.write_batch(
                [Entry(b"p", b"k%03d-%d" % (i, j), b"x") for i in range(300) for j in range(10)]
            )
        for i in range(0, 300, 3):
            store.set(part(i), b"k%03d" % i, b"old")  # every third key exists, differently
        for i in range(1, 300, 3):
            store.set(part(i), b"k%03d" % i, b"new")  # ... and some with the same value
        batch = [Entry(part(i), b"k%03d" % i, b"new") for i in range(300)]
        fail = store.write_batch(batch, OnConflict.FAIL)
        assert (fail.written, fail.unchanged, len(fail.conflicts)) == (100, 100, 100)
        assert [c.key for c in fail.conflicts] == [b"k%03d" % i for i in range(0, 300, 3)]
        assert store.get(part(0), b"k000").value == b"old"
        skip = store.write_batch(batch, OnConflict.SKIP)
        assert (skip.written, skip.unchanged, skip.skipped) == (0, 200, 100)
        over = store.write_batch(batch, "overwrite")
        assert (over.written, over.unchanged) == (100, 200)
        assert all(store.get(e.partition, e.key).value == b"new" for e in batch)
        with pytest.raises(InvalidArgumentError, match="more than once"):
            store.write_batch([Entry(b"p", b"dup", b"1"), Entry(b"p", b"dup", b"2")])
    used = "query" if layout == "one-partition" else "batch_get_item"
    assert faulty.calls[used] > 0
    assert faulty.injected["unprocessed"] > 0


def test_bulk_write_stall_raises_slow_down(table_url: str, endpoint: str) -> None:
    store, _ = _open_faulty(
        table_url + "&max_attempts=5&retry_budget=1", endpoint, throttle={"batch_write_item": 1.0}
    )
    with store, pytest.raises(SlowDownError):
        store.write_batch([Entry(b"p", b"k%d" % i, b"v") for i in range(60)])


@pytest.mark.parametrize("segments", [1, 4])
def test_list_partitions_parallel_scan(table_url: str, segments: int) -> None:
    names = [b"\xff", b"\x00", b"a", b"a\x00", b"b/c", b"\x7f\xff"]
    with open_store(f"{table_url}&scan_segments={segments}") as store:
        assert list(store.list_partitions()) == []
        store.write_batch([Entry(p, b"k%d" % i, b"") for p in names for i in range(30)])
        assert list(store.list_partitions()) == sorted(names)


@pytest.mark.parametrize("method", ["batch_write_item", "query"])
def test_bulk_write_failure_stops_cleanly(table_url: str, endpoint: str, method: str) -> None:
    store, faulty = _open_faulty(table_url, endpoint, fail={method: "ValidationException"})
    entries = [Entry(b"p%d" % (i % 4), b"k%06d" % i, b"v") for i in range(10_000)]
    with store:
        started = time.monotonic()
        with pytest.raises(StoreError, match="ValidationException"):
            store.write_batch(entries)
        assert time.monotonic() - started < 10
        assert faulty.calls[method] <= 16  # stopped at the first failures, not after everything
        store.set(b"p", b"still", b"usable")
        assert store.get(b"p", b"still").value == b"usable"


def test_test_server_survives_a_client_dropped_mid_request(endpoint: str) -> None:
    """A client killed mid-request (as the kill -9 resume tests do) must not take the shared
    test server down: real DynamoDB endpoints do not die with their clients."""
    parsed = urllib.parse.urlsplit(endpoint)
    assert parsed.hostname is not None and parsed.port is not None
    for _ in range(3):
        sock = socket.create_connection((parsed.hostname, parsed.port), timeout=5)
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\n"
            b"X-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: 1000\r\n\r\n{"
        )
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # reset: the server sees the request aborted half-way
    time.sleep(0.3)
    assert isinstance(_raw_client(endpoint).list_tables()["TableNames"], list)
