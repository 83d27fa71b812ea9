"""``cutover``: the downtime part of moving lakeFS to another database, in one call; ``plan``:
what it will do and how long it will take, measured while lakeFS still runs; ``status``: the
change feeds lakekv holds on a server.

A cutover (lakeFS stopped, after a first pass with :func:`~lakekv.migrate.copy`):

1. **quiet**: nothing writes to the source any more. PostgreSQL: no client session other
   than lakekv's is connected to the source database (``pg_stat_activity``). Other engines
   cannot tell who is connected; the report says the check was not possible there. With a
   change feed, the feed is read here.
2. **catch-up**: :func:`~lakekv.migrate.sync`, by the method expected to be fastest (below),
   with every check of the catch-up (direction, foreign writes, delete budget), from the
   feed as read in step 1, which the pass keeps.
3. **verify**: :func:`~lakekv.migrate.verify` of the whole store.
4. **still quiet** (with a change feed): the feed, read again at least ``settle`` seconds
   after step 1, lists no change made since step 1, so the verified target holds every
   write the source ever received; the feed then ends. A change there is
   UnsafeOperationError ("still writes to the source"), and the feed is kept for the next
   try. (Checking after the verify, not before the catch-up, covers the whole cutover and
   costs no waiting of its own.) The verdict is the result: ``report.equal``; a caller
   exits 0 only on it.
5. the lakeFS configuration for the new database, secrets masked.

The method: by the change feed, by digests (both stores hash where the data lives) or by
merge (both scanned). A plan times a dry run of each possible one and keeps the rates
(:func:`plan` writes them to the pair's plan record); the cutover then picks the fastest for
the amount of work it finds (entries, and changes waiting in the feed). Without a plan, the
feed is taken unless it lists at least half as many changes as the store has entries (then
comparing is not slower: lakeFS's staging churn lists many changes of few entries), else
digests where both stores compute the same ones, else merge.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from lakekv.errors import LakekvError, UnsafeOperationError, UnsupportedError
from lakekv.kv.store import FeedBatch, Store
from lakekv.kv.url import StoreURL
from lakekv.migrate._common import (
    StoreLike,
    check_stop,
    digests_agree,
    opened,
    refuse_same_store,
    url_of,
)
from lakekv.migrate._pair import (
    check_direction,
    feed_notes,
    foreign_writes,
    load_plan,
    save_plan,
)
from lakekv.migrate._progress import ProgressCallback
from lakekv.migrate.feeds import end, feed_name, why_untrusted
from lakekv.migrate.lakefs_config import LakeFSDatabase, lakefs_settings
from lakekv.migrate.reports import SyncReport, VerifyReport
from lakekv.migrate.sync import sync
from lakekv.migrate.verify import verify

METHODS = ("changes", "digests", "merge")
PROCESS_START = 0.6
"""Seconds a lakekv process takes to start, where this process cannot measure its own."""
PROCESS_EXIT = 0.15
"""Seconds a lakekv process takes to close its stores and exit (measured on a 2-core
machine: connection pools, threads)."""


def process_age() -> float | None:
    """Seconds since this process started (Linux ``/proc``), or ``None``: the part of an
    operator's command that runs before lakekv's code, which a downtime includes."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        ticks = os.sysconf("SC_CLK_TCK")
        return max(0.0, uptime - int(fields[19]) / ticks)
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Step:
    """One timed step of a cutover or a plan."""

    name: str
    seconds: float
    detail: str = ""


@dataclass
class Estimate:
    """How long the downtime part is expected to take, from measurement."""

    method: str
    """The method the cutover will use."""
    catch_up_seconds: float
    verify_seconds: float
    total_seconds: float
    """The process's start (as the plan's own was measured), catch-up, verify, what is left
    of ``settle`` after them, and exit; not lakeFS's stop and start."""
    entries: int
    changes_waiting: int | None
    """Changes the source's change feed lists now (``None`` without a feed)."""
    by_method: dict[str, float] = field(default_factory=dict)
    """Expected catch-up seconds of each possible method."""


