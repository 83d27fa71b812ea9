"""Observing and limiting a migration: metrics, traces and rate limits for the stores it opens.

A migration opens its stores from URLs itself (``_common.opened``), so what it should observe
is set around the call, for the current thread's context::

    with observing(Observe(metrics=KVMetrics.default(), read_limit=RateLimit(2000))):
        copy("sqlite:///a.db", "postgres://u@db/lakefs")

Every store the migration then opens from a URL is wrapped (:func:`wrap`): in a
:class:`~lakekv.kv.wrappers.metrics.MetricsStore`, a
:class:`~lakekv.kv.wrappers.tracing.TracingStore` and a
:class:`~lakekv.kv.wrappers.ratelimit.RateLimitedStore` (stores opened read-only, which
is how sources are opened, get ``read_limit`` on their reads; the others ``write_limit`` on
their writes), each store with limiters of its own, shared by the migration's workers. A
store passed in as an object is the caller's: it is used as given. Outside ``observing``
nothing is wrapped and nothing changes.

:class:`MigrationMetrics` exports a migration's own progress as Prometheus gauges (labelled
by ``command``): entries and bytes done, partitions done and to do, rate, ETA, conflicts and
retries; :func:`progress_observer` feeds it from the progress callback.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakekv.errors import ConfigurationError
from lakekv.kv.store import BatchResult, Entry, OnConflict, Store
from lakekv.kv.wrappers import (
    KVMetrics,
    Limiter,
    MetricsStore,
    RateLimit,
    RateLimitedStore,
    StoreWrapper,
    TracingStore,
)
from lakekv.kv.wrappers._intercept import public_url
from lakekv.kv.wrappers.metrics import require_prometheus
from lakekv.migrate._progress import Progress, ProgressCallback

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry


class MigrationCounters:
    """Conflicts (target entries refused by the conflict policy) and retries, across threads."""

    def __init__(self) -> None:
        self.conflicts = 0
        self.skipped = 0
        self.retries = 0
        self._lock = threading.Lock()

    def add(self, *, conflicts: int = 0, skipped: int = 0, retries: int = 0) -> None:
        with self._lock:
            self.conflicts += conflicts
            self.skipped += skipped
            self.retries += retries


@dataclass(frozen=True)
class Observe:
    """What to observe and limit in the stores a migration opens (all off by default)."""

    metrics: KVMetrics | None = None
    """Record every store's operations here (``kv_request_duration_seconds``, …)."""
    tracing: bool = False
    """A span per store operation (the global tracer provider's ``lakekv`` tracer)."""
    read_limit: RateLimit | None = None
    """Each store opened read-only (a source; both stores of a verify): its reads."""
    write_limit: RateLimit | None = None
    """Each store opened for writing (a target): its writes."""
    capacity_share: float | None = None
    """DynamoDB: use at most this share of the table's provisioned capacity (reads of a
    source, writes of a target), on top of the limits above; see :func:`capacity_limit`."""
    counters: MigrationCounters = field(default_factory=MigrationCounters)
    """Conflicts and retries met by the migration, for :class:`MigrationMetrics`."""

    @property
    def active(self) -> bool:
        return bool(
            self.metrics is not None
            or self.tracing
            or self.read_limit
            or self.write_limit
            or self.capacity_share
        )


_current: contextvars.ContextVar[Observe | None] = contextvars.ContextVar(
    "lakekv_migration_observe", default=None
)


_latest: list[Observe] = []
"""The observations in force, innermost last: what worker threads (which do not inherit the
context) count their retries against."""


@contextlib.contextmanager
def observing(observe: Observe) -> Iterator[Observe]:
    """Wrap the stores migrations open from URLs inside this block as ``observe`` says.

    Stores are wrapped when they are opened, in the calling thread. Retries counted on
    worker threads go to the innermost observation in force in the process (several
    migrations observed at once in one process may thus share their retry counts)."""
    token = _current.set(observe)
    _latest.append(observe)
    try:
        yield observe
    finally:
        _latest.remove(observe)
        _current.reset(token)


def current() -> Observe | None:
    """What the enclosing :func:`observing` asked for (``None`` outside)."""
    return _current.get()


def retried() -> None:
    """Count one retry of a transient error (called by the migration's retry loop)."""
    observe = _current.get()
    if observe is None and _latest:
        with contextlib.suppress(IndexError):
            observe = _latest[-1]
    if observe is not None:
        observe.counters.add(retries=1)


def wrap(store: Store, *, read_only: bool) -> Store:
    """``store`` (just opened from a URL by a migration) wrapped as the enclosing
    :func:`observing` asks, or ``store`` itself. The wrappers own it: closing the result
    closes ``store``."""
    observe = _current.get()
    if observe is None or not observe.active:
        return store
    limit = observe.read_limit if read_only else observe.write_limit
    if observe.capacity_share:
        limit = _tightest(limit, capacity_limit(store, observe.capacity_share, read_only))
    try:
        if observe.metrics is not None:
            store = MetricsStore(store, observe.metrics)
        if not read_only and observe.metrics is not None:
            store = _ConflictTap(store, observe.counters)
        if observe.tracing:
            store = TracingStore(store)
        if limit is not None:
            limiter = limit.limiter()
            store = (
                RateLimitedStore(store, reads=limiter)
                if read_only
                else RateLimitedStore(store, writes=limiter)
            )
    except BaseException:
        store.close()
        raise
    return store


