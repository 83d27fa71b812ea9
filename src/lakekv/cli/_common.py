"""Shared CLI plumbing: exit codes, error formatting, byte encodings, JSON output, store option."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, is_dataclass
from typing import Any, TypeVar

import click

from lakekv.display import show_bytes, show_text
from lakekv.errors import (
    AlreadyExistsError,
    ConfigurationError,
    ConflictError,
    CorruptInputError,
    InterruptedMigrationError,
    InvalidArgumentError,
    LakekvError,
    NotFoundError,
    RetryableError,
    SchemaVersionMismatchError,
    UnsafeOperationError,
    UnsupportedError,
)
from lakekv.kv.url import redact

DEFAULT_STORE = "sqlite:///./lakekv.db"

EXIT_OK = 0
EXIT_NOT_FOUND = 1
"""Not found, or (verify) the stores differ."""
EXIT_USAGE = 2
"""Bad command line, URL, configuration or argument; unsupported capability; schema mismatch."""
EXIT_UNAVAILABLE = 3
"""The database cannot be reached, or throttled us past the retry budget."""
EXIT_CONFLICT = 4
"""A conditional write lost, a create-only write found something there, or conflicts."""
EXIT_CORRUPT = 5
"""A corrupt, truncated or unsupported input file."""
EXIT_ERROR = 6
"""Any other lakekv error."""

F = TypeVar("F", bound=Callable[..., Any])

_verdict: int | None = None


def set_verdict(code: int) -> None:
    """Record a command's exit status before it prints its report, so that a closed output
    pipe (``lakekv verify … | head -1``) still ends with it: a verdict of "different" must
    never turn into success because nobody read the rest."""
    global _verdict
    _verdict = code


def verdict() -> int:
    """The status recorded by :func:`set_verdict` (0 when none was)."""
    return _verdict or 0


def exit_code_for(exc: LakekvError) -> int:
    """The documented exit code for an error kind."""
    if isinstance(exc, InterruptedMigrationError):
        return 128 + (exc.signal or signal.SIGINT)
    if isinstance(exc, UnsafeOperationError):
        return EXIT_USAGE
    if isinstance(exc, CorruptInputError):
        return EXIT_CORRUPT
    if isinstance(
        exc,
        ConfigurationError | InvalidArgumentError | UnsupportedError | SchemaVersionMismatchError,
    ):
        return EXIT_USAGE
    if isinstance(exc, RetryableError):
        return EXIT_UNAVAILABLE
    if isinstance(exc, ConflictError | AlreadyExistsError):
        return EXIT_CONFLICT
    if isinstance(exc, NotFoundError):
        return EXIT_NOT_FOUND
    return EXIT_ERROR


def one_line(exc: BaseException) -> str:
    """``error: <message>`` on a single line, secrets masked, control characters escaped."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return "error: " + show_text(redact(text)).replace("\\\\", "\\")


ENCODINGS = ("utf8", "hex", "base64")


def decode_arg(text: str, encoding: str, what: str) -> bytes:
    """A command-line argument as bytes, in the chosen encoding."""
    try:
        if encoding == "hex":
            return bytes.fromhex(text)
        if encoding == "base64":
            return base64.b64decode(text, validate=True)
        return text.encode("utf-8", errors="surrogateescape")
    except (ValueError, binascii.Error) as exc:
        raise click.BadParameter(f"{what} is not valid {encoding}: {exc}") from None


def encode_out(data: bytes, encoding: str) -> str:
    """Bytes for display: hex, base64 or utf8 (printable text as is, a backslash doubled,
    undecodable bytes and non-printable characters escaped: see
    :func:`~lakekv.display.show_bytes`)."""
    if encoding == "hex":
        return data.hex()
    if encoding == "base64":
        return base64.b64encode(data).decode("ascii")
    return show_bytes(data)


def to_jsonable(obj: object) -> Any:
    """Dataclasses (reports), bytes (as base64 under a ``_b64`` marker) and containers as JSON."""
    if hasattr(obj, "to_json") and callable(obj.to_json):
        return obj.to_json()
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode("ascii")
    return obj


def print_json(obj: object) -> None:
    """One JSON document on stdout."""
    click.echo(json.dumps(to_jsonable(obj), indent=2, sort_keys=False))


def print_json_line(obj: object) -> None:
    """One compact JSON document per line (for streams such as ``scan --json``)."""
    sys.stdout.write(json.dumps(to_jsonable(obj), separators=(",", ":")) + "\n")


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def encoding_option(fn: F) -> F:
    return click.option(
        "--encoding",
        "-e",
        type=click.Choice(ENCODINGS),
        default="utf8",
        show_default=True,
        help="How partition, key and value arguments are given and data is printed.",
    )(fn)


def default_store(ctx: click.Context) -> str:
    """The store a command uses when none is named on it: the global ``lakekv --store``, else
    ``$LAKEKV_STORE``, else :data:`DEFAULT_STORE`. The one resolver for ``--store`` and the
    ``--from``/``--to`` options that fall back to it."""
    root = ctx.find_root()
    given = root.obj.get("store") if isinstance(root.obj, dict) else None
    return str(given or os.environ.get("LAKEKV_STORE") or DEFAULT_STORE)


def store_option(fn: F) -> F:
    """``--store URL`` on a sub-command; falls back to :func:`default_store`."""

    def resolve(ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
        return value or default_store(ctx)

    return click.option(
        "--store",
        "-s",
        "store_url",
        metavar="URL",
        default=None,
        callback=resolve,
        help=f"The store to use (default: global --store, $LAKEKV_STORE, {DEFAULT_STORE}).",
    )(fn)


def interactive() -> bool:
    """Whether stderr is a terminal (progress bars are shown only then)."""
    return sys.stderr.isatty()


class StopEvent(threading.Event):
    """Set by the first SIGINT / SIGTERM; ``signal`` says which."""

    signal: int | None = None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopEvent]:
    """An event the first SIGINT or SIGTERM sets, for a long operation's ``stop``: it ends
    between batches, consistent and resumable, and the command exits 128 + the signal (130,
    143). A second signal stops at once (KeyboardInterrupt / SystemExit(143)); stores still
    wait for calls in flight before closing, so nothing crashes."""
    event = StopEvent()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(signum: int, _frame: object) -> None:
        if event.is_set():
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        event.signal = signum
        event.set()
        # os.write, not print: the main thread may be inside a write to stderr.
        os.write(2, b"\nstopping after the current batch (signal again to stop at once)\n")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield event
    finally:
        for sig, old in previous.items():
            # Stopping: the process is on its way out with 128 + signal, and the work is
            # over; a further signal must not turn that exit into a kill by signal (Python
            # resets its own handlers while finalizing, SIG_IGN it keeps).
            signal.signal(sig, signal.SIG_IGN if event.is_set() else old)
