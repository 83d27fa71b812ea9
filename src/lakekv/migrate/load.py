"""``load``: write a dump file (lakekv or lakeFS format, detected) into a store."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from operator import itemgetter
from typing import BinaryIO

from lakekv.display import show_bytes
from lakekv.errors import CorruptInputError
from lakekv.kv.store import BatchResult, Entry, OnConflict, Store
from lakekv.migrate import _retry
from lakekv.migrate._batch import Batch
from lakekv.migrate._common import (
    BATCH_BYTES,
    BATCH_ENTRIES,
    StoreLike,
    WriteOptions,
    check_stop,
    open_target,
    url_of,
)
from lakekv.migrate._io import describe, open_source, rereadable
from lakekv.migrate._limits import Limits, TargetLimitError
from lakekv.migrate._pass import Pass
from lakekv.migrate._progress import ProgressCallback, Tracker
from lakekv.migrate.formats import RepeatCheck, open_input
from lakekv.migrate.lakefs_json import UnorderedError
from lakekv.migrate.partitions import (
    SCHEMA_KEY,
    SCHEMA_PARTITION,
    check_schema_versions,
    read_schema_version,
)
from lakekv.migrate.reports import LoadReport

_PROGRESS_EVERY = 10000
_KEY = itemgetter(1)
_VALUE = itemgetter(2)


class PartialLoadError(CorruptInputError):
    """A streamed (not pre-checked) load hit corrupt input after writing some partitions.

    ``report`` says what was written; every partition counted in ``report.partitions`` was
    verified and fully loaded. Loading the same input again is safe.
    """

    def __init__(self, message: str, report: LoadReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class _FileInfo:
    format: str
    schema_version: str | None
    partitions: int
    entries: int


def check_file(
    file: str | os.PathLike[str] | BinaryIO,
    progress: ProgressCallback | None = None,
    *,
    limits: Limits | None = None,
    display: str | None = None,
    stop: threading.Event | None = None,
) -> _FileInfo:
    """Read a dump completely, verifying every checksum and count; raise CorruptInputError.

    A lakeFS JSON dump that repeats a partition+key with different values is corrupt too.
    With ``limits`` (the target's), an entry too large for the target raises
    TargetLimitError naming it. ``display`` names the input in messages.
    """
    try:
        return _check_file(file, progress, limits, display, "ordered", stop)
    except UnorderedError:
        # The entries of a lakeFS dump are not in key order within contiguous partitions
        # (lakeFS writes them so): read it again, remembering every partition+key.
        return _check_file(file, progress, limits, display, "any", stop)


def _check_file(
    file: str | os.PathLike[str] | BinaryIO,
    progress: ProgressCallback | None,
    limits: Limits | None,
    display: str | None,
    repeats: RepeatCheck,
    stop: threading.Event | None = None,
) -> _FileInfo:
    with open_source(file, display) as src:
        inp = open_input(src.stream, src.name, repeats=repeats)
        tracker = Tracker(progress, "check", bytes_total=src.size)
        if limits is not None and limits.unlimited:
            limits = None
        version = inp.schema_version
        n = reported = 0
        for page in inp.pages():
            check_stop(stop, "load")
            n += len(page)
            if limits is not None:
                for e in page:
                    limits.check(e, src.name)
            if page[0].partition == SCHEMA_PARTITION:
                for e in page:
                    if e.key == SCHEMA_KEY:
                        version = e.value.decode("ascii", errors="backslashreplace")
            if n - reported >= _PROGRESS_EVERY:
                reported = n
                tracker.set_bytes(src.position)
        tracker.set_bytes(src.position)
        tracker.finish()
        return _FileInfo(inp.format, version, inp.partitions, n)


def load(
    target: StoreLike,
    file: str | os.PathLike[str] | BinaryIO,
    *,
    on_conflict: OnConflict | str = OnConflict.FAIL,
    dry_run: bool = False,
    force: bool = False,
    precheck: bool | None = None,
    workers: int = 2,
    batch_entries: int = BATCH_ENTRIES,
    batch_bytes: int = BATCH_BYTES,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
) -> LoadReport:
    """Load a dump (lakekv or lakeFS "1.0" format, detected; compression detected) into
    ``target``. ``file`` is a path, ``-`` for stdin, or a binary stream.

    Conflict policies are those of :func:`~lakekv.migrate.copy`. With ``precheck`` (the
    default for a named file) the whole file is verified in one streaming pass first, before
    the target is opened: a corrupt, truncated or unsupported file raises CorruptInputError,
    and an entry larger than the target's declared limits raises TargetLimitError (exit 2),
    with nothing written. Input that cannot be read twice (a FIFO, ``<(…)``, or stdin and
    streams when ``precheck`` is asked for) is first copied once into a temporary file in
    ``$TMPDIR`` (see :func:`~lakekv.migrate._io.rereadable`). Without the pre-check (stdin
    by default), a corrupt partition stops the load: partitions before it are fully
    loaded, entries of the corrupt partition are not written unless it spans more than one
    batch, and PartialLoadError (a CorruptInputError) carries the report; an entry too large
    for the target stops it with TargetLimitError saying how many entries were written
    before it. A re-run is safe.

    The lakeFS schema version entry is written last. If the dump and the target both carry a
    schema version and they differ, SchemaVersionMismatchError is raised (unless ``force``):
    before writing anything when the version is known up front (lakekv header, pre-check),
    else at the end, without writing the version entry. The version entry is not written
    either when the load met conflicts (``report.schema_version_withheld``): a half-loaded
    target must not look like a complete lakeFS database. ``workers`` batches are written
    concurrently (one for the lakeFS format, whose keys may repeat). ``dry_run`` creates
    nothing (a target that does not exist counts as empty). Setting ``stop`` ends the load
    between batches with InterruptedMigrationError; loading again is safe.
    """
    options = WriteOptions(
        policy=OnConflict(on_conflict),
        dry_run=dry_run,
        force=force,
        batch_entries=batch_entries,
        batch_bytes=batch_bytes,
        workers=workers,
        stop=stop,
    )
    named = isinstance(file, str | os.PathLike) and os.fspath(file) != "-"
    if not (named if precheck is None else precheck):
        return _load(target, file, None, options, progress)
    with rereadable(file) as path:
        # Before the target is even opened: a bad file leaves no trace anywhere.
        info = check_file(
            path, progress, limits=Limits.of(target), display=describe(file), stop=stop
        )
        return _load(target, path, info, options, progress, describe(file))


def _load(
    target: StoreLike,
    file: str | os.PathLike[str] | BinaryIO,
    info: _FileInfo | None,
    options: WriteOptions,
    progress: ProgressCallback | None,
    display: str | None = None,
) -> LoadReport:
    return _LoadPass(target, file, info, options, progress, display).run()


class _LoadPass(Pass[LoadReport]):
    """``load`` in the shape of every pass (:mod:`lakekv.migrate._pass`). The source is a
    file, read once in its own order: there is no same-store check and no snapshot, the
    partitions are met as they come (``plan`` is ``None``), and ``kv-internal-metadata``'s
    entries are held back as they pass, to be written last."""

    def __init__(
        self,
        target: StoreLike,
        file: str | os.PathLike[str] | BinaryIO,
        info: _FileInfo | None,
        options: WriteOptions,
        progress: ProgressCallback | None,
        display: str | None,
    ) -> None:
        self.target, self.file, self.info, self.options = target, file, info, options
        self.progress, self.display = progress, display
        self.retries = _retry.RetryCounter()
        self.held: Entry | None = None

    def open(self) -> None:
        info = self.info
        self.dst, self.standin = open_target(self.stack, self.target, dry_run=self.options.dry_run)
        self.src = src = self.stack.enter_context(open_source(self.file, self.display))
        tracker = Tracker(self.progress, "load", partitions_total=info.partitions if info else None)
        self.tracker = tracker
        # Streamed lakeFS JSON: repeats are found as the pre-check finds them; once the
        # entries leave lakeFS's order, from there on by remembering every key.
        self.inp = open_input(
            src.stream,
            src.name,
            on_partition=lambda: tracker.add(0, 0, 1),
            repeats=None if info is not None else "adaptive",
        )

    def versions(self) -> None:
        # The dump's schema version as known before anything is written (the pre-check's
        # finding, else the header's), checked once; a version entry that says otherwise
        # (streamed input) is checked when it is met, before it is written last.
        dst = self.dst
        self.target_version = _retry.call(lambda: read_schema_version(dst), self.retries)
        info = self.info
        self.checked = info.schema_version if info is not None else self.inp.schema_version
        check_schema_versions(
            self.checked, self.target_version, force=self.options.force, what=_VERSIONS
        )

    def plan(self) -> None:
        inp, options = self.inp, self.options
        self.report = report = LoadReport(
            source=self.display or describe(self.file),
            target=self.standin or url_of(self.dst),
            dry_run=options.dry_run,
            format=inp.format,
            prechecked=self.info is not None,
            lakefs_schema_version=self.checked,
        )
        workers = 1 if inp.keys_may_repeat else max(1, options.workers)
        self.loader = _Loader(self.dst, options, workers, report, self.tracker, self.retries)
        self.stack.callback(self.loader.shutdown)

    def move(self, partitions: list[bytes]) -> None:
        inp, loader, report = self.inp, self.loader, self.report
        limits = Limits.of(self.dst)
        streamed_limits = limits if self.info is None and not limits.unlimited else None
        held: Entry | None = None
        try:
            for page in inp.pages():
                check_stop(self.options.stop, "load")
                rows = page
                if rows[0].partition == SCHEMA_PARTITION:
                    rows, held = _hold_schema(rows, held)
                if streamed_limits is not None:
                    _check_streamed(streamed_limits, rows, self.src.name, loader)
                loader.add_page(rows)
        except CorruptInputError as exc:
            loader.keep_only(inp.verified)
            loader.close()
            report.partitions = inp.partitions
            raise PartialLoadError(
                f"{exc}{inp.loaded_before(report.entries)}; loading the same input again is safe",
                report,
            ) from exc
        report.partitions = inp.partitions
        if held is not None:
            version = held.value.decode("ascii", errors="backslashreplace")
            report.lakefs_schema_version = version
            if version != self.checked:
                check_schema_versions(
                    version, self.target_version, force=self.options.force, what=_VERSIONS
                )
            loader.flush()
            loader.wait()  # every conflict counted before the schema step
            self.held, self.schema_pending = held, True

    def move_schema(self) -> None:
        assert self.held is not None
        self.loader.add(self.held)

    def conflicts(self) -> int:
        return self.report.conflicts

    def withhold_schema(self) -> None:
        self.report.schema_version_withheld = True

    def finish(self) -> None:
        self.loader.close()
        self.report.retries = self.retries.count


_VERSIONS = "the dump and the target"


def _hold_schema(page: list[Entry], held: Entry | None) -> tuple[list[Entry], Entry | None]:
    """The page without the lakeFS schema version entry, and that entry (written last)."""
    rest = [e for e in page if e.key != SCHEMA_KEY]
    if len(rest) != len(page):
        held = [e for e in page if e.key == SCHEMA_KEY][-1]
    return rest, held


def _check_streamed(limits: Limits, page: list[Entry], name: str, loader: _Loader) -> None:
    """A streamed load: write what came before an entry too large for the target, then stop."""
    for i, e in enumerate(page):
        why = limits.problem(e)
        if why is None:
            continue
        loader.add_page(page[:i])
        loader.close()
        raise TargetLimitError(
            f"{name}: partition '{show_bytes(e.partition)}' key '{show_bytes(e.key)}' cannot be "
            f"stored in the target: {why}; the {loader.report.entries:,} entries before it were "
            "loaded (loading the same input again is safe)"
        )


class _Loader:
    """Collects entries into batches and writes them on a small thread pool."""

    def __init__(
        self,
        dst: Store,
        options: WriteOptions,
        workers: int,
        report: LoadReport,
        tracker: Tracker,
        retries: _retry.RetryCounter,
    ) -> None:
        self.dst, self.policy = dst, options.policy
        self.report, self.tracker, self.retries = report, tracker, retries
        self.batch = Batch(options.batch_entries, options.batch_bytes)
        self.keys: set[tuple[bytes, bytes]] | None = set() if workers == 1 else None
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="lakekv-load")
        self.slots = threading.Semaphore(workers + 1)
        self.futures: list[Future[None]] = []
        self.probe = _Probe(dst, retries) if options.dry_run else None

    def add(self, e: Entry) -> None:
        if self.keys is not None:
            pk = (e.partition, e.key)
            if pk in self.keys:
                self.flush()
                self.wait()
            self.keys.add(pk)
        if self.batch.add(e):
            self.flush()

    def add_page(self, page: list[Entry]) -> None:
        """:meth:`add` for each entry of ``page``, without Python code per entry unless keys
        must be watched for repeats (one worker)."""
        if self.keys is not None:
            for e in page:
                self.add(e)
            return
        for _ in self.batch.fill(page):
            self.flush()

    def keep_only(self, keep: Callable[[Entry], bool]) -> None:
        self.batch.keep_only(keep)

    def flush(self) -> None:
        batch, nbytes = self.batch.take()
        if self.keys is not None:
            self.keys = set()
        if not batch:
            return
        self.report.entries += len(batch)
        self.report.bytes += nbytes
        if self.probe is not None:
            self.report.add_batch(self.probe.classify(batch, self.policy))
            self.tracker.add(len(batch), nbytes)
            return
        self._reap()
        self.slots.acquire()
        self.futures.append(self.pool.submit(self._write, batch, nbytes))

    def _write(self, batch: list[Entry], nbytes: int) -> None:
        try:
            result = _retry.call(lambda: self.dst.write_batch(batch, self.policy), self.retries)
            self.report.add_batch(result)
            self.tracker.add(len(batch), nbytes)
        finally:
            self.slots.release()

    def _reap(self) -> None:
        pending = []
        for f in self.futures:
            if f.done():
                f.result()  # re-raises a write error
            else:
                pending.append(f)
        self.futures = pending

    def wait(self) -> None:
        for f in self.futures:
            f.result()
        self.futures = []

    def close(self) -> None:
        """Write what is left and wait for every write."""
        self.flush()
        self.wait()
        self.tracker.finish()

    def shutdown(self) -> None:
        """Wait for the batch being written; drop queued ones (after an error or a stop)."""
        self.pool.shutdown(wait=True, cancel_futures=True)


class _Probe:
    """Dry run: looks entries up in the target, cheaply when they come in key order."""

    def __init__(self, store: Store, retries: _retry.RetryCounter) -> None:
        self.store = store
        self.retries = retries
        self.partition: bytes | None = None
        self.it: Iterator[Entry] | None = None
        self.cur: Entry | None = None
        self.last = b""
        self._closer: object = None

    def lookup(self, p: bytes, k: bytes) -> bytes | None:
        if p != self.partition or k < self.last or self.it is None:
            if self._closer is not None:
                self._closer.close()  # type: ignore[attr-defined]
            scan = self.store.scan(p, start=k)
            self._closer = scan
            self.it = _retry.retrying(scan, self.retries)
            self.partition = p
            self.cur = next(self.it, None)
        else:
            while self.cur is not None and self.cur.key < k:
                self.cur = next(self.it, None)
        self.last = k
        cur = self.cur
        return cur.value if cur is not None and cur.key == k else None

    def classify(self, batch: list[Entry], policy: OnConflict) -> BatchResult:
        result = BatchResult()
        for e in batch:
            result.classify(e, self.lookup(e.partition, e.key), policy)
        return result
