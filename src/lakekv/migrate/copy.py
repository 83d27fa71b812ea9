"""``copy``: move every partition from one store to another, in parallel, resumably."""

from __future__ import annotations

import base64
import dataclasses
import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from lakekv.display import show_bytes
from lakekv.errors import (
    ConfigurationError,
    InvalidArgumentError,
)
from lakekv.kv.store import BatchResult, Entry, OnConflict, RawChunk, Store, entries_of
from lakekv.migrate import _retry, feeds
from lakekv.migrate._batch import Batch
from lakekv.migrate._common import (
    BATCH_BYTES,
    BATCH_ENTRIES,
    FIRST_CHUNK,
    NO_SNAPSHOT,
    Stop,
    StoppedError,
    StoreLike,
    WriteOptions,
    consistent,
    interrupted,
    is_snapshot,
    next_chunk_limit,
    open_sides,
    url_of,
)
from lakekv.migrate._limits import Limits, TargetLimitError
from lakekv.migrate._merge import merge_join
from lakekv.migrate._pair import DeleteBudget, pair_lock, save_record
from lakekv.migrate._pass import Pass
from lakekv.migrate._progress import ProgressCallback, Tracker
from lakekv.migrate.checkpoint import Checkpoint
from lakekv.migrate.partitions import (
    SCHEMA_PARTITION,
    check_schema_versions,
    plan_partitions,
    read_schema_version,
    refuse_unversioned_source,
    require_partitions,
    union_plan,
)
from lakekv.migrate.reports import CopyReport, SyncReport

DEFAULT_WORKERS = min(8, max(2, os.cpu_count() or 2))
"""Partitions copied at once into a single-writer store: one per core (at least 2, so reads
overlap writes)."""
PARALLEL_WORKERS = max(4, DEFAULT_WORKERS)
"""Partitions copied at once into a store with ``capabilities.concurrent_writes``: a database
server's writers wait on I/O and commits, so more than one per local core (measured 1.6×
faster than 2 for PostgreSQL to PostgreSQL on 2 cores)."""


def default_workers(target: Store) -> int:
    """How many partitions to copy at once into ``target``."""
    return PARALLEL_WORKERS if target.capabilities.concurrent_writes else DEFAULT_WORKERS


