"""The etcd driver; the module docstring of :mod:`lakekv.kv.drivers.etcd` describes it."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple, TypeVar

import grpc
from google.protobuf.message import Message

from lakekv.errors import (
    ConfigurationError,
    InvalidArgumentError,
    LakekvError,
    StoreClosedError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from lakekv.kv.drivers.etcd import _keys
from lakekv.kv.drivers.etcd.proto import rpc_pb2
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
)
from lakekv.kv.url import ParamReader, StoreURL
from lakekv.retry import RetryPolicy

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)

MAX_REQUEST_BYTES: Final = 1_572_864
"""etcd's default ``--max-request-bytes`` (1.5 MiB): the largest request a server accepts."""
MAX_TXN_OPS: Final = 128
"""etcd's default ``--max-txn-ops``: compares, and operations per branch, in one transaction."""
_MAX_NAME: Final = 4096
_KEY_OVERHEAD: Final = 32_768  # two encoded keys of the largest size, prefix and framing
_BATCH_BYTES: Final = 1_000_000
_BATCH_ATTEMPTS: Final = 8
_DELETE_SLICE: Final = 5000
_PREFIX_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/:"
)
_UNAVAILABLE: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)

_LOCAL_HOSTS: Final = frozenset({"", "localhost", "127.0.0.1", "::1"})

_CREATE_ABSENT = rpc_pb2.Compare.CREATE
_EQUAL = rpc_pb2.Compare.EQUAL
_GREATER = rpc_pb2.Compare.GREATER
_MOD = rpc_pb2.Compare.MOD


class Revision(NamedTuple):
    """An etcd predicate: the ``mod_revision`` of the key when ``get`` read it."""

    mod_revision: int


@dataclass(frozen=True)
class EtcdSettings:
    """What an ``etcd://`` URL says, besides paging."""

    hosts: tuple[tuple[str, int], ...]
    prefix: bytes
    timeout: float