@dataclass
class CutoverReport:
    """What a cutover (or, with ``plan``, a rehearsal of it) did and found."""

    source: str = ""
    target: str = ""
    plan: bool = False
    method: str = ""
    equal: bool = False
    """The verdict: the target was verified identical to the source (always ``False`` for
    a plan, which changes nothing)."""
    steps: list[Step] = field(default_factory=list)
    downtime_seconds: float = 0.0
    """Wall time of the whole call (a plan: of the rehearsal)."""
    quiet_checks: list[str] = field(default_factory=list)
    """What was checked to see that nothing writes to the source, engine by engine."""
    estimate: Estimate | None = None
    sync: SyncReport | None = None
    verify: VerifyReport | None = None
    lakefs_config: dict[str, Any] = field(default_factory=dict)
    """The ``database:`` section for the new database (secrets masked)."""
    lakefs_env: dict[str, str] = field(default_factory=dict)
    """The same as ``LAKEFS_DATABASE_*`` variables (secrets masked)."""
    refusals: list[str] = field(default_factory=list)
    """(plan) What the cutover would refuse now, and why."""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.sync is not None:
            out["sync"] = self.sync.to_json()
        if self.verify is not None:
            out["verify"] = self.verify.to_json()
        return out


@contextlib.contextmanager
def _timed(report: CutoverReport, name: str) -> Iterator[Step]:
    step = Step(name, 0.0)
    started = time.monotonic()
    try:
        yield step
    finally:
        step.seconds = time.monotonic() - started
        report.steps.append(step)


def cutover(
    source: StoreLike,
    target: StoreLike,
    *,
    method: str = "auto",
    settle: float = 0.25,
    force: bool = False,
    allow_sessions: bool = False,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
) -> CutoverReport:
    """The downtime part of a cutover (see the module docstring). ``report.equal`` is the
    verdict; anything that prevents proving it raises (UnsafeOperationError when the source
    is still being written: "stop lakeFS first") or leaves ``equal`` false.

    ``method`` forces the catch-up's method (``auto``: by estimate). ``settle``: the fewest
    seconds over which the source's change feed must stay still (step 4). ``force`` is the
    catch-up's (see :func:`sync`). ``allow_sessions``: other client sessions on the source
    are listed, not refused (a monitoring agent; lakeFS must still be stopped)."""
    if method not in ("auto", *METHODS):
        raise ValueError(f"method must be auto, changes, digests or merge, not {method!r}")
    age = process_age()
    started = time.monotonic() - (age or 0.0)
    report = CutoverReport()
    if age is not None:
        report.steps.append(Step("process start", age, "this process, until the cutover began"))
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(opened(source, read_only=True))
        # The target must exist: the first pass made it (a mistyped one is not created).
        dst = stack.enter_context(opened(target, must_exist=True))
        refuse_same_store(src, dst, "cutover")
        report.source, report.target = url_of(src), url_of(dst)
        with _timed(report, "quiet") as step:
            report.quiet_checks, first = _check_quiet(src, dst, allow_sessions)
            step.detail = "; ".join(report.quiet_checks)
        first_read = time.monotonic()
        changes = None
        if first is not None and why_untrusted(src, dst, first) is None:
            changes = first.changes
        with _timed(report, "estimate") as step:
            estimate = _estimate_now(src, dst, method, changes, settle)
            report.estimate = estimate
            step.detail = f"{estimate.method}: {estimate.entries:,} entries" + (
                f", {estimate.changes_waiting:,} changes waiting"
                if estimate.changes_waiting is not None
                else ""
            )
        report.method = estimate.method
        with _timed(report, "catch-up") as step:
            report.sync = sync(
                src,
                dst,
                method=estimate.method,
                force=force,
                progress=progress,
                stop=stop,
                keep_tracking=first is not None,
                feed_batch=first,
            )
            r = report.sync
            step.detail = (
                f"by {r.method}: inserted {r.inserted:,}, updated {r.updated:,}, "
                f"deleted {r.deleted:,}"
                if r.method != "merge"
                else f"by merge: written {r.written:,}, deleted {r.deleted:,}"
            )
            report.warnings.extend(r.warnings)
        with _timed(report, "verify") as step:
            report.verify = verify(src, dst, progress=progress)
            v = report.verify
            step.detail = (
                f"{'identical' if v.equal else 'DIFFERENT'}: {v.entries_a:,} / "
                f"{v.entries_b:,} entries, compared by {v.compared_by}"
            )
        if first is not None:
            with _timed(report, "still quiet") as step:
                step.detail = _check_still_quiet(src, dst, settle, first_read, stop)
                report.quiet_checks.append(step.detail)
                report.sync.change_feed_kept = False
        report.equal = report.verify.equal
    report.lakefs_config, report.lakefs_env = _lakefs_for(target, dst_url=report.target)
    report.downtime_seconds = time.monotonic() - started
    return report


