"""Load control: a store that does at most so many entries (and bytes) per second.

A :class:`Limiter` is a pair of token buckets, entries per second and key-and-value bytes per
second, shared by every thread that uses it (a command's workers share one per store).
:class:`RateLimitedStore` charges each operation what it moves: a point operation one entry
and its bytes, a scan page or raw chunk the entries it returned, a batch its entries. Unlike
lakeFS's ``pkg/kv/store_limiter.go``, which takes one token per call, the unit is the entry,
so a limit means the same whatever the page and batch sizes.

The buckets start empty: N entries take N / rate seconds from the moment the store is
wrapped. Charges are made before a write (its size is known) and after a read (its size is
known only then); an operation larger than the bucket runs and the caller then waits until
the debt is paid, so over any period the rate holds. To keep the load smooth, reads are asked
for at most a tenth of a second's worth of entries per call (a scan page, a raw chunk, a range
digest) and batches are written in slices of that size (``write_batch`` is not atomic anyway; raw
chunks, which are, are written whole).

Throttling answers slow the store down instead of failing: when the inner store raises
:class:`~lakekv.errors.SlowDownError` (DynamoDB's ``ProvisionedThroughputExceededException``
after the driver's own retries), the limiter halves its rates and the call is tried again,
up to ``max_slowdowns`` times in a row. A driver that retries throttling answers itself and
counts them (the DynamoDB driver's ``throttled``) has the rates halved as soon as a call
comes back after one, before its retries run out; the rates then climb back by a tenth per second of
calls without throttling, up to the configured ones. A limiter without an entries rate starts
unlimited and, on the first throttling answer, limits itself to half the rate it measured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from lakekv.errors import InvalidArgumentError, SlowDownError
from lakekv.kv.contract import SnapshotReads
from lakekv.kv.store import (
    BatchResult,
    Entry,
    OnConflict,
    RangeDigest,
    RawChunk,
    Store,
    ValueWithPredicate,
)
from lakekv.kv.wrappers._intercept import (
    InterceptedReads,
    InterceptingStore,
    Moved,
    batch_bytes,
    chunks_moved,
)
from lakekv.kv.wrappers.base import StoreWrapper

T = TypeVar("T")

SLICE_SECONDS = 0.1
"""A read asks for, and a batch is written in slices of, at most this many seconds' worth."""
BURST_SECONDS = 1.0
"""Each bucket holds at most this many seconds' worth of tokens: how much a caller that was
busy elsewhere (writing the batch it read, opening the stores) may catch up at once."""


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; thread-safe.

    The bucket starts empty, so ``n`` tokens take at least ``n / rate`` seconds counted from
    when the bucket is made. :meth:`take` reserves tokens and sleeps until they are covered
    (the balance may go negative: a reservation larger than the bucket is allowed, and the
    next takers wait for it). Reservations are served in the order they are made.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise InvalidArgumentError(f"a rate must be > 0, not {rate!r}")
        self._rate = float(rate)
        self._burst_seconds = None if burst is not None else BURST_SECONDS
        self._burst = float(burst) if burst is not None else max(1.0, rate * BURST_SECONDS)
        self._clock, self._sleep = clock, sleep
        self._tokens = 0.0
        self._stamp = clock()
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self._rate

    @rate.setter
    def rate(self, rate: float) -> None:
        with self._lock:
            self._refill(self._clock())
            self._rate = max(rate, 1e-3)
            if self._burst_seconds is not None:
                self._burst = max(1.0, self._rate * self._burst_seconds)

    def _refill(self, now: float) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def take(self, tokens: float) -> float:
        """Reserve ``tokens`` and wait until they are covered; the seconds waited."""
        with self._lock:
            self._refill(self._clock())
            self._tokens -= tokens
            wait = -self._tokens / self._rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