class EtcdStore(Store):
    scheme = "etcd"
    capabilities = Capabilities(
        list_partitions=True,
        native_write_batch=True,
        max_partition_size=_MAX_NAME,
        max_key_size=_MAX_NAME,
        max_item_size=MAX_REQUEST_BYTES - _KEY_OVERHEAD,
        value_predicates=False,
    )
    driver_errors = (grpc.RpcError,)
    namespace_param = "prefix"

    default_paging = ScanPaging(page_size=1000, page_cap=5000)

    @classmethod
    def parse_settings(
        cls, url: StoreURL, params: ParamReader, options: OpenOptions
    ) -> EtcdSettings:
        options.take_credentials(url, ())
        prefix = params.take_str("prefix", "lakekv")
        if not prefix or len(prefix) > 256 or not set(prefix) <= _PREFIX_CHARS:
            raise ConfigurationError(
                f"{url}: prefix {prefix!r} must be 1-256 letters, digits or '_ . - / :'"
            )
        timeout = params.take_float("timeout", 5.0, minimum=0.01)
        if url.username or url.password:
            raise ConfigurationError(f"{url}: etcd authentication is not supported yet")
        if url.path.strip("/"):
            raise ConfigurationError(f"{url}: an etcd URL has no path; use ?prefix=")
        hosts = tuple(url.host_list(2379) or [("127.0.0.1", 2379)])
        return EtcdSettings(hosts, prefix.encode(), timeout)

    def __init__(
        self,
        url: StoreURL,
        paging: ScanPaging,
        options: OpenOptions,
        settings: EtcdSettings,
    ) -> None:
        super().__init__(url, paging, options)
        self._hosts = settings.hosts
        self.prefix = settings.prefix
        self.timeout = timeout = settings.timeout
        # UNAVAILABLE (no leader, a member down) is retried until ``timeout`` has passed
        self._retry = RetryPolicy(
            max_tries=1_000_000, initial_interval=0.02, max_interval=0.5, budget=timeout
        )
        self._channel: grpc.Channel | None = None

    def _open(self) -> None:
        """Resolve the members, open the channel and find the store."""
        channel = self._channel = grpc.insecure_channel(
            _target(self._url, self._hosts),
            options=[
                ("grpc.lb_policy_name", "round_robin"),
                ("grpc.max_receive_message_length", -1),
                ("grpc.max_send_message_length", MAX_REQUEST_BYTES + 65536),
                ("grpc.keepalive_time_ms", 10_000),
                ("grpc.keepalive_timeout_ms", 5_000),
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ],
        )
        self._range = _method(channel, "Range", rpc_pb2.RangeRequest, rpc_pb2.RangeResponse)
        self._put = _method(channel, "Put", rpc_pb2.PutRequest, rpc_pb2.PutResponse)
        self._delete_range = _method(
            channel, "DeleteRange", rpc_pb2.DeleteRangeRequest, rpc_pb2.DeleteRangeResponse
        )
        self._txn = _method(channel, "Txn", rpc_pb2.TxnRequest, rpc_pb2.TxnResponse)
        self._find_store()

    def _find_store(self) -> None:
        """Find the store's marker, or write it (``may_create``), or accept a prefix holding
        entries from before markers existed; otherwise StoreNotFoundError. The first request
        is a linearizable read: the cluster answers and has a quorum."""
        marker = _keys.store_marker(self.prefix)
        start, end = _keys.prefix_range(self.prefix)
        look = rpc_pb2.TxnRequest(
            success=[
                rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=marker, keys_only=True)),
                rpc_pb2.RequestOp(
                    request_range=rpc_pb2.RangeRequest(
                        key=start, range_end=end, limit=1, keys_only=True
                    )
                ),
            ]
        )
        has_marker, has_entries = (
            bool(r.response_range.kvs) for r in self._call_rpc(self._txn, look).responses
        )
        if has_marker:
            return
        if self.options.may_create:
            put_if_absent = rpc_pb2.TxnRequest(
                compare=[_expect(marker, 0)],
                success=[
                    rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=marker, value=b"lakekv"))
                ],
            )
            self._call_rpc(self._txn, put_if_absent)
            return
        if not has_entries:
            raise StoreNotFoundError(
                f"etcd {self._endpoints()}: no store under prefix {self.prefix.decode()!r} "
                f"(no key {marker.decode()!r} and no entries)"
            )

    def _incarnation(self) -> str | None:
        """The marker's creation revision: a prefix emptied and created again (or a cluster
        restored without it) is another."""
        marker = _keys.store_marker(self.prefix)
        resp = self._call_rpc(self._range, rpc_pb2.RangeRequest(key=marker, keys_only=True))
        return f"rev-{resp.kvs[0].create_revision}" if resp.kvs else None

    def _row_version(self, partition: bytes, key: bytes) -> str | None:
        """The key's ``mod_revision``: every put, even of the same value, raises it."""
        resp = self._call_rpc(
            self._range,
            rpc_pb2.RangeRequest(
                key=_keys.partition_head(self.prefix, partition) + key, keys_only=True
            ),
        )
        return f"rev-{resp.kvs[0].mod_revision}" if resp.kvs else None

    def _endpoints(self) -> str:
        """The members the URL names, sorted, local spellings folded."""
        hosts = self._url.host_list(2379) or [("127.0.0.1", 2379)]
        return ",".join(sorted(_member(host, port) for host, port in hosts))

    def _identity(self) -> str:
        """The cluster's own ID (every member, however reached, answers with it), then the
        prefix."""
        marker = _keys.store_marker(self.prefix)
        resp = self._call_rpc(self._range, rpc_pb2.RangeRequest(key=marker, keys_only=True))
        return f"etcd://cluster-{resp.header.cluster_id:x}?prefix={self.prefix.decode()}"

    # --- calls ---------------------------------------------------------------------------------

    def _call_rpc(self, method: grpc.UnaryUnaryMultiCallable[Req, Resp], request: Req) -> Resp:
        """One RPC, sent again while the cluster is unavailable (no leader, a member down)
        until ``timeout`` seconds have passed; then the last error is raised."""
        resp, _ = self._call_retrying(method, request)
        return resp

    def _call_retrying(
        self, method: grpc.UnaryUnaryMultiCallable[Req, Resp], request: Req
    ) -> tuple[Resp, bool]:
        """The response, and whether an earlier attempt might have been applied."""
        attempts = self._retry.attempts()
        deadline = attempts.started + self.timeout
        retried = False
        while True:
            try:
                response = method(request, timeout=max(deadline - time.monotonic(), 0.001))
                return response, retried
            except grpc.RpcError as exc:
                code = exc.code() if isinstance(exc, grpc.Call) else None
                if code != grpc.StatusCode.UNAVAILABLE or self._closed or not attempts.backoff():
                    raise
            retried = True

    def _translate_error(self, exc: BaseException) -> LakekvError:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        name = code.name if code is not None else "error"
        # etcd reports its own request deadline passing (no quorum) as UNKNOWN
        lost = code == grpc.StatusCode.UNKNOWN and any(
            text in str(details) for text in ("deadline exceeded", "context canceled")
        )
        if code in _UNAVAILABLE or lost:
            return StoreUnavailableError(f"{self._url} unavailable: {name}: {details}")
        if code == grpc.StatusCode.INVALID_ARGUMENT and "too large" in str(details):
            return InvalidArgumentError(f"{self._url}: {details}")
        return StoreError(f"{self._url}: {name}: {details}")

    # --- the contract ------------------------------------------------------------------------

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        request = rpc_pb2.RangeRequest(key=_keys.partition_head(self.prefix, partition) + key)
        kvs = self._call_rpc(self._range, request).kvs
        if not kvs:
            return None
        kv = kvs[0]
        return ValueWithPredicate(kv.value, Revision(kv.mod_revision))

    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        request = rpc_pb2.PutRequest(
            key=_keys.partition_head(self.prefix, partition) + key, value=value
        )
        self._call_rpc(self._put, request)

    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        etcd_key = _keys.partition_head(self.prefix, partition) + key
        if predicate is None:
            compare = rpc_pb2.Compare(
                key=etcd_key, target=_CREATE_ABSENT, result=_EQUAL, create_revision=0
            )
        elif predicate is MUST_EXIST:
            compare = rpc_pb2.Compare(
                key=etcd_key, target=_CREATE_ABSENT, result=_GREATER, create_revision=0
            )
        elif isinstance(predicate, Revision):
            compare = rpc_pb2.Compare(
                key=etcd_key, target=_MOD, result=_EQUAL, mod_revision=predicate.mod_revision
            )
        else:
            raise InvalidArgumentError(
                f"invalid predicate {predicate!r}: use None, MUST_EXIST or a predicate "
                "returned by get() of this store"
            )
        request = rpc_pb2.TxnRequest(
            compare=[compare],
            success=[rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=etcd_key, value=value))],
            failure=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=etcd_key))],
        )
        response, retried = self._call_retrying(self._txn, request)
        if response.succeeded:
            return True
        if retried:
            # An attempt that timed out may have been applied: then the compare now fails
            # against our own write. The stored value being ours counts as success.
            kvs = response.responses[0].response_range.kvs
            return bool(kvs) and kvs[0].value == value
        return False

    def _delete(self, partition: bytes, key: bytes) -> None:
        etcd_key = _keys.partition_head(self.prefix, partition) + key
        self._call_rpc(self._delete_range, rpc_pb2.DeleteRangeRequest(key=etcd_key))

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        head = _keys.partition_head(self.prefix, partition)
        first = head + start if inclusive else head + start + b"\x00"
        request = rpc_pb2.RangeRequest(key=first, range_end=_keys.head_end(head), limit=limit)
        response = self._call_rpc(self._range, request)
        cut = len(head)
        rows = [(kv.key[cut:], kv.value) for kv in response.kvs]
        return rows, bool(response.more)

    def _list_partitions(self) -> Iterator[bytes]:
        # A skip scan: one single-key Range per partition, each jumping past the last one.
        start, end = _keys.prefix_range(self.prefix)
        while True:
            request = rpc_pb2.RangeRequest(key=start, range_end=end, limit=1, keys_only=True)
            kvs = self._call_rpc(self._range, request).kvs
            if not kvs:
                return
            partition, _ = _keys.split(self.prefix, kvs[0].key)
            yield partition
            start = _keys.head_end(_keys.partition_head(self.prefix, partition))

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        result = BatchResult()
        chunk: list[Entry] = []
        size = 0
        for entry in entries:
            cost = 2 * (len(self.prefix) + 2 * len(entry.partition) + len(entry.key) + 16)
            cost += len(entry.value)
            if cost > _BATCH_BYTES:  # too large to share a transaction: on its own
                result.add(super()._write_batch([entry], on_conflict))
                continue
            if len(chunk) == MAX_TXN_OPS or size + cost > _BATCH_BYTES:
                if self._closed:  # close() on another thread: stop between transactions
                    raise StoreClosedError(f"store {self._url} was closed during write_batch")
                self._write_chunk(chunk, on_conflict, result)
                chunk, size = [], 0
            chunk.append(entry)
            size += cost
        if chunk:
            self._write_chunk(chunk, on_conflict, result)
        return result

    def _write_chunk(
        self, chunk: list[Entry], on_conflict: OnConflict, result: BatchResult
    ) -> None:
        """One transaction for the whole chunk, expecting every key absent. When a compare
        fails, one read-only transaction fetches every key's state, entries are classified
        against it and the rest is tried again under compares on what was seen."""
        pending = [(entry, 0) for entry in chunk]  # (entry, expected mod_revision; 0: absent)
        for _ in range(_BATCH_ATTEMPTS):
            keys = [_keys.partition_head(self.prefix, e.partition) + e.key for e, _ in pending]
            request = rpc_pb2.TxnRequest(
                compare=[_expect(k, rev) for k, (_, rev) in zip(keys, pending, strict=True)],
                success=[
                    rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=k, value=e.value))
                    for k, (e, _) in zip(keys, pending, strict=True)
                ],
            )
            if self._call_rpc(self._txn, request).succeeded:
                result.written += len(pending)
                return
            read = rpc_pb2.TxnRequest(
                success=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=k)) for k in keys]
            )
            states = self._call_rpc(self._txn, read).responses
            still: list[tuple[Entry, int]] = []
            seen = BatchResult()
            for (entry, _), state in zip(pending, states, strict=True):
                kvs = state.response_range.kvs
                if not kvs:
                    still.append((entry, 0))
                elif seen.classify(entry, kvs[0].value, on_conflict):
                    still.append((entry, kvs[0].mod_revision))
            # An entry to overwrite is counted written when its transaction succeeds.
            seen.written = 0
            result.add(seen)
            if not still:
                return
            pending = still
        # Heavy contention on these keys: settle each entry on its own.
        result.add(super()._write_batch([e for e, _ in pending], on_conflict))

    def _destroy(self) -> None:
        # In slices of _DELETE_SLICE keys: one DeleteRange of a large store is one raft
        # proposal that can take longer than any sensible timeout. The marker goes last:
        # a destroy cut short leaves a store that still exists.
        start, end = _keys.prefix_range(self.prefix)
        while True:
            request = rpc_pb2.RangeRequest(
                key=start, range_end=end, limit=_DELETE_SLICE, keys_only=True
            )
            response = self._call_rpc(self._range, request)
            if not response.kvs:
                break
            last = response.kvs[-1].key + b"\x00"
            self._call_rpc(
                self._delete_range, rpc_pb2.DeleteRangeRequest(key=start, range_end=last)
            )
            if not response.more:
                break
            start = last
        self._call_rpc(
            self._delete_range, rpc_pb2.DeleteRangeRequest(key=_keys.store_marker(self.prefix))
        )

    def _close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()