def copy(
    source: StoreLike,
    target: StoreLike,
    *,
    partitions: Iterable[bytes] | None = None,
    on_conflict: OnConflict | str = OnConflict.FAIL,
    workers: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
    sync: bool = False,
    force: bool = False,
    max_delete: int | None = None,
    batch_entries: int = BATCH_ENTRIES,
    batch_bytes: int = BATCH_BYTES,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    track_changes: bool = False,
) -> CopyReport:
    """Copy every partition of ``source`` (or only ``partitions``) into ``target``.

    Entries are written with ``Store.write_batch`` under ``on_conflict``: an entry already in
    the target with the same value is ``unchanged`` (so re-running a finished copy writes
    nothing); with a different value ``fail`` reports a conflict (the caller exits 4), ``skip``
    keeps the target's value, ``overwrite`` replaces it. ``sync`` also deletes target entries
    absent from the source (including whole partitions only the target has), making the
    target an exact mirror. ``dry_run`` reads both sides and reports what would change,
    writing nothing and creating nothing (a target that does not exist counts as empty).

    Refusals, before anything is written: the source is opened read-only and must exist
    (StoreNotFoundError: a mistyped source is never created empty); source and target must
    not be the same store however spelled (SameStoreError); ``sync`` from a source without a
    lakeFS schema version is UnsafeOperationError unless ``force``; if both stores hold a
    schema version and they differ, SchemaVersionMismatchError unless ``force``. ``sync``
    deleting more than ``max_delete`` entries stops with UnsafeOperationError at that point.

    The source is read at one point in time when its driver can (``Store.snapshot()``, shared
    by every worker), so a copy of a store being written is still the store as it was when the
    copy started; ``report.snapshot`` says so. Otherwise ``report.warnings`` says that entries
    written meanwhile may be missing or mixed, and that a catch-up pass (:func:`sync`) is due
    once writes stop.

    ``workers`` partitions are copied at once (default: :func:`default_workers`). The
    ``kv-internal-metadata`` partition (the lakeFS schema version) is copied last, and not at
    all when the copy met conflicts (``report.schema_version_withheld``), so an interrupted or
    conflicting copy never looks complete to lakeFS.

    With ``checkpoint``, progress is appended to that file after every batch; running the
    same copy again (same source, target and options, or the file is refused) skips finished
    partitions and resumes the others at their last written key. A pass that completed (with
    or without conflicts) is marked finished, and the next run with that file is a new full
    pass (cheap: unchanged entries are only compared; conflicts are found again), with any
    options. Transient store errors are retried with backoff; when retries
    are exhausted the StoreUnavailableError propagates (resume later with the checkpoint).
    Setting ``stop`` stops the copy between batches with InterruptedMigrationError (the
    checkpoint stays consistent).

    ``track_changes`` starts a change feed on the source (see *Change feeds* in the store
    contract; PostgreSQL: a logical replication slot, ``wal_level = logical``) before the
    source is read, and, when the pass ends without conflicts or skips, records in it that
    the target is ready (``report.change_feed_ready``). The catch-up pass (:func:`sync`) then
    visits only the keys the feed lists, and ends the feed. Without the capability it is
    UnsupportedError, before anything is written. A resumed pass (``checkpoint``) keeps the
    feed its first run started (UnsafeOperationError if that feed is gone); any other
    tracked pass starts a new one. The feed costs the source server until the catch-up or
    ``lakekv untrack`` ends it (PostgreSQL keeps its WAL).

    A tracked pass marks its feed ready only when it can vouch that the target equals the
    source as of the feed's start: every partition copied (no ``partitions``), no conflicts
    and no skips, and a target that was empty when the pass began (or ``sync``, which deletes
    what the source lacks); the note names both stores' incarnations. Otherwise
    ``report.warnings`` says why, and the catch-up compares the stores.

    A resumed pass (``checkpoint``) is refused (ConfigurationError) when either store was
    re-created since the checkpoint was written, or when the target no longer holds the last
    key the checkpoint recorded for a partition (or, without ``sync``, a finished partition):
    the progress it records is gone. Two runs on one pair at once are refused
    (UnsafeOperationError). A completed pass of the whole store leaves a pass record (see
    :mod:`lakekv.migrate._pair`) for the catch-up's checks.

    Memory is bounded by ``workers`` × one batch (``batch_entries`` / ``batch_bytes``).
    """
    policy = OnConflict(on_conflict)
    if workers is not None and workers < 1:
        raise ValueError("workers must be >= 1")
    if track_changes and dry_run:
        raise InvalidArgumentError("copy --track-changes: a dry run starts nothing on the source")
    if max_delete is not None and not sync:
        raise InvalidArgumentError("copy: --max-delete limits the deletions of --sync; add --sync")
    options = WriteOptions(
        policy=policy,
        dry_run=dry_run,
        sync=sync,
        force=force,
        batch_entries=batch_entries,
        batch_bytes=batch_bytes,
        workers=workers or 0,  # 0: the target's default, once it is open
        max_delete=max_delete,
        stop=stop,
    )
    given = list(partitions) if partitions is not None else None
    return _CopyPass(
        source,
        target,
        given,
        options,
        checkpoint=checkpoint,
        track_changes=track_changes,
        progress=progress,
    ).run()