def _tightest(a: RateLimit | None, b: RateLimit | None) -> RateLimit | None:
    if a is None or b is None:
        return a or b

    def low(x: float | None, y: float | None) -> float | None:
        return y if x is None else x if y is None else min(x, y)

    return RateLimit(low(a.entries, b.entries), low(a.bytes, b.bytes))


READ_UNIT = 4096
"""Bytes one DynamoDB read capacity unit reads strongly consistently (lakekv's reads are)."""
WRITE_UNIT = 1024
"""Bytes one DynamoDB write capacity unit writes; every item costs at least one."""


def capacity_limit(store: Store, share: float, read_only: bool) -> RateLimit | None:
    """For a DynamoDB store, a limit of ``share`` of its table's capacity: a source's read
    capacity (bytes, at 4 KB a unit), a target's write capacity (entries, each at least one
    unit, and bytes at 1 KB a unit). Provisioned tables use their provisioned units; an
    on-demand table its maximum request units when set. Otherwise (on-demand without a
    maximum, or another engine) ``None``: the store is then only slowed down by throttling
    answers (an empty limit is adaptive, see :mod:`lakekv.kv.wrappers.ratelimit`), which is
    what ``RateLimit()`` gives."""
    if not 0 < share <= 1:
        raise ConfigurationError(f"a capacity share must be in (0, 1], not {share}")
    if store.scheme != "dynamodb":
        return None
    units = _table_units(store, read_only)
    if not units:
        return RateLimit()
    if read_only:
        return RateLimit(bytes=share * units * READ_UNIT)
    return RateLimit(entries=share * units, bytes=share * units * WRITE_UNIT)


def _table_units(store: Store, read_only: bool) -> float:
    """The table's provisioned (or on-demand maximum) read or write units; 0 if none."""
    client: Any = getattr(store, "_client", None)
    table = getattr(store, "table", None)
    if client is None or table is None:
        return 0.0
    described = client.describe_table(TableName=table)["Table"]
    provisioned = described.get("ProvisionedThroughput") or {}
    on_demand = described.get("OnDemandThroughput") or {}
    if read_only:
        units = provisioned.get("ReadCapacityUnits") or on_demand.get("MaxReadRequestUnits")
    else:
        units = provisioned.get("WriteCapacityUnits") or on_demand.get("MaxWriteRequestUnits")
    return float(units) if units and units > 0 else 0.0


class _ConflictTap(StoreWrapper):
    """Counts a target's conflicts and skips (from ``write_batch`` results) for the
    migration's gauges."""

    def __init__(self, inner: Store, counters: MigrationCounters) -> None:
        super().__init__(inner)
        self._counters = counters

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        result = super()._write_batch(entries, on_conflict)
        if result.conflicts or result.skipped:
            self._counters.add(conflicts=len(result.conflicts), skipped=result.skipped)
        return result


# --- progress: rate, ETA and gauges --------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A progress snapshot with what follows from it."""

    progress: Progress
    elapsed: float
    rate: float
    """Entries per second since the start."""
    unit: str
    """What ``done``/``total`` count: ``"bytes"`` (a known byte total, e.g. a file being
    loaded) or ``"partitions"``."""
    done: int
    total: int | None
    eta: float | None
    """Seconds left, when a total is known and work was done."""

    def as_json(self, command: str) -> dict[str, object]:
        p = self.progress
        return {
            "command": command,
            "phase": p.phase,
            "done": self.done,
            "total": self.total,
            "unit": self.unit,
            "entries": p.entries,
            "bytes": p.bytes,
            "partitions_done": p.partitions_done,
            "partitions_total": p.partitions_total,
            "rate": round(self.rate, 1),
            "eta_seconds": None if self.eta is None else round(self.eta, 1),
            "elapsed_seconds": round(self.elapsed, 1),
        }


def estimate(p: Progress, elapsed: float) -> Estimate:
    """Rate and ETA of ``p``, ``elapsed`` seconds after the start."""
    rate = p.entries / elapsed if elapsed > 0 else 0.0
    total: int | None
    if p.bytes_total:
        unit, done, total = "bytes", p.bytes, p.bytes_total
    else:
        unit, done, total = "partitions", p.partitions_done, p.partitions_total
    eta = None
    if total is not None and done > 0 and elapsed > 0:
        eta = max(0.0, elapsed * (total - done) / done)
    elif total == 0 or (total is not None and done >= total):
        eta = 0.0
    return Estimate(p, elapsed, rate, unit, done, total, eta)