def plan(
    source: StoreLike,
    target: StoreLike,
    *,
    progress: ProgressCallback | None = None,
) -> CutoverReport:
    """Rehearse the cutover while lakeFS still runs, changing nothing: time a dry run of
    each possible catch-up method and a verify, and estimate the downtime of the real
    cutover from them (``report.estimate``); ``report.refusals`` lists what the cutover
    would refuse now (besides lakeFS still running, which it will find stopped). The rates
    are kept in the pair's plan record, for the cutover's choice of method."""
    age = process_age()
    started = time.monotonic()
    report = CutoverReport(plan=True)
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(opened(source, read_only=True))
        dst = stack.enter_context(opened(target, read_only=True))
        refuse_same_store(src, dst, "cutover --plan")
        report.source, report.target = url_of(src), url_of(dst)
        writers = src.writers()
        if writers is None:
            report.quiet_checks = [f"{src.scheme}: who is connected cannot be seen"]
        else:
            report.quiet_checks = [
                f"{len(writers)} client session(s) besides lakekv's on the source now (the "
                "cutover requires none)"
            ]
        entries = count_entries(src)
        rates: dict[str, float] = {}
        work: dict[str, int] = {}
        changes = _changes_waiting(src, dst)
        for m in _possible(src, dst, changes is not None):
            with _timed(report, f"dry run by {m}") as step:
                try:
                    r = sync(src, dst, method=m, dry_run=True, force=True, progress=progress)
                except LakekvError as exc:
                    step.detail = f"not possible: {exc}"
                    continue
                if r.method != m:
                    step.detail = f"fell back to {r.method}"
                    continue
                step.detail = f"{r.entries:,} entries, {r.changes:,} changes"
            amount = max(1, r.changes if m == "changes" else entries)
            rates[m] = step.seconds / amount
            work[m] = amount
        with _timed(report, "verify (while lakeFS writes)") as step:
            report.verify = verify(src, dst, progress=progress)
            step.detail = f"{report.verify.entries_a:,} entries"
        verify_rate = step.seconds / max(1, entries)
        for why in _refusals(src, dst):
            report.refusals.append(why)
        record = load_plan(src.identity(), dst.identity()) or {}
        record.update(
            entries=entries,
            rates=rates,
            verify_rate=verify_rate,
            write_factor=_WRITE_FACTOR,
            start_seconds=age if age is not None else PROCESS_START,
            measured_at=time.time(),
        )
        save_plan(src.identity(), dst.identity(), record)
        report.estimate = _estimate(record, entries, changes, "auto")
        report.method = report.estimate.method
    report.lakefs_config, report.lakefs_env = _lakefs_for(target, dst_url=report.target)
    report.downtime_seconds = time.monotonic() - started
    return report


_WRITE_FACTOR = 1.25
"""A dry run reads what the catch-up reads; writing the differences adds about a quarter
(measured: PostgreSQL 1 % changed, 0.44 s catch-up against 0.35 s dry run)."""


def count_entries(store: Store) -> int:
    """How many entries ``store`` holds (every partition read, keys only where the driver
    can; a driver that cannot list partitions counts as holding none it can name)."""
    if not store.capabilities.list_partitions:
        return 0
    total = 0
    for p in list(store.list_partitions()):
        with store.scan(p) as entries:
            total += sum(1 for _ in entries)
    return total