def _method(
    channel: grpc.Channel, name: str, request: type[Req], response: type[Resp]
) -> grpc.UnaryUnaryMultiCallable[Req, Resp]:
    return channel.unary_unary(
        f"/etcdserverpb.KV/{name}",
        request_serializer=request.SerializeToString,
        response_deserializer=response.FromString,
    )


def _expect(key: bytes, mod_revision: int) -> rpc_pb2.Compare:
    if mod_revision == 0:
        return rpc_pb2.Compare(key=key, target=_CREATE_ABSENT, result=_EQUAL, create_revision=0)
    return rpc_pb2.Compare(key=key, target=_MOD, result=_EQUAL, mod_revision=mod_revision)


def _member(host: str, port: int) -> str:
    """``host:port`` with the local host's spellings folded into ``localhost``."""
    host = host.lower()
    if host in _LOCAL_HOSTS:
        host = "localhost"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _target(url: StoreURL, hosts: Sequence[tuple[str, int]]) -> str:
    """A gRPC target listing every member's address (resolved now), for round-robin."""
    addresses: list[tuple[str, int]] = []
    for host, port in hosts:
        try:
            ipaddress.ip_address(host)
            addresses.append((host, port))
            continue
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise StoreUnavailableError(f"{url}: cannot resolve {host}: {exc}") from exc
        infos.sort(key=lambda info: info[0] != socket.AF_INET)  # IPv4 first
        addresses.append((str(infos[0][4][0]), port))
    if all(ipaddress.ip_address(h).version == 4 for h, _ in addresses):
        return "ipv4:" + ",".join(f"{h}:{p}" for h, p in addresses)
    v6 = [h if ipaddress.ip_address(h).version == 6 else f"::ffff:{h}" for h, _ in addresses]
    return "ipv6:" + ",".join(f"[{h}]:{p}" for h, (_, p) in zip(v6, addresses, strict=True))
