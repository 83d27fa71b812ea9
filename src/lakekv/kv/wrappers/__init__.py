"""Stores that wrap stores: a wrapper changes what it overrides and hands on the rest.

:class:`StoreWrapper` is the base; see its docstring for how to write one. The wrappers
shipped here (each module's docstring says what it does):

* :class:`~lakekv.kv.wrappers.metrics.MetricsStore` — Prometheus metrics, lakeFS's names;
* :class:`~lakekv.kv.wrappers.tracing.TracingStore` — OpenTelemetry spans;
* :class:`~lakekv.kv.wrappers.ratelimit.RateLimitedStore` — entries and bytes per second.

:func:`observed` stacks them the way ``open_store(url, metrics=…, tracing=…,
rate_limit=…)`` does. Importing this package imports neither prometheus-client nor
OpenTelemetry: they are needed only when a wrapper using them is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakekv.kv.wrappers.base import StoreWrapper
from lakekv.kv.wrappers.metrics import KVMetrics, MetricsStore
from lakekv.kv.wrappers.ratelimit import Limiter, RateLimit, RateLimitedStore
from lakekv.kv.wrappers.tracing import TracingStore

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from lakekv.kv.store import Store

__all__ = [
    "KVMetrics",
    "Limiter",
    "MetricsStore",
    "RateLimit",
    "RateLimitedStore",
    "StoreWrapper",
    "TracingStore",
    "observed",
]


def observed(
    store: Store,
    *,
    metrics: bool | KVMetrics = False,
    tracing: bool | Tracer = False,
    rate_limit: RateLimit | Limiter | None = None,
) -> Store:
    """``store`` wrapped as asked, or ``store`` itself when nothing is asked.

    The order, inside out: metrics (the store's own latency), tracing (a span per
    operation), rate limit (waiting for tokens is outside both). ``metrics=True`` records
    in :meth:`KVMetrics.default` (the default Prometheus registry); ``tracing=True`` uses the
    global tracer provider's ``lakekv`` tracer; a :class:`RateLimit` gets a limiter of its
    own, a :class:`Limiter` is shared with whoever else holds it.
    """
    if metrics is not False:
        store = MetricsStore(store, None if metrics is True else metrics)
    if tracing is not False:
        store = TracingStore(store, None if tracing is True else tracing)
    if rate_limit is not None:
        limiter = rate_limit.limiter() if isinstance(rate_limit, RateLimit) else rate_limit
        store = RateLimitedStore(store, limiter)
    return store
