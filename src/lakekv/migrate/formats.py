"""The dump formats behind one interface.

``dump`` drives a :class:`DumpFormatWriter` (:func:`open_writer`); ``load`` and ``check_file``
read a :class:`DumpInput` (:func:`open_input`, which recognises the format by its first
bytes). Two formats implement both sides: the lakekv format (:mod:`~lakekv.migrate.dumpfile`,
binary-safe and checksummed per partition) and lakeFS's ``kv dump`` JSON
(:mod:`~lakekv.migrate.lakefs_json`). What differs between them is said here, once, as
properties of the input (``keys_may_repeat``, :meth:`DumpInput.verified`), never as a test of
the format's name in the operations.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO, ClassVar, Literal, Protocol

from lakekv.display import show_bytes
from lakekv.errors import ConfigurationError, CorruptInputError
from lakekv.kv.store import Entry
from lakekv.migrate.dumpfile import (
    MAGIC,
    PAGE_BYTES,
    PAGE_ENTRIES,
    DumpReader,
    DumpWriter,
    PartitionTrailer,
)
from lakekv.migrate.lakefs_json import (
    LakeFSJSONWriter,
    Repeats,
    UnorderedError,
    looks_like_lakefs_json,
    read_lakefs_json,
    rfc3339_now,
)

DumpFormat = Literal["lakekv", "lakefs"]
FORMATS: tuple[DumpFormat, ...] = ("lakekv", "lakefs")


class DumpFormatWriter(Protocol):
    """Writes one dump. For each partition (ascending): :meth:`begin_partition`, one or more
    :meth:`add_page`, :meth:`end_partition`; then :meth:`finish`. :meth:`close` releases what
    the writer holds (also after an error); a context manager calls it."""

    partitions: int
    """Partitions written (with at least one entry)."""
    entries: int
    bytes: int
    """Key and value bytes written."""

    def begin_partition(self, partition: builtins.bytes) -> None: ...

    def add_page(self, pairs: Sequence[tuple[builtins.bytes, builtins.bytes]]) -> int:
        """Append ``(key, value)`` pairs of the open partition in ascending key order, as
        ``Store.scan_pages`` yields them; returns their key and value bytes."""
        ...

    def end_partition(self) -> object: ...

    def finish(self) -> str | None:
        """Complete the dump and flush; the file's checksum when the format has one."""
        ...

    def close(self) -> None: ...


def open_writer(
    format: DumpFormat,
    out: BinaryIO,
    *,
    source: str,
    lakefs_schema_version: str | None,
    lakekv_version: str,
    partition_source: str,
) -> DumpFormatWriter:
    """A writer of ``format`` to ``out``. The lakekv format records the arguments in its
    header; the lakeFS format has no room for them (only its timestamp)."""
    if format == "lakekv":
        return DumpWriter(
            out,
            {
                "created": rfc3339_now(),
                "source": source,
                "lakefs_schema_version": lakefs_schema_version,
                "lakekv_version": lakekv_version,
                "partition_source": partition_source,
            },
        )
    if format == "lakefs":
        return LakeFSJSONWriter(out)
    raise ConfigurationError(f"unknown dump format {format!r} (lakekv or lakefs)")


RepeatCheck = Literal["ordered", "any", "adaptive"]
"""How an input whose keys may repeat (lakeFS JSON) finds a partition+key given twice with
different values (CorruptInputError): ``"ordered"`` in lakeFS's order, raising UnorderedError
when the entries leave it (read again with ``"any"``); ``"any"`` by remembering a digest of
every key; ``"adaptive"`` in order, then from the first entry out of order on by remembering
(a streamed load, which cannot read again). ``None``: not checked (a pre-check did)."""


