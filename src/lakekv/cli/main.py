"""``lakekv``: the console entry point. Commands live in sibling modules; this wires them up.

Exit codes: 0 ok; 1 not found / differences; 2 usage or configuration error; 3 store
unavailable; 4 conflict; 5 corrupt or unsupported input file; 6 other error.

Library logging (lakekv, psycopg, psycopg_pool, botocore, …) is silent unless ``-v`` is
given (``-v`` warnings, ``-vv`` info, ``-vvv`` debug), so an error stays one line on stderr.
Everything written to stderr here, tracebacks and log records included, is redacted.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback

import click

from lakekv import __version__
from lakekv.cli._common import (
    DEFAULT_STORE,
    EXIT_ERROR,
    EXIT_USAGE,
    exit_code_for,
    one_line,
    set_verdict,
    verdict,
)
from lakekv.errors import LakekvError
from lakekv.kv.url import redact


class _OutputClosedError(Exception):
    """The reader of stdout went away (``lakekv scan … | head``)."""


COMMANDS: dict[str, str] = {
    "drivers": "lakekv.cli.kv:drivers",
    "get": "lakekv.cli.kv:get",
    "set": "lakekv.cli.kv:set_",
    "delete": "lakekv.cli.kv:delete",
    "scan": "lakekv.cli.kv:scan",
    "partitions": "lakekv.cli.kv:partitions",
    "dump": "lakekv.cli.migrate:dump_cmd",
    "load": "lakekv.cli.migrate:load_cmd",
    "copy": "lakekv.cli.migrate:copy_cmd",
    "sync": "lakekv.cli.migrate:sync_cmd",
    "verify": "lakekv.cli.migrate:verify_cmd",
    "untrack": "lakekv.cli.migrate:untrack_cmd",
    "cutover": "lakekv.cli.migrate:cutover_cmd",
    "status": "lakekv.cli.migrate:status_cmd",
    "sample": "lakekv.cli.migrate:sample_cmd",
    "lakefs": "lakekv.cli.lakefs:lakefs",
}
"""Command name -> ``module:attribute``. A command's module (and what it needs: the migration
engine, rich, YAML, protobuf) is imported only when that command runs or help lists it, so
``lakekv get`` starts without them. ``tests/test_cli_kv.py`` keeps this in step with the
modules' ``COMMANDS``."""


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> object:
        # click turns a broken pipe into exit 1 ("not found") on its own: take it first.
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise _OutputClosedError from exc


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="""\b
Examples:
  lakekv drivers
  lakekv --store sqlite:///kv.db set myparts mykey myvalue
  lakekv scan myparts --prefix my --json
""",
)
@click.option(
    "--store",
    "-s",
    "store_url",
    metavar="URL",
    default=None,
    help=f"The store to use (default: $LAKEKV_STORE, else {DEFAULT_STORE}).",
)
@click.option("--traceback", is_flag=True, help="Show the full stack trace on errors.")
@click.option(
    "--verbose",
    "-v",
    count=True,
    help="Show library log messages on stderr: -v warnings, -vv info, -vvv debug.",
)
@click.version_option(__version__, prog_name="lakekv")
@click.pass_context
def cli(ctx: click.Context, store_url: str | None, traceback: bool, verbose: int) -> None:
    """lakekv: lakeFS-compatible metadata storage on any database, and lossless migration."""
    ctx.ensure_object(dict)
    ctx.obj["store"] = store_url
    ctx.obj["traceback"] = traceback
    configure_logging(verbose)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


_handler: logging.Handler | None = None


def configure_logging(verbose: int) -> None:
    """Route all library logging through one stderr handler shown only with ``-v``.

    Without ``-v`` nothing is logged (Python's last-resort handler, which would print every
    warning, is never reached); with it, records are redacted and shown from WARNING
    (``-v``), INFO (``-vv``) or DEBUG (``-vvv``) up.
    """
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    if verbose <= 0:
        _handler = logging.NullHandler()
        root.addHandler(_handler)
        return
    level = {1: logging.WARNING, 2: logging.INFO}.get(verbose, logging.DEBUG)
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(_RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    _handler.setLevel(level)
    root.addHandler(_handler)
    if root.getEffectiveLevel() > level:
        root.setLevel(level)


def _print_traceback() -> None:
    sys.stderr.write(redact(traceback.format_exc()))


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; errors become one line on stderr and a documented exit code."""
    args = sys.argv[1:] if argv is None else argv
    show_tb = "--traceback" in args
    set_verdict(0)
    configure_logging(0)  # until the options are parsed
    try:
        result = cli.main(args=args, prog_name="lakekv", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
    except LakekvError as exc:
        if show_tb:
            _print_traceback()
        click.echo(one_line(exc), err=True)
        sys.exit(exit_code_for(exc))
    except (BrokenPipeError, _OutputClosedError):
        # Quietly: whoever reads our output has what they wanted. The status is the
        # command's verdict if it recorded one before printing (verify: 1 when the stores
        # differ), else 0. Later writes (the interpreter's final flush) go to /dev/null
        # instead of failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(verdict())
    except Exception as exc:
        if show_tb:
            _print_traceback()
        click.echo(one_line(exc) + " (internal error; rerun with --traceback)", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(result if isinstance(result, int) else 0)
