"""Typed report objects returned by dump, load, copy and verify. Each serialises to JSON.

Byte strings (partitions, keys) appear in reports as text: UTF-8 where valid, ``\\xNN`` escapes
for the other bytes, so a report is always printable and never ambiguous about what was found.
Store URLs appear without passwords.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from lakekv.display import show_bytes
from lakekv.kv.store import BatchResult

MAX_EXAMPLES = 20
"""Examples of conflicting entries kept in a report (the count is always complete)."""


@dataclass(frozen=True)
class EntryRef:
    """A partition and key, shown safely (see :func:`show_bytes`)."""

    partition: str
    key: str

    @classmethod
    def of(cls, partition: bytes, key: bytes) -> EntryRef:
        return cls(show_bytes(partition), show_bytes(key))


@dataclass
class _Timed:
    seconds: float = 0.0
    """Wall-clock duration of the operation."""

    def _rates(self, entries: int, nbytes: int) -> dict[str, float]:
        secs = self.seconds if self.seconds > 0 else float("nan")
        return {
            "entries_per_second": round(entries / secs, 1) if self.seconds > 0 else 0.0,
            "bytes_per_second": round(nbytes / secs, 1) if self.seconds > 0 else 0.0,
        }


@dataclass
class WriteCounts:
    """How entries written to a target were classified (see ``Store.write_batch``).

    ``written + unchanged + skipped + conflicts`` equals the entries processed. Under a dry run
    the counts say what *would* happen.
    """

    written: int = 0
    unchanged: int = 0
    skipped: int = 0
    conflicts: int = 0
    conflict_examples: list[EntryRef] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add_batch(self, result: BatchResult) -> None:
        """Accumulate one ``write_batch`` result (thread-safe)."""
        with self._lock:
            self.written += result.written
            self.unchanged += result.unchanged
            self.skipped += result.skipped
            self.conflicts += len(result.conflicts)
            for entry in result.conflicts:
                if len(self.conflict_examples) >= MAX_EXAMPLES:
                    break
                self.conflict_examples.append(EntryRef.of(entry.partition, entry.key))


@dataclass
class DumpReport(_Timed):
    """What ``dump`` wrote."""

    source: str = ""
    destination: str = ""
    format: str = "lakekv"
    partitions: int = 0
    entries: int = 0
    bytes: int = 0
    """Sum of key and value sizes."""
    file_bytes: int = 0
    """Bytes of the file as written (after compression)."""
    sha256: str | None = None
    """The final trailer's checksum (lakekv format only)."""
    lakefs_schema_version: str | None = None
    partition_source: str = "list_partitions"
    """``list_partitions``, ``lakefs-walk`` (the source cannot list partitions) or ``given``."""
    snapshot: bool = False
    """The source was read at one point in time (``Store.snapshot()``)."""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), **self._rates(self.entries, self.bytes)}


@dataclass
class LoadReport(WriteCounts, _Timed):
    """What ``load`` read and wrote."""

    source: str = ""
    target: str = ""
    format: str = "lakekv"
    partitions: int = 0
    """Partitions fully read (lakekv format: each verified against its trailer)."""
    entries: int = 0
    bytes: int = 0
    prechecked: bool = False
    """The whole file was verified before anything was written."""
    dry_run: bool = False
    lakefs_schema_version: str | None = None
    retries: int = 0
    """Transient store errors that were retried successfully."""
    schema_version_withheld: bool = False
    """The dump's lakeFS schema-version entry was not written because of conflicts: a
    half-loaded target must not look like a complete lakeFS database."""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), **self._rates(self.entries, self.bytes)}