class ProgressState:
    """The latest estimate of a running command, fed by its progress callback."""

    def __init__(self, command: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.command = command
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self.latest: Estimate | None = None
        self.phases: dict[str, Estimate] = {}

    def update(self, p: Progress) -> Estimate:
        e = estimate(p, self._clock() - self._started)
        with self._lock:
            self.latest = e
            self.phases[p.phase] = e
        return e

    def nothing_yet(self) -> dict[str, object]:
        """What :meth:`Estimate.as_json` says before the first progress report."""
        return {
            "command": self.command,
            "phase": None,
            "done": 0,
            "total": None,
            "unit": None,
            "entries": 0,
            "bytes": 0,
            "partitions_done": 0,
            "partitions_total": None,
            "rate": 0.0,
            "eta_seconds": None,
            "elapsed_seconds": round(self._clock() - self._started, 1),
        }

    def snapshot(self) -> tuple[Estimate | None, dict[str, Estimate]]:
        """The latest estimate and the latest of each phase, re-estimated now (so a
        rate, ETA and elapsed time read between two progress reports are current)."""
        elapsed = self._clock() - self._started
        with self._lock:
            latest, phases = self.latest, dict(self.phases)
        if latest is None:
            return None, {}
        return estimate(latest.progress, elapsed), {
            phase: estimate(e.progress, elapsed) if e is latest else e
            for phase, e in phases.items()
        }


def progress_observer(state: ProgressState, then: ProgressCallback | None) -> ProgressCallback:
    """A progress callback recording into ``state``, then calling ``then``."""

    def update(p: Progress) -> None:
        state.update(p)
        if then is not None:
            then(p)

    return update


class MigrationMetrics:
    """A migration's progress as Prometheus gauges (a collector), labelled by ``command``
    and ``phase``: ``lakekv_migration_entries``, ``…_bytes``, ``…_partitions_done``,
    ``…_partitions_total``, ``…_rate_entries_per_second``, ``…_eta_seconds``, and, per
    command, ``…_conflicts``, ``…_skipped`` and ``…_retries``."""

    def __init__(
        self,
        state: ProgressState,
        counters: MigrationCounters,
        registry: CollectorRegistry | None = None,
    ) -> None:
        require_prometheus()
        from prometheus_client import REGISTRY  # noqa: PLC0415

        self.state, self.counters = state, counters
        self.registry = REGISTRY if registry is None else registry
        self.registry.register(self)

    def unregister(self) -> None:
        self.registry.unregister(self)

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415

        _, phases = self.state.snapshot()
        labels = ["command", "phase"]
        families = {
            name: GaugeMetricFamily(f"lakekv_migration_{name}", text, labels=labels)
            for name, text in (
                ("entries", "Entries processed so far."),
                ("bytes", "Key and value bytes processed so far (input bytes for a check)."),
                ("partitions_done", "Partitions finished."),
                ("partitions_total", "Partitions to process (-1: not known)."),
                ("rate_entries_per_second", "Entries per second since the start."),
                ("eta_seconds", "Estimated seconds left (-1: not known)."),
            )
        }
        for phase, e in sorted(phases.items()):
            p = e.progress
            values = {
                "entries": p.entries,
                "bytes": p.bytes,
                "partitions_done": p.partitions_done,
                "partitions_total": -1 if p.partitions_total is None else p.partitions_total,
                "rate_entries_per_second": e.rate,
                "eta_seconds": -1 if e.eta is None else e.eta,
            }
            for name, value in values.items():
                families[name].add_metric([self.state.command, phase], float(value))
        yield from families.values()
        c = self.counters
        for name, value, text in (
            ("conflicts", c.conflicts, "Entries the target holds with another value."),
            ("skipped", c.skipped, "Entries kept in the target under --on-conflict skip."),
            ("retries", c.retries, "Transient store errors retried."),
        ):
            g = GaugeMetricFamily(f"lakekv_migration_{name}", text, labels=["command"])
            g.add_metric([self.state.command], float(value))
            yield g


def pass_span(command: str, stores: dict[str, str]) -> contextlib.AbstractContextManager[Any]:
    """A span ``lakekv.<command>`` (the migration pass) when tracing is on, with each side's
    URL without credentials as an attribute (``lakekv.from``, ``lakekv.to``); nothing
    otherwise."""
    observe = _current.get()
    if observe is None or not observe.tracing:
        return contextlib.nullcontext()
    from lakekv.kv.wrappers.tracing import get_tracer  # noqa: PLC0415

    return get_tracer().start_as_current_span(
        f"lakekv.{command}", attributes={f"lakekv.{k}": v for k, v in stores.items()}
    )


def describe_side(side: object) -> str:
    """A side of a command (a URL, a lakeFS database, a store) as a URL without credentials."""
    from lakekv.kv.url import StoreURL  # noqa: PLC0415
    from lakekv.migrate.lakefs_config import LakeFSDatabase  # noqa: PLC0415

    if isinstance(side, Store):
        return public_url(side.url)
    if isinstance(side, LakeFSDatabase):
        side = side.url
    return public_url(side if isinstance(side, StoreURL) else StoreURL.parse(str(side)))


__all__ = [
    "Estimate",
    "Limiter",
    "MigrationCounters",
    "MigrationMetrics",
    "Observe",
    "ProgressState",
    "capacity_limit",
    "current",
    "describe_side",
    "estimate",
    "observing",
    "pass_span",
    "progress_observer",
    "retried",
    "wrap",
]