def _possible(src: Store, dst: Store, has_feed: bool) -> list[str]:
    methods = []
    if has_feed:
        methods.append("changes")
    if digests_agree(src, dst):
        methods.append("digests")
    methods.append("merge")
    return methods


def _changes_waiting(src: Store, dst: Store) -> int | None:
    """Changes the pair's feed lists now, if it has a usable one (peeked; nothing is
    confirmed)."""
    name = feed_name(src, dst)
    if not src.feed_exists(name):
        return None
    batch = src.feed_read(name)
    return None if why_untrusted(src, dst, batch) is not None else batch.changes


def _check_quiet(
    src: Store, dst: Store, allow_sessions: bool
) -> tuple[list[str], FeedBatch | None]:
    """UnsafeOperationError while other client sessions are connected to the source (unless
    ``allow_sessions``); what was checked, and the pair's change feed as read now (``None``:
    the source holds none)."""
    checks: list[str] = []
    writers = src.writers()
    if writers is None:
        checks.append(
            f"{src.scheme}: who is connected cannot be seen (stop lakeFS before the cutover)"
        )
    elif writers and not allow_sessions:
        raise UnsafeOperationError(
            f"cutover: the source still has {len(writers)} client session(s) besides lakekv's "
            f"({'; '.join(writers[:3])}): stop lakeFS first (--allow-sessions if these are "
            "not writers)"
        )
    elif writers:
        checks.append(f"{len(writers)} other client session(s) allowed: {'; '.join(writers[:3])}")
    else:
        checks.append(f"{src.scheme}: no client session besides lakekv's on the source database")
    name = feed_name(src, dst)
    if not src.feed_exists(name):
        return checks, None
    return checks, src.feed_read(name)


def _check_still_quiet(
    src: Store, dst: Store, settle: float, first_read: float, stop: threading.Event | None
) -> str:
    """Step 4: wait until ``settle`` seconds have passed since the feed was first read (at
    ``first_read``, a ``time.monotonic()``; a stop request ends the wait, the feed kept),
    read it again, refuse any change since (the catch-up confirmed the feed up to its first
    read), else end it. What was checked."""
    name = feed_name(src, dst)
    wait = max(0.0, first_read + settle - time.monotonic())
    if stop is None:
        time.sleep(wait)
    else:
        stop.wait(wait)
        check_stop(stop, "cutover")
    last = src.feed_read(name)
    waited = time.monotonic() - first_read
    if last.changes:
        raise UnsafeOperationError(
            f"cutover: the source's change feed listed {last.changes} new change(s) in the "
            f"{waited:.2f} s of the catch-up and the verify: something still writes to the "
            "source; stop lakeFS first, then run the cutover again (the change feed is kept)"
        )
    end(src, name)
    return (
        f"the change feed listed no new change in the {waited:.2f} s from before the "
        "catch-up to after the verify (then ended)"
    )


def _estimate_now(
    src: Store, dst: Store, forced: str, changes: int | None, settle: float
) -> Estimate:
    """The method to use now, from the pair's plan record where there is one. The entries
    are the plan's count; without a plan they are counted only when the feed lists many
    changes (a count reads the whole source, which is downtime)."""
    record = load_plan(src.identity(), dst.identity()) or {}
    entries = record.get("entries")
    if not isinstance(entries, int):
        entries = count_entries(src) if changes is None or changes > _FEW_CHANGES else 0
    possible = _possible(src, dst, changes is not None)
    if changes is not None and entries == 0:
        entries = 2 * changes + 1  # (not counted: few changes, the feed is the fast path)
    return _estimate(record, entries, changes, forced, possible=possible, settle=settle)


_FEW_CHANGES = 10_000
"""Without a plan, fewer changes than this in the feed make it the method without counting
the source's entries."""


