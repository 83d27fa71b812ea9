"""Reading a whole store at one point in time: see *Snapshots* in :mod:`lakekv.kv.store`.

A driver with ``capabilities.snapshot_reads`` returns a :class:`SnapshotReads` from
``_open_snapshot()``; ``Store.snapshot()`` wraps it in a read-only :class:`SnapshotView`.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Self

from lakekv.errors import LakekvError, StoreClosedError, UnsupportedError
from lakekv.kv.store import Store
from lakekv.kv.types import (
    DEFAULT_OPEN,
    BatchResult,
    Entry,
    FeedBatch,
    OnConflict,
    OpenOptions,
    RangeDigest,
    RawChunk,
    ValueWithPredicate,
)
from lakekv.kv.url import StoreURL


class SnapshotReads(ABC):
    """What a driver returns from ``_open_snapshot``: reads at one point in time.

    The methods mean what the driver's methods of the same name (with an underscore) mean,
    and are called from many threads at once. :meth:`close` is called once, at the end of the
    ``with store.snapshot()`` block.
    """

    @abstractmethod
    def get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None: ...

    @abstractmethod
    def scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]: ...

    def list_partitions(self) -> Iterator[bytes]:
        raise UnsupportedError("this snapshot cannot list partitions")

    def get_many(self, partition: bytes, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        found = {}
        for key in keys:
            got = self.get(partition, key)
            if got is not None:
                found[key] = got.value
        return found

    def digest_buckets(self, partition: bytes, bits: int) -> list[tuple[int, int, int]]:
        raise UnsupportedError("this snapshot cannot compute digests")

    def digest_rows(
        self, partition: bytes, bits: int, buckets: list[int]
    ) -> list[tuple[bytes, int]]:
        raise UnsupportedError("this snapshot cannot compute digests")

    def read_raw(self, partition: bytes, start: bytes, limit: int) -> RawChunk:
        raise UnsupportedError("this snapshot cannot read raw rows")

    def digest_range(self, partition: bytes, start: bytes, limit: int) -> RangeDigest | None:
        """``None``: the view computes it from ``scan_page`` (the generic way)."""
        return None

    @abstractmethod
    def close(self) -> None: ...


class SnapshotView(Store):
    """The read-only store ``Store.snapshot()`` yields; its capabilities are the driver's."""

    def __init__(self, base: Store, reads: SnapshotReads) -> None:
        super().__init__(base.url, base.paging, base.options)
        self._base = base
        self._reads = reads

    @classmethod
    def from_url(
        cls, url: StoreURL, options: OpenOptions = DEFAULT_OPEN, **overrides: object
    ) -> Self:
        if overrides:
            raise TypeError(f"{cls.__name__} takes no settings overrides")
        raise UnsupportedError("a snapshot view is made by Store.snapshot(), not from a URL")

    def _identity(self) -> str:
        return self._base._identity()

    def _incarnation(self) -> str | None:
        return self._base._incarnation()

    def _row_version(self, partition: bytes, key: bytes) -> str | None:
        return self._base._row_version(partition, key)

    def __repr__(self) -> str:
        return f"<snapshot of {self._base!r}>"

    def snapshot(self) -> contextlib.AbstractContextManager[Store]:
        """A snapshot of a snapshot is itself."""
        self._check_open()
        return contextlib.nullcontext(self)

    def _translate_error(self, exc: BaseException) -> LakekvError:
        return self._base._translate_error(exc)

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
        if self._base.closed:
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
        return super()._digest_range(partition, start, limit)

    def _write_raw(self, chunks: list[RawChunk]) -> int | None:
        raise self._read_only()

    def _digest_probe(self) -> int:
        return self._base._digest_probe()

    # A change feed is the server's, not the snapshot's: the view hands its calls on.

    def _feed_check(self) -> None:
        self._base._feed_check()

    def _writers(self) -> list[str] | None:
        return self._base._writers()

    def _feeds(self) -> list[dict[str, object]]:
        return self._base._feeds()

    def _feed_start(self, name: str) -> None:
        self._base._feed_start(name)

    def _feed_exists(self, name: str) -> bool:
        return self._base._feed_exists(name)

    def _feed_read(self, name: str) -> FeedBatch:
        return self._base._feed_read(name)

    def _feed_mark(self, name: str, note: str) -> None:
        self._base._feed_mark(name, note)

    def _feed_confirm(self, name: str, position: str) -> None:
        self._base._feed_confirm(name, position)

    def _feed_drop(self, name: str) -> None:
        self._base._feed_drop(name)

    def _digest_bits(self, partition: bytes) -> int:
        return self._base._digest_bits(partition)

    def _digest_buckets(self, partition: bytes, bits: int) -> list[tuple[int, int, int]]:
        return self._reads.digest_buckets(partition, bits)

    def _digest_rows(
        self, partition: bytes, bits: int, buckets: list[int]
    ) -> list[tuple[bytes, int]]:
        return self._reads.digest_rows(partition, bits, buckets)

    def _close(self) -> None:
        self._reads.close()


_VIEW_CLASSES: dict[type[Store], type[SnapshotView]] = {}


def view_class(driver: type[Store]) -> type[SnapshotView]:
    """A :class:`SnapshotView` subclass carrying ``driver``'s scheme and capabilities."""
    cls = _VIEW_CLASSES.get(driver)
    if cls is None:

        class View(SnapshotView):
            pass

        View.scheme = driver.scheme
        View.capabilities = driver.capabilities
        View.driver_errors = driver.driver_errors
        View.__name__ = View.__qualname__ = f"{driver.__name__}Snapshot"
        cls = _VIEW_CLASSES.setdefault(driver, View)
    return cls