class _CopyPass(Pass[CopyReport]):
    """``copy`` in the shape of every pass (:mod:`lakekv.migrate._pass`)."""

    def __init__(
        self,
        source: StoreLike,
        target: StoreLike,
        given: list[bytes] | None,
        options: WriteOptions,
        *,
        checkpoint: str | os.PathLike[str] | None,
        track_changes: bool,
        progress: ProgressCallback | None,
    ) -> None:
        self.source, self.target, self.given, self.options = source, target, given, options
        self.checkpoint, self.track_changes = checkpoint, track_changes
        self.record = not options.dry_run
        self.progress = progress
        self.budget = DeleteBudget("copy --sync", options.max_delete, True)
        self.retries = _retry.RetryCounter()
        self.cp: Checkpoint | None = None
        self.resuming = False
        self.feed: str | None = None

    def open(self) -> None:
        # Without a snapshot yet: a change feed must predate it (prepare).
        self.sides = open_sides(
            self.stack,
            self.source,
            self.target,
            dry_run=self.options.dry_run,
            what="copy",
            snapshot=False,
            check_source=feeds.can_track if self.track_changes else None,
        )
        self.dst = self.sides.target

    def versions(self) -> None:
        raw, force, retries = self.sides.source, self.options.force, self.retries
        self.src_version = _retry.call(lambda: read_schema_version(raw), retries)
        self.target_version = _retry.call(lambda: read_schema_version(self.dst), retries)
        check_schema_versions(self.src_version, self.target_version, force=force)
        if self.options.sync:
            refuse_unversioned_source(self.src_version, url_of(raw), "copy --sync", force=force)

    def prepare(self) -> None:
        raw, dst, options, given = self.sides.source, self.dst, self.options, self.given
        if self.record:
            self.stack.enter_context(pair_lock(raw.identity(), dst.identity(), "copy"))
        if self.checkpoint is not None and not options.dry_run:
            cp = self.cp = Checkpoint.open(
                Path(self.checkpoint),
                {
                    "source": url_of(raw),
                    "target": self.sides.target_name,
                    "source_identity": raw.identity(),
                    "target_identity": dst.identity(),
                    "source_incarnation": raw.incarnation(),
                    "target_incarnation": dst.incarnation(),
                    "sync": options.sync,
                    "on_conflict": options.policy.value,
                    "partitions": None if given is None else sorted(_b64(p) for p in given),
                    "target_was_empty": _is_empty(dst),
                },
            )
            self.stack.callback(cp.close)
            self.resuming = not cp.new_pass and bool(cp.done or cp.at)
            if self.resuming:
                _check_resume(cp, dst, options.sync, self.retries)
            self.target_was_empty = bool(cp.header.get("target_was_empty"))
        else:
            self.target_was_empty = _is_empty(dst)
        if self.track_changes:
            self.feed = feeds.start(raw, dst, self.sides.target_name, resuming=self.resuming)

    def snapshot(self) -> None:
        self.src = self.stack.enter_context(consistent(self.sides.source))

    def abandon(self) -> None:
        if self.feed is not None and not self.resuming:
            feeds.abandon(self.sides.source, self.feed)

    def plan(self) -> list[bytes]:
        src, dst, options, given, cp = self.src, self.dst, self.options, self.given, self.cp
        plan = plan_partitions(src, given)
        if given is not None and not options.sync:
            require_partitions(src, plan.partitions, self.retries)
        if options.sync and given is None:
            plan = union_plan(plan, plan_partitions(dst))
        workers = options.workers or default_workers(dst)
        self.options = options = dataclasses.replace(options, workers=workers)
        self.report = report = CopyReport(
            source=url_of(src),
            target=self.sides.target_name,
            sync=options.sync,
            dry_run=options.dry_run,
            workers=workers,
            partition_source=plan.source,
            lakefs_schema_version=self.src_version,
            checkpoint=os.fspath(self.checkpoint) if self.checkpoint is not None else None,
            snapshot=is_snapshot(src),
            change_feed=self.feed,
        )
        if not report.snapshot:
            report.warnings.append(NO_SNAPSHOT.format(url=report.source))
        report.new_pass = cp is not None and cp.new_pass
        todo = [p for p in plan.partitions if cp is None or p not in cp.done]
        report.partitions = len(todo)
        report.resumed_partitions = len(plan.partitions) - len(todo)
        if report.resumed_partitions or (cp is not None and cp.at):
            report.warnings.append(RESUMED_TRACKED if self.feed is not None else RESUMED)
        report.previous_conflicts = cp.previous_conflicts if cp is not None else 0
        self.tracker = Tracker(self.progress, "copy", partitions_total=len(todo))
        self.job = CopyJob(src, dst, options, cp, report, self.tracker, self.retries, self.budget)
        return todo

    def move(self, partitions: list[bytes]) -> None:
        self.job.run(partitions, self.options.workers)
        self.job.apply_deletes()

    def move_schema(self) -> None:
        self.job.run([SCHEMA_PARTITION], 1)
        self.job.apply_deletes()

    def conflicts(self) -> int:
        return self.report.conflicts + self.report.previous_conflicts

    def withhold_schema(self) -> None:
        self.report.schema_version_withheld = True

    def finish(self) -> None:
        report, cp = self.report, self.cp
        self.tracker.finish()
        if cp is not None:  # the pass is complete (conflicts or not): next run is a new one
            cp.finish()
        if self.feed is not None:
            why_not = feeds.why_not_ready(
                report, self.given, self.options.sync, self.target_was_empty
            )
            if why_not is not None:
                report.warnings.append(feeds.FEED_NOT_READY.format(why=why_not))
            else:
                feeds.mark_ready(self.sides.source, self.dst, self.feed, self.retries)
                report.change_feed_ready = True
        if self.record and self.given is None:
            trouble = save_record(self.sides.source, self.dst, "copy", url_of)
            if trouble is not None:
                report.warnings.append(trouble)
        report.entries = self.tracker.entries
        report.bytes = self.tracker.bytes
        report.retries = self.retries.count


