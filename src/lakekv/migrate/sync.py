"""``sync``: the catch-up pass. Make a target identical to its source, touching only what
differs.

A cutover copies a live store first (:func:`~lakekv.migrate.copy`, at one point in time),
then stops the writers and runs this pass, so the downtime is this pass. Two ways:

``digests`` (both stores declare the same ``capabilities.digests`` and their
``digest_probe()`` agree, e.g. PostgreSQL to PostgreSQL)
    For each partition both engines hash their entries where they are into buckets of about 16
    entries (``Store.digest_buckets``); only the buckets whose count or digest differ are
    looked at more closely (``digest_rows``: key and row hash), and only the entries that
    differ are read (``get_many``), written (bulk ``write_batch`` with overwrite) or deleted
    (``delete_many``). Values that did not change never leave either server.
``merge``
    Anything else: ``copy(sync=True, on_conflict="overwrite")``, a merge of both sides'
    ordered scans that writes only the differences.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from lakekv.errors import (
    InterruptedMigrationError,
    InvalidArgumentError,
    UnsafeOperationError,
    UnsupportedError,
)
from lakekv.kv.store import Entry, FeedBatch, OnConflict, Store
from lakekv.migrate import _retry, feeds
from lakekv.migrate._batch import Batch
from lakekv.migrate._common import (
    BATCH_BYTES,
    BATCH_ENTRIES,
    NO_SNAPSHOT,
    Stop,
    StoppedError,
    StoreLike,
    check_stop,
    consistent,
    digests_agree,
    interrupted,
    is_snapshot,
    open_sides,
    url_of,
)
from lakekv.migrate._pair import (
    DeleteBudget,
    check_direction,
    foreign_writes,
    observe_rate,
    pair_lock,
    save_record,
)
from lakekv.migrate._progress import ProgressCallback, Tracker
from lakekv.migrate.copy import DEFAULT_WORKERS, copy
from lakekv.migrate.partitions import (
    SCHEMA_PARTITION,
    check_schema_versions,
    plan_partitions,
    read_schema_version,
    refuse_unversioned_source,
    schema_last,
    union_plan,
)
from lakekv.migrate.reports import SyncReport

T = TypeVar("T")
U = TypeVar("U")

SYNC_WORKERS = max(4, DEFAULT_WORKERS)
"""Partitions compared at once: the work is mostly the engines' hashing, so more than one
per local core."""
_BUCKETS_PER_ROUND = 4096
"""Differing buckets examined per ``digest_rows`` call (bounds memory per worker)."""
_KEYS_PER_CALL = 2000
"""Keys per ``get_many`` / ``delete_many`` call."""


def sync(
    source: StoreLike,
    target: StoreLike,
    *,
    partitions: Iterable[bytes] | None = None,
    workers: int = SYNC_WORKERS,
    dry_run: bool = False,
    force: bool = False,
    method: str = "auto",
    keep_tracking: bool = False,
    batch_entries: int = BATCH_ENTRIES,
    batch_bytes: int = BATCH_BYTES,
    progress: ProgressCallback | None = None,
    max_delete: int | None = None,
    stop: threading.Event | None = None,
    feed_batch: FeedBatch | None = None,
) -> SyncReport:
    """Make ``target`` identical to ``source`` (or only ``partitions`` of it): insert what is
    missing, overwrite what differs, delete what the source does not have (including whole
    partitions only the target has). Afterwards ``verify(source, target)`` finds nothing,
    provided nothing wrote to either store meanwhile.

    ``method`` is ``"auto"`` (``changes`` when the source has a ready change feed of this pair,
    else digests when both stores can compute the same ones, else merge; see the module
    docstring), ``"changes"``, ``"digests"`` (UnsupportedError when impossible) or
    ``"merge"``. The source is read at one point in time when its driver can
    (``report.snapshot``). ``dry_run`` counts what would change and writes nothing (and
    leaves a change feed as it is). The lakeFS schema versions of both sides must agree
    unless ``force`` (as for ``copy``); the ``kv-internal-metadata`` partition is
    synchronised last. Running it twice is harmless: the second run finds nothing to do.

    A change feed of this pair (from ``copy(track_changes=True)``) ends with the pass unless
    ``keep_tracking``; kept, it is marked ready again, so the next pass also goes by the feed
    (a rehearsal while lakeFS still runs, then the real catch-up). ``feed_batch`` is that
    feed as the caller has just read it (``Store.feed_read``; the cutover's quiet check), so
    it is not read again: every value the pass reads is newer than it either way.
    ``changes`` trusts that only lakekv wrote to the target since the first pass; ``verify``
    afterwards checks it.
    ``method="changes"`` is UnsupportedError without a feed, UnsafeOperationError when the
    feed cannot be trusted (no ready note: the first pass was interrupted or met conflicts;
    a change not told by key, such as a ``TRUNCATE``), InvalidArgumentError with
    ``partitions``; ``auto`` then compares the stores and says why in ``report.warnings``.

    Refusals, before anything is written (as for ``copy --sync``): the source is opened
    read-only and must exist (StoreNotFoundError); source and target must not be the same
    store however spelled (SameStoreError); a source without a lakeFS schema version is
    UnsafeOperationError unless ``force``. A dry run creates nothing on the target.
    """
    if method not in ("auto", "changes", "digests", "merge"):
        raise ValueError(f"method must be auto, changes, digests or merge, not {method!r}")
    if workers < 1:
        raise ValueError("workers must be >= 1")
    if method == "changes" and partitions is not None:
        raise InvalidArgumentError("sync --method changes covers the whole store, not partitions")
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        # The feed is read before the snapshot is taken: every value read afterwards is at
        # least as new as the feed's position.
        sides = open_sides(stack, source, target, dry_run=dry_run, what="sync", snapshot=False)
        raw, dst = sides.source, sides.target
        stack.enter_context(pair_lock(raw.identity(), dst.identity(), "sync"))
        if method == "digests" and not digests_agree(raw, dst):
            raise UnsupportedError(
                f"{url_of(raw)} and {sides.target_name} cannot compare digests (use method merge)"
            )
        retries = _retry.RetryCounter()
        if not force and sides.target_name == url_of(dst):
            _retry.call(partial(check_direction, raw, dst, "sync", feeds.feed_name), retries)
            evidence = _retry.call(partial(foreign_writes, raw, dst), retries)
            if evidence is not None:
                raise UnsafeOperationError(
                    f"sync: {evidence}. A catch-up would delete or overwrite what was written "
                    "there. Stop lakeFS on the target; then either go back (lakekv sync "
                    "with --from and --to swapped, then verify) or, to discard the target's "
                    "writes, run this again with --force"
                )
        tracked = feeds.read(raw, dst, method, partitions, retries, feed_batch)
        src = stack.enter_context(consistent(raw))
        src_version = _retry.call(lambda: read_schema_version(src), retries)
        refuse_unversioned_source(src_version, url_of(src), "sync", force=force)
        by_feed = tracked is not None and tracked.usable
        budget = DeleteBudget("sync", max_delete, force, defer=not dry_run, share=not by_feed)
        opts = _Options(dry_run, batch_entries, batch_bytes, budget, stop, workers)
        if tracked is not None and tracked.usable:
            dst_version = _retry.call(lambda: read_schema_version(dst), retries)
            check_schema_versions(src_version, dst_version, force=force)
            report = _by_changes(raw, dst, tracked, workers, opts, retries, progress)
            report.lakefs_schema_version = src_version
        else:
            report = _compare(
                src,
                src_version,
                dst,
                partitions,
                workers,
                force,
                method,
                opts,
                progress,
            )
            report.retries += retries.count
            report.lakefs_schema_version = src_version
        report.target = sides.target_name
        if tracked is not None:
            report.change_feed = tracked.name
            if tracked.why_not:
                report.warnings.append(
                    f"the change feed was not used ({tracked.why_not}): the stores were "
                    "compared instead"
                )
            if not dry_run:
                whole = partitions is None
                report.change_feed_kept = feeds.after_pass(
                    raw, dst, tracked, keep_tracking, whole, retries
                )
        elif keep_tracking:
            report.warnings.append(
                "--keep-tracking: the source holds no change feed of this pair, so there is "
                "none to keep (start one with lakekv copy --track-changes)"
            )
        report.seconds = time.monotonic() - started
        if not dry_run and partitions is None:
            trouble = save_record(raw, dst, "sync", url_of)
            if trouble is not None:
                report.warnings.append(trouble)
            amount = report.changes if report.method == "changes" else report.entries
            observe_rate(raw.identity(), dst.identity(), report.method, report.seconds, amount)
        return report


def _compare(
    src: Store,
    src_version: str | None,
    dst: Store,
    partitions: Iterable[bytes] | None,
    workers: int,
    force: bool,
    method: str,
    opts: _Options,
    progress: ProgressCallback | None,
) -> SyncReport:
    """The pass without a change feed: by digests where both stores compute the same ones,
    else by merging scans."""
    started = time.monotonic()
    dry_run = opts.dry_run
    # (``sync`` refused ``method="digests"`` already when the stores cannot compare them.)
    if method == "merge" or not digests_agree(src, dst):
        return _by_merge(src, dst, partitions, workers, force, opts, progress)
    retries = _retry.RetryCounter()
    dst_version = _retry.call(lambda: read_schema_version(dst), retries)
    check_schema_versions(src_version, dst_version, force=force)
    given = list(partitions) if partitions is not None else None
    plan = plan_partitions(src, given)
    if given is None:
        plan = union_plan(plan, plan_partitions(dst))
    report = SyncReport(
        source=url_of(src),
        target=url_of(dst),
        method="digests",
        dry_run=dry_run,
        workers=workers,
        partition_source=plan.source,
        snapshot=is_snapshot(src),
    )
    if not report.snapshot:
        report.warnings.append(NO_SNAPSHOT.format(url=report.source))
    tracker = Tracker(progress, "sync", partitions_total=len(plan.partitions))
    job = _DigestJob(src, dst, report, tracker, retries, opts, workers)
    try:
        main, schema = schema_last(plan.partitions)
        job.run(main, workers)
        job.writes.apply_deletes()
        if schema:
            job.run([SCHEMA_PARTITION], 1)
            job.writes.apply_deletes()
    finally:
        job.side.shutdown()
    tracker.finish()
    report.partitions = len(plan.partitions)
    report.retries = retries.count
    report.seconds = time.monotonic() - started
    return report


def _by_changes(
    raw: Store,
    dst: Store,
    tracked: feeds.Tracked,
    workers: int,
    opts: _Options,
    retries: _retry.RetryCounter,
    progress: ProgressCallback | None,
) -> SyncReport:
    """Visit only the keys the feed lists: each one's value now (read after the feed's
    position) is written to the target, or, gone from the source, deleted there. Partitions
    in parallel; the writes of several partitions go in one bulk ``write_batch`` (one per
    partition was 57 calls and 0.14 s of a 0.6 s catch-up); ``kv-internal-metadata``
    last."""
    batch = tracked.batch
    report = SyncReport(
        source=url_of(raw),
        target=url_of(dst),
        method="changes",
        dry_run=opts.dry_run,
        workers=workers,
        partition_source="change-feed",
        changes=batch.changes,
    )
    tracker = Tracker(progress, "sync", partitions_total=len(batch.keys))
    writes = _Writes(dst, report, retries, opts)

    def one(p: bytes) -> None:
        keys = sorted(batch.keys[p])
        inserted = updated = deleted = 0
        for i in range(0, len(keys), _KEYS_PER_CALL):
            opts.check_stop()
            chunk = keys[i : i + _KEYS_PER_CALL]
            mine = _retry.call(partial(raw.get_many, p, chunk), retries)
            theirs = _retry.call(partial(dst.get_many, p, chunk), retries)
            write = [Entry(p, k, v) for k, v in mine.items() if theirs.get(k) != v]
            gone = [k for k in chunk if k not in mine and k in theirs]
            new = sum(1 for e in write if e.key not in theirs)
            inserted, updated = inserted + new, updated + len(write) - new
            deleted += len(gone)
            writes.delete(p, gone)
            writes.queue(write)
        writes.count(len(keys), inserted, updated, deleted)
        tracker.add(len(keys), 0, 1)

    main, schema = schema_last(batch.keys)
    if main:
        with ThreadPoolExecutor(max(1, min(workers, len(main)))) as pool:
            list(pool.map(one, main))
        writes.flush()
    opts.check_stop()
    writes.apply_deletes()
    if schema:
        one(SCHEMA_PARTITION)
        writes.flush()
        writes.apply_deletes()
    tracker.finish()
    report.partitions = len(batch.keys)
    report.retries = retries.count
    return report


def _by_merge(
    src: Store,
    dst: Store,
    partitions: Iterable[bytes] | None,
    workers: int,
    force: bool,
    opts: _Options,
    progress: ProgressCallback | None,
) -> SyncReport:
    """The generic way: ``copy(sync=True, on_conflict=overwrite)`` from the (snapshot) source."""
    try:
        r = copy(
            src,
            dst,
            partitions=partitions,
            on_conflict=OnConflict.OVERWRITE,
            workers=workers,
            dry_run=opts.dry_run,
            sync=True,
            force=force,
            batch_entries=opts.batch_entries,
            batch_bytes=opts.batch_bytes,
            progress=progress,
            stop=opts.stop,
            delete_budget=opts.budget,
            record=False,
        )
    except InterruptedMigrationError as exc:
        raise interrupted(opts.stop, "sync") from exc
    return SyncReport.carrying(r, method="merge", dry_run=opts.dry_run, workers=workers)


@dataclass(frozen=True)
class _Options:
    """How one sync pass writes, fixed for the pass."""

    dry_run: bool
    batch_entries: int
    batch_bytes: int
    budget: DeleteBudget
    stop: threading.Event | None
    workers: int = 1

    def check_stop(self) -> None:
        """InterruptedMigrationError once the caller asked to stop."""
        check_stop(self.stop, "sync")


class _Writes:
    """What a sync pass changes on the target, thread-safe: entries queued (from any
    partitions) and written together in one bulk ``write_batch`` with overwrite once
    ``batch_entries`` entries or ``batch_bytes`` bytes are queued and at :meth:`flush`; keys
    deleted at once, within the pass's delete budget; the counts added to ``report``. A dry
    run only counts."""

    def __init__(
        self, dst: Store, report: SyncReport, retries: _retry.RetryCounter, opts: _Options
    ) -> None:
        self.dst, self.report, self.retries, self.opts = dst, report, retries, opts
        self._lock = threading.Lock()
        self._pending = Batch(opts.batch_entries, opts.batch_bytes)

    def queue(self, entries: list[Entry]) -> None:
        """Add ``entries``; write each batch they fill (outside the lock)."""
        with self._lock:
            full = [self._pending.take()[0] for _ in self._pending.fill(entries)]
        for batch in full:
            self._write(batch)

    def flush(self) -> None:
        """Write what is queued."""
        with self._lock:
            batch = self._pending.take()[0]
        self._write(batch)

    def _write(self, batch: list[Entry]) -> None:
        self.opts.check_stop()
        if batch and not self.opts.dry_run:
            _retry.call(partial(self.dst.write_batch, batch, OnConflict.OVERWRITE), self.retries)

    def delete(self, partition: bytes, keys: list[bytes]) -> None:
        if self.opts.dry_run or not keys:
            return
        keys = self.opts.budget.take(partition, keys)
        for i in range(0, len(keys), _KEYS_PER_CALL):
            chunk = keys[i : i + _KEYS_PER_CALL]
            _retry.call(partial(self.dst.delete_many, partition, chunk), self.retries)

    def apply_deletes(self) -> None:
        """Make the deletions the budget deferred (once the pass found them all within it)."""
        dst, retries = self.dst, self.retries
        self.opts.budget.apply(
            lambda p, keys: _retry.call(partial(dst.delete_many, p, keys), retries),
            self.opts.workers,
        )

    def count(
        self, entries: int, inserted: int, updated: int, deleted: int, *, unchanged: bool = False
    ) -> None:
        """Add one partition's counts (``unchanged``: the partition was found identical)."""
        with self._lock:
            r = self.report
            r.entries += entries
            r.inserted += inserted
            r.updated += updated
            r.written += inserted + updated
            r.deleted += deleted
            r.unchanged_partitions += unchanged


