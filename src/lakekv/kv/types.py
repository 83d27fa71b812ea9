"""The value types of the key-value contract: what drivers and callers pass and get back.

The contract itself (what each operation does) is :mod:`lakekv.kv.contract`; these are its nouns.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import ClassVar, Final, NamedTuple, TypeVar

from lakekv.errors import ConfigurationError, InvalidArgumentError
from lakekv.kv.url import ParamReader

BytesLike = bytes | bytearray | memoryview
T = TypeVar("T")


class Entry(NamedTuple):
    """One stored triple."""

    partition: bytes
    key: bytes
    value: bytes


class _MustExist:
    """Type of :data:`MUST_EXIST`; there is exactly one instance."""

    _instance: ClassVar[_MustExist | None] = None

    def __new__(cls) -> _MustExist:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MUST_EXIST"

    def __reduce__(self) -> str:
        return "MUST_EXIST"


MUST_EXIST: Final = _MustExist()
"""Predicate for ``set_if``: write only if the key already exists (lakeFS ``ConditionalExists``)."""

Predicate = object
"""An opaque predicate returned by ``get``; only the issuing store understands it."""


class ValueWithPredicate(NamedTuple):
    """What ``get`` returns: the value and a predicate for a later ``set_if``."""

    value: bytes
    predicate: Predicate


class OnConflict(StrEnum):
    """What ``write_batch`` does when a key already exists with a *different* value."""

    FAIL = "fail"
    """Keep the target value and report the entry as a conflict."""
    SKIP = "skip"
    """Keep the target value and count the entry as skipped."""
    OVERWRITE = "overwrite"
    """Write the new value."""


@dataclass(frozen=True)
class RawChunk:
    """Consecutive entries of one partition in a driver's raw format (see *Raw rows*)."""

    partition: bytes
    start: bytes
    """The first key the chunk may hold (inclusive)."""
    data: bytes
    """The entries, keys ascending, in the format named by ``capabilities.raw_rows``."""
    entries: int
    payload_bytes: int
    """The key and value bytes the chunk holds (as a scan would count them)."""
    next_start: bytes | None
    """Where the next chunk of the partition starts (inclusive), or ``None``: the chunk
    reaches the end of the partition."""


@dataclass(frozen=True)
class FeedBatch:
    """What ``feed_read`` returns: the changes a change feed recorded since its confirmed
    position, up to ``position`` (see *Change feeds*)."""

    keys: dict[bytes, set[bytes]]
    """Per partition, every key written or deleted meanwhile (each once, in no order)."""
    notes: list[str]
    """The notes ``feed_mark`` recorded meanwhile, oldest first."""
    changes: int
    """How many row changes were read (a key written three times counts three)."""
    position: str
    """Where the batch ends: ``feed_confirm(name, position)`` forgets it."""
    unknown: str | None = None
    """Set when some change cannot be told by key (a ``TRUNCATE``, a delete without its key):
    what it was. The batch is then not a complete account of what changed."""


@dataclass(frozen=True)
class RangeDigest:
    """What ``digest_range`` returns: a SHA-256 of consecutive entries of one partition."""

    partition: bytes
    start: bytes
    """The first key the range may hold (inclusive)."""
    entries: int
    payload_bytes: int
    """The key and value bytes of the range."""
    sha256: bytes
    """SHA-256 of each entry in key order as ``len(key) key len(value) value``, lengths
    4-byte big-endian (so equal digests mean equal entries, whatever the store)."""
    next_start: bytes | None
    """Where the next range of the partition starts (inclusive), or ``None``: the range
    reaches the end of the partition."""


@dataclass(frozen=True)
class PartitionDigest:
    """What ``digest_partition`` returns: a whole partition, hashed as a set by the engine."""

    entries: int
    payload_bytes: int
    """The key and value bytes of the partition."""
    hash: int
    """The XOR over the entries of the digest scheme's 64-bit *entry hash* of
    ``len(key) key value`` (a function of its own, not the row hash of ``digest_buckets``).
    Comparable only between stores whose scheme and ``digest_probe()`` agree."""


@dataclass
class BatchResult:
    """Outcome of ``write_batch``. Every input entry is counted in exactly one field."""

    written: int = 0
    """Entries created, or whose different value was replaced under ``OVERWRITE``."""
    unchanged: int = 0
    """Entries already present with the same value (nothing written)."""
    skipped: int = 0
    """Entries present with a different value and kept, under ``SKIP``."""
    conflicts: list[Entry] = field(default_factory=list)
    """Entries present with a different value under ``FAIL``: not written, reported."""

    @property
    def total(self) -> int:
        return self.written + self.unchanged + self.skipped + len(self.conflicts)

    def classify(self, entry: Entry, current: bytes | None, policy: OnConflict) -> bool:
        """Count ``entry`` against the target's ``current`` value (``None``: absent) under
        ``policy``, and return whether it must be written. The one statement of the rules."""
        if current is None or (policy is OnConflict.OVERWRITE and current != entry.value):
            self.written += 1
            return True
        if current == entry.value:
            self.unchanged += 1
        elif policy is OnConflict.SKIP:
            self.skipped += 1
        else:
            self.conflicts.append(entry)
        return False

    def inserted_first(self, inserted: int) -> None:
        """Correct the counts of a driver that inserted the absent entries first (``inserted``
        of them, insert-if-absent) and then classified every entry against what it reads back:
        its own inserts read back equal, so :meth:`classify` counted them unchanged; they were
        written."""
        self.unchanged -= inserted
        self.written += inserted

    def add(self, other: BatchResult) -> None:
        """Accumulate ``other`` into this result."""
        self.written += other.written
        self.unchanged += other.unchanged
        self.skipped += other.skipped
        self.conflicts.extend(other.conflicts)