class DumpInput:
    """One dump being read, once: its ``format``, the lakeFS schema version its header
    declares (``schema_version``, ``None`` when the format has no header), and its entries in
    file order as :meth:`pages` of one partition each. Corrupt input raises
    CorruptInputError from the iteration, after a last page with what came before it.
    """

    format: ClassVar[DumpFormat]
    keys_may_repeat: ClassVar[bool]
    """A partition+key may be given more than once (in any order): entries must be written
    in file order, one batch at a time, a batch never holding a key twice."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.schema_version: str | None = None
        self.partitions = 0
        """Partitions counted so far: verified ones (lakekv), or seen ones (lakeFS)."""

    def pages(self) -> Iterator[list[Entry]]:
        raise NotImplementedError

    def verified(self, e: Entry) -> bool:
        """Whether ``e`` may be written when the input turns out corrupt after it: in a
        format checksummed per partition, only the entries of verified partitions."""
        return True

    def loaded_before(self, entries: int) -> str:
        """What a load wrote before the input turned out corrupt (``entries`` written)."""
        return f"; {entries} entries before it were loaded"


class _LakekvInput(DumpInput):
    format = "lakekv"
    keys_may_repeat = False

    def __init__(
        self, stream: BinaryIO, name: str, on_partition: Callable[[], None] | None
    ) -> None:
        super().__init__(name)
        self._done: list[bytes] = []
        self._on_partition = on_partition
        self._reader = DumpReader(stream, name, on_partition=self._verified)
        version = self._reader.header.get("lakefs_schema_version")
        self.schema_version = version if isinstance(version, str) else None

    def _verified(self, t: PartitionTrailer) -> None:
        self._done.append(t.partition)
        self.partitions += 1
        if self._on_partition is not None:
            self._on_partition()

    def pages(self) -> Iterator[list[Entry]]:
        return self._reader.pages()

    def verified(self, e: Entry) -> bool:
        return bool(self._done) and e.partition <= self._done[-1]

    def loaded_before(self, entries: int) -> str:
        done = self._done
        return f"; {len(done)} partition(s) fully loaded before it" + (
            f" (last: '{show_bytes(done[-1])}')" if done else ""
        )


class _LakeFSInput(DumpInput):
    format = "lakefs"
    keys_may_repeat = True

    def __init__(self, stream: BinaryIO, name: str, repeats: RepeatCheck | None) -> None:
        super().__init__(name)
        self._stream = stream
        self._repeats = repeats

    def pages(self) -> Iterator[list[Entry]]:
        name = self.name
        mode = self._repeats
        repeats = None if mode is None else Repeats(ordered=mode != "any")
        seen: set[bytes] = set()  # partitions, wherever they recur
        page: list[Entry] = []
        nbytes = 0
        partition: bytes | None = None
        try:
            for e in read_lakefs_json(self._stream, name):
                if repeats is not None:
                    try:
                        repeats.check(e, name)
                    except UnorderedError:
                        if mode != "adaptive":
                            raise
                        repeats = Repeats(ordered=False)
                        repeats.check(e, name)
                if e.partition != partition:
                    if page:
                        yield page
                        page, nbytes = [], 0
                    partition = e.partition
                    if partition not in seen:
                        seen.add(partition)
                        self.partitions += 1
                page.append(e)
                nbytes += len(e.key) + len(e.value)
                if len(page) >= PAGE_ENTRIES or nbytes >= PAGE_BYTES:
                    yield page
                    page, nbytes = [], 0
        except CorruptInputError:
            if page:
                yield page  # what came before the corruption
            raise
        if page:
            yield page


def open_input(
    stream: BinaryIO,
    name: str,
    *,
    on_partition: Callable[[], None] | None = None,
    repeats: RepeatCheck | None = "ordered",
) -> DumpInput:
    """The dump in ``stream`` (decompressed, with ``peek``), its format recognised by its
    first bytes; CorruptInputError for empty input or another format. A lakekv header is
    read (and checked) here. ``on_partition`` is called after each partition whose checksum
    was verified (lakekv format); ``repeats`` applies to the lakeFS format."""
    head = bytes(stream.peek(len(MAGIC)))[: len(MAGIC)]  # type: ignore[attr-defined]
    if head.startswith(MAGIC):
        return _LakekvInput(stream, name, on_partition)
    if looks_like_lakefs_json(head):
        return _LakeFSInput(stream, name, repeats)
    if not head:
        raise CorruptInputError(f"{name}: empty input")
    raise CorruptInputError(f"{name}: neither a lakekv dump nor a lakeFS JSON dump")