def _estimate(
    record: dict[str, Any],
    entries: int,
    changes: int | None,
    forced: str,
    possible: list[str] | None = None,
    settle: float = 0.25,
) -> Estimate:
    factor = float(record.get("write_factor") or _WRITE_FACTOR)
    # A dry run's rate, times the share writing adds; where a real pass of this pair was
    # measured (a rehearsal: sync --keep-tracking), its own rate, writes included.
    rates: dict[str, float] = {
        k: float(v) * factor for k, v in dict(record.get("rates") or {}).items()
    }
    rates.update({k: float(v) for k, v in dict(record.get("observed") or {}).items()})
    methods = possible if possible is not None else list(rates)
    by_method: dict[str, float] = {}
    for m in methods:
        if m == "changes" and changes is None:
            continue
        if m in rates:
            amount = (changes or 0) if m == "changes" else entries
            by_method[m] = rates[m] * max(1, amount)
    if forced != "auto":
        chosen = forced
    elif by_method:
        chosen = min(by_method, key=lambda m: by_method[m])
    elif changes is not None and changes < entries / 2:
        chosen = "changes"
    elif "digests" in methods:
        chosen = "digests"
    else:
        chosen = "merge"
    verify_seconds = float(record.get("verify_rate") or 0.0) * entries
    catch_up = by_method.get(chosen, 0.0)
    start = float(record.get("start_seconds") or PROCESS_START)
    # The settle time overlaps the catch-up and the verify (step 4 waits only for the rest).
    fixed = start + max(0.0, settle - catch_up - verify_seconds) + PROCESS_EXIT
    return Estimate(
        method=chosen,
        catch_up_seconds=catch_up,
        verify_seconds=verify_seconds,
        total_seconds=catch_up + verify_seconds + fixed,
        entries=entries,
        changes_waiting=changes,
        by_method=by_method,
    )


def _refusals(src: Store, dst: Store) -> list[str]:
    """What the catch-up would refuse now (direction, foreign writes)."""
    out: list[str] = []
    try:
        check_direction(src, dst, "cutover", feed_name)
    except UnsafeOperationError as exc:
        out.append(str(exc))
    evidence = foreign_writes(src, dst)
    if evidence is not None:
        out.append(evidence)
    return out


def _lakefs_for(target: StoreLike, *, dst_url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """lakeFS's configuration for ``target``, secrets masked (empty when lakeFS cannot use
    that kind of store)."""
    if isinstance(target, LakeFSDatabase):
        url = StoreURL.parse(target.url)
    elif isinstance(target, str | StoreURL):
        url = StoreURL.parse(str(target)) if isinstance(target, str) else target
    else:
        url = StoreURL.parse(dst_url)
    return lakefs_settings(url)


@dataclass
class FeedStatus:
    """One change feed lakekv holds on a server."""

    name: str
    database: str
    active: bool
    held_bytes: int
    """Log the server keeps for the feed."""
    lost: bool
    """The server dropped log the feed needed: the catch-up will compare instead."""
    source: str | None = None
    """The pair, from this machine's note of the feed (``None`` when it has none)."""
    target: str | None = None
    started_at: float | None = None
    ready: bool | None = None
    """Its first pass finished complete (this machine's note)."""


def status(store: StoreLike) -> list[FeedStatus]:
    """Every change feed lakekv holds on the server of ``store`` (opened read-only), with
    what this machine noted of each (the pair, since when, whether its first pass
    finished). UnsupportedError for a store without change feeds."""
    with opened(store, read_only=True) as s:
        found = s.feeds()
        if found is None:
            raise UnsupportedError(f"{url_of(s)}: this kind of store has no change feeds")
    notes = feed_notes()
    out = []
    for f in found:
        name = str(f["name"])
        note = notes.get(name, {})
        started = note.get("started_at")
        ready = note.get("ready")
        out.append(
            FeedStatus(
                name=name,
                database=str(f.get("database", "")),
                active=bool(f.get("active")),
                held_bytes=int(str(f.get("held_bytes", 0))),
                lost=bool(f.get("lost")),
                source=str(note["source"]) if "source" in note else None,
                target=str(note["target"]) if "target" in note else None,
                started_at=float(started) if isinstance(started, int | float) else None,
                ready=bool(ready) if isinstance(ready, bool) else None,
            )
        )
    return out


__all__ = ["CutoverReport", "Estimate", "FeedStatus", "Step", "cutover", "plan", "status"]
