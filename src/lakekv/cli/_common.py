"""Shared CLI plumbing: exit codes, error formatting, byte encodings, JSON output, store option."""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from typing import Any, TypeVar

import click

from lakekv.errors import (
    AlreadyExistsError,
    ConfigurationError,
    ConflictError,
    CorruptInputError,
    InvalidArgumentError,
    LakekvError,
    NotFoundError,
    RetryableError,
    SchemaVersionMismatchError,
    UnsupportedError,
)
from lakekv.kv.url import redact
from lakekv.migrate.reports import show_bytes, show_text

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


def exit_code_for(exc: LakekvError) -> int:
    """The documented exit code for an error kind."""
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
    :func:`~lakekv.migrate.reports.show_bytes`)."""
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


def store_option(fn: F) -> F:
    """``--store URL`` on a sub-command; falls back to the global ``lakekv --store``."""

    def resolve(ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
        if value:
            return value
        root = ctx.find_root()
        given = root.obj.get("store") if isinstance(root.obj, dict) else None
        return str(given or os.environ.get("LAKEKV_STORE") or DEFAULT_STORE)

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
