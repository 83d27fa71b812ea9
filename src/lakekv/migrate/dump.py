"""``dump``: write a store to a file (lakekv format by default, or lakeFS "1.0" JSON)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable
from typing import BinaryIO

from lakekv.errors import ConfigurationError
from lakekv.migrate import _retry
from lakekv.migrate._common import (
    LAKEKV_VERSION,
    NO_SNAPSHOT,
    StoreLike,
    check_stop,
    consistent,
    is_snapshot,
    opened,
    url_of,
)
from lakekv.migrate._io import Compression, check_output, describe, open_sink
from lakekv.migrate._progress import ProgressCallback, Tracker
from lakekv.migrate.formats import FORMATS, DumpFormat, open_writer
from lakekv.migrate.partitions import plan_partitions, read_schema_version, require_partitions
from lakekv.migrate.reports import DumpReport

_CHUNK = 10000


def dump(
    source: StoreLike,
    out: str | os.PathLike[str] | BinaryIO,
    *,
    partitions: Iterable[bytes] | None = None,
    format: DumpFormat = "lakekv",
    compression: Compression = "auto",
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
) -> DumpReport:
    """Write every partition of ``source`` (or only ``partitions``) to ``out``.

    ``out`` is a path (``.gz`` / ``.zst`` endings compress), ``-`` for stdout, or a binary
    stream. Entries are written partition by partition in bytewise order, streamed: memory
    does not grow with the store. A path is written to a temporary file and renamed when
    complete. ``format="lakefs"`` writes the lakeFS "1.0" JSON format and raises
    UnrepresentableEntryError (naming the entry) at the first partition or key that is not
    valid UTF-8 or a value larger than the format allows. Empty partitions are not written.
    The source is read at one point in time when its driver can (``report.snapshot``);
    otherwise ``report.warnings`` says so.

    Before the source is read, a path is checked (ConfigurationError for an empty name, a
    directory, a missing or read-only directory); a partition named in ``partitions`` that
    the source does not hold raises PartitionNotFoundError (exit 2) before anything is
    written.

    The source is opened read-only and must exist (StoreNotFoundError: a mistyped source
    never yields a valid, empty dump). Setting ``stop`` ends the dump between pages with
    InterruptedMigrationError, and the temporary file is removed.
    """
    if format not in FORMATS:
        raise ConfigurationError(f"unknown dump format {format!r} (lakekv or lakefs)")
    if isinstance(out, str | os.PathLike) and os.fspath(out) != "-":
        check_output(out)
    started = time.monotonic()
    with opened(source, read_only=True) as src_store, consistent(src_store) as src:
        retries = _retry.RetryCounter()
        schema = _retry.call(lambda: read_schema_version(src), retries)
        plan = plan_partitions(src, partitions)
        if partitions is not None:
            require_partitions(src, plan.partitions, retries)
        report = DumpReport(
            source=url_of(src),
            destination=describe(out),
            format=format,
            lakefs_schema_version=schema,
            partition_source=plan.source,
            snapshot=is_snapshot(src),
        )
        if not report.snapshot:
            report.warnings.append(NO_SNAPSHOT.format(url=report.source))
        tracker = Tracker(progress, "dump", partitions_total=len(plan.partitions))
        with (
            open_sink(out, compression) as sink,
            contextlib.closing(
                open_writer(
                    format,
                    sink.stream,
                    source=report.source,
                    lakefs_schema_version=schema,
                    lakekv_version=LAKEKV_VERSION,
                    partition_source=plan.source,
                )
            ) as writer,
        ):
            for p in plan.partitions:
                begun = False  # an empty partition is not written
                for page in _retry.retrying_pages(src, p, page_size=_CHUNK, counter=retries):
                    check_stop(stop, "dump")
                    if not begun:
                        writer.begin_partition(p)
                        begun = True
                    tracker.add(len(page), writer.add_page(page))
                if begun:
                    writer.end_partition()
                tracker.add(0, 0, 1)
            report.sha256 = writer.finish()
            report.partitions = writer.partitions
            report.entries = writer.entries
            report.bytes = writer.bytes
        report.file_bytes = sink.file_bytes
        tracker.finish()
        report.seconds = time.monotonic() - started
        return report