@dataclass(frozen=True)
class RateLimit:
    """A limit: ``entries`` per second and/or ``bytes`` (keys and values) per second."""

    entries: float | None = None
    bytes: float | None = None

    def __post_init__(self) -> None:
        for name in ("entries", "bytes"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InvalidArgumentError(f"a rate limit's {name} must be > 0, not {value!r}")

    def limiter(self) -> Limiter:
        """A new :class:`Limiter` enforcing this limit."""
        return Limiter(self)


class Limiter:
    """The live buckets of a :class:`RateLimit`, shared by all threads using a store, and the
    adaptive part (slowing down on throttling, climbing back)."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self._clock, self._sleep = clock, sleep
        self.entries = (
            TokenBucket(limit.entries, clock=clock, sleep=sleep) if limit.entries else None
        )
        self.bytes = TokenBucket(limit.bytes, clock=clock, sleep=sleep) if limit.bytes else None
        self.slowdowns = 0
        """Throttling answers met so far."""
        self.waited = 0.0
        """Seconds callers spent waiting for tokens."""
        self._lock = threading.Lock()
        self._calm_since = clock()
        self._window_start = clock()
        self._window_entries = 0

    @property
    def slice_entries(self) -> int | None:
        """The most entries one read asks for or one batch slice holds (None: no limit)."""
        if self.entries is None:
            return None
        return max(1, int(self.entries.rate * SLICE_SECONDS))

    def take(self, entries: int, nbytes: int) -> None:
        """Charge ``entries`` entries of ``nbytes`` bytes; wait as the buckets require."""
        waited = 0.0
        if self.entries is not None and entries:
            waited += self.entries.take(entries)
        if self.bytes is not None and nbytes:
            waited += self.bytes.take(nbytes)
        with self._lock:
            self._window_entries += entries
            if waited:
                self.waited += waited

    def throttled(self) -> None:
        """A throttling answer: halve the rates (start limiting if unlimited)."""
        now = self._clock()
        with self._lock:
            self.slowdowns += 1
            self._calm_since = now
            measured = self._window_entries / max(1e-3, now - self._window_start)
            self._window_start, self._window_entries = now, 0
        if self.entries is None:
            self.entries = TokenBucket(max(1.0, measured / 2), clock=self._clock, sleep=self._sleep)
        else:
            self.entries.rate = max(1.0, self.entries.rate / 2)
        if self.bytes is not None:
            self.bytes.rate = max(1.0, self.bytes.rate / 2)

    def calm(self) -> None:
        """A call without throttling: climb back towards the configured rates, a tenth of
        the current rate per second without throttling."""
        if self.slowdowns == 0:
            return
        now = self._clock()
        with self._lock:
            if now - self._calm_since < 1.0:
                return
            self._calm_since = now
        for bucket, ceiling in ((self.entries, self.limit.entries), (self.bytes, self.limit.bytes)):
            if bucket is not None:
                raised = bucket.rate * 1.1
                bucket.rate = raised if ceiling is None else min(ceiling, raised)


_WRITES = frozenset({"Set", "SetIf", "Delete", "WriteBatch", "DeleteMany", "WriteRaw"})
_CHARGED_BEFORE = _WRITES | {"GetMany", "Get"}


class RateLimitedStore(InterceptingStore):
    """A store whose reads are limited by ``reads`` and writes by ``writes`` (each defaults to
    ``limiter``; ``None``: that direction is not limited). One :class:`Limiter` may be given
    for both directions and to several stores (their operations then share the budget).

    ``max_slowdowns``: throttling answers in a row on one call before its SlowDownError is
    raised after all.
    """

    def __init__(
        self,
        inner: Store,
        limiter: Limiter | None = None,
        *,
        reads: Limiter | None = None,
        writes: Limiter | None = None,
        max_slowdowns: int = 12,
    ) -> None:
        super().__init__(inner)
        self.reads = reads or limiter
        self.writes = writes or limiter
        self.max_slowdowns = max_slowdowns
        self._driver = _throttle_counter(inner)
        self._throttles_seen = getattr(self._driver, "throttled", 0)

    def _limiter(self, operation: str) -> Limiter | None:
        return self.writes if operation in _WRITES else self.reads

    def _intercept(self, operation: str, call: Callable[[], T], moved: Moved) -> T:
        limiter = self._limiter(operation)
        if limiter is None:
            return call()
        before = operation in _CHARGED_BEFORE
        slowdowns = 0
        while True:
            if before:
                entries, nbytes = moved(None)
                limiter.take(entries, nbytes)
            try:
                result = call()
            except SlowDownError:
                slowdowns += 1
                limiter.throttled()
                if slowdowns > self.max_slowdowns:
                    raise
                limiter.take(1, 0)
                continue
            driver = self._driver
            if driver is not None and driver.throttled != self._throttles_seen:
                self._throttles_seen = driver.throttled  # answered after retries: slow down
                limiter.throttled()
            else:
                limiter.calm()
            if not before:
                entries, nbytes = moved(result)
                limiter.take(entries, nbytes)
            return result

    def _slice(self, operation: str, limit: int) -> int:
        limiter = self._limiter(operation)
        most = limiter.slice_entries if limiter is not None else None
        return limit if most is None else max(1, min(limit, most))

    # Reads ask for at most a slice; writes are charged before (their size is known).

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        inner = self.inner
        return self._intercept(
            "Get", lambda: inner._call(inner._get, partition, key), lambda _: (1, len(key))
        )

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        return super()._scan_page(partition, start, inclusive, self._slice("Scan", limit))

    def _read_raw(self, partition: bytes, start: bytes, limit: int) -> RawChunk:
        return super()._read_raw(partition, start, self._slice("ReadRaw", limit))

    def _digest_range(self, partition: bytes, start: bytes, limit: int) -> RangeDigest:
        return super()._digest_range(partition, start, self._slice("DigestRange", limit))

    def _get_many(self, partition: bytes, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        inner = self.inner
        return self._intercept(
            "GetMany",
            lambda: inner._call(inner._get_many, partition, keys),
            lambda _: (len(keys), sum(map(len, keys))),
        )

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        most = self._slice("WriteBatch", len(entries))
        if most >= len(entries):
            return super()._write_batch(entries, on_conflict)
        total = BatchResult()
        for i in range(0, len(entries), most):
            part = super()._write_batch(entries[i : i + most], on_conflict)
            total.written += part.written
            total.unchanged += part.unchanged
            total.skipped += part.skipped
            total.conflicts.extend(part.conflicts)
        return total

    def _write_raw(self, chunks: list[RawChunk]) -> int | None:
        inner = self.inner
        entries, nbytes = chunks_moved(chunks)
        return self._intercept(
            "WriteRaw", lambda: inner._call(inner._write_raw, chunks), lambda _: (entries, nbytes)
        )

    def _open_snapshot(self) -> SnapshotReads:
        reads = self.inner._call(self.inner._open_snapshot)
        return _LimitedReads(self, reads)


def _throttle_counter(store: Store) -> Any:
    """The store in ``store``'s chain of wrappers that counts throttling answers it retried
    itself (an int attribute ``throttled``, as the DynamoDB driver has), or ``None``."""
    current: Store | None = store
    while current is not None:
        if isinstance(getattr(current, "throttled", None), int):
            return current
        current = current.inner if isinstance(current, StoreWrapper) else None
    return None


class _LimitedReads(InterceptedReads):
    """A snapshot's reads through a :class:`RateLimitedStore`: sliced and charged."""

    _wrapper: RateLimitedStore

    def scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        return super().scan_page(partition, start, inclusive, self._wrapper._slice("Scan", limit))

    def read_raw(self, partition: bytes, start: bytes, limit: int) -> RawChunk:
        return super().read_raw(partition, start, self._wrapper._slice("ReadRaw", limit))

    def digest_range(self, partition: bytes, start: bytes, limit: int) -> RangeDigest | None:
        return super().digest_range(partition, start, self._wrapper._slice("DigestRange", limit))

    def get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        return self._wrapper._intercept(
            "Get", lambda: self._reads.get(partition, key), lambda _: (1, len(key))
        )

    def get_many(self, partition: bytes, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        return self._wrapper._intercept(
            "GetMany",
            lambda: self._reads.get_many(partition, keys),
            lambda _: (len(keys), sum(map(len, keys))),
        )

    def list_partitions(self) -> Iterator[bytes]:
        return self._reads.list_partitions()


__all__ = ["Limiter", "RateLimit", "RateLimitedStore", "TokenBucket", "batch_bytes"]