class _DigestJob:
    """One digest sync: partitions on worker threads, counts into the shared report."""

    def __init__(
        self,
        src: Store,
        dst: Store,
        report: SyncReport,
        tracker: Tracker,
        retries: _retry.RetryCounter,
        opts: _Options,
        workers: int,
    ) -> None:
        self.src, self.dst = src, dst
        self.report, self.tracker, self.retries = report, tracker, retries
        self.dry_run = opts.dry_run
        self.stop = Stop(opts.stop)
        self.writes = _Writes(dst, report, retries, opts)
        self.side = ThreadPoolExecutor(workers, thread_name_prefix="lakekv-sync-side")
        """Runs the source's half of each pair of queries (:meth:`_both`)."""

    def run(self, partitions: list[bytes], workers: int) -> None:
        """Size every partition (``digest_bits``), then compare them largest first, so the
        largest is not the one left running alone at the end."""
        n = max(1, min(workers, len(partitions)))
        if n == 1:
            try:
                for p in partitions:
                    self.partition(p, self._bits(p))
            except StoppedError:
                raise interrupted(self.stop.requested_event, "sync") from None
            self.writes.flush()
            return
        errors: list[BaseException] = []

        def guarded(fn: Callable[[], T]) -> T | None:
            try:
                self.stop.check()
                return fn()
            except StoppedError:
                return None
            except BaseException as exc:
                self.stop.set()
                errors.append(exc)
                return None

        with ThreadPoolExecutor(n, thread_name_prefix="lakekv-sync") as pool:
            sized = list(pool.map(lambda p: guarded(partial(self._bits, p)), partitions))
            if not errors:
                order = sorted(zip(sized, partitions, strict=True), key=lambda bp: -(bp[0] or 0))
                list(
                    pool.map(lambda bp: guarded(partial(self.partition, bp[1], bp[0] or 0)), order)
                )
        if errors:
            raise errors[0]
        if self.stop.requested:
            raise interrupted(self.stop.requested_event, "sync")
        self.writes.flush()

    def _bits(self, p: bytes) -> int:
        return _retry.call(partial(self.src.digest_bits, p), self.retries)

    def _both(self, a: Callable[[], T], b: Callable[[], U]) -> tuple[T, U]:
        """``a()`` on the side thread and ``b()`` here, each retried; both results."""
        future = self.side.submit(_retry.call, a, self.retries)
        try:
            second = _retry.call(b, self.retries)
        finally:
            first = future.result()
        return first, second

    def partition(self, p: bytes, bits: int) -> None:
        """Compare one partition by bucket digests under ``bits``; fix the entries of
        differing buckets."""
        src, dst = self.src, self.dst
        # Both engines hash at once.
        src_buckets, dst_buckets = self._both(
            partial(src.digest_buckets, p, bits), partial(dst.digest_buckets, p, bits)
        )
        entries = sum(count for _, count, _ in src_buckets)
        self.writes.opts.budget.saw(sum(count for _, count, _ in dst_buckets))
        theirs = {b: (count, x) for b, count, x in dst_buckets}
        differing = [b for b, count, x in src_buckets if theirs.pop(b, None) != (count, x)]
        differing.extend(theirs)  # buckets only the target has
        inserted = updated = deleted = 0
        for i in range(0, len(differing), _BUCKETS_PER_ROUND):
            self.stop.check()
            chunk = differing[i : i + _BUCKETS_PER_ROUND]
            mine_rows, there_rows = self._both(
                partial(src.digest_rows, p, bits, chunk), partial(dst.digest_rows, p, bits, chunk)
            )
            mine, there = dict(mine_rows), dict(there_rows)
            write: list[bytes] = []
            for key, h in mine.items():
                old = there.pop(key, None)
                if old is None:
                    inserted += 1
                    write.append(key)
                elif old != h:
                    updated += 1
                    write.append(key)
            gone = sorted(there)  # left in the target only
            deleted += len(gone)
            if not self.dry_run:
                gone.extend(self._write(p, sorted(write)))
                self.writes.delete(p, gone)
        self.writes.count(entries, inserted, updated, deleted, unchanged=not differing)
        self.tracker.add(entries, 0, 1)

    def _write(self, p: bytes, keys: list[bytes]) -> list[bytes]:
        """Read ``keys`` from the source and queue them for writing (``writes``); return the
        keys the source no longer has (deleted since its digests: no snapshot)."""
        vanished: list[bytes] = []
        src, retries = self.src, self.retries
        for j in range(0, len(keys), _KEYS_PER_CALL):
            chunk = keys[j : j + _KEYS_PER_CALL]
            values = _retry.call(partial(src.get_many, p, chunk), retries)
            batch = [Entry(p, k, values[k]) for k in chunk if k in values]
            vanished.extend(k for k in chunk if k not in values)
            self.writes.queue(batch)
        return vanished
