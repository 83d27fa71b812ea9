"""OpenTelemetry spans for any store: one span per operation, through the OpenTelemetry API.

:class:`TracingStore` wraps a store and opens a span around each operation (the names of
:mod:`lakekv.kv.wrappers.metrics`: ``Get``, ``Set``, ``SetIf``, ``Delete``, ``Scan`` for one
page, ``WriteBatch``, …), named ``kv.<operation>``, as a child of whatever span is current.
Attributes:

* ``db.system.name`` and ``lakekv.store.type`` — the driver's scheme;
* ``db.operation.name`` — the operation;
* ``lakekv.store.url`` — the store's URL without user, password or any secret-looking
  parameter (never a credential);
* ``lakekv.entries`` and ``lakekv.bytes`` — what the operation moved (on success).

On a thread without a current span (a migration's worker threads), the span's parent is the
span that was current where the wrapper was made (the migration pass). A failed operation
records its exception and sets the span's status to error. Only the API
(``opentelemetry-api``, ``pip install 'lakekv[tracing]'``) is used: spans go wherever the
application's tracer provider sends them, and nowhere (at almost no cost) when it has none.
lakekv never installs a provider or an exporter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from lakekv.errors import ConfigurationError
from lakekv.kv.store import Store
from lakekv.kv.wrappers._intercept import OPERATIONS, InterceptingStore, Moved, public_url

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

T = TypeVar("T")

EXTRA_HINT = "pip install 'lakekv[tracing]'"
TRACER_NAME = "lakekv"


def get_tracer() -> Tracer:
    """The ``lakekv`` tracer of the global tracer provider; ConfigurationError naming the
    extra when ``opentelemetry-api`` is not installed."""
    try:
        from opentelemetry import trace  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigurationError(f"tracing needs opentelemetry-api: {EXTRA_HINT}") from exc
    from lakekv import __version__  # noqa: PLC0415

    return trace.get_tracer(TRACER_NAME, __version__)


class TracingStore(InterceptingStore):
    """A store whose every operation is a span of ``tracer`` (default: :func:`get_tracer`)."""

    def __init__(self, inner: Store, tracer: Tracer | None = None) -> None:
        super().__init__(inner)
        self.tracer = get_tracer() if tracer is None else tracer
        from opentelemetry import context, trace  # noqa: PLC0415

        self._kind = trace.SpanKind.CLIENT
        self._current_span = trace.get_current_span
        self._opened_in = context.get_current()
        """The context the wrapper was made in: the parent of spans started on threads that
        have none of their own (a migration's workers)."""
        url = public_url(inner.url)
        self._attributes = {
            op: {
                "db.system.name": inner.scheme,
                "db.operation.name": op,
                "lakekv.store.type": inner.scheme,
                "lakekv.store.url": url,
            }
            for op in OPERATIONS
        }

    def _intercept(self, operation: str, call: Callable[[], T], moved: Moved) -> T:
        parent = None if self._current_span().get_span_context().is_valid else self._opened_in
        with self.tracer.start_as_current_span(
            "kv." + operation,
            context=parent,
            kind=self._kind,
            attributes=self._attributes[operation],
        ) as span:
            result = call()
            if span.is_recording():
                entries, nbytes = moved(result)
                span.set_attribute("lakekv.entries", entries)
                span.set_attribute("lakekv.bytes", nbytes)
            return result
