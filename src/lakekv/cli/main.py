"""``lakekv``: the console entry point. Commands live in sibling modules; this wires them up.

Exit codes: 0 ok; 1 not found / differences; 2 usage or configuration error; 3 store
unavailable; 4 conflict; 5 corrupt or unsupported input file; 6 other error.
"""

from __future__ import annotations

import sys
import traceback

import click

from lakekv import __version__
from lakekv.cli import kv as kv_commands
from lakekv.cli import lakefs as lakefs_commands
from lakekv.cli import migrate as migrate_commands
from lakekv.cli._common import DEFAULT_STORE, EXIT_ERROR, EXIT_USAGE, exit_code_for, one_line
from lakekv.errors import LakekvError


@click.group(
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
@click.version_option(__version__, prog_name="lakekv")
@click.pass_context
def cli(ctx: click.Context, store_url: str | None, traceback: bool) -> None:
    """lakekv: lakeFS-compatible metadata storage on any database, and lossless migration."""
    ctx.ensure_object(dict)
    ctx.obj["store"] = store_url
    ctx.obj["traceback"] = traceback


for command in kv_commands.COMMANDS:
    cli.add_command(command)
for command in migrate_commands.COMMANDS:
    cli.add_command(command)
cli.add_command(lakefs_commands.lakefs)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; errors become one line on stderr and a documented exit code."""
    args = sys.argv[1:] if argv is None else argv
    show_tb = "--traceback" in args
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
            traceback.print_exc()
        click.echo(one_line(exc), err=True)
        sys.exit(exit_code_for(exc))
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    except Exception as exc:
        if show_tb:
            traceback.print_exc()
        click.echo(one_line(exc) + " (internal error; rerun with --traceback)", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(result if isinstance(result, int) else 0)
