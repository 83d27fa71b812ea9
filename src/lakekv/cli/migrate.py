"""Migration commands: dump, load, copy, sync, verify, sample.

Each command parses options, calls one :mod:`lakekv.migrate` function and prints its report
(``--json`` for scripts). A progress bar is drawn on stderr when it is a terminal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click
import yaml

from lakekv.cli import _observe as cli_observe
from lakekv.cli._common import (
    EXIT_CONFLICT,
    EXIT_NOT_FOUND,
    EXIT_OK,
    decode_arg,
    default_store,
    encoding_option,
    interactive,
    print_json,
    set_verdict,
    stop_on_signals,
    to_jsonable,
)
from lakekv.errors import InterruptedMigrationError, RetryableError
from lakekv.kv.url import StoreURL
from lakekv.migrate import (
    BATCH_ENTRIES,
    ProgressCallback,
    StoreLike,
    copy,
    dump,
    load,
    sync,
    untrack,
    verify,
)
from lakekv.migrate import (
    Progress as ProgressSnapshot,
)
from lakekv.migrate import sample as make_sample
from lakekv.migrate.copy import DEFAULT_WORKERS, PARALLEL_WORKERS
from lakekv.migrate.cutover import cutover, plan, status
from lakekv.migrate.lakefs_config import lakefs_sides
from lakekv.migrate.reports import CopyReport, LoadReport, WriteCounts
from lakekv.migrate.sync import SYNC_WORKERS

F = TypeVar("F", bound=Callable[..., Any])
_POLICIES = ("fail", "skip", "overwrite")


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def progress_bar(
    enabled: bool = True,
) -> contextlib.AbstractContextManager[ProgressCallback | None]:
    """The progress callback: a bar on a terminal unless ``--progress`` says otherwise."""
    return cli_observe.progress(_bar, enabled)


@contextlib.contextmanager
def _bar(enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """A callback drawing a rich progress bar on stderr, or ``None`` when stderr is no TTY."""
    if not (enabled and interactive()):
        yield None
        return
    # Imported only for a terminal: rich costs a tenth of a second, which a cutover's
    # downtime includes when its output goes to a file.
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("{task.description:<7}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def update(p: ProgressSnapshot) -> None:
        task = tasks.get(p.phase)
        if task is None:
            task = tasks[p.phase] = bar.add_task(p.phase, total=None, detail="")
        elapsed = bar.tasks[task].elapsed or 0.0
        rate = p.entries / elapsed if elapsed > 0 else 0.0
        total: int | None
        if p.bytes_total:
            completed, total = p.bytes, p.bytes_total
            detail = f"{_human(p.bytes)} of {_human(p.bytes_total)}"
        else:
            completed, total = p.partitions_done, p.partitions_total
            parts = f"{p.partitions_done}/{p.partitions_total or '?'} partitions"
            detail = f"{p.entries:,} entries · {_human(p.bytes)} · {rate:,.0f}/s · {parts}"
        bar.update(task, completed=completed, total=total, detail=detail)

    with bar:
        yield update


def _resolve(
    ctx: click.Context, url: str | None, config: str | None, side: str, *, default: bool
) -> StoreLike:
    """A store URL from ``--from``/``--to`` or the lakeFS configuration option."""
    return _resolve_sides(ctx, {side: (url, config, default)})[side]


def _resolve_sides(
    ctx: click.Context, sides: dict[str, tuple[str | None, str | None, bool]]
) -> dict[str, StoreLike]:
    """Each side's store: ``--SIDE URL``, ``--SIDE-lakefs-config FILE`` (credentials stay
    with that side; ``LAKEFS_DATABASE_*`` apply only when exactly one side is a config), or
    the default store where allowed."""
    for side, (url, config, _) in sides.items():
        if url and config:
            raise click.UsageError(f"give --{side} or --{side}-lakefs-config, not both")
    dbs = lakefs_sides({side: config for side, (_, config, _) in sides.items()})
    out: dict[str, StoreLike] = {}
    for side, (url, _, default) in sides.items():
        if side in dbs:
            out[side] = dbs[side]
        elif url:
            out[side] = url
        elif default:
            out[side] = default_store(ctx)
        else:
            raise click.UsageError(f"--{side} URL (or --{side}-lakefs-config FILE) is required")
    return out


def _store_options(side: str, *, default: bool) -> Callable[[F], F]:
    where = "read from" if side == "from" else "write to"
    fallback = " (default: global --store, $LAKEKV_STORE)" if default else ""

    def deco(fn: F) -> F:
        fn = click.option(
            f"--{side}-lakefs-config",
            f"{side}_config",
            metavar="FILE",
            default=None,
            help=f"Take the store to {where} from a lakeFS config file's database section "
            "(and LAKEFS_DATABASE_* variables).",
        )(fn)
        return click.option(
            f"--{side}",
            f"{side}_url",
            metavar="URL",
            default=None,
            help=f"The store to {where}{fallback}.",
        )(fn)

    return deco


def _partitions_option(fn: F) -> F:
    return click.option(
        "--partition",
        "-p",
        "partitions",
        multiple=True,
        metavar="P",
        help="Only this partition (repeatable; default: every partition).",
    )(fn)


def _json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")(fn)


def _workers_option(default: int | None, shown: str | None = None) -> Callable[[F], F]:
    return click.option(
        "--workers",
        "-w",
        type=click.IntRange(min=1),
        default=default,
        show_default=shown or True,
        help="Partitions (or batches) processed in parallel.",
    )


def _conflict_options(fn: F) -> F:
    fn = click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=BATCH_ENTRIES,
        show_default=True,
        help="Entries per write batch (also how often a checkpoint is written).",
    )(fn)
    fn = click.option("--dry-run", is_flag=True, help="Read all; write and create nothing.")(fn)
    fn = click.option(
        "--force",
        is_flag=True,
        help="Proceed although the lakeFS schema versions differ (copy --sync: or the source "
        "holds none).",
    )(fn)
    return click.option(
        "--on-conflict",
        type=click.Choice(_POLICIES),
        default="fail",
        show_default=True,
        help="A key that exists with a different value: report it (exit 4), keep the "
        "target's value, or overwrite it.",
    )(fn)


def _decode_partitions(partitions: tuple[str, ...], encoding: str) -> list[bytes] | None:
    if not partitions:
        return None
    return [decode_arg(p, encoding, "partition") for p in partitions]


def _emit(report: Any, as_json: bool, lines: list[str], *, err: bool = False) -> None:
    if as_json:
        if err:
            click.echo(json.dumps(to_jsonable(report), indent=2), err=True)
        else:
            print_json(report)
        return
    for line in lines:
        click.echo(line, err=err)


def _write_lines(r: WriteCounts, dry: bool) -> list[str]:
    verb = "would write" if dry else "written"
    lines = [
        f"  {verb} {r.written:,}, unchanged {r.unchanged:,}, skipped {r.skipped:,}, "
        f"conflicts {r.conflicts:,}"
    ]
    for ex in r.conflict_examples[:10]:
        lines.append(f"  conflict: partition '{ex.partition}' key '{ex.key}'")
    return lines


def _withheld_lines(report: CopyReport | LoadReport) -> list[str]:
    if not report.schema_version_withheld:
        return []
    return [
        "  lakeFS schema version NOT written because of the conflicts: the target is not a "
        "complete lakeFS database until they are resolved and the command is run again"
    ]


def _rate(entries: int, seconds: float) -> str:
    return f"{entries / seconds:,.0f} entries/s" if seconds > 0 else "-"


def _side_args(side: str, url: str | None, config: str | None) -> str:
    """The option naming one side again, for a hint (password masked)."""
    if config:
        return f"--{side}-lakefs-config {shlex.quote(config)}"
    return f"--{side} {shlex.quote(str(StoreURL.parse(url or '')))}"


def _snapshot_lines(snapshot: bool, warnings: list[str]) -> list[str]:
    lines = ["  source read at one point in time (snapshot)"] if snapshot else []
    return lines + [f"  warning: {w}" for w in warnings]


def _conflict_exit(report: CopyReport | LoadReport) -> int:
    previous = report.previous_conflicts if isinstance(report, CopyReport) else 0
    return EXIT_CONFLICT if report.conflicts or previous else EXIT_OK


@click.command(name="dump")
@cli_observe.observe_options("dump", rate_limits="reads")
@_store_options("from", default=True)
@_partitions_option
@encoding_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["lakekv", "lakefs"]),
    default="lakekv",
    show_default=True,
    help="lakekv: lossless, checksummed; lakefs: lakeFS's JSON 'kv dump' format (UTF-8 only).",
)
@click.option(
    "--compression",
    type=click.Choice(["auto", "none", "gzip", "zstd"]),
    default="auto",
    show_default=True,
    help="auto: by the file name (.gz, .zst).",
)
@_json_option
@click.argument("output", metavar="FILE")
@click.pass_context
def dump_cmd(
    ctx: click.Context,
    from_url: str | None,
    from_config: str | None,
    partitions: tuple[str, ...],
    encoding: str,
    fmt: str,
    compression: str,
    as_json: bool,
    output: str,
) -> int:
    """Write every partition of a store to FILE (- for stdout).

    \b
    Examples:
      lakekv dump --from sqlite:///lakefs.db lakefs.lkv.zst
      lakekv dump --from-lakefs-config /etc/lakefs/config.yaml - | gzip > db.lkv.gz
      lakekv dump --from postgres://u@db/lakefs --format lakefs lakefs-dump.json
    """
    src = _resolve(ctx, from_url, from_config, "from", default=True)
    with stop_on_signals() as stop, progress_bar() as cb:
        report = dump(
            src,
            output,
            partitions=_decode_partitions(partitions, encoding),
            format=fmt,  # type: ignore[arg-type]
            compression=compression,  # type: ignore[arg-type]
            progress=cb,
            stop=stop,
        )
    _emit(
        report,
        as_json,
        [
            f"dumped {report.entries:,} entries in {report.partitions:,} partitions "
            f"({_human(report.bytes)}) from {report.source} to {report.destination} "
            f"[{report.format}, {_human(report.file_bytes)}] in {report.seconds:.1f}s "
            f"({_rate(report.entries, report.seconds)})",
            *([f"  sha256 {report.sha256}"] if report.sha256 else []),
            *(
                ["  partitions found by walking the lakeFS model (source cannot list them)"]
                if report.partition_source == "lakefs-walk"
                else []
            ),
            *_snapshot_lines(report.snapshot, report.warnings),
        ],
        err=_is_stdout(output),
    )
    return EXIT_OK


def _is_stdout(output: str) -> bool:
    """Whether the dump went to our stdout (``-``, ``/dev/stdout``, …): the summary then goes
    to stderr so it does not end up inside the dump."""
    if output == "-":
        return True
    try:
        a, b = os.stat(output), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@click.command(name="load")
@cli_observe.observe_options("load", rate_limits="writes")
@_store_options("to", default=True)
@_conflict_options
@_workers_option(2)
@_json_option
@click.argument("input_file", metavar="FILE")
@click.pass_context
def load_cmd(
    ctx: click.Context,
    to_url: str | None,
    to_config: str | None,
    on_conflict: str,
    force: bool,
    dry_run: bool,
    batch_size: int,
    workers: int,
    as_json: bool,
    input_file: str,
) -> int:
    """Load a dump FILE (- for stdin; lakekv or lakeFS format, any compression) into a store.

    A named file is verified completely before anything is written; a corrupt, truncated or
    unsupported file exits 5. Conflicts exit 4.

    \b
    Examples:
      lakekv load --to sqlite:///restored.db lakefs.lkv.zst
      lakekv load --to postgres://u@db/lakefs --on-conflict skip lakefs-dump.json
      zcat db.lkv.gz | lakekv load --to sqlite:///x.db -
    """
    dst = _resolve(ctx, to_url, to_config, "to", default=True)
    with stop_on_signals() as stop, progress_bar() as cb:
        report = load(
            dst,
            input_file,
            on_conflict=on_conflict,
            dry_run=dry_run,
            force=force,
            workers=workers,
            batch_entries=batch_size,
            progress=cb,
            stop=stop,
        )
    _emit(
        report,
        as_json,
        [
            f"{'dry run: ' if dry_run else ''}loaded {report.entries:,} entries in "
            f"{report.partitions:,} partitions from {report.source} [{report.format}] into "
            f"{report.target} in {report.seconds:.1f}s ({_rate(report.entries, report.seconds)})",
            *_write_lines(report, dry_run),
            *_withheld_lines(report),
            *(f"  warning: {w}" for w in report.warnings),
        ],
    )
    return _conflict_exit(report)


@click.command(name="copy")
@cli_observe.observe_options("copy", rate_limits="reads+writes")
@_store_options("from", default=False)
@_store_options("to", default=False)
@_partitions_option
@encoding_option
@_conflict_options
@click.option("--sync", is_flag=True, help="Also delete target entries absent from the source.")
@click.option(
    "--max-delete",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="With --sync: stop (exit 2) rather than delete more than N target entries.",
)
@click.option(
    "--checkpoint",
    metavar="FILE",
    default=None,
    help="Record progress in FILE; run the same command again to resume after a crash or "
    "stop (after a finished pass, the same command runs a new full pass).",
)
@click.option(
    "--track-changes",
    is_flag=True,
    help="First start a change feed on the source (PostgreSQL: a logical replication slot; "
    "needs wal_level = logical and the REPLICATION attribute), so the catch-up pass "
    "(lakekv sync) visits only what changed. The source server keeps its WAL until that "
    "pass or lakekv untrack ends the feed.",
)
@_workers_option(
    None, f"{PARALLEL_WORKERS}; {DEFAULT_WORKERS} into a single-writer store such as SQLite"
)
@_json_option
@click.pass_context
def copy_cmd(
    ctx: click.Context,
    from_url: str | None,
    from_config: str | None,
    to_url: str | None,
    to_config: str | None,
    partitions: tuple[str, ...],
    encoding: str,
    on_conflict: str,
    force: bool,
    dry_run: bool,
    batch_size: int,
    sync: bool,
    max_delete: int | None,
    checkpoint: str | None,
    track_changes: bool,
    workers: int | None,
    as_json: bool,
) -> int:
    """Copy every partition from one store to another (exit 4 on conflicts).

    The source must exist and is only read; a source and target that are the same store
    are refused. SIGINT / SIGTERM stop it after the current batch (exit 130 / 143); with
    --checkpoint, running it again resumes.

    \b
    Examples:
      lakekv copy --from sqlite:///lakefs.db --to postgres://u@db/lakefs --checkpoint c.ckpt
      lakekv copy --from-lakefs-config old.yaml --to-lakefs-config new.yaml --workers 8
      lakekv copy --from sqlite:///a.db --to sqlite:///b.db --sync --dry-run
      lakekv copy --from postgres://u@old/lakefs --to postgres://u@new/lakefs --track-changes
    """
    sides = _resolve_sides(
        ctx, {"from": (from_url, from_config, False), "to": (to_url, to_config, False)}
    )
    src, dst = sides["from"], sides["to"]
    pair = f"{_side_args('from', from_url, from_config)} {_side_args('to', to_url, to_config)}"
    with stop_on_signals() as stop, progress_bar() as cb:
        try:
            report = copy(
                src,
                dst,
                partitions=_decode_partitions(partitions, encoding),
                on_conflict=on_conflict,
                workers=workers,
                checkpoint=checkpoint,
                dry_run=dry_run,
                sync=sync,
                force=force,
                max_delete=max_delete,
                batch_entries=batch_size,
                progress=cb,
                stop=stop,
                track_changes=track_changes,
            )
        except (InterruptedMigrationError, RetryableError):
            if track_changes:
                # The pass stopped after its feed started: the feed stays for the resume.
                click.echo(
                    "note: the change feed this pass started stays on the source (its server "
                    "keeps WAL for it): run the same command again to resume"
                    + (" (with the same --checkpoint)" if checkpoint else "")
                    + f", or end it with: lakekv untrack {pair}",
                    err=True,
                )
            raise
    lines = [
        f"{'dry run: ' if dry_run else ''}copied {report.entries:,} entries in "
        f"{report.partitions:,} partitions ({_human(report.bytes)}) from {report.source} to "
        f"{report.target} in {report.seconds:.1f}s ({_rate(report.entries, report.seconds)})",
        *_write_lines(report, dry_run),
    ]
    if sync:
        lines.append(f"  {'would delete' if dry_run else 'deleted'} {report.deleted:,}")
    if report.lakefs_schema_version is None:
        lines.append(
            "  warning: the source holds no lakeFS schema version (not a lakeFS database?)"
        )
    lines.extend(_withheld_lines(report))
    if report.new_pass:
        lines.append("  the checkpoint's previous pass had finished: this run was a new full pass")
    if report.resumed_partitions:
        lines.append(
            f"  resumed: {report.resumed_partitions:,} partitions were already done"
            + (
                f" ({report.previous_conflicts:,} conflicts then)"
                if report.previous_conflicts
                else ""
            )
        )
    if report.retries:
        lines.append(f"  {report.retries} transient errors retried")
    if report.partition_source == "lakefs-walk":
        lines.append("  partitions found by walking the lakeFS model (source cannot list them)")
    lines.extend(_snapshot_lines(report.snapshot, report.warnings))
    if report.change_feed is not None:
        lines.append(
            f"  change feed {report.change_feed} records on the source"
            + (" (target ready)" if report.change_feed_ready else "")
            + "; the source server keeps its WAL until the catch-up pass ends it "
            f"(to abandon the cutover instead: lakekv untrack {pair})"
        )
    if not sync and not dry_run:
        by = " (its catch-up reads the change feed)" if report.change_feed_ready else ""
        lines.append(
            f"  next, for a cutover: lakekv cutover {pair} --plan while lakeFS runs; then stop "
            f"lakeFS and run the cutover{by}:\n    lakekv cutover {pair}"
        )
    _emit(report, as_json, lines)
    return _conflict_exit(report)


@click.command(name="verify")
@cli_observe.observe_options("verify", rate_limits="reads")
@_store_options("from", default=False)
@_store_options("to", default=False)
@_partitions_option
@encoding_option
@click.option("--quick", is_flag=True, help="Compare per-partition counts and hashes only.")
@click.option(
    "--partition-digests/--no-partition-digests",
    default=True,
    show_default=True,
    help="Where both servers compute the same digests (PostgreSQL), prove a partition equal "
    "by its 64-bit digest computed by each; without, by SHA-256 ranges or entries (slower).",
)
@click.option(
    "--max-diffs", type=click.IntRange(min=0), default=20, show_default=True, help="Examples kept."
)
@_workers_option(4)
@_json_option
@click.pass_context
def verify_cmd(
    ctx: click.Context,
    from_url: str | None,
    from_config: str | None,
    to_url: str | None,
    to_config: str | None,
    partitions: tuple[str, ...],
    encoding: str,
    quick: bool,
    partition_digests: bool,
    max_diffs: int,
    workers: int,
    as_json: bool,
) -> int:
    """Compare two stores entry by entry; exit 1 if they differ.

    Both stores must exist and are only read; one store given twice is refused (exit 2).
    Two PostgreSQL stores compare each partition first by a digest both servers compute
    (count, bytes and a 64-bit hash); a partition whose digests differ is compared by
    SHA-256 ranges and entries, which name the differences. The output says how.

    \b
    Examples:
      lakekv verify --from sqlite:///lakefs.db --to postgres://u@db/lakefs
      lakekv verify --from sqlite:///a.db --to sqlite:///b.db --quick --json
    """
    sides = _resolve_sides(
        ctx, {"from": (from_url, from_config, False), "to": (to_url, to_config, False)}
    )
    a, b = sides["from"], sides["to"]
    with progress_bar() as cb:
        report = verify(
            a,
            b,
            partitions=_decode_partitions(partitions, encoding),
            quick=quick,
            partition_digests=partition_digests,
            max_diffs=max_diffs,
            workers=workers,
            progress=cb,
        )
    code = EXIT_OK if report.equal else EXIT_NOT_FOUND
    set_verdict(code)
    verdict = "identical" if report.equal else "DIFFERENT"
    lines = [
        f"{report.a} and {report.b} are {verdict}: {report.partitions:,} partitions, "
        f"{report.entries_a:,} / {report.entries_b:,} entries"
        f" in {report.seconds:.1f}s, compared by {report.compared_by}",
    ]
    lines.extend(f"  warning: {w}" for w in report.warnings)
    if not report.equal:
        lines.append(
            f"  missing {report.missing:,}, extra {report.extra:,}, different {report.different:,}"
            + (f", partitions differing {report.different_partitions:,}" if quick else "")
        )
        for d in report.examples:
            key = f" key '{d.key}'" if d.key is not None else ""
            lines.append(f"  {d.kind}: partition '{d.partition}'{key}")
    _emit(report, as_json, lines)
    return code


@click.command(name="sync")
@cli_observe.observe_options("sync", rate_limits="reads+writes")
@_store_options("from", default=False)
@_store_options("to", default=False)
@_partitions_option
@encoding_option
@click.option("--dry-run", is_flag=True, help="Count what would change, write nothing.")
@click.option(
    "--force",
    is_flag=True,
    help="Proceed although the lakeFS schema versions differ, the source holds none, the "
    "target was written by something else since lakekv's last pass (lakeFS started on it), "
    "the sides look swapped, or more than a quarter of the target would be deleted.",
)
@click.option(
    "--max-delete",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Stop (exit 2) rather than delete more than N target entries (default: a quarter "
    "of the target's entries, at least 1,000).",
)
@click.option(
    "--method",
    type=click.Choice(["auto", "changes", "digests", "merge"]),
    default="auto",
    show_default=True,
    help="changes: visit only the keys the source's change feed lists (after lakekv copy "
    "--track-changes); digests: both engines hash their entries and only differences move "
    "(stores that compute the same digests, e.g. PostgreSQL to PostgreSQL); merge: compare "
    "both sides' scans; auto: the first of these that is possible.",
)
@click.option(
    "--keep-tracking",
    is_flag=True,
    help="Keep the change feed recording after this pass, for another catch-up (a rehearsal "
    "while lakeFS still runs). By default the pass ends it.",
)
@_workers_option(SYNC_WORKERS)
@_json_option
@click.pass_context
def sync_cmd(
    ctx: click.Context,
    from_url: str | None,
    from_config: str | None,
    to_url: str | None,
    to_config: str | None,
    partitions: tuple[str, ...],
    encoding: str,
    dry_run: bool,
    force: bool,
    max_delete: int | None,
    method: str,
    keep_tracking: bool,
    workers: int,
    as_json: bool,
) -> int:
    """Make the target identical to the source: the catch-up pass of a cutover.

    Inserts what the target lacks, overwrites what differs, deletes what the source does not
    have (whole partitions too), touching nothing else. Run it after a first `lakekv copy`
    once the writers (lakeFS) are stopped; then `lakekv verify`.

    \b
    Examples:
      lakekv sync --from postgres://u@old/lakefs --to postgres://u@new/lakefs
      lakekv sync --from-lakefs-config old.yaml --to-lakefs-config new.yaml --dry-run
    """
    sides = _resolve_sides(
        ctx, {"from": (from_url, from_config, False), "to": (to_url, to_config, False)}
    )
    src, dst = sides["from"], sides["to"]
    with stop_on_signals() as stop, progress_bar() as cb:
        report = sync(
            src,
            dst,
            partitions=_decode_partitions(partitions, encoding),
            workers=workers,
            dry_run=dry_run,
            force=force,
            method=method,
            keep_tracking=keep_tracking,
            max_delete=max_delete,
            progress=cb,
            stop=stop,
        )
    would = "would be " if dry_run else ""
    verb = "dry run: would make" if dry_run else "made"
    lines = [
        f"{verb} {report.target} identical to "
        f"{report.source}: {report.entries:,} entries in {report.partitions:,} partitions "
        f"compared by {report.method} in {report.seconds:.1f}s",
    ]
    if report.method == "changes":
        lines.append(
            f"  {would}inserted {report.inserted:,}, {would}updated {report.updated:,}, "
            f"{would}deleted {report.deleted:,}; the change feed listed {report.changes:,} "
            f"row changes of {report.entries:,} keys (a key written twice is one key; a key "
            "changed and changed back needs nothing)"
        )
    elif report.method == "digests":
        lines.append(
            f"  {would}inserted {report.inserted:,}, {would}updated {report.updated:,}, "
            f"{would}deleted {report.deleted:,}; {report.unchanged_partitions:,} partitions "
            "unchanged"
        )
    else:
        lines.append(f"  {would}written {report.written:,}, {would}deleted {report.deleted:,}")
    lines.extend(_snapshot_lines(report.snapshot, report.warnings))
    if report.change_feed is not None and not dry_run:
        lines.append(
            f"  change feed {report.change_feed} "
            + ("kept, ready for the next pass" if report.change_feed_kept else "ended")
        )
    pair = f"{_side_args('from', from_url, from_config)} {_side_args('to', to_url, to_config)}"
    if keep_tracking and not dry_run:
        lines.append(
            "  a rehearsal: lakeFS still writes, so the stores differ again already; next: "
            f"stop lakeFS, then lakekv cutover {pair}"
        )
    elif not dry_run:
        lines.append(f"  next: lakekv verify {pair}")
    _emit(report, as_json, lines)
    return EXIT_OK


@click.command(name="untrack")
@_store_options("from", default=False)
@_store_options("to", default=False)
@_json_option
@click.pass_context
def untrack_cmd(
    ctx: click.Context,
    from_url: str | None,
    from_config: str | None,
    to_url: str | None,
    to_config: str | None,
    as_json: bool,
) -> int:
    """End the change feed `lakekv copy --track-changes` started on the source.

    For a cutover abandoned or postponed: the source server stops keeping its WAL for it.
    The catch-up pass (`lakekv sync`) ends the feed by itself. No feed is no error.

    \b
    Examples:
      lakekv untrack --from postgres://u@old/lakefs --to postgres://u@new/lakefs
    """
    sides = _resolve_sides(
        ctx, {"from": (from_url, from_config, False), "to": (to_url, to_config, False)}
    )
    report = untrack(sides["from"], sides["to"])
    state = "ended" if report.ended else "was not recording (nothing to end)"
    _emit(report, as_json, [f"change feed {report.change_feed} on {report.source} {state}"])
    return EXIT_OK


@click.command(name="cutover")
@_store_options("from", default=False)
@_store_options("to", default=False)
@click.option(
    "--plan",
    "plan_only",
    is_flag=True,
    help="While lakeFS still runs: time a dry run of each catch-up method and a verify, "
    "estimate the downtime, say what the cutover would refuse; change nothing.",
)
@click.option(
    "--method",
    type=click.Choice(["auto", "changes", "digests", "merge"]),
    default="auto",
    show_default=True,
    help="The catch-up's method; auto: the fastest by estimate (from the last --plan).",
)
@click.option(
    "--settle",
    type=click.FloatRange(min=0),
    default=0.25,
    show_default=True,
    help="Fewest seconds, from before the catch-up to after the verify, over which the "
    "source's change feed must list no new change (lakeFS stopped).",
)
@click.option(
    "--allow-sessions",
    is_flag=True,
    help="List other client sessions on a PostgreSQL source instead of refusing (monitoring "
    "agents; lakeFS must still be stopped).",
)
@click.option("--force", is_flag=True, help="Passed to the catch-up (see lakekv sync --help).")
@_json_option
@click.pass_context
def cutover_cmd(
    ctx: click.Context,
    from_url: str | None,
    from_config: str | None,
    to_url: str | None,
    to_config: str | None,
    plan_only: bool,
    method: str,
    settle: float,
    allow_sessions: bool,
    force: bool,
    as_json: bool,
) -> int:
    """The downtime part of a migration in one command: check that nothing writes to the
    source any more, catch up, verify, and print the lakeFS configuration for the new
    database. Exit 0 only when the target is verified identical.

    Run it with lakeFS stopped, after a first pass (lakekv copy, ideally --track-changes).
    --plan rehearses it while lakeFS runs and estimates the downtime.

    \b
    Examples:
      lakekv cutover --from-lakefs-config old.yaml --to-lakefs-config new.yaml --plan
      lakekv cutover --from-lakefs-config old.yaml --to-lakefs-config new.yaml
      lakekv cutover --from postgres://u@old/lakefs --to postgres://u@new/lakefs --json
    """
    sides = _resolve_sides(
        ctx, {"from": (from_url, from_config, False), "to": (to_url, to_config, False)}
    )
    src, dst = sides["from"], sides["to"]
    with stop_on_signals() as stop, progress_bar() as cb:
        if plan_only:
            report = plan(src, dst, progress=cb)
        else:
            report = cutover(
                src,
                dst,
                method=method,
                settle=settle,
                force=force,
                allow_sessions=allow_sessions,
                progress=cb,
                stop=stop,
            )
    code = EXIT_OK if (plan_only or report.equal) else EXIT_NOT_FOUND
    set_verdict(code)
    lines = [
        ("plan for the cutover of " if plan_only else "cutover of ")
        + f"{report.source} to {report.target}"
        + ("" if plan_only else f": {'IDENTICAL' if report.equal else 'DIFFERENT'}")
    ]
    for step in report.steps:
        lines.append(f"  {step.name:<28} {step.seconds:7.2f} s  {step.detail}")
    label = "rehearsal took" if plan_only else "total (lakekv's part of the downtime)"
    lines.append(f"  {label:<28} {report.downtime_seconds:7.2f} s")
    lines.extend(f"  checked: {c}" for c in report.quiet_checks)
    e = report.estimate
    if plan_only and e is not None:
        options = ", ".join(f"{m} {t:.2f} s" for m, t in e.by_method.items())
        lines.append(
            f"  estimate: catch-up by {e.method} {e.catch_up_seconds:.2f} s ({options}), "
            f"verify {e.verify_seconds:.2f} s; lakekv's part of the downtime about "
            f"{e.total_seconds:.1f} s, plus stopping and starting lakeFS"
        )
        lines.extend(f"  the cutover would refuse now: {r}" for r in report.refusals)
    lines.extend(f"  warning: {w}" for w in report.warnings)
    if report.verify is not None and not report.equal and not plan_only:
        v = report.verify
        lines.append(
            f"  missing {v.missing:,}, extra {v.extra:,}, different {v.different:,}: do not "
            "switch lakeFS; find what still writes, then run the cutover again"
        )
    if report.lakefs_env and (plan_only or report.equal):
        lines.append("  lakeFS configuration for the new database (put the real password in):")
        lines.extend(
            "    " + line for line in _yaml({"database": report.lakefs_config}).splitlines()
        )
        lines.append("  or, as environment variables:")
        lines.extend(f"    {k}={shlex.quote(v)}" for k, v in report.lakefs_env.items())
    _emit(report, as_json, lines)
    return code


def _yaml(data: dict[str, Any]) -> str:
    return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


@click.command(name="status")
@_store_options("from", default=True)
@_json_option
@click.pass_context
def status_cmd(
    ctx: click.Context, from_url: str | None, from_config: str | None, as_json: bool
) -> int:
    """The change feeds lakekv holds on a server: which pair, since when, how much log the
    server keeps for each, whether its first pass finished.

    \b
    Examples:
      lakekv status --from-lakefs-config old.yaml
      lakekv status --from postgres://u@old/lakefs --json
    """
    src = _resolve(ctx, from_url, from_config, "from", default=True)
    feeds = status(src)
    lines = [f"{len(feeds)} change feed(s) of lakekv on the server"]
    for f in feeds:
        pair = f"{f.source} -> {f.target}" if f.source else "pair unknown on this machine"
        since = (
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(f.started_at)) if f.started_at else "?"
        )
        ready = {True: "first pass finished", False: "first pass not finished", None: "?"}[f.ready]
        lines.append(
            f"  {f.name} (database {f.database}, {'in use' if f.active else 'idle'}): {pair}; "
            f"since {since}; {ready}; {_human(f.held_bytes)} of WAL held"
            + ("; LOST (the server dropped WAL it needed)" if f.lost else "")
        )
    _emit({"feeds": [dataclasses.asdict(f) for f in feeds]}, as_json, lines)
    return EXIT_OK


@click.command(name="sample")
@_store_options("to", default=True)
@click.option("--entries", "-n", type=click.IntRange(min=1), required=True, help="Entries.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same data.")
@click.option(
    "--force", is_flag=True, help="Write into a store that is not empty (overwriting keys)."
)
@_json_option
@click.pass_context
def sample_cmd(
    ctx: click.Context,
    to_url: str | None,
    to_config: str | None,
    entries: int,
    seed: int,
    force: bool,
    as_json: bool,
) -> int:
    """Write a realistic lakeFS-shaped sample database of exactly N entries.

    A store that already holds entries is refused (exit 2) unless --force.

    \b
    Examples:
      lakekv sample --to sqlite:///sample.db --entries 100000
      lakekv sample --to postgres://postgres@127.0.0.1/test --entries 1000000 --seed 7
    """
    dst = _resolve(ctx, to_url, to_config, "to", default=True)
    with progress_bar() as cb:
        report = make_sample(dst, entries, seed=seed, force=force, progress=cb)
    _emit(
        report,
        as_json,
        [
            f"wrote {report.entries:,} entries ({_human(report.bytes)}) in "
            f"{report.partitions:,} partitions to {report.target} in {report.seconds:.1f}s: "
            f"{report.repositories} repositories, {report.staging_partitions} staging "
            f"partitions, {report.non_utf8_keys} non-UTF-8 keys, {report.empty_values} "
            "empty values"
        ],
    )
    return EXIT_OK


COMMANDS: list[click.Command] = [
    dump_cmd,
    load_cmd,
    copy_cmd,
    sync_cmd,
    verify_cmd,
    untrack_cmd,
    cutover_cmd,
    status_cmd,
    sample_cmd,
]
