"""``load``: write a dump file (lakekv or lakeFS format, detected) into a store."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from lakekv.errors import CorruptInputError
from lakekv.kv.store import BatchResult, Entry, OnConflict, Store
from lakekv.migrate import _retry
from lakekv.migrate._common import BATCH_BYTES, BATCH_ENTRIES, StoreLike, opened, url_of
from lakekv.migrate._io import describe, open_source, rereadable
from lakekv.migrate._limits import Limits, TargetLimitError
from lakekv.migrate._progress import ProgressCallback, Tracker
from lakekv.migrate.dumpfile import MAGIC, DumpReader, PartitionTrailer
from lakekv.migrate.lakefs_json import looks_like_lakefs_json, read_lakefs_json
from lakekv.migrate.partitions import (
    SCHEMA_KEY,
    SCHEMA_PARTITION,
    check_schema_versions,
    read_schema_version,
)
from lakekv.migrate.reports import LoadReport, show_bytes

_PROGRESS_EVERY = 10000


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


def _detect(stream: BinaryIO, name: str) -> str:
    head = bytes(stream.peek(len(MAGIC)))[: len(MAGIC)]  # type: ignore[attr-defined]
    if head.startswith(MAGIC):
        return "lakekv"
    if looks_like_lakefs_json(head):
        return "lakefs"
    if not head:
        raise CorruptInputError(f"{name}: empty input")
    raise CorruptInputError(f"{name}: neither a lakekv dump nor a lakeFS JSON dump")


def _entries(
    stream: BinaryIO, name: str, fmt: str, on_partition: object
) -> tuple[Iterator[Entry], str | None]:
    """The entries of the input and (lakekv format) the header's schema version."""
    if fmt == "lakekv":
        reader = DumpReader(stream, name, on_partition=on_partition)  # type: ignore[arg-type]
        version = reader.header.get("lakefs_schema_version")
        return iter(reader), version if isinstance(version, str) else None
    return read_lakefs_json(stream, name), None


def check_file(
    file: str | os.PathLike[str] | BinaryIO,
    progress: ProgressCallback | None = None,
    *,
    limits: Limits | None = None,
    display: str | None = None,
) -> _FileInfo:
    """Read a dump completely, verifying every checksum and count; raise CorruptInputError.

    A lakeFS JSON dump that repeats a partition+key with different values is corrupt too.
    With ``limits`` (the target's), an entry too large for the target raises
    TargetLimitError naming it. ``display`` names the input in messages.
    """
    try:
        return _check_file(file, progress, limits, display, _Repeats())
    except _UnorderedError:
        # The entries of a lakeFS dump are not in key order within contiguous partitions
        # (lakeFS writes them so): read it again, remembering every partition+key.
        return _check_file(file, progress, limits, display, _Repeats(ordered=False))


class _UnorderedError(Exception):
    pass


class _Repeats:
    """Finds a partition+key given twice with different values in a lakeFS dump.

    In key order (contiguous partitions, keys ascending; what lakeFS writes) only the last
    entry and the finished partitions are kept. Otherwise (``ordered=False``) a 16-byte
    digest of every partition+key and of its value is kept (about 150 bytes per entry).
    """

    def __init__(self, ordered: bool = True) -> None:
        self.ordered = ordered
        self.last: Entry | None = None
        self.finished: set[bytes] = set()
        self.seen: dict[bytes, bytes] = {}

    def check(self, e: Entry, name: str) -> None:
        if not self.ordered:
            pk = _digest(len(e.partition).to_bytes(8, "big") + e.partition + e.key)
            value = _digest(e.value)
            if self.seen.setdefault(pk, value) != value:
                raise _repeated(name, e)
            return
        last = self.last
        if last is not None:
            if e.partition != last.partition:
                self.finished.add(last.partition)
                if e.partition in self.finished:
                    raise _UnorderedError
            elif e.key == last.key:
                if e.value != last.value:
                    raise _repeated(name, e)
            elif e.key < last.key:
                raise _UnorderedError
        self.last = e


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _repeated(name: str, e: Entry) -> CorruptInputError:
    return CorruptInputError(
        f"{name}: corrupt lakeFS dump: partition '{show_bytes(e.partition)}' key "
        f"'{show_bytes(e.key)}' appears more than once with different values"
    )


