"""The Redis and Redis Cluster drivers; :mod:`lakekv.kv.drivers.redis` describes them."""

from __future__ import annotations

import hashlib
import heapq
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import redis
import redis.exceptions as rex
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from lakekv.errors import (
    ConfigurationError,
    LakekvError,
    StoreClosedError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from lakekv.kv.drivers.redis._layout import SCRIPTS, escape, key_slot, slot_tags
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

_NAMESPACE = re.compile(r"^[A-Za-z0-9_./-]{1,200}$")
_MAX_PAGE: Final = 4000  # keys unpacked into one HMGET inside Lua (its C stack holds ~8000)
_BATCH_ENTRIES: Final = 500
_BATCH_BYTES: Final = 4 << 20
_PIPELINE_SCRIPTS: Final = 16
_KEY_CACHE: Final = 4096

_POLICY = {OnConflict.FAIL: b"f", OnConflict.SKIP: b"s", OnConflict.OVERWRITE: b"o"}
_LOCAL_HOSTS: Final = frozenset({"", "localhost", "127.0.0.1", "::1"})
MARKER_SUFFIX: Final = b".lakekv-store"
"""The store's marker key is ``NAMESPACE.lakekv-store``: it has no ``:``, so it is never one
of the ``NAMESPACE:…`` data keys of any namespace (namespaces contain no ``:``)."""


def marker_key(namespace: str) -> bytes:
    """The key whose presence says that the store named ``namespace`` exists."""
    return namespace.encode() + MARKER_SUFFIX


def _server(host: str, port: int) -> str:
    """``host:port`` with the local host's spellings folded into ``localhost``."""
    host = host.lower()
    if host in _LOCAL_HOSTS:
        host = "localhost"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _translate(url: StoreURL, exc: BaseException) -> LakekvError:
    if isinstance(exc, rex.AuthenticationError | rex.AuthorizationError):
        # A wrong user or password is a configuration mistake on every engine (exit 2).
        return ConfigurationError(f"{url}: {exc}")
    unavailable = (
        rex.ConnectionError,
        rex.TimeoutError,
        rex.BusyLoadingError,
        rex.ClusterDownError,
        rex.TryAgainError,
        rex.MasterDownError,
        rex.ClusterError,
        rex.RedisClusterException,
    )
    if isinstance(exc, unavailable):
        return StoreUnavailableError(f"{url} unavailable: {exc}")
    return StoreError(f"{url}: {exc}")


@dataclass(frozen=True)
class RedisSettings:
    """What a ``redis://`` or ``redis+cluster://`` URL says, besides paging."""

    namespace: str
    hosts: tuple[tuple[str, int], ...]
    database: int
    connection: dict[str, Any]
    """Keyword arguments of the client: credentials, timeouts, pool size."""


class RedisStore(Store):
    scheme = "redis"
    capabilities = Capabilities(list_partitions=True, native_write_batch=True)
    driver_errors = (rex.RedisError, rex.RedisClusterException)
    namespace_param = "namespace"
    cluster: ClassVar[bool] = False

    default_paging = ScanPaging(page_size=1000, page_cap=2000)

    @classmethod
    def parse_settings(
        cls, url: StoreURL, params: ParamReader, options: OpenOptions
    ) -> RedisSettings:
        options.take_credentials(url, ())
        namespace = params.take_str("namespace", "lakekv")
        if not _NAMESPACE.match(namespace):
            raise ConfigurationError(
                f"{url}: namespace {namespace!r} must be 1-200 letters, digits, '_', '.', '-', '/'"
            )
        socket_timeout = params.take_float("socket_timeout", 5.0, minimum=0.001)
        connect_timeout = params.take_float("connect_timeout", 5.0, minimum=0.001)
        max_connections = params.take_int("max_connections", 64, minimum=1)
        hosts = tuple(url.host_list(6379) or [("127.0.0.1", 6379)])
        connection: dict[str, Any] = {
            "username": url.username,
            "password": url.password,
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            "max_connections": max_connections,
        }
        return RedisSettings(namespace, hosts, cls._database(url, hosts), connection)

    @classmethod
    def _database(cls, url: StoreURL, hosts: tuple[tuple[str, int], ...]) -> int:
        """The database number, after checking that the URL names what the class serves."""
        if len(hosts) != 1:
            raise ConfigurationError(
                f"{url}: redis:// takes one server; for a cluster use redis+cluster://h1:p1,h2:p2"
            )
        db_text = url.path.strip("/") or "0"
        if not db_text.isdigit():
            raise ConfigurationError(f"{url}: the path must be a database number, e.g. /0")
        return int(db_text)

    def __init__(
        self,
        url: StoreURL,
        paging: ScanPaging,
        options: OpenOptions,
        settings: RedisSettings,
    ) -> None:
        if paging.page_cap > _MAX_PAGE:
            raise ConfigurationError(f"{url}: page_cap must be at most {_MAX_PAGE}")
        super().__init__(url, paging, options)
        self._settings = settings
        self._client: Any = None
        self.namespace = namespace = settings.namespace
        ns = namespace.encode()
        self._v_prefix = ns + b":v:{"
        self._i_prefix = ns + b":i:{"
        self._p_key = ns + b":p"
        self._marker = marker_key(namespace)
        self._shas: dict[str, bytes] = {}
        self._key_cache: dict[bytes, tuple[bytes, bytes, bytes]] = {}

    def _open(self) -> None:
        """Connect (a cluster client learns the slot map), check the server answers, find
        the store, and load the scripts."""
        client = self._client = self._connect(self._settings)
        client.ping()
        self._find_store()
        for name, source in SCRIPTS.items():
            self._shas[name] = client.script_load(source)

    def _connect(self, settings: RedisSettings) -> Any:
        host, port = settings.hosts[0]
        return redis.Redis(
            host=host,
            port=port,
            db=settings.database,
            retry=Retry(NoBackoff(), 0),
            **settings.connection,
        )

    def _find_store(self) -> None:
        """Find the store's marker, or write it (``may_create``), or accept a namespace
        holding partitions from before markers existed; otherwise StoreNotFoundError."""
        if self.options.may_create:
            # The value names this incarnation of the store (see ``_incarnation``).
            marker = b"lakekv " + uuid.uuid4().hex.encode()
            self._client.set(self._marker, marker, nx=True)  # nothing if it is there
            return
        if self._client.exists(self._marker) or self._has_partitions():
            return
        raise StoreNotFoundError(
            f"{self.scheme} {self._servers()}: no store in namespace {self.namespace!r} "
            f"(no key {self._marker.decode()!r} and no partitions)"
        )

    def _has_partitions(self) -> bool:
        """Does the namespace hold a non-empty partition?"""
        return bool(self._client.exists(self._p_key))

    def _servers(self) -> str:
        """The server(s) and database as the URL names them, local spellings folded."""
        hosts = self._url.host_list(6379) or [("127.0.0.1", 6379)]
        db = self._url.path.strip("/") or "0"
        return ",".join(sorted(_server(h, p) for h, p in hosts)) + f"/{int(db)}"

    def _identity(self) -> str:
        return f"{self.scheme}://{self._servers()}?namespace={self.namespace}"

    def _incarnation(self) -> str | None:
        """The marker's value: random when the store is created, so a namespace emptied and
        created again (``FLUSHALL``, a restart without persistence) is another."""
        value = self._client.get(self._marker)
        return None if value is None else bytes(value).decode("ascii", "replace")

    # --- keys --------------------------------------------------------------------------------

    def _keys(self, partition: bytes) -> tuple[bytes, bytes, bytes]:
        """Values hash, index and partition-list keys of ``partition`` (remembered for the
        last few thousand partitions: building them costs a fifth of a local round trip)."""
        keys = self._key_cache.get(partition)
        if keys is None:
            if len(self._key_cache) >= _KEY_CACHE:
                self._key_cache.clear()
            keys = self._key_cache[partition] = self._names(partition)
        return keys

    def _names(self, partition: bytes) -> tuple[bytes, bytes, bytes]:
        tag = escape(partition) + b"}"
        return self._v_prefix + tag, self._i_prefix + tag, self._p_key

    def _eval(self, name: str, keys: Sequence[bytes], *args: bytes | int) -> Any:
        try:
            return self._client.evalsha(self._shas[name], len(keys), *keys, *args)
        except rex.NoScriptError:  # the server lost its script cache (restart, SCRIPT FLUSH)
            self._shas[name] = self._client.script_load(SCRIPTS[name])
            return self._client.evalsha(self._shas[name], len(keys), *keys, *args)

    def _translate_error(self, exc: BaseException) -> LakekvError:
        return _translate(self._url, exc)

    # --- the contract ------------------------------------------------------------------------

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        value = self._client.hget(self._keys(partition)[0], key)
        if value is None:
            return None
        return ValueWithPredicate(value, value)

    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        self._eval("set", self._keys(partition), key, value, partition)

    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        if predicate is None:
            mode, expected = b"c", b""
        elif predicate is MUST_EXIST:
            mode, expected = b"e", b""
        else:
            mode, expected = b"v", value_predicate(predicate)
        done = self._eval("set_if", self._keys(partition), key, value, partition, mode, expected)
        return bool(done)

    def _delete(self, partition: bytes, key: bytes) -> None:
        self._eval("delete", self._keys(partition), key, partition)

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        keys = self._keys(partition)[:2]
        flat = self._eval("page", keys, (b"[" if inclusive else b"(") + start, limit)
        it = iter(flat)
        rows = list(zip(it, it, strict=True))
        return rows, len(rows) == limit

    def _list_partitions(self) -> Iterator[bytes]:
        return self._list_zset(self._p_key)

    def _list_zset(self, name: bytes) -> Iterator[bytes]:
        """Members of one sorted set in bytewise order, a page at a time."""
        low = b"-"
        while True:
            page: list[bytes] = self._client.zrangebylex(name, low, b"+", 0, 1000)
            yield from page
            if len(page) < 1000:
                return
            low = b"(" + page[-1]

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        by_partition: dict[bytes, list[Entry]] = {}
        for entry in entries:
            by_partition.setdefault(entry.partition, []).append(entry)
        chunks: list[list[Entry]] = []
        for group in by_partition.values():
            chunk: list[Entry] = []
            size = 0
            for entry in group:
                chunk.append(entry)
                size += len(entry.key) + len(entry.value)
                if len(chunk) >= _BATCH_ENTRIES or size >= _BATCH_BYTES:
                    chunks.append(chunk)
                    chunk, size = [], 0
            if chunk:
                chunks.append(chunk)
        result = BatchResult()
        classify = result.classify
        policy = _POLICY[on_conflict]
        for i in range(0, len(chunks), _PIPELINE_SCRIPTS):
            if self._closed:  # close() on another thread: stop between pipelines
                raise StoreClosedError(f"store {self._url} was closed during write_batch")
            window = chunks[i : i + _PIPELINE_SCRIPTS]
            for chunk, codes in zip(window, self._run_batches(window, policy), strict=True):
                for entry, code in zip(chunk, codes, strict=True):
                    classify(entry, _seen(entry, code), on_conflict)
        return result

    def _run_batches(self, chunks: list[list[Entry]], policy: bytes) -> list[list[int]]:
        """Run one batch script per chunk, pipelined; the per-entry codes of each."""
        return self._pipelined_batches(self._client, chunks, policy)

    def _pipelined_batches(
        self, client: Any, chunks: list[list[Entry]], policy: bytes
    ) -> list[list[int]]:
        for attempt in range(2):
            pipe = client.pipeline(transaction=False)
            for chunk in chunks:
                partition = chunk[0].partition
                args: list[bytes] = [policy, partition]
                for entry in chunk:
                    args.append(entry.key)
                    args.append(entry.value)
                pipe.evalsha(self._shas["batch"], 3, *self._keys(partition), *args)
            try:
                return [list(codes) for codes in pipe.execute()]
            except rex.NoScriptError:
                if attempt:
                    raise
                self._shas["batch"] = client.script_load(SCRIPTS["batch"])
        raise AssertionError("unreachable")

    def _destroy(self) -> None:
        ns = self.namespace.encode()
        for pattern in (ns + b":v:{*", ns + b":i:{*", ns + b":p", ns + b":p:{*"):
            doomed = list(self._client.scan_iter(match=pattern, count=1000))
            for i in range(0, len(doomed), 500):
                pipe = self._client.pipeline(transaction=False)
                for name in doomed[i : i + 500]:
                    pipe.unlink(name)
                pipe.execute()
        self._client.unlink(self._marker)

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()


def _seen(entry: Entry, code: int) -> bytes | None:
    """What the batch script found under ``entry``'s key, as far as counting it needs: code 0
    is a key it wrote (absent, or overwritten), 1 the entry's own value, 2 another value
    (left alone)."""
    if code == 0:
        return None
    if code == 1:
        return entry.value
    return entry.value + b"\x00"  # any other value


class RedisClusterStore(RedisStore):
    """Redis Cluster: the same layout, one partition list per hash slot (see the module)."""

    scheme = "redis+cluster"
    cluster = True

    _slot_lists: list[tuple[str, list[bytes]]] | None = None
    """Per node, the names of the partition lists of the slots it serves (found once)."""

    @classmethod
    def _database(cls, url: StoreURL, hosts: tuple[tuple[str, int], ...]) -> int:
        if url.path.strip("/") not in ("", "0"):
            raise ConfigurationError(f"{url}: a Redis Cluster has only database 0")
        return 0

    def _connect(self, settings: RedisSettings) -> Any:
        return RedisCluster(
            startup_nodes=[
                ClusterNode(host, port)  # type: ignore[no-untyped-call]
                for host, port in settings.hosts
            ],
            retry=Retry(NoBackoff(), 0),
            **settings.connection,
        )

    def _names(self, partition: bytes) -> tuple[bytes, bytes, bytes]:
        body = escape(partition)
        tag = body + b"}"
        plist = self._p_key + b":{" + slot_tags()[key_slot(body)] + b"}"
        return self._v_prefix + tag, self._i_prefix + tag, plist

    def _run_batches(self, chunks: list[list[Entry]], policy: bytes) -> list[list[int]]:
        # The cluster client refuses to pipeline scripts: pipeline to each node's own client
        # the chunks whose slots it serves (a slot that moved meanwhile fails with MOVED).
        by_node: dict[str, tuple[Any, list[int]]] = {}
        for i, chunk in enumerate(chunks):
            node = self._client.get_node_from_key(self._keys(chunk[0].partition)[0])
            by_node.setdefault(node.name, (node.redis_connection, []))[1].append(i)
        codes: list[list[int]] = [[] for _ in chunks]
        for client, indexes in by_node.values():
            done = self._pipelined_batches(client, [chunks[i] for i in indexes], policy)
            for i, got in zip(indexes, done, strict=True):
                codes[i] = got
        return codes

    def _list_partitions(self) -> Iterator[bytes]:
        # One partition list per slot that holds partitions: which of the 16,384 exist is
        # asked of each node, for the slots it serves, in one plain pipeline (the cluster
        # client's pipeline spent 4.5 s routing 16,384 EXISTS). Which node serves which slot
        # is worked out once; a slot that moved since fails with MOVED, which also forgets it.
        groups = self._slot_lists
        if groups is None:
            by_node: dict[str, list[bytes]] = {}
            for tag in slot_tags():
                name = self._p_key + b":{" + tag + b"}"
                by_node.setdefault(self._client.get_node_from_key(name).name, []).append(name)
            groups = self._slot_lists = list(by_node.items())
        found: list[bytes] = []
        try:
            for node_name, names in groups:
                node = self._client.get_node(node_name=node_name)
                if node is None or node.redis_connection is None:  # the cluster changed
                    self._slot_lists = None
                    return self._list_partitions()
                pipe = node.redis_connection.pipeline(transaction=False)
                for name in names:
                    pipe.exists(name)
                found += [name for name, n in zip(names, pipe.execute(), strict=True) if n]
        except BaseException:
            self._slot_lists = None
            raise
        return heapq.merge(*(self._list_zset(name) for name in found))

    def _has_partitions(self) -> bool:
        return next(iter(self._list_partitions()), None) is not None

    def _identity(self) -> str:
        """The cluster's own names: the IDs of its nodes, as ``CLUSTER NODES`` lists them (every
        node gives the same list), so the cluster reached through any node is one store; then
        the namespace. Falls back to the addresses when the list cannot be read."""
        try:
            nodes = self._client.cluster_nodes()
        except rex.RedisError:
            return super()._identity()
        ids = sorted({str(info.get("node_id")) for info in nodes.values() if info.get("node_id")})
        if not ids:
            return super()._identity()
        digest = hashlib.sha256(",".join(ids).encode()).hexdigest()[:24]
        return f"{self.scheme}://cluster-{digest}?namespace={self.namespace}"