@dataclass
class CopyReport(WriteCounts, _Timed):
    """What ``copy`` read, wrote and (with ``sync``) deleted."""

    source: str = ""
    target: str = ""
    partitions: int = 0
    """Partitions processed in this run (resumed ones not included)."""
    entries: int = 0
    bytes: int = 0
    deleted: int = 0
    """Target entries absent from the source that ``sync`` deleted (or would delete)."""
    sync: bool = False
    dry_run: bool = False
    workers: int = 1
    partition_source: str = "list_partitions"
    resumed_partitions: int = 0
    """Partitions a checkpoint marked finished, skipped in this run."""
    previous_conflicts: int = 0
    """Conflicts recorded in the checkpoint by earlier runs (still in effect)."""
    retries: int = 0
    """Transient store errors that were retried successfully."""
    lakefs_schema_version: str | None = None
    """The source's lakeFS schema version; ``None``: it holds none (not a lakeFS database?)."""
    checkpoint: str | None = None
    schema_version_withheld: bool = False
    """The schema-version entry was not copied because of conflicts: a half-copied target
    must not look like a complete lakeFS database. A later run without conflicts copies it."""
    new_pass: bool = False
    """The checkpoint's previous pass had finished, so this run was a new full pass."""
    snapshot: bool = False
    """The source was read at one point in time (``Store.snapshot()``); if not, entries
    written to it during the copy may be missing or mixed (see ``warnings``)."""
    change_feed: str | None = None
    """The change feed this pass started (or kept) on the source (``track_changes``)."""
    change_feed_ready: bool = False
    """The pass recorded in the feed that the target is ready for a catch-up by the feed
    (not after conflicts or skips)."""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), **self._rates(self.entries, self.bytes)}


@dataclass
class SyncReport(WriteCounts, _Timed):
    """What ``sync`` (the catch-up pass) found and changed to make the target identical."""

    source: str = ""
    target: str = ""
    method: str = "digests"
    """``changes`` (only the keys the source's change feed lists), ``digests`` (compared
    where the data lives, only differences read) or ``merge`` (both sides' ordered scans
    merged)."""
    partitions: int = 0
    unchanged_partitions: int = 0
    """Partitions found identical (digests only)."""
    entries: int = 0
    """Source entries compared."""
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    dry_run: bool = False
    workers: int = 1
    partition_source: str = "list_partitions"
    lakefs_schema_version: str | None = None
    retries: int = 0
    snapshot: bool = False
    """The source was read at one point in time (``Store.snapshot()``)."""
    change_feed: str | None = None
    """The source's change feed of this pair, if one was recording."""
    changes: int = 0
    """Row changes the feed listed (``changes`` method; a key changed twice counts twice)."""
    change_feed_kept: bool = False
    """The feed still records after this pass (``keep_tracking``), ready for another one."""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), **self._rates(self.entries, 0)}


@dataclass
class UntrackReport:
    """What ``untrack`` found and ended on the source."""

    source: str = ""
    target: str = ""
    change_feed: str = ""
    """The name of this pair's change feed."""
    ended: bool = False
    """A feed of that name was recording and is now gone (``False``: there was none)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Difference:
    """One entry that differs between the two stores."""

    kind: str
    """``missing`` (in A, not in B), ``extra`` (in B, not in A), ``different`` (values differ)
    or, with ``quick``, ``partition`` (counts or hashes of a partition differ)."""
    partition: str
    key: str | None = None


@dataclass
class VerifyReport(_Timed):
    """The outcome of comparing two stores. ``equal`` is the verdict."""

    a: str = ""
    b: str = ""
    quick: bool = False
    compared_by: str = "entries"
    """How equal partitions were proven equal: ``partition digests`` (64-bit, computed by
    both servers), ``range digests`` (SHA-256 of key ranges, by both servers), ``raw chunks``,
    ``entries``, or ``partition hashes (quick)``. Differences are always located by ranges
    or entries."""
    partitions: int = 0
    entries_a: int = 0
    entries_b: int = 0
    bytes_a: int = 0
    missing: int = 0
    extra: int = 0
    different: int = 0
    different_partitions: int = 0
    examples: list[Difference] = field(default_factory=list)
    partition_source: str = "list_partitions"
    snapshot_a: bool = False
    """Side A was read at one point in time (``Store.snapshot()``)."""
    snapshot_b: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.different or self.different_partitions)

    def to_json(self) -> dict[str, Any]:
        return {"equal": self.equal, **asdict(self), **self._rates(self.entries_a, self.bytes_a)}
