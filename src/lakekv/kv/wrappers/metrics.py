"""Prometheus metrics for any store: lakeFS's request metrics, and what each operation moved.

:class:`MetricsStore` wraps a store and records, per store type (the driver's scheme) and
operation, the families lakeFS's KV layer exports (``pkg/kv/metrics.go``), with its names and
labels (``type``, ``operation``):

* ``kv_request_duration_seconds`` — histogram of call durations (lakeFS's buckets, 10 ms to
  10 s, plus finer ones below 10 ms for embedded stores);
* ``kv_request_failures_total`` — calls that raised;

and two of lakekv's own, same labels:

* ``lakekv_kv_entries_total`` — entries read, written or deleted (a ``Get`` that finds
  nothing moves none);
* ``lakekv_kv_bytes_total`` — key and value bytes read or written.

Operations are lakeFS's ``Get``, ``Set``, ``SetIf``, ``Delete``, ``Scan`` (one page of a
scan) and lakekv's ``WriteBatch``, ``GetMany``, ``DeleteMany``, ``ListPartitions``,
``ReadRaw``, ``WriteRaw``, ``DigestRange``, ``DigestBuckets``, ``DigestRows``,
``DigestPartition``, ``DigestPartitions``, ``OpenSnapshot``. Reads through a
``snapshot()`` of the wrapper are recorded too.

Recording is plain arithmetic on totals kept per thread (no lock on the hot path); the
Prometheus families are built only when scraped (:class:`KVMetrics` is a Prometheus
collector). ``prometheus-client`` is an optional dependency (``pip install
'lakekv[metrics]'``): without it, making a :class:`KVMetrics` raises ConfigurationError
saying so.

Usage::

    from lakekv import open_store
    store = open_store("sqlite:///kv.db", metrics=True)   # the default Prometheus registry

    from prometheus_client import CollectorRegistry
    registry = CollectorRegistry()
    store = MetricsStore(open_store("sqlite:///kv.db"), KVMetrics(registry))
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeVar

from lakekv.errors import ConfigurationError
from lakekv.kv.store import Store, ValueWithPredicate
from lakekv.kv.wrappers._intercept import OPERATIONS, InterceptingStore, Moved

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

T = TypeVar("T")

LAKEFS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""The histogram buckets of lakeFS's ``kv_request_duration_seconds``."""
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, *LAKEFS_BUCKETS)
"""Upper bounds (seconds, inclusive) of the duration histogram: lakeFS's, and finer below."""

DURATION = "kv_request_duration_seconds"
FAILURES = "kv_request_failures"
ENTRIES = "lakekv_kv_entries"
BYTES = "lakekv_kv_bytes"
LABELS = ("type", "operation")

EXTRA_HINT = "pip install 'lakekv[metrics]'"


def require_prometheus() -> None:
    """ConfigurationError naming the extra when ``prometheus-client`` is not installed."""
    try:
        import prometheus_client  # noqa: F401, PLC0415
    except ImportError as exc:
        raise ConfigurationError(f"metrics need prometheus-client: {EXTRA_HINT}") from exc


