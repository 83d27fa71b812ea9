"""A wrapper that routes every data hook through one method, and what each operation moves.

:class:`InterceptingStore` is the common ground of the metrics, tracing and rate-limiting
wrappers: each data hook (and each read of a snapshot taken through the wrapper) calls
:meth:`InterceptingStore._intercept` with the operation's name, the inner call (no arguments) and a
function telling how many entries and bytes the operation moved. Operation names are
lakeFS's where lakeFS has the operation (``Get``, ``Set``, ``SetIf``, ``Delete``, ``Scan``;
``pkg/kv/metrics.go``) and the same CamelCase for lakekv's own (``WriteBatch``, ``GetMany``,
…). ``Scan`` is one page fetched by a scan, not the whole scan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from lakekv.kv.contract import SnapshotReads
from lakekv.kv.store import (
    BatchResult,
    Entry,
    OnConflict,
    PartitionDigest,
    RangeDigest,
    RawChunk,
    ValueWithPredicate,
)
from lakekv.kv.url import StoreURL
from lakekv.kv.wrappers.base import StoreWrapper

T = TypeVar("T")

Moved = Callable[[object], tuple[int, int]]
"""Given an operation's result, the entries and the key and value bytes it moved."""

OPERATIONS = (
    "Get",
    "Set",
    "SetIf",
    "Delete",
    "Scan",
    "ListPartitions",
    "WriteBatch",
    "GetMany",
    "DeleteMany",
    "DigestRange",
    "DigestBuckets",
    "DigestRows",
    "ReadRaw",
    "WriteRaw",
    "OpenSnapshot",
)
"""Every operation name the wrappers report (the ``operation`` label)."""


def _none(result: object) -> tuple[int, int]:
    return 0, 0


def _fixed(entries: int, nbytes: int) -> Moved:
    return lambda result: (entries, nbytes)


def _got(key: bytes) -> Moved:
    def moved(result: object) -> tuple[int, int]:
        if isinstance(result, ValueWithPredicate):
            return 1, len(key) + len(result.value)
        return 0, 0

    return moved


def _page(result: object) -> tuple[int, int]:
    rows: Sequence[tuple[bytes, bytes]] = result[0]  # type: ignore[index]
    return len(rows), sum(len(k) + len(v) for k, v in rows)


def _pairs(result: object) -> tuple[int, int]:
    found: dict[bytes, bytes] = result  # type: ignore[assignment]
    return len(found), sum(len(k) + len(v) for k, v in found.items())


def _chunk(result: object) -> tuple[int, int]:
    chunk: RawChunk | RangeDigest | PartitionDigest = result  # type: ignore[assignment]
    return chunk.entries, chunk.payload_bytes


def _buckets(result: object) -> tuple[int, int]:
    rows: list[tuple[int, int, int]] = result  # type: ignore[assignment]
    return sum(count for _, count, _ in rows), 0


def _digests(result: object) -> tuple[int, int]:
    found: dict[bytes, PartitionDigest] = result  # type: ignore[assignment]
    return sum(d.entries for d in found.values()), sum(d.payload_bytes for d in found.values())


def _rows(result: object) -> tuple[int, int]:
    return len(result), 0  # type: ignore[arg-type]


def batch_bytes(entries: Sequence[Entry]) -> int:
    """Key and value bytes of a batch."""
    return sum(len(e[1]) + len(e[2]) for e in entries)


def chunks_moved(chunks: Sequence[RawChunk]) -> tuple[int, int]:
    """Entries and key and value bytes of raw chunks."""
    return sum(c.entries for c in chunks), sum(c.payload_bytes for c in chunks)


