"""Monitoring and load control options of the long commands (copy, dump, load, sync, verify).

``--metrics-addr HOST:PORT`` serves Prometheus's ``/metrics`` while the command runs: every
store's ``kv_request_duration_seconds`` / ``kv_request_failures_total`` (lakeFS's names) and
entries and bytes moved, and the migration's own progress gauges (``lakekv_migration_*``).
``--trace`` opens OpenTelemetry spans (the pass, and each store operation) on the global
tracer provider, e.g. the one ``opentelemetry-instrument`` configures. ``--max-rate``,
``--max-write-rate``, ``--max-bytes-rate`` and ``--max-capacity-share`` limit the load on
the databases. ``--progress json`` prints one JSON line a second on stderr. Left off, none of
this changes anything: no wrapper, no thread, no server.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from lakekv.errors import ConfigurationError
from lakekv.kv.wrappers import RateLimit
from lakekv.migrate import _observe
from lakekv.migrate._progress import ProgressCallback

F = TypeVar("F", bound=Callable[..., Any])

JSON_INTERVAL = 1.0
"""Seconds between two lines of ``--progress json``."""


@dataclass
class _Session:
    command: str
    progress: str
    state: _observe.ProgressState


_session: contextvars.ContextVar[_Session | None] = contextvars.ContextVar(
    "lakekv_cli_observe", default=None
)


def parse_addr(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9100``, ``:9100`` for every interface) as (host, port)."""
    m = re.fullmatch(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d{1,5})", text)
    if m is None or int(m["port"]) > 65535:
        raise click.BadParameter(f"expected HOST:PORT, not {text!r}", param_hint="--metrics-addr")
    host = m["v6"] or m["host"] or "0.0.0.0"  # ":PORT": every interface
    return host, int(m["port"])


_SIZE = re.compile(r"(?i)(\d+(?:\.\d+)?)\s*(|k|m|g)(?:i?b)?")


def parse_bytes(text: str) -> float:
    """``10MB``, ``512k``, ``1.5G``, ``2000`` (powers of 1000; ``KiB`` … of 1024)."""
    m = _SIZE.fullmatch(text.strip())
    if m is None or float(m[1]) <= 0:
        raise click.BadParameter(f"expected a positive size such as 10MB, not {text!r}")
    base = 1024 if "i" in text.lower() else 1000
    power = " kmg".index(m[2].lower() or " ")
    return float(m[1]) * float(base**power)


def observe_options(command: str, *, rate_limits: str) -> Callable[[F], F]:
    """Add the monitoring and load control options to a long command, and run it inside
    them. ``rate_limits`` is what ``--max-rate`` limits: ``"reads"`` (the stores the command
    reads: a source, or both stores of verify; with ``--max-write-rate`` for a command that
    also writes a target, ``"reads+writes"``) or ``"writes"`` (load: its target)."""
    if rate_limits == "writes":
        rate_help = "Write at most N entries per second into the target."
    else:
        rate_help = (
            "Read at most N entries per second from "
            + ("each store" if command == "verify" else "the source")
            + " (a token bucket shared by the workers)."
        )

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            opts = {k: kwargs.pop(k, None) for k in _NAMES}
            with session(command, rate_limits, kwargs, **opts):
                return fn(*args, **kwargs)

        options = [
            click.option(
                "--metrics-addr",
                metavar="HOST:PORT",
                default=None,
                help="Serve Prometheus metrics at http://HOST:PORT/metrics while this runs "
                "(store requests, entries and bytes moved, progress, ETA, conflicts, retries). "
                "Needs lakekv[metrics].",
            ),
            click.option(
                "--trace",
                is_flag=True,
                help="OpenTelemetry spans for the pass and every store request, sent to the "
                "global tracer provider (e.g. opentelemetry-instrument's). Needs lakekv[tracing].",
            ),
            click.option(
                "--max-rate",
                type=click.FloatRange(min=0, min_open=True),
                metavar="N",
                default=None,
                help=rate_help,
            ),
            click.option(
                "--max-bytes-rate",
                metavar="SIZE",
                default=None,
                help="Also at most SIZE key and value bytes per second (e.g. 20MB), where "
                "--max-rate applies.",
            ),
            click.option(
                "--max-capacity-share",
                type=click.FloatRange(min=0, max=1, min_open=True),
                metavar="F",
                default=None,
                help="DynamoDB: use at most this share of the table's provisioned capacity "
                "(e.g. 0.3); throttling answers slow the pass down instead of failing it.",
            ),
            click.option(
                "--progress",
                "progress_mode",
                type=click.Choice(["auto", "json", "none"]),
                default="auto",
                show_default=True,
                help="auto: a bar on a terminal, nothing otherwise; json: one JSON line a "
                "second on stderr (done, total, rate, ETA); none: nothing.",
            ),
        ]
        if rate_limits == "reads+writes":
            options.append(
                click.option(
                    "--max-write-rate",
                    type=click.FloatRange(min=0, min_open=True),
                    metavar="N",
                    default=None,
                    help="Write at most N entries per second into the target.",
                )
            )
        wrapped: Any = run
        for option in reversed(options):
            wrapped = option(wrapped)
        return wrapped  # type: ignore[no-any-return]

    return deco