class _ThreadTotals:
    """One thread's totals of one operation: written by that thread only (no lock)."""

    __slots__ = ("bytes", "counts", "entries", "failures", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0
        self.failures = 0
        self.entries = 0
        self.bytes = 0


class OperationStats:
    """The running totals of one (store type, operation): histogram, failures, moved.

    Each thread adds to totals of its own (no lock on the hot path; a thread writes only
    its own numbers); :meth:`snapshot` adds them up when scraped."""

    __slots__ = ("_all", "_local", "_lock")

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[_ThreadTotals] = []
        self._lock = threading.Lock()

    def _mine(self) -> _ThreadTotals:
        try:
            totals: _ThreadTotals = self._local.totals
        except AttributeError:
            totals = self._local.totals = _ThreadTotals()
            with self._lock:
                self._all.append(totals)
        return totals

    def record(self, seconds: float, entries: int, nbytes: int) -> None:
        """One call that took ``seconds`` and moved ``entries`` entries of ``nbytes``."""
        totals = self._mine()
        totals.counts[bisect_left(BUCKETS, seconds)] += 1
        totals.sum += seconds
        totals.entries += entries
        totals.bytes += nbytes

    def fail(self, seconds: float) -> None:
        """One call that took ``seconds`` and raised."""
        totals = self._mine()
        totals.counts[bisect_left(BUCKETS, seconds)] += 1
        totals.sum += seconds
        totals.failures += 1

    def snapshot(self) -> tuple[list[int], float, int, int, int]:
        """Calls per bucket (not cumulative; the last above every bound), their total
        seconds, failures, entries and bytes, over every thread."""
        counts = [0] * (len(BUCKETS) + 1)
        total, failures, entries, nbytes = 0.0, 0, 0, 0
        with self._lock:
            every = list(self._all)
        for t in every:
            counts = [a + b for a, b in zip(counts, t.counts, strict=True)]
            total += t.sum
            failures += t.failures
            entries += t.entries
            nbytes += t.bytes
        return counts, total, failures, entries, nbytes


class KVMetrics:
    """Store metrics of a process, a Prometheus collector registered in ``registry``.

    ``registry`` defaults to ``prometheus_client.REGISTRY`` (what ``start_http_server``
    serves); :meth:`default` is the one instance registered there. Many stores (and
    wrappers of stores of one type) share an instance: their figures add up.
    """

    _default: KVMetrics | None = None
    _default_lock = threading.Lock()

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        require_prometheus()
        from prometheus_client import REGISTRY  # noqa: PLC0415

        self._ops: dict[tuple[str, str], OperationStats] = {}
        self._lock = threading.Lock()
        self.registry = REGISTRY if registry is None else registry
        self.registry.register(self)

    @classmethod
    def default(cls) -> KVMetrics:
        """The instance registered in ``prometheus_client.REGISTRY`` (made on first use)."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    def operation(self, store_type: str, operation: str) -> OperationStats:
        """The totals of ``operation`` on stores of ``store_type`` (made on first use)."""
        key = (store_type, operation)
        stats = self._ops.get(key)
        if stats is None:
            with self._lock:
                stats = self._ops.setdefault(key, OperationStats())
        return stats

    def stats(self) -> dict[tuple[str, str], OperationStats]:
        """Every (type, operation) recorded so far."""
        with self._lock:
            return dict(self._ops)

    def describe(self) -> list[Any]:
        return list(self._families({}))

    def collect(self) -> Iterator[Any]:
        """The Prometheus families, built from the totals at scrape time."""
        return iter(self._families(self.stats()))

    @staticmethod
    def _families(ops: dict[tuple[str, str], OperationStats]) -> list[Any]:
        from prometheus_client.core import (  # noqa: PLC0415
            CounterMetricFamily,
            HistogramMetricFamily,
        )

        duration = HistogramMetricFamily(
            DURATION, "request durations for the kv Store", labels=LABELS
        )
        failures = CounterMetricFamily(
            FAILURES, "The total number of errors while working for kv store.", labels=LABELS
        )
        entries = CounterMetricFamily(
            ENTRIES, "Entries read, written or deleted by kv store requests.", labels=LABELS
        )
        nbytes = CounterMetricFamily(
            BYTES, "Key and value bytes read or written by kv store requests.", labels=LABELS
        )
        for (store_type, operation), stats in sorted(ops.items()):
            counts, total, failed, moved, moved_bytes = stats.snapshot()
            if not any(counts):
                continue  # an operation never called is not exported
            labels = [store_type, operation]
            cumulative, buckets = 0, []
            for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                cumulative += count
                buckets.append((_le(bound), cumulative))
            duration.add_metric(labels, buckets, total)
            failures.add_metric(labels, failed)
            entries.add_metric(labels, moved)
            nbytes.add_metric(labels, moved_bytes)
        return [duration, failures, entries, nbytes]


def _le(bound: float) -> str:
    from prometheus_client.utils import floatToGoString  # noqa: PLC0415

    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


class MetricsStore(InterceptingStore):
    """A store whose every operation is recorded in ``metrics`` (default:
    :meth:`KVMetrics.default`) under ``store_type`` (default: the inner store's scheme).

    Nothing else changes: results, errors and capabilities are the inner store's. A failed
    call counts in ``kv_request_failures_total`` and its duration in the histogram (as in
    lakeFS), and moves nothing.
    """

    def __init__(
        self, inner: Store, metrics: KVMetrics | None = None, *, store_type: str | None = None
    ) -> None:
        super().__init__(inner)
        self.metrics = KVMetrics.default() if metrics is None else metrics
        self.store_type = inner.scheme if store_type is None else store_type
        self._ops = {op: self.metrics.operation(self.store_type, op) for op in OPERATIONS}
        self._get_stats = self._ops["Get"]
        self._set_stats = self._ops["Set"]
        self._set_if_stats = self._ops["SetIf"]
        self._delete_stats = self._ops["Delete"]

    def _intercept(self, operation: str, call: Callable[[], T], moved: Moved) -> T:
        stats = self._ops[operation]
        started = perf_counter()
        try:
            result = call()
        except BaseException:
            stats.fail(perf_counter() - started)
            raise
        seconds = perf_counter() - started
        entries, nbytes = moved(result)
        stats.record(seconds, entries, nbytes)
        return result

    # The point operations, written out: they are the hot path. They call the inner
    # store's hooks directly: this wrapper's own call machinery (``Store._call``) already
    # counts the call in flight and translates the driver's errors with the inner store's
    # ``driver_errors`` and ``_translate_error``; the wrapper owns the inner store.

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        started = perf_counter()
        try:
            result = self.inner._get(partition, key)
        except BaseException:
            self._get_stats.fail(perf_counter() - started)
            raise
        seconds = perf_counter() - started
        if result is None:
            self._get_stats.record(seconds, 0, 0)
        else:
            self._get_stats.record(seconds, 1, len(key) + len(result.value))
        return result

    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        started = perf_counter()
        try:
            self.inner._set(partition, key, value)
        except BaseException:
            self._set_stats.fail(perf_counter() - started)
            raise
        self._set_stats.record(perf_counter() - started, 1, len(key) + len(value))

    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        started = perf_counter()
        try:
            done = self.inner._set_if(partition, key, value, predicate)
        except BaseException:
            self._set_if_stats.fail(perf_counter() - started)
            raise
        self._set_if_stats.record(perf_counter() - started, 1, len(key) + len(value))
        return done

    def _delete(self, partition: bytes, key: bytes) -> None:
        started = perf_counter()
        try:
            self.inner._delete(partition, key)
        except BaseException:
            self._delete_stats.fail(perf_counter() - started)
            raise
        self._delete_stats.record(perf_counter() - started, 1, 0)


def metrics_store(store: Store, metrics: bool | KVMetrics) -> Store:
    """``store`` recorded in ``metrics`` (``True``: the default registry's), or itself."""
    if metrics is False:
        return store
    return MetricsStore(store, None if metrics is True else metrics)