def _check_file(
    file: str | os.PathLike[str] | BinaryIO,
    progress: ProgressCallback | None,
    limits: Limits | None,
    display: str | None,
    repeats: _Repeats,
) -> _FileInfo:
    with open_source(file, display) as src:
        fmt = _detect(src.stream, src.name)
        tracker = Tracker(progress, "check", bytes_total=src.size)
        partitions = 0

        def count(_t: PartitionTrailer) -> None:
            nonlocal partitions
            partitions += 1

        entries, version = _entries(src.stream, src.name, fmt, count)
        if limits is not None and limits.unlimited:
            limits = None
        n = 0
        seen: set[bytes] = set()  # lakeFS format: its partitions, wherever they recur
        for e in entries:
            n += 1
            if fmt == "lakefs":
                repeats.check(e, src.name)
                if e.partition not in seen:
                    seen.add(e.partition)
                    partitions += 1
            if limits is not None:
                limits.check(e, src.name)
            if e.partition == SCHEMA_PARTITION and e.key == SCHEMA_KEY:
                version = e.value.decode("ascii", errors="backslashreplace")
            if n % _PROGRESS_EVERY == 0:
                tracker.set_bytes(src.position)
        tracker.set_bytes(src.position)
        tracker.finish()
        return _FileInfo(fmt, version, partitions, n)


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
    else at the end, without writing the version entry. ``workers`` batches are written
    concurrently (one for the lakeFS format, whose keys may repeat).
    """
    policy = OnConflict(on_conflict)
    named = isinstance(file, str | os.PathLike) and os.fspath(file) != "-"
    if not (named if precheck is None else precheck):
        return _load(
            target,
            file,
            None,
            policy,
            dry_run,
            force,
            workers,
            batch_entries,
            batch_bytes,
            progress,
        )
    with rereadable(file) as path:
        # Before the target is even opened: a bad file leaves no trace anywhere.
        info = check_file(path, progress, limits=Limits.of(target), display=describe(file))
        return _load(
            target,
            path,
            info,
            policy,
            dry_run,
            force,
            workers,
            batch_entries,
            batch_bytes,
            progress,
            describe(file),
        )


def _load(
    target: StoreLike,
    file: str | os.PathLike[str] | BinaryIO,
    info: _FileInfo | None,
    policy: OnConflict,
    dry_run: bool,
    force: bool,
    workers: int,
    batch_entries: int,
    batch_bytes: int,
    progress: ProgressCallback | None,
    display: str | None = None,
) -> LoadReport:
    started = time.monotonic()
    with opened(target) as dst:
        limits = Limits.of(dst)
        retries = _retry.RetryCounter()
        target_version = _retry.call(lambda: read_schema_version(dst), retries)
        report = LoadReport(source=display or describe(file), target=url_of(dst), dry_run=dry_run)
        if info is not None:
            check_schema_versions(
                info.schema_version, target_version, force=force, what="the dump and the target"
            )
            report.prechecked = True
        with open_source(file, display) as src:
            fmt = _detect(src.stream, src.name)
            report.format = fmt
            loader = _Loader(
                dst,
                policy,
                dry_run,
                1 if fmt == "lakefs" else max(1, workers),
                report,
                Tracker(progress, "load", partitions_total=info.partitions if info else None),
                retries,
            )
            loader.limit_n, loader.limit_b = batch_entries, batch_bytes
            verified: list[bytes] = []

            def on_partition(t: PartitionTrailer) -> None:
                verified.append(t.partition)
                report.partitions += 1
                loader.tracker.add(0, 0, 1)

            entries, header_version = _entries(src.stream, src.name, fmt, on_partition)
            check_schema_versions(
                header_version, target_version, force=force, what="the dump and the target"
            )
            report.lakefs_schema_version = header_version
            held: Entry | None = None
            # Streamed lakeFS JSON: repeats are found as the pre-check finds them; once the
            # entries leave lakeFS's order, from there on by remembering every key.
            repeats = _Repeats() if info is None and fmt == "lakefs" else None
            try:
                try:
                    seen: set[bytes] = set()  # lakeFS format: partitions counted so far
                    for e in entries:
                        if repeats is not None:
                            try:
                                repeats.check(e, src.name)
                            except _UnorderedError:
                                repeats = _Repeats(ordered=False)
                                repeats.check(e, src.name)
                        if fmt == "lakefs" and e.partition not in seen:
                            # Counted here, so the schema-version partition (held back and
                            # written last) counts too.
                            seen.add(e.partition)
                            report.partitions += 1
                        if e.partition == SCHEMA_PARTITION and e.key == SCHEMA_KEY:
                            held = e
                            continue
                        if info is None and not limits.unlimited:
                            _check_streamed(limits, e, src.name, loader)
                        loader.add(e)
                except CorruptInputError as exc:
                    if fmt == "lakekv":
                        last = verified[-1] if verified else None
                        loader.keep_only(lambda e: last is not None and e.partition <= last)
                    loader.close()
                    where = (
                        f"; {len(verified)} partition(s) fully loaded before it"
                        + (f" (last: '{show_bytes(verified[-1])}')" if verified else "")
                        if fmt == "lakekv"
                        else f"; {report.entries} entries before it were loaded"
                    )
                    raise PartialLoadError(
                        f"{exc}{where}; loading the same input again is safe", report
                    ) from exc
                if held is not None:
                    version = held.value.decode("ascii", errors="backslashreplace")
                    report.lakefs_schema_version = version
                    check_schema_versions(
                        version, target_version, force=force, what="the dump and the target"
                    )
                    loader.flush()
                    loader.wait()
                    loader.add(held)
                loader.close()
            finally:
                loader.shutdown()
        report.retries = retries.count
        report.seconds = time.monotonic() - started
        return report


def _check_streamed(limits: Limits, e: Entry, name: str, loader: _Loader) -> None:
    """A streamed load: write what came before an entry too large for the target, then stop."""
    why = limits.problem(e)
    if why is None:
        return
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
        policy: OnConflict,
        dry_run: bool,
        workers: int,
        report: LoadReport,
        tracker: Tracker,
        retries: _retry.RetryCounter,
    ) -> None:
        self.dst, self.policy, self.dry_run = dst, policy, dry_run
        self.report, self.tracker, self.retries = report, tracker, retries
        self.batch: list[Entry] = []
        self.nbytes = 0
        self.keys: set[tuple[bytes, bytes]] | None = set() if workers == 1 else None
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="lakekv-load")
        self.slots = threading.Semaphore(workers + 1)
        self.futures: list[Future[None]] = []
        self.probe = _Probe(dst, retries) if dry_run else None
        self.limit_n, self.limit_b = BATCH_ENTRIES, BATCH_BYTES

    def add(self, e: Entry) -> None:
        if self.keys is not None:
            pk = (e.partition, e.key)
            if pk in self.keys:
                self.flush()
                self.wait()
            self.keys.add(pk)
        self.batch.append(e)
        self.nbytes += len(e.key) + len(e.value)
        if len(self.batch) >= self.limit_n or self.nbytes >= self.limit_b:
            self.flush()

    def keep_only(self, keep: object) -> None:
        assert callable(keep)
        self.batch = [e for e in self.batch if keep(e)]
        self.nbytes = sum(len(e.key) + len(e.value) for e in self.batch)

    def flush(self) -> None:
        batch, nbytes = self.batch, self.nbytes
        self.batch, self.nbytes = [], 0
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
        self.pool.shutdown(wait=True)


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