_NAMES = (
    "metrics_addr",
    "trace",
    "max_rate",
    "max_bytes_rate",
    "max_capacity_share",
    "progress_mode",
    "max_write_rate",
)


@contextlib.contextmanager
def session(
    command: str,
    rate_limits: str,
    sides: dict[str, Any],
    *,
    metrics_addr: str | None = None,
    trace: bool | None = False,
    max_rate: float | None = None,
    max_bytes_rate: str | None = None,
    max_capacity_share: float | None = None,
    progress_mode: str | None = "auto",
    max_write_rate: float | None = None,
) -> Iterator[None]:
    """Run a command's body with what its options ask: the observation of the stores it
    opens, the metrics server, the pass span and the progress mode."""
    nbytes = parse_bytes(max_bytes_rate) if max_bytes_rate else None
    limit = RateLimit(max_rate, nbytes) if (max_rate or nbytes) else None
    read_limit = limit if rate_limits != "writes" else None
    write_limit = limit if rate_limits == "writes" else None
    if max_write_rate:
        write_limit = RateLimit(max_write_rate)
    state = _observe.ProgressState(command)
    with contextlib.ExitStack() as stack:
        metrics = None
        if metrics_addr:
            metrics = _serve(stack, command, state, metrics_addr)
        observe = _observe.Observe(
            metrics=metrics[0] if metrics else None,
            tracing=bool(trace),
            read_limit=read_limit,
            write_limit=write_limit,
            capacity_share=max_capacity_share,
            counters=metrics[1] if metrics else _observe.MigrationCounters(),
        )
        if trace:
            from lakekv.kv.wrappers.tracing import get_tracer  # noqa: PLC0415

            get_tracer()  # a missing extra fails before anything runs
        stack.enter_context(_observe.observing(observe))
        stack.enter_context(_observe.pass_span(command, _side_urls(sides)))
        token = _session.set(_Session(command, progress_mode or "auto", state))
        stack.callback(_session.reset, token)
        yield


def _side_urls(kwargs: dict[str, Any]) -> dict[str, str]:
    out = {}
    for side in ("from", "to"):
        url = kwargs.get(f"{side}_url")
        if url:
            out[side] = _observe.describe_side(url)
    return out


def _serve(
    stack: contextlib.ExitStack, command: str, state: _observe.ProgressState, addr: str
) -> tuple[Any, _observe.MigrationCounters]:
    """Start the ``/metrics`` server on ``addr`` (stopped with ``stack``)."""
    host, port = parse_addr(addr)
    from lakekv.kv.wrappers.metrics import KVMetrics, require_prometheus  # noqa: PLC0415

    require_prometheus()
    from prometheus_client import start_http_server  # noqa: PLC0415

    metrics = KVMetrics.default()
    counters = _observe.MigrationCounters()
    gauges = _observe.MigrationMetrics(state, counters)
    stack.callback(gauges.unregister)
    try:
        server, thread = start_http_server(port, host)
    except OSError as exc:
        raise ConfigurationError(f"--metrics-addr {addr}: cannot listen: {exc.strerror}") from exc

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    stack.callback(stop)
    bound_host, bound_port = str(server.server_address[0]), server.server_address[1]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    click.echo(f"serving metrics at http://{shown}:{bound_port}/metrics", err=True)
    return metrics, counters


@contextlib.contextmanager
def progress(
    bar: Callable[[bool], contextlib.AbstractContextManager[ProgressCallback | None]],
    enabled: bool = True,
) -> Iterator[ProgressCallback | None]:
    """The progress callback a command passes to its library function: ``bar(enabled)``
    (the default: a bar on a terminal), JSON lines (``--progress json``) or nothing
    (``--progress none``); it also feeds the metrics' progress gauges."""
    s = _session.get()
    if s is None:
        with bar(enabled) as cb:
            yield cb
        return
    chosen: contextlib.AbstractContextManager[ProgressCallback | None]
    if s.progress == "json":
        chosen = json_lines(s.state)
    elif s.progress == "none":
        chosen = contextlib.nullcontext(None)
    else:
        chosen = bar(enabled)
    with chosen as cb:
        yield _observe.progress_observer(s.state, cb)


@contextlib.contextmanager
def json_lines(
    state: _observe.ProgressState, interval: float = JSON_INTERVAL
) -> Iterator[ProgressCallback | None]:
    """Print ``state``'s latest estimate as one JSON line on stderr every ``interval``
    seconds while the block runs, and once more at its end (before the first progress
    report: zeros, ``phase`` null)."""
    done = threading.Event()

    def emit() -> None:
        latest, _ = state.snapshot()
        record = latest.as_json(state.command) if latest is not None else state.nothing_yet()
        line = json.dumps(record, separators=(",", ":"))
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def loop() -> None:
        while not done.wait(interval):
            emit()

    thread = threading.Thread(target=loop, name="lakekv-progress", daemon=True)
    thread.start()
    try:
        yield None
    finally:
        done.set()
        thread.join()
        emit()
