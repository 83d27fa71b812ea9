"""``dump``: write a store to a file (lakekv format by default, or lakeFS "1.0" JSON)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import BinaryIO, Literal

from lakekv.errors import ConfigurationError
from lakekv.kv.store import entries_of
from lakekv.migrate import _retry
from lakekv.migrate._common import LAKEKV_VERSION, StoreLike, opened, url_of
from lakekv.migrate._io import Compression, check_output, describe, open_sink
from lakekv.migrate._progress import ProgressCallback, Tracker
from lakekv.migrate.dumpfile import DumpWriter
from lakekv.migrate.lakefs_json import LakeFSJSONWriter, rfc3339_now
from lakekv.migrate.partitions import plan_partitions, read_schema_version, require_partitions
from lakekv.migrate.reports import DumpReport

DumpFormat = Literal["lakekv", "lakefs"]
_CHUNK = 10000


def dump(
    source: StoreLike,
    out: str | os.PathLike[str] | BinaryIO,
    *,
    partitions: Iterable[bytes] | None = None,
    format: DumpFormat = "lakekv",
    compression: Compression = "auto",
    progress: ProgressCallback | None = None,
) -> DumpReport:
    """Write every partition of ``source`` (or only ``partitions``) to ``out``.

    ``out`` is a path (``.gz`` / ``.zst`` endings compress), ``-`` for stdout, or a binary
    stream. Entries are written partition by partition in bytewise order, streamed: memory
    does not grow with the store. A path is written to a temporary file and renamed when
    complete. ``format="lakefs"`` writes the lakeFS "1.0" JSON format and raises
    UnrepresentableEntryError (naming the entry) at the first partition or key that is not
    valid UTF-8 or a value larger than the format allows. Empty partitions are not written.

    Before the source is read, a path is checked (ConfigurationError for an empty name, a
    directory, a missing or read-only directory); a partition named in ``partitions`` that
    the source does not hold raises PartitionNotFoundError (exit 2) before anything is
    written.
    """
    if format not in ("lakekv", "lakefs"):
        raise ConfigurationError(f"unknown dump format {format!r} (lakekv or lakefs)")
    if isinstance(out, str | os.PathLike) and os.fspath(out) != "-":
        check_output(out)
    started = time.monotonic()
    with opened(source) as src:
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
        )
        tracker = Tracker(progress, "dump", partitions_total=len(plan.partitions))
        with open_sink(out, compression) as sink:
            if format == "lakekv":
                with DumpWriter(
                    sink.stream,
                    {
                        "created": rfc3339_now(),
                        "source": report.source,
                        "lakefs_schema_version": schema,
                        "lakekv_version": LAKEKV_VERSION,
                        "partition_source": plan.source,
                    },
                ) as writer:
                    for p in plan.partitions:
                        for page in _retry.retrying_pages(
                            src, p, page_size=_CHUNK, counter=retries
                        ):
                            if not writer.partition_open:
                                writer.begin_partition(p)
                            tracker.add(len(page), writer.add_page(page))
                        if writer.partition_open:
                            writer.end_partition()
                        tracker.add(0, 0, 1)
                    report.sha256 = writer.finish()
                    report.partitions = writer.partitions
                    report.entries = writer.entries
                    report.bytes = writer.bytes
            else:
                jwriter = LakeFSJSONWriter(sink.stream)
                for p in plan.partitions:
                    count = 0
                    for page in _retry.retrying_pages(src, p, page_size=_CHUNK, counter=retries):
                        entries = entries_of(p, page)
                        tracker.add(len(entries), jwriter.add_many(entries))
                        count += len(entries)
                    report.partitions += 1 if count else 0
                    tracker.add(0, 0, 1)
                jwriter.finish()
                report.entries = jwriter.entries
                report.bytes = jwriter.bytes
        report.file_bytes = sink.file_bytes
        tracker.finish()
        report.seconds = time.monotonic() - started
        return report
