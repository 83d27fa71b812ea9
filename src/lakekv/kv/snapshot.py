"""Reading a whole store at one point in time: see *Snapshots* in :mod:`lakekv.kv.contract`.

A driver with ``capabilities.snapshot_reads`` returns a :class:`SnapshotReads` from
``_open_snapshot()``; ``Store.snapshot()`` wraps it in a read-only :class:`SnapshotView`, a
:class:`~lakekv.kv.wrappers.StoreWrapper` of the store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from lakekv.errors import StoreClosedError, UnsupportedError
from lakekv.kv.contract import SnapshotReads, store_cannot
from lakekv.kv.store import Store
from lakekv.kv.types import (
    BatchResult,
    Entry,
    OnConflict,
    PartitionDigest,
    RangeDigest,
    RawChunk,
    ValueWithPredicate,
)
from lakekv.kv.wrappers.base import StoreWrapper

__all__ = ["SnapshotReads", "SnapshotView"]


class SnapshotView(StoreWrapper):
    """The read-only store ``Store.snapshot()`` yields; its capabilities are the store's.

    Reads go to the :class:`SnapshotReads`; writes raise UnsupportedError; what is the
    server's rather than the snapshot's (change feeds, the digest probe and bits, identity,
    error translation) is handed on to the store by :class:`StoreWrapper`. Closing the view
    releases the snapshot, never the store.
    """

    def __init__(self, base: Store, reads: SnapshotReads) -> None:
        super().__init__(base)
        self._reads = reads

    def __repr__(self) -> str:
        return f"<snapshot of {self.inner!r}>"

    def snapshot(self) -> contextlib.AbstractContextManager[Store]:
        """A snapshot of a snapshot is itself."""
        self._check_open()
        return contextlib.nullcontext(self)

    def _read_only(self) -> UnsupportedError:
        return UnsupportedError(f"a snapshot of {self.url} is read-only")

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        return self._reads.get(partition, key)

    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        raise self._read_only()

    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        raise self._read_only()

    def _delete(self, partition: bytes, key: bytes) -> None:
        raise self._read_only()

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        raise self._read_only()

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        if self.inner.closed:
            raise StoreClosedError(f"store {self.url} is closed")
        return self._reads.scan_page(partition, start, inclusive, limit)

    def _list_partitions(self) -> Iterator[bytes]:
        return self._reads.list_partitions()

    def _get_many(self, partition: bytes, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        return self._reads.get_many(partition, keys)

    def _delete_many(self, partition: bytes, keys: Sequence[bytes]) -> None:
        raise self._read_only()

    def _read_raw(self, partition: bytes, start: bytes, limit: int) -> RawChunk:
        return self._reads.read_raw(partition, start, limit)

    def _digest_range(self, partition: bytes, start: bytes, limit: int) -> RangeDigest:
        native = self._reads.digest_range(partition, start, limit)
        if native is not None:
            return native
        return Store._digest_range(self, partition, start, limit)  # hashes this view's pages

    def _write_raw(self, chunks: list[RawChunk]) -> int | None:
        raise self._read_only()

    def _digest_buckets(self, partition: bytes, bits: int) -> list[tuple[int, int, int]]:
        return self._reads.digest_buckets(partition, bits)

    def _digest_rows(
        self, partition: bytes, bits: int, buckets: list[int]
    ) -> list[tuple[bytes, int]]:
        return self._reads.digest_rows(partition, bits, buckets)

    def _digest_partition(self, partition: bytes) -> PartitionDigest:
        return self._reads.digest_partition(partition)

    def _digest_partitions(self) -> dict[bytes, PartitionDigest]:
        return self._reads.digest_partitions()

    def _open_snapshot(self) -> SnapshotReads:
        return self._reads  # never called: snapshot() of a view is the view

    def _destroy(self) -> None:
        raise store_cannot(self.scheme, "destroy")

    def _interrupt(self) -> None:
        return  # the store's other calls are not the view's to interrupt

    def _close(self) -> None:
        self._reads.close()