class InterceptingStore(StoreWrapper):
    """A :class:`StoreWrapper` whose data hooks all go through :meth:`_intercept`.

    A subclass implements ``_intercept(operation, call, moved)``: it must call ``call()``
    (the inner store's hook, inside its call machinery) once, or raise instead, and return
    its result; ``moved(result)`` gives
    the entries and bytes the operation moved. Life-cycle hooks, identity and change feeds
    are handed on untouched. Reads through a ``snapshot()`` of the wrapper are intercepted
    too (the snapshot's reads are wrapped in :meth:`_open_snapshot`).
    """

    def _intercept(self, operation: str, call: Callable[[], T], moved: Moved) -> T:
        return call()

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        inner = self.inner
        return self._intercept("Get", lambda: inner._call(inner._get, partition, key), _got(key))

    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        inner = self.inner
        self._intercept(
            "Set",
            lambda: inner._call(inner._set, partition, key, value),
            _fixed(1, len(key) + len(value)),
        )

    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        inner = self.inner
        return self._intercept(
            "SetIf",
            lambda: inner._call(inner._set_if, partition, key, value, predicate),
            _fixed(1, len(key) + len(value)),
        )

    def _delete(self, partition: bytes, key: bytes) -> None:
        inner = self.inner
        self._intercept("Delete", lambda: inner._call(inner._delete, partition, key), _fixed(1, 0))

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        inner = self.inner
        return self._intercept(
            "Scan", lambda: inner._call(inner._scan_page, partition, start, inclusive, limit), _page
        )

    def _list_partitions(self) -> Iterator[bytes]:
        inner = self.inner
        names: Iterator[bytes] = self._intercept(
            "ListPartitions", lambda: inner._call(inner._list_partitions), _none
        )
        return inner._translating(names)

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        inner = self.inner
        return self._intercept(
            "WriteBatch",
            lambda: inner._call(inner._write_batch, entries, on_conflict),
            _fixed(len(entries), batch_bytes(entries)),
        )

    def _get_many(self, partition: bytes, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        inner = self.inner
        return self._intercept(
            "GetMany", lambda: inner._call(inner._get_many, partition, keys), _pairs
        )

    def _delete_many(self, partition: bytes, keys: Sequence[bytes]) -> None:
        inner = self.inner
        self._intercept(
            "DeleteMany",
            lambda: inner._call(inner._delete_many, partition, keys),
            _fixed(len(keys), 0),
        )

    def _digest_range(self, partition: bytes, start: bytes, limit: int) -> RangeDigest:
        inner = self.inner
        return self._intercept(
            "DigestRange", lambda: inner._call(inner._digest_range, partition, start, limit), _chunk
        )

    def _digest_buckets(self, partition: bytes, bits: int) -> list[tuple[int, int, int]]:
        inner = self.inner
        return self._intercept(
            "DigestBuckets", lambda: inner._call(inner._digest_buckets, partition, bits), _buckets
        )

    def _digest_rows(
        self, partition: bytes, bits: int, buckets: list[int]
    ) -> list[tuple[bytes, int]]:
        inner = self.inner
        return self._intercept(
            "DigestRows", lambda: inner._call(inner._digest_rows, partition, bits, buckets), _rows
        )

    def _digest_partition(self, partition: bytes) -> PartitionDigest:
        inner = self.inner
        return self._intercept(
            "DigestPartition", lambda: inner._call(inner._digest_partition, partition), _chunk
        )

    def _digest_partitions(self) -> dict[bytes, PartitionDigest]:
        inner = self.inner
        return self._intercept(
            "DigestPartitions", lambda: inner._call(inner._digest_partitions), _digests
        )

    def _read_raw(self, partition: bytes, start: bytes, limit: int) -> RawChunk:
        inner = self.inner
        return self._intercept(
            "ReadRaw", lambda: inner._call(inner._read_raw, partition, start, limit), _chunk
        )

    def _write_raw(self, chunks: list[RawChunk]) -> int | None:
        inner = self.inner
        entries, nbytes = chunks_moved(chunks)
        return self._intercept(
            "WriteRaw", lambda: inner._call(inner._write_raw, chunks), _fixed(entries, nbytes)
        )

    def _open_snapshot(self) -> SnapshotReads:
        inner = self.inner
        reads: SnapshotReads = self._intercept(
            "OpenSnapshot", lambda: inner._call(inner._open_snapshot), _none
        )
        return InterceptedReads(self, reads)


class InterceptedReads(SnapshotReads):
    """A snapshot's reads, each through the wrapper's :meth:`InterceptingStore._intercept`."""

    def __init__(self, wrapper: InterceptingStore, reads: SnapshotReads) -> None:
        self._wrapper = wrapper
        self._reads = reads

    def get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        return self._wrapper._intercept("Get", lambda: self._reads.get(partition, key), _got(key))

    def scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        return self._wrapper._intercept(
            "Scan", lambda: self._reads.scan_page(partition, start, inclusive, limit), _page
        )

    def close(self) -> None:
        self._reads.close()

    def list_partitions(self) -> Iterator[bytes]:
        return self._wrapper._intercept("ListPartitions", self._reads.list_partitions, _none)

    def get_many(self, partition: bytes, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        return self._wrapper._intercept(
            "GetMany", lambda: self._reads.get_many(partition, keys), _pairs
        )

    def digest_buckets(self, partition: bytes, bits: int) -> list[tuple[int, int, int]]:
        return self._wrapper._intercept(
            "DigestBuckets", lambda: self._reads.digest_buckets(partition, bits), _buckets
        )

    def digest_rows(
        self, partition: bytes, bits: int, buckets: list[int]
    ) -> list[tuple[bytes, int]]:
        return self._wrapper._intercept(
            "DigestRows", lambda: self._reads.digest_rows(partition, bits, buckets), _rows
        )

    def digest_partition(self, partition: bytes) -> PartitionDigest:
        return self._wrapper._intercept(
            "DigestPartition", lambda: self._reads.digest_partition(partition), _chunk
        )

    def digest_partitions(self) -> dict[bytes, PartitionDigest]:
        return self._wrapper._intercept("DigestPartitions", self._reads.digest_partitions, _digests)

    def read_raw(self, partition: bytes, start: bytes, limit: int) -> RawChunk:
        return self._wrapper._intercept(
            "ReadRaw", lambda: self._reads.read_raw(partition, start, limit), _chunk
        )

    def digest_range(self, partition: bytes, start: bytes, limit: int) -> RangeDigest | None:
        def moved(result: object) -> tuple[int, int]:
            return (0, 0) if result is None else _chunk(result)

        return self._wrapper._intercept(
            "DigestRange", lambda: self._reads.digest_range(partition, start, limit), moved
        )


def public_url(u: StoreURL) -> str:
    """A store URL without any credential, for span attributes and labels
    (:meth:`StoreURL.public`, the rule of the migration reports too)."""
    return u.public()