@dataclass(frozen=True)
class Capabilities:
    """What a driver can do. Tools ask capabilities; they never test the scheme."""

    list_partitions: bool = False
    """``list_partitions()`` is supported."""
    native_write_batch: bool = False
    """``write_batch`` has a fast path (bulk load) rather than the per-entry fallback."""
    persistent: bool = True
    """Data outlives the process."""
    shared_between_processes: bool = True
    """Several processes may open the same store at once, with atomic ``set_if`` across them."""
    max_partition_size: int | None = None
    """Largest partition name in bytes, or ``None`` for no limit below 1 MiB."""
    max_key_size: int | None = None
    """Largest key in bytes, or ``None``."""
    max_value_size: int | None = None
    """Largest value in bytes, or ``None`` (the conformance suite then requires 1 MiB to work)."""
    max_item_size: int | None = None
    """Largest partition + key + value in bytes (plus driver overhead), or ``None``."""
    value_predicates: bool = True
    """Predicates compare stored values (A → B → A passes); ``False`` for version/ETag
    predicates, which fail after any intervening write."""
    concurrent_writes: bool = True
    """Bulk writes from several threads proceed in parallel (``False`` for single-writer
    engines such as SQLite, where they only queue); tools size their worker pools by it."""
    snapshot_reads: bool = False
    """``snapshot()`` gives a view of the whole store at one point in time (see *Snapshots*)."""
    digests: str | None = None
    """The name of the scheme ``digest_buckets`` / ``digest_rows`` compute by, or ``None``
    (unsupported). Two stores whose names and ``digest_probe()`` agree compute equal digests
    for equal entries, so they can be compared without reading values (see *Digests*)."""
    range_digests: bool = False
    """``digest_range`` is computed by the engine, next to the data (otherwise the generic
    fallback reads the entries and hashes them here)."""
    change_feed: bool = False
    """``feed_start`` / ``feed_read`` and the rest record which keys change, on the server,
    under a name (see *Change feeds*)."""
    raw_rows: str | None = None
    """The name of the byte format ``read_raw`` returns and ``write_raw`` accepts, or ``None``
    (unsupported). Two stores naming the same format exchange entries without decoding them,
    and equal chunks hold equal entries (see *Raw rows*)."""

    @cached_property
    def partition_limit(self) -> int:
        """``max_partition_size``, or ``sys.maxsize`` for none (one comparison on hot paths)."""
        return self.max_partition_size or sys.maxsize

    @cached_property
    def key_limit(self) -> int:
        """``max_key_size``, or ``sys.maxsize`` for none (one comparison on hot paths)."""
        return self.max_key_size or sys.maxsize


@dataclass(frozen=True)
class ScanPaging:
    """Page sizes for scans: ``page_size`` for the first page, doubling up to ``page_cap``.

    Every driver accepts the URL parameters ``page_size`` and ``page_cap``.
    """

    page_size: int = 1000
    page_cap: int = 1000

    @classmethod
    def from_params(cls, params: ParamReader, *, page_size: int, page_cap: int) -> ScanPaging:
        """Read ``page_size`` and ``page_cap`` from a URL, with the driver's defaults."""
        cap = params.take_int("page_cap", page_cap, minimum=1)
        first = params.take_int("page_size", min(page_size, cap), minimum=1)
        return cls(page_size=min(first, cap), page_cap=cap)


@dataclass(frozen=True)
class OpenOptions:
    """How a store is opened; see *Opening* in the module docstring. Drivers receive it in
    ``from_url(url, options)`` and pass it on to ``Store.__init__``."""

    create: bool = True
    """May opening create what is missing (file, table, named store)?"""
    read_only: bool = False
    """Open for reading only: implies no create; every write raises StoreReadOnlyError."""
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Secrets for this store only, by the driver's names; never printed."""

    @property
    def may_create(self) -> bool:
        """``create`` and not ``read_only``."""
        return self.create and not self.read_only

    def take_credentials(self, url: object, known: Iterable[str]) -> dict[str, str]:
        """The credentials, after refusing (ConfigurationError) any name not in ``known``."""
        unknown = sorted(set(self.credentials) - set(known))
        if unknown:
            raise ConfigurationError(
                f"{url}: credential(s) {', '.join(unknown)} are not understood by this driver"
            )
        return dict(self.credentials)


DEFAULT_OPEN = OpenOptions()
"""Create when missing, read and write, no credentials."""


def as_bytes(name: str, value: object, missing: type[InvalidArgumentError] | None = None) -> bytes:
    """``value`` as ``bytes``; ``None`` raises ``missing`` (or InvalidArgumentError), and so
    does any type other than bytes, bytearray and memoryview."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if value is None:
        raise (missing or InvalidArgumentError)(f"{name} is missing (None)")
    raise InvalidArgumentError(
        f"{name} must be bytes, bytearray or memoryview, not {type(value).__name__}"
    )


def value_predicate(predicate: object) -> bytes:
    """For value-comparing drivers: the expected value inside a predicate from ``get``."""
    if isinstance(predicate, bytes):
        return predicate
    raise InvalidArgumentError(
        f"invalid predicate {predicate!r}: use None, MUST_EXIST or a predicate returned by get()"
    )


def safe_repr(data: bytes, limit: int = 80) -> str:
    """A printable, bounded rendering of bytes for messages (``b'...'`` escapes)."""
    text = repr(data)
    return text if len(text) <= limit else text[: limit - 3] + "..."
