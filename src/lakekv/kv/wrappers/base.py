"""The base of every store that wraps another store (metrics, rate limits, test doubles).

A wrapper is a :class:`~lakekv.kv.store.Store`: its public methods validate arguments and
translate errors once, in the base class, exactly as for a driver. What a driver would
implement, the underscored hooks, :class:`StoreWrapper` hands on to the wrapped store, so a
wrapper overrides only the hooks whose behaviour it changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Self

from lakekv.errors import LakekvError, UnsupportedError
from lakekv.kv.store import (
    DEFAULT_OPEN,
    BatchResult,
    Capabilities,
    Entry,
    FeedBatch,
    OnConflict,
    OpenOptions,
    PartitionDigest,
    RangeDigest,
    RawChunk,
    Store,
    ValueWithPredicate,
)
from lakekv.kv.url import StoreURL

if TYPE_CHECKING:
    from lakekv.kv.contract import SnapshotReads


class StoreWrapper(Store):
    """A store that hands every driver hook on to ``inner``; subclasses override what they change.

    How to write a wrapper::

        class CountingStore(StoreWrapper):
            def __init__(self, inner: Store) -> None:
                super().__init__(inner)
                self.gets = 0

            def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
                self.gets += 1
                return super()._get(partition, key)

    * Override the underscored hooks (``_get``, ``_set``, ``_set_if``, ``_delete``,
      ``_scan_page``, ``_write_batch``, ``_get_many``, the digest, raw-row and change-feed
      hooks, …), never the public methods: ``get``, ``scan``, ``write_batch`` and the rest
      are the base class's, so a call reaches a hook only after its arguments were validated
      against the wrapper's ``capabilities`` (bytes, non-empty, within the size limits, the
      store open, writable for writes, the capability declared). ``super()._hook(...)`` hands
      the call on.
    * A hook that is handed on runs inside the wrapped store's own call machinery
      (``inner._call``): the inner store counts it as in flight (closing the inner store
      waits for it), refuses it once closed, and translates its driver's exceptions, so a
      wrapper sees only :class:`~lakekv.errors.LakekvError` from ``super()`` calls. An
      exception a wrapper raises itself that is not a LakekvError passes through unchanged.
    * ``scheme``, ``capabilities``, ``driver_errors``, ``url``, ``paging``, ``options`` and
      :meth:`identity` are the wrapped store's unless given to ``__init__``: a wrapper that
      declares fewer capabilities (hiding partition listing, say) passes ``capabilities=``;
      the base class then refuses what they leave out before any hook runs. A wrapper that
      changes nothing is indistinguishable from the store it wraps, except by ``repr``.
    * Closing the wrapper waits for the calls in flight through it, asks the inner store to
      interrupt its calls (``_interrupt``), then closes the inner store (``_close`` calls
      ``inner.close()``). A wrapper that does not own its inner store overrides ``_close``.
    * ``snapshot()`` takes the snapshot through the wrapper's ``_open_snapshot`` (handed on)
      and yields a read-only view whose reads go straight to the snapshot: the wrapper's
      read hooks do not see them.
    * A wrapper is made from a store, never from a URL (:meth:`from_url` refuses).
    """

    def __init__(
        self,
        inner: Store,
        *,
        url: StoreURL | None = None,
        capabilities: Capabilities | None = None,
        scheme: str | None = None,
    ) -> None:
        super().__init__(url or inner.url, inner.paging, inner.options)
        self.inner = inner
        """The wrapped store."""
        self.scheme = inner.scheme if scheme is None else scheme
        self.capabilities = inner.capabilities if capabilities is None else capabilities
        self.driver_errors = inner.driver_errors

    @classmethod
    def from_url(
        cls, url: StoreURL, options: OpenOptions = DEFAULT_OPEN, **overrides: object
    ) -> Self:
        """Refused: a wrapper is made by wrapping an open store."""
        raise UnsupportedError(f"{cls.__name__} wraps a store; it is not opened from a URL")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.inner!r}>"

    # --- life cycle ----------------------------------------------------------------------

    def _open(self) -> None:
        """Nothing: the wrapped store is open already."""
        return

    def _close(self) -> None:
        self.inner.close()

    def _interrupt(self) -> None:
        self.inner._interrupt()

    def _destroy(self) -> None:
        self.inner._call(self.inner._destroy)

    def _identity(self) -> str:
        return self.inner._call(self.inner._identity)

    def _incarnation(self) -> str | None:
        return self.inner._call(self.inner._incarnation)

    def _row_version(self, partition: bytes, key: bytes) -> str | None:
        inner = self.inner
        return inner._call(inner._row_version, partition, key)

    def _writers(self) -> list[str] | None:
        return self.inner._call(self.inner._writers)

    def _translate_error(self, exc: BaseException) -> LakekvError:
        return self.inner._translate_error(exc)

    # --- the core hooks ------------------------------------------------------------------

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        inner = self.inner
        return inner._call(inner._get, partition, key)

    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        inner = self.inner
        inner._call(inner._set, partition, key, value)

    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        inner = self.inner
        return inner._call(inner._set_if, partition, key, value, predicate)

    def _delete(self, partition: bytes, key: bytes) -> None:
        inner = self.inner
        inner._call(inner._delete, partition, key)

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        inner = self.inner
        return inner._call(inner._scan_page, partition, start, inclusive, limit)

    def _list_partitions(self) -> Iterator[bytes]:
        inner = self.inner
        return inner._translating(inner._call(inner._list_partitions))

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        inner = self.inner
        return inner._call(inner._write_batch, entries, on_conflict)

    def _get_many(self, partition: bytes, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        inner = self.inner
        return inner._call(inner._get_many, partition, keys)

    def _delete_many(self, partition: bytes, keys: Sequence[bytes]) -> None:
        inner = self.inner
        inner._call(inner._delete_many, partition, keys)

    def _open_snapshot(self) -> SnapshotReads:
        inner = self.inner
        return inner._call(inner._open_snapshot)

    # --- digests ---------------------------------------------------------------------------

    def _digest_range(self, partition: bytes, start: bytes, limit: int) -> RangeDigest:
        inner = self.inner
        return inner._call(inner._digest_range, partition, start, limit)

    def _digest_probe(self) -> int:
        inner = self.inner
        return inner._call(inner._digest_probe)

    def _digest_bits(self, partition: bytes) -> int:
        inner = self.inner
        return inner._call(inner._digest_bits, partition)

    def _digest_buckets(self, partition: bytes, bits: int) -> list[tuple[int, int, int]]:
        inner = self.inner
        return inner._call(inner._digest_buckets, partition, bits)

    def _digest_rows(
        self, partition: bytes, bits: int, buckets: list[int]
    ) -> list[tuple[bytes, int]]:
        inner = self.inner
        return inner._call(inner._digest_rows, partition, bits, buckets)

    def _digest_partition(self, partition: bytes) -> PartitionDigest:
        inner = self.inner
        return inner._call(inner._digest_partition, partition)

    def _digest_partitions(self) -> dict[bytes, PartitionDigest]:
        inner = self.inner
        return inner._call(inner._digest_partitions)

    # --- raw rows --------------------------------------------------------------------------

    def _read_raw(self, partition: bytes, start: bytes, limit: int) -> RawChunk:
        inner = self.inner
        return inner._call(inner._read_raw, partition, start, limit)

    def _write_raw(self, chunks: list[RawChunk]) -> int | None:
        inner = self.inner
        return inner._call(inner._write_raw, chunks)

    # --- change feeds ----------------------------------------------------------------------

    def _feed_check(self) -> None:
        self.inner._call(self.inner._feed_check)

    def _feed_start(self, name: str) -> None:
        inner = self.inner
        inner._call(inner._feed_start, name)

    def _feeds(self) -> list[dict[str, object]]:
        return self.inner._call(self.inner._feeds)

    def _feed_exists(self, name: str) -> bool:
        inner = self.inner
        return inner._call(inner._feed_exists, name)

    def _feed_read(self, name: str) -> FeedBatch:
        inner = self.inner
        return inner._call(inner._feed_read, name)

    def _feed_mark(self, name: str, note: str) -> None:
        inner = self.inner
        inner._call(inner._feed_mark, name, note)

    def _feed_confirm(self, name: str, position: str) -> None:
        inner = self.inner
        inner._call(inner._feed_confirm, name, position)

    def _feed_drop(self, name: str) -> None:
        inner = self.inner
        inner._call(inner._feed_drop, name)
