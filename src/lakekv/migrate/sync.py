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
    Anything else: copy's job (:class:`~lakekv.migrate.copy.CopyJob`) with ``sync`` and
    overwrite, a merge of both sides' ordered scans that writes only the differences.

Whichever way, the pass has the shape of every pass (:mod:`lakekv.migrate._pass`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Protocol, TypeVar

from lakekv.errors import (
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
    WriteOptions,
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
from lakekv.migrate._pass import Pass
from lakekv.migrate._progress import ProgressCallback, Tracker
from lakekv.migrate.copy import DEFAULT_WORKERS, CopyJob
from lakekv.migrate.partitions import (
    SCHEMA_PARTITION,
    check_schema_versions,
    plan_partitions,
    read_schema_version,
    refuse_unversioned_source,
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
    given = list(partitions) if partitions is not None else None
    return _SyncPass(
        source,
        target,
        given,
        method=method,
        workers=workers,
        dry_run=dry_run,
        force=force,
        keep_tracking=keep_tracking,
        batch=(batch_entries, batch_bytes),
        max_delete=max_delete,
        stop=stop,
        progress=progress,
        feed_batch=feed_batch,
    ).run()


class _SyncPass(Pass[SyncReport]):
    """``sync`` in the shape of every pass (:mod:`lakekv.migrate._pass`); ``job`` moves the
    partitions by the method the plan chose."""

    def __init__(
        self,
        source: StoreLike,
        target: StoreLike,
        given: list[bytes] | None,
        *,
        method: str,
        workers: int,
        dry_run: bool,
        force: bool,
        keep_tracking: bool,
        batch: tuple[int, int],
        max_delete: int | None,
        stop: threading.Event | None,
        progress: ProgressCallback | None,
        feed_batch: FeedBatch | None,
    ) -> None:
        self.source, self.target, self.given, self.method = source, target, given, method
        self.workers, self.dry_run, self.force = workers, dry_run, force
        self.keep_tracking, self.batch, self.max_delete = keep_tracking, batch, max_delete
        self.stop, self.progress, self.feed_batch = stop, progress, feed_batch
        self.retries = _retry.RetryCounter()

    def open(self) -> None:
        # Without a snapshot yet: the feed is read first (prepare), so every value read
        # afterwards is at least as new as the feed's position.
        sides = open_sides(
            self.stack, self.source, self.target, dry_run=self.dry_run, what="sync", snapshot=False
        )
        self.sides, self.raw, self.dst = sides, sides.source, sides.target
        if self.method == "digests" and not digests_agree(self.raw, self.dst):
            raise UnsupportedError(
                f"{url_of(self.raw)} and {sides.target_name} cannot compare digests "
                "(use method merge)"
            )

    def versions(self) -> None:
        raw, dst, force, retries = self.raw, self.dst, self.force, self.retries
        self.src_version = _retry.call(lambda: read_schema_version(raw), retries)
        refuse_unversioned_source(self.src_version, url_of(raw), "sync", force=force)
        self.target_version = _retry.call(lambda: read_schema_version(dst), retries)
        check_schema_versions(self.src_version, self.target_version, force=force)

    def prepare(self) -> None:
        raw, dst, retries = self.raw, self.dst, self.retries
        self.stack.enter_context(pair_lock(raw.identity(), dst.identity(), "sync"))
        if not self.force and self.sides.target_name == url_of(dst):
            _retry.call(partial(check_direction, raw, dst, "sync", feeds.feed_name), retries)
            evidence = _retry.call(partial(foreign_writes, raw, dst), retries)
            if evidence is not None:
                raise UnsafeOperationError(
                    f"sync: {evidence}. A catch-up would delete or overwrite what was written "
                    "there. Stop lakeFS on the target; then either go back (lakekv sync "
                    "with --from and --to swapped, then verify) or, to discard the target's "
                    "writes, run this again with --force"
                )
        self.tracked = feeds.read(raw, dst, self.method, self.given, retries, self.feed_batch)

    def snapshot(self) -> None:
        self.src = self.stack.enter_context(consistent(self.raw))

    def plan(self) -> list[bytes]:
        src, dst, given, tracked, workers = (
            self.src,
            self.dst,
            self.given,
            self.tracked,
            self.workers,
        )
        by_feed = tracked is not None and tracked.usable
        budget = DeleteBudget(
            "sync", self.max_delete, self.force, defer=not self.dry_run, share=not by_feed
        )
        # How every method writes: the changes and digests jobs through _Writes, merging
        # through copy's job.
        options = WriteOptions(
            policy=OnConflict.OVERWRITE,
            dry_run=self.dry_run,
            sync=True,
            force=self.force,
            batch_entries=self.batch[0],
            batch_bytes=self.batch[1],
            workers=workers,
            max_delete=self.max_delete,
            stop=self.stop,
        )
        report = SyncReport(
            source=url_of(src),
            target=self.sides.target_name,
            dry_run=self.dry_run,
            workers=workers,
            lakefs_schema_version=self.src_version,
        )
        self.report = report
        tracker = Tracker(self.progress, "sync")
        self.tracker = tracker
        if by_feed:
            assert tracked is not None
            partitions = list(tracked.batch.keys)
            report.method, report.partition_source = "changes", "change-feed"
            report.changes = tracked.batch.changes
            self.job: _Job = _ChangesJob(
                self.raw, dst, tracked.batch, report, tracker, self.retries, options, budget
            )
        else:
            plan = plan_partitions(src, given)
            if given is None:
                plan = union_plan(plan, plan_partitions(dst))
            partitions = plan.partitions
            report.partition_source = plan.source
            report.snapshot = is_snapshot(src)
            if not report.snapshot:
                report.warnings.append(NO_SNAPSHOT.format(url=report.source))
            # (Method "digests" was proven possible in open: not asked twice.)
            if self.method == "merge" or (self.method != "digests" and not digests_agree(src, dst)):
                report.method = "merge"
                self.job = CopyJob(
                    src, dst, options, None, report, tracker, self.retries, budget, "sync"
                )
            else:
                report.method = "digests"
                self.job = _DigestJob(src, dst, report, tracker, self.retries, options, budget)
                self.stack.callback(self.job.side.shutdown)
        tracker.partitions_total = len(partitions)
        report.partitions = len(partitions)
        return partitions

    def move(self, partitions: list[bytes]) -> None:
        self.job.run(partitions, self.workers)
        self.job.apply_deletes()

    def move_schema(self) -> None:
        self.job.run([SCHEMA_PARTITION], 1)
        self.job.apply_deletes()

    def finish(self) -> None:
        report, tracked, raw, dst = self.report, self.tracked, self.raw, self.dst
        self.tracker.finish()
        report.entries = self.tracker.entries
        report.retries = self.retries.count
        if tracked is not None:
            report.change_feed = tracked.name
            if tracked.why_not:
                report.warnings.append(
                    f"the change feed was not used ({tracked.why_not}): the stores were "
                    "compared instead"
                )
            if not self.dry_run:
                whole = self.given is None
                report.change_feed_kept = feeds.after_pass(
                    raw, dst, tracked, self.keep_tracking, whole, self.retries
                )
        elif self.keep_tracking:
            report.warnings.append(
                "--keep-tracking: the source holds no change feed of this pair, so there is "
                "none to keep (start one with lakekv copy --track-changes)"
            )
        if not self.dry_run and self.given is None:
            trouble = save_record(raw, dst, "sync", url_of)
            if trouble is not None:
                report.warnings.append(trouble)
            amount = report.changes if report.method == "changes" else report.entries
            seconds = time.monotonic() - self.started
            observe_rate(raw.identity(), dst.identity(), report.method, seconds, amount)


class _Job(Protocol):
    """How a sync pass moves partitions (by the feed, by digests or by merging scans)."""

    def run(self, partitions: list[bytes], workers: int) -> None: ...

    def apply_deletes(self) -> None: ...


class _ChangesJob:
    """Visit only the keys the feed lists: each one's value now (read after the feed's
    position) is written to the target, or, gone from the source, deleted there. Partitions
    in parallel; the writes of several partitions go in one bulk ``write_batch`` (one per
    partition was 57 calls and 0.14 s of a 0.6 s catch-up)."""

    def __init__(
        self,
        raw: Store,
        dst: Store,
        batch: FeedBatch,
        report: SyncReport,
        tracker: Tracker,
        retries: _retry.RetryCounter,
        options: WriteOptions,
        budget: DeleteBudget,
    ) -> None:
        self.raw, self.dst, self.batch, self.tracker = raw, dst, batch, tracker
        self.retries, self.stop = retries, options.stop
        self.writes = _Writes(dst, report, retries, options, budget)

    def run(self, partitions: list[bytes], workers: int) -> None:
        if partitions:
            with ThreadPoolExecutor(max(1, min(workers, len(partitions)))) as pool:
                list(pool.map(self._one, partitions))
            self.writes.flush()

    def apply_deletes(self) -> None:
        check_stop(self.stop, "sync")
        self.writes.apply_deletes()

    def _one(self, p: bytes) -> None:
        raw, dst, retries, writes = self.raw, self.dst, self.retries, self.writes
        keys = sorted(self.batch.keys[p])
        inserted = updated = deleted = 0
        for i in range(0, len(keys), _KEYS_PER_CALL):
            check_stop(self.stop, "sync")
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
        writes.count(inserted, updated, deleted)
        self.tracker.add(len(keys), 0, 1)


class _Writes:
    """What a sync pass changes on the target, thread-safe: entries queued (from any
    partitions) and written together in one bulk ``write_batch`` with overwrite once
    ``batch_entries`` entries or ``batch_bytes`` bytes are queued and at :meth:`flush`; keys
    deleted at once, within the pass's delete budget; the counts added to ``report``. A dry
    run only counts."""

    def __init__(
        self,
        dst: Store,
        report: SyncReport,
        retries: _retry.RetryCounter,
        options: WriteOptions,
        budget: DeleteBudget,
    ) -> None:
        self.dst, self.report, self.retries = dst, report, retries
        self.options, self.budget = options, budget
        self._lock = threading.Lock()
        self._pending = Batch(options.batch_entries, options.batch_bytes)

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
        check_stop(self.options.stop, "sync")
        if batch and not self.options.dry_run:
            _retry.call(partial(self.dst.write_batch, batch, OnConflict.OVERWRITE), self.retries)

    def delete(self, partition: bytes, keys: list[bytes]) -> None:
        if self.options.dry_run or not keys:
            return
        keys = self.budget.take(partition, keys)
        for i in range(0, len(keys), _KEYS_PER_CALL):
            chunk = keys[i : i + _KEYS_PER_CALL]
            _retry.call(partial(self.dst.delete_many, partition, chunk), self.retries)

    def apply_deletes(self) -> None:
        """Make the deletions the budget deferred (once the pass found them all within it)."""
        dst, retries = self.dst, self.retries
        self.budget.apply(
            lambda p, keys: _retry.call(partial(dst.delete_many, p, keys), retries),
            self.options.workers,
        )

    def count(self, inserted: int, updated: int, deleted: int, *, unchanged: bool = False) -> None:
        """Add one partition's counts (``unchanged``: the partition was found identical)."""
        with self._lock:
            r = self.report
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
        options: WriteOptions,
        budget: DeleteBudget,
    ) -> None:
        self.src, self.dst = src, dst
        self.report, self.tracker, self.retries = report, tracker, retries
        self.dry_run = options.dry_run
        self.stop = Stop(options.stop)
        self.writes = _Writes(dst, report, retries, options, budget)
        self.side = ThreadPoolExecutor(options.workers, thread_name_prefix="lakekv-sync-side")
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

    def apply_deletes(self) -> None:
        self.writes.apply_deletes()

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
        self.writes.budget.saw(sum(count for _, count, _ in dst_buckets))
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
        self.writes.count(inserted, updated, deleted, unchanged=not differing)
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