def _is_empty(store: Store) -> bool:
    """Whether ``store`` provably holds no entry (a driver that cannot list its partitions
    cannot prove it: ``False``)."""
    if not store.capabilities.list_partitions:
        return False
    return next(iter(store.list_partitions()), None) is None


def _check_resume(cp: Checkpoint, dst: Store, sync: bool, retries: _retry.RetryCounter) -> None:
    """ConfigurationError unless the target still holds what the checkpoint says earlier
    runs wrote: each partition's last recorded key, and (without ``sync``, whose finished
    partitions may be empty) every finished partition. A target that lost acknowledged
    writes (a server crash, a restart without persistence) or was emptied fails here."""
    problems: list[str] = []
    for p, key in sorted(cp.last.items()):
        got = _retry.call(partial(dst.get_many, p, [key]), retries)
        if key not in got:
            problems.append(f"partition '{show_bytes(p)}' lacks key '{show_bytes(key)}'")
            break
    if not problems and not sync and cp.done and dst.capabilities.list_partitions:
        held = set(_retry.call(lambda: list(dst.list_partitions()), retries))
        missing = sorted(cp.done - held)
        if missing:
            problems.append(f"partition '{show_bytes(missing[0])}' is missing")
    if problems:
        raise ConfigurationError(
            f"checkpoint {cp.path}: the target no longer holds what earlier runs wrote "
            f"({problems[0]}): it lost writes or was emptied. Delete the checkpoint file to "
            "copy from the start"
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


RESUMED = (
    "resumed from a checkpoint: what earlier runs copied was read at an earlier point in time "
    "than this run; run the catch-up pass (lakekv sync) once the writers are stopped"
)
"""The warning of a resumed copy: one snapshot cannot span several runs."""
RESUMED_TRACKED = (
    "resumed from a checkpoint: earlier runs read the source at earlier points in time; the "
    "change feed started by the first run lists every change since, for the catch-up pass"
)
"""The note of a resumed tracked copy: the feed covers what one snapshot cannot."""


class CopyJob:
    """Moving partitions from a source to a target on worker threads (:meth:`run`): the move
    step of ``copy``, and of ``sync`` by merging scans (``options.sync``, overwrite)."""

    def __init__(
        self,
        src: Store,
        dst: Store,
        options: WriteOptions,
        cp: Checkpoint | None,
        report: CopyReport | SyncReport,
        tracker: Tracker,
        retries: _retry.RetryCounter,
        budget: DeleteBudget,
        what: str = "copy",
    ) -> None:
        self.what = what
        self.src, self.dst, self.options, self.cp = src, dst, options, cp
        self.budget = budget
        self.report, self.tracker, self.retries = report, tracker, retries
        self.stop = Stop(options.stop)
        self.raw = (
            not options.sync
            and not options.dry_run
            and src.capabilities.raw_rows is not None
            and src.capabilities.raw_rows == dst.capabilities.raw_rows
        )
        """Move chunks in the stores' shared raw format (see *Raw rows* in the store
        contract) instead of entries."""
        self._deletes = 0
        self._lock = threading.Lock()

    def run(self, partitions: list[bytes], workers: int) -> None:
        queue: Iterator[bytes] = iter(partitions)
        qlock = threading.Lock()

        def next_partition() -> bytes | None:
            with qlock:
                return next(queue, None)

        def work() -> None:
            _Worker(self).run(next_partition)

        n = max(1, min(workers, len(partitions)))
        errors: list[BaseException] = []
        if n == 1:
            try:
                work()
            except StoppedError:
                pass
            except TargetLimitError as too_large:
                errors.append(too_large)
        else:
            with ThreadPoolExecutor(n, thread_name_prefix="lakekv-copy") as pool:
                futures = [pool.submit(work) for _ in range(n)]
                for f in futures:
                    exc = f.exception()
                    if exc is not None and not isinstance(exc, StoppedError):
                        errors.append(exc)
                        self.stop.set()
        if errors:
            first = errors[0]
            if isinstance(first, TargetLimitError):
                # Every worker has stopped: the report counts exactly what was written.
                r = self.report
                raise TargetLimitError(
                    f"{first}; {r.written:,} entries were written ({r.unchanged:,} found "
                    f"unchanged) before the {self.what} stopped"
                ) from first
            raise first
        if self.stop.requested:
            raise interrupted(self.stop.requested_event, self.what)

    def apply_deletes(self) -> None:
        """Make the deletions the budget deferred (before the schema partition)."""
        dst, retries = self.dst, self.retries
        self.budget.apply(
            lambda p, keys: _retry.call(partial(dst.delete_many, p, keys), retries),
            self.options.workers,
        )

    def add_deleted(self, n: int) -> None:
        with self._lock:
            self.report.deleted += n


class _Worker:
    """One thread's batch: entries from one or more partitions, flushed together."""

    def __init__(self, job: CopyJob) -> None:
        self.job = job
        self.batch = Batch(job.options.batch_entries, job.options.batch_bytes)
        self.pending = 0
        """Entries processed since the last flush (written or not)."""
        self.pending_bytes = 0
        self.reported = 0
        """Of ``pending``, entries already counted in the progress (``reported_bytes``)."""
        self.reported_bytes = 0
        self.done: list[bytes] = []
        self.dry = BatchResult()
        self.deleted = 0
        self.raw: list[RawChunk] = []
        self.raw_last: tuple[bytes, bytes] | None = None
        """A key the pending raw chunks hold (the start of one after a partition's first)."""
        """Raw chunks waiting to be written (instead of ``batch``, while ``job.raw``)."""
        self.compare_first = False
        """The target held some of the last raw batch's keys: compare before writing."""

    def run(self, next_partition: object) -> None:
        assert callable(next_partition)
        try:
            while True:
                self.job.stop.check()
                p = next_partition()
                if p is None:
                    break
                start = b""
                if self.job.cp is not None:
                    start = self.job.cp.at.get(p, b"")
                if self.job.options.sync or self.job.options.dry_run:
                    self._merge_partition(p, start)
                elif self.job.raw:
                    self._copy_partition_raw(p, start)
                else:
                    self._copy_partition(p, start)
                self.done.append(p)
            self.flush(None)
        except BaseException:
            self.job.stop.set()
            raise

    def _copy_partition(self, p: bytes, start: bytes) -> None:
        job = self.job
        pages = _retry.retrying_pages(
            job.src, p, start, page_size=job.options.batch_entries, counter=job.retries
        )
        for page in pages:
            job.stop.check()
            for _ in self.batch.fill(entries_of(p, page)):
                self._flush_batch(p)
        self.pending = len(self.batch)
        self.pending_bytes = self.batch.nbytes

    def _copy_partition_raw(self, p: bytes, start: bytes) -> None:
        """:meth:`_copy_partition` between two stores of one raw format: chunks are read and
        written as bytes, several per transaction. Chunks start small and grow fourfold up to
        ``batch_entries`` while they stay within a quarter of ``batch_bytes``."""
        job = self.job
        limit_n, limit_b = job.options.batch_entries, job.options.batch_bytes
        limit = min(FIRST_CHUNK, limit_n)
        first = True
        self.raw_last = None
        while True:
            job.stop.check()
            chunk = _retry.call(partial(job.src.read_raw, p, start, limit), job.retries)
            if chunk.entries:
                self.raw.append(chunk)
                self.pending += chunk.entries
                self.pending_bytes += chunk.payload_bytes
                if not first:  # (a later chunk's start is its first key: written with it)
                    self.raw_last = (p, chunk.start)
            first = False
            if chunk.next_start is None:
                return
            start = chunk.next_start
            limit = next_chunk_limit(
                limit, chunk.entries, chunk.payload_bytes, limit_n, limit_b // 4
            )
            if self.pending >= limit_n or self.pending_bytes >= limit_b:
                self.flush((p, start), raw_last=True)

    def _write_raw(self) -> BatchResult:
        """Write the pending raw chunks in one transaction.

        A key that exists in the target makes the transaction write nothing. Then (and for
        the worker's following batches, until a batch meets no existing range) each chunk is
        first compared with the target's chunk of the same range: equal bytes are equal
        entries, counted unchanged and not written (so re-running a finished copy only
        reads); the other chunks are written again, and if that still meets a key, their
        entries are written the ordinary way, under the conflict policy.
        """
        job = self.job
        chunks, self.raw = self.raw, []
        result = BatchResult()
        compared = self.compare_first
        if compared:
            chunks, unchanged = self._drop_equal(chunks)
            result.unchanged += unchanged
            if not unchanged:
                self.compare_first = False
            if not chunks:
                return result
        written = _retry.call(partial(job.dst.write_raw, chunks), job.retries)
        if written is not None:
            result.written += written
            return result
        self.compare_first = True
        if not compared:  # (the chunks left after a comparison all differ: not read again)
            chunks, unchanged = self._drop_equal(chunks)
            result.unchanged += unchanged
        for chunk in chunks:
            # Only the entries the target lacks or holds otherwise go to write_batch (which
            # counts conflicts under the policy); the rest are unchanged.
            there = dict(_chunk_entries(job.dst, chunk, job.retries))
            batch = []
            for key, value in _chunk_entries(job.src, chunk, job.retries):
                if there.get(key) == value:
                    result.unchanged += 1
                else:
                    batch.append(Entry(chunk.partition, key, value))
            if batch:
                result.add(self._write_entries(batch))
        return result

    def _drop_equal(self, chunks: list[RawChunk]) -> tuple[list[RawChunk], int]:
        """The chunks whose range holds other bytes in the target, and the entries of the
        others (already in the target, identical)."""
        job = self.job
        differing: list[RawChunk] = []
        equal = 0
        for chunk in chunks:
            there = _retry.call(
                partial(job.dst.read_raw, chunk.partition, chunk.start, chunk.entries),
                job.retries,
            )
            if there.data == chunk.data:
                equal += chunk.entries
            else:
                differing.append(chunk)
        return differing, equal

    def _flush_batch(self, p: bytes) -> None:
        self.pending, self.pending_bytes = len(self.batch), self.batch.nbytes
        self.flush((p, self.batch.entries[-1].key))

    def _merge_partition(self, p: bytes, start: bytes) -> None:
        """Sync and dry run: walk source and target together."""
        job = self.job
        options = job.options
        dry, sync, policy = options.dry_run, options.sync, options.policy
        limit_n, limit_b = options.batch_entries, options.batch_bytes
        with (
            job.src.scan(p, start=start, batch_size=limit_n) as si,
            job.dst.scan(p, start=start, batch_size=limit_n) as ti,
        ):
            pairs = merge_join(_retry.retrying(si, job.retries), _retry.retrying(ti, job.retries))
            seen = 0
            for n, (s, t) in enumerate(pairs):
                seen += t is not None
                if not n % 1024:
                    job.stop.check()
                    # Progress between writes too: a catch-up into a slow target may compare
                    # many entries before its first batch is full.
                    job.tracker.add(
                        self.pending - self.reported, self.pending_bytes - self.reported_bytes
                    )
                    self.reported, self.reported_bytes = self.pending, self.pending_bytes
                if s is None:
                    assert t is not None
                    if sync:
                        if not dry and job.budget.take(p, [t.key]):
                            self._delete(t)
                        self.deleted += 1
                    continue
                size = len(s.key) + len(s.value)
                self.pending += 1
                self.pending_bytes += size
                current = None if t is None else t.value
                if dry or current == s.value:
                    self.dry.classify(s, current, policy)  # counted, nothing written
                else:
                    self.batch.add(s)  # written when ``pending`` reaches a bound, below
                if self.pending >= limit_n or self.pending_bytes >= limit_b:
                    self.flush((p, s.key))
            job.budget.saw(seen)

    def _delete(self, entry: Entry) -> None:
        dst = self.job.dst
        _retry.call(lambda: dst.delete(entry.partition, entry.key), self.job.retries)

    def flush(self, at: tuple[bytes, bytes] | None, *, raw_last: bool = False) -> None:
        """Write the batch, count it, record progress in the checkpoint: ``at`` where to
        resume; a key written is ``at`` itself (the last key of an entry batch) or, for raw
        chunks (``raw_last``), :attr:`raw_last` (``None`` when none is known)."""
        job = self.job
        job.stop.check()
        batch = self.batch.take()[0]
        result = self.dry
        self.dry = BatchResult()
        if self.raw:
            result.add(self._write_raw())
        if batch:
            result.add(self._write_entries(batch))
        job.report.add_batch(result)
        if self.deleted:
            job.add_deleted(self.deleted)
            self.deleted = 0
        if job.cp is not None and (batch or self.done or at is not None):
            last = self.raw_last if raw_last else at
            job.cp.record(self.done, at, len(result.conflicts), last)
        job.tracker.add(
            self.pending - self.reported, self.pending_bytes - self.reported_bytes, len(self.done)
        )
        self.pending = self.pending_bytes = 0
        self.reported = self.reported_bytes = 0
        self.done = []

    def _write_entries(self, batch: list[Entry]) -> BatchResult:
        job = self.job
        policy = job.options.policy
        try:
            return _retry.call(lambda: job.dst.write_batch(batch, policy), job.retries)
        except InvalidArgumentError as exc:
            too_large = _too_large(job, batch)
            if too_large is None:
                raise
            raise too_large from exc


def _chunk_entries(
    store: Store, chunk: RawChunk, retries: _retry.RetryCounter
) -> Iterator[tuple[bytes, bytes]]:
    """The ``(key, value)`` pairs ``store`` holds in the range ``chunk`` was read from (the
    source's, read again from the same snapshot, are the chunk's)."""
    end = chunk.next_start
    for page in _retry.retrying_pages(store, chunk.partition, chunk.start, counter=retries):
        for key, value in page:
            if end is not None and key >= end:
                return
            yield key, value


def _too_large(job: CopyJob, batch: list[Entry]) -> TargetLimitError | None:
    """The error naming the first entry of ``batch`` the target cannot hold, if any. What
    was written is added once every worker has stopped (:meth:`CopyJob.run`), so the count
    is exact."""
    limits = Limits.of(job.dst)
    for e in batch:
        refusal = limits.refusal(e)
        if refusal is not None:
            return TargetLimitError(
                f"{refusal}; the batch holding it ({len(batch):,} entries) was not written"
            )
    return None
