"""The lakekv dump format, version 1: binary-safe, checksummed, streamable.

Described for users in ``docs/dump-format.md``; this docstring is the normative summary.

A dump is a byte stream (optionally gzip- or zstd-compressed as a whole)::

    MAGIC                       8 bytes: 89 4C 4B 56 0D 0A 1A 0A  ("\\x89LKV\\r\\n\\x1a\\n")
    H <u32 n> <n bytes JSON>    header
    ( P <u32 n> <partition bytes>
      E <u32 klen> <u32 vlen> <key> <value>     ... zero or more, keys strictly ascending
      T <u32 n> <n bytes JSON>  partition trailer ) ... partitions strictly ascending
    F <u32 n> <n bytes JSON>    final trailer, then end of stream

Integers are unsigned 32-bit big-endian; tags are single ASCII bytes. The header JSON holds
``format`` (``"lakekv-dump"``), ``version`` (``1``), ``created`` (RFC 3339 UTC), ``source`` (the
store URL without credentials), ``lakefs_schema_version`` (string or null) and
``lakekv_version``. A partition trailer holds ``entries``, ``bytes`` (sum of key and value
sizes) and ``sha256``: the hex SHA-256 of that partition's ``E`` records exactly as they appear
in the stream (tag byte included) — :func:`partition_digest` computes the same value from a
store. The final trailer holds ``partitions``, ``entries``, ``bytes`` and ``sha256``: the hex
SHA-256 of every byte of the (uncompressed) stream before the ``F`` tag.

Readers verify every count and checksum, the ordering, and that nothing follows the final
trailer; any violation, and any unknown tag or version, is a :class:`CorruptInputError`.
"""

from __future__ import annotations

import hashlib
import json
import operator
import queue
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice, repeat
from typing import Any, BinaryIO

from lakekv.display import show_bytes
from lakekv.errors import CorruptInputError
from lakekv.kv.store import Entry

MAGIC = b"\x89LKV\r\n\x1a\n"
FORMAT_NAME = "lakekv-dump"
FORMAT_VERSION = 1
_U32 = struct.Struct(">I")
_ENTRY = struct.Struct(">cII")
_E = b"E"
_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)
_THIRD = operator.itemgetter(2)
_FLUSH = 1 << 20
_READ = 1 << 20
_MAX_META = 1 << 24
_MAX_U32 = 0xFFFFFFFF
PAGE_ENTRIES = 4096
PAGE_BYTES = 1 << 20
"""A page read from a dump holds at most about this many entries or key and value bytes."""


def _encode(keys: list[bytes], values: list[bytes]) -> tuple[bytes, int]:
    """The ``E`` records of these entries and their key+value byte total (C-level loops)."""
    klens = list(map(len, keys))
    vlens = list(map(len, values))
    heads = map(_ENTRY.pack, repeat(_E), klens, vlens)
    records = b"".join(chain.from_iterable(zip(heads, keys, values, strict=True)))
    return records, sum(klens) + sum(vlens)


def partition_digest(pages: Iterable[Sequence[tuple[bytes, bytes]]]) -> tuple[int, int, str]:
    """``(entries, bytes, sha256 hex)`` of one partition, as its dump trailer would hold them.

    ``pages`` are ``(key, value)`` pairs in ascending key order, as ``Store.scan_pages``
    yields them.
    """
    h = hashlib.sha256()
    count = nbytes = 0
    for page in pages:
        encoded, size = _encode(list(map(_FIRST, page)), list(map(_SECOND, page)))
        h.update(encoded)
        count += len(page)
        nbytes += size
    return count, nbytes, h.hexdigest()


@dataclass(frozen=True)
class PartitionTrailer:
    """A verified partition: its name and the trailer's counts."""

    partition: bytes
    entries: int
    bytes: int
    sha256: str


class _HashingSink:
    """Hashes and writes buffers on one background thread, in submission order.

    SHA-256 and file writes release the GIL, so they overlap with reading and encoding the
    next page. The queue holds at most a few buffers: memory stays bounded. An error on the
    thread is raised by the next call.
    """

    def __init__(self, out: BinaryIO, file_hash: Any) -> None:
        self._out = out
        self._file_hash = file_hash
        self._queue: queue.Queue[tuple[bytearray, Any, int, bool] | None] = queue.Queue(4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="lakekv-dump-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    buf, part_hash, part_from, hash_file = item
                    if part_hash is not None:
                        part_hash.update(memoryview(buf)[part_from:])
                    if hash_file:
                        self._file_hash.update(buf)
                    self._out.write(buf)
            except BaseException as exc:
                self._error = exc
            finally:
                self._queue.task_done()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, buf: bytearray, part_hash: Any, part_from: int, hash_file: bool) -> None:
        """Queue ``buf`` (ownership passes): hash ``buf[part_from:]`` into ``part_hash`` (if
        any) and all of it into the file hash (if ``hash_file``), then write it."""
        self._check()
        self._queue.put((buf, part_hash, part_from, hash_file))

    def drain(self) -> None:
        """Wait until every queued buffer is hashed and written."""
        self._queue.join()
        self._check()

    def close(self) -> None:
        """Stop the thread (after the queued buffers). Idempotent."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class DumpWriter:
    """Writes a lakekv dump to a binary stream. Call :meth:`begin_partition`, :meth:`add_page`
    (or :meth:`add_many`) in key order, :meth:`end_partition`, ..., then :meth:`finish`; use
    it as a context manager (or call :meth:`close`) so its writer thread stops on errors.

    Memory is bounded: output goes out in chunks of about 1 MiB, at most a few in flight.
    """

    def __init__(self, out: BinaryIO, header: dict[str, Any]) -> None:
        self._out = out
        self._file_hash = hashlib.sha256()
        self._sink = _HashingSink(out, self._file_hash)
        self._buf = bytearray(MAGIC)
        self._part_hash: Any = None
        self._part_from = 0
        self._partition: bytes | None = None
        self._last_partition: bytes | None = None
        self._last_key = b""
        self.partitions = 0
        self.entries = 0
        self.bytes = 0
        self._p_entries = 0
        self._p_bytes = 0
        self._meta(b"H", {"format": FORMAT_NAME, "version": FORMAT_VERSION, **header})

    def __enter__(self) -> DumpWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the writer thread. Called by :meth:`finish`; harmless twice."""
        self._sink.close()

    def _meta(self, tag: bytes, obj: dict[str, Any]) -> None:
        payload = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        self._buf += tag + _U32.pack(len(payload)) + payload

    def _flush(self) -> None:
        self._sink.submit(self._buf, self._part_hash, self._part_from, True)
        self._buf = bytearray()
        self._part_from = 0

    def begin_partition(self, partition: bytes) -> None:
        """Start a partition; partitions must come in strictly ascending bytewise order."""
        if self._partition is not None:
            raise ValueError("begin_partition while a partition is open")
        if self._last_partition is not None and partition <= self._last_partition:
            raise ValueError("partitions must be written in ascending order")
        self._buf += b"P" + _U32.pack(len(partition)) + partition
        self._partition = partition
        self._part_hash = hashlib.sha256()
        self._part_from = len(self._buf)
        self._last_key = b""
        self._p_entries = self._p_bytes = 0

    def add_many(self, entries: Iterable[Entry]) -> int:
        """Append entries of the open partition (ascending keys); returns key+value bytes."""
        chunk = entries if isinstance(entries, list) else list(entries)
        return self._add(list(map(_SECOND, chunk)), list(map(_THIRD, chunk)))

    def add_page(self, pairs: Sequence[tuple[bytes, bytes]]) -> int:
        """Append ``(key, value)`` pairs of the open partition (ascending keys), as
        ``Store.scan_pages`` yields them; returns key+value bytes."""
        return self._add(list(map(_FIRST, pairs)), list(map(_SECOND, pairs)))

    def _add(self, keys: list[bytes], values: list[bytes]) -> int:
        # Whole chunks are encoded with C-level loops: no Python code per entry.
        if not keys:
            return 0
        if keys[0] <= self._last_key or not all(map(operator.lt, keys, islice(keys, 1, None))):
            raise ValueError("keys must be written in ascending order")
        encoded, nbytes = _encode(keys, values)
        self._buf += encoded
        self._last_key = keys[-1]
        self._p_entries += len(keys)
        self._p_bytes += nbytes
        if len(self._buf) >= _FLUSH:
            self._flush()
        return nbytes

    def end_partition(self) -> PartitionTrailer:
        """Close the open partition with its trailer."""
        if self._partition is None or self._part_hash is None:
            raise ValueError("end_partition without begin_partition")
        self._sink.drain()  # the partition's earlier buffers are in its hash
        self._part_hash.update(memoryview(self._buf)[self._part_from :])
        digest = self._part_hash.hexdigest()
        trailer = PartitionTrailer(self._partition, self._p_entries, self._p_bytes, digest)
        self._part_hash = None
        self._meta(b"T", {"entries": trailer.entries, "bytes": trailer.bytes, "sha256": digest})
        self._last_partition = self._partition
        self._partition = None
        self.partitions += 1
        self.entries += trailer.entries
        self.bytes += trailer.bytes
        return trailer

    def finish(self) -> str:
        """Write the final trailer and flush; returns the final checksum."""
        if self._partition is not None:
            raise ValueError("finish while a partition is open")
        self._flush()
        self._sink.drain()
        digest = self._file_hash.hexdigest()
        self._meta(
            b"F",
            {
                "partitions": self.partitions,
                "entries": self.entries,
                "bytes": self.bytes,
                "sha256": digest,
            },
        )
        self._sink.submit(self._buf, None, 0, False)  # the final trailer is not in the digest
        self._buf = bytearray()
        self._sink.drain()
        self.close()
        self._out.flush()
        return digest


class DumpReader:
    """Reads and verifies a lakekv dump from a binary stream (after decompression).

    Construction reads the magic and header (``header``). Iterating yields the entries in
    file order; after each partition's trailer is verified, ``on_partition`` is called with
    it. Any inconsistency raises :class:`CorruptInputError` naming what is wrong. After the
    iteration ends normally, ``final`` holds the verified final trailer.
    """

    def __init__(
        self,
        stream: BinaryIO,
        name: str,
        on_partition: Callable[[PartitionTrailer], None] | None = None,
    ) -> None:
        self._in = stream
        self.name = name
        self._on_partition = on_partition
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._file_hash = hashlib.sha256()
        self._file_from = 0
        self.final: dict[str, Any] | None = None
        if not self._fill(len(MAGIC)) or self._buf[: len(MAGIC)] != MAGIC:
            raise CorruptInputError(f"{name}: not a lakekv dump (bad magic bytes)")
        self._pos = len(MAGIC)
        tag = self._tag()
        if tag != b"H":
            raise self._corrupt("missing header")
        self.header = self._json()
        if self.header.get("format") != FORMAT_NAME:
            raise self._corrupt(f"unknown format {self.header.get('format')!r}")
        version = self.header.get("version")
        # type() and not ==: JSON true would compare equal to 1.
        if type(version) is not int or version != FORMAT_VERSION:
            raise CorruptInputError(
                f"{name}: unsupported lakekv dump version {json.dumps(version)} "
                f"(this lakekv reads version {FORMAT_VERSION})"
            )
        schema = self.header.get("lakefs_schema_version")
        if schema is not None and not isinstance(schema, str):
            raise self._corrupt(
                f"lakefs_schema_version must be a string or null, not {json.dumps(schema)}"
            )

    def _corrupt(self, what: str) -> CorruptInputError:
        return CorruptInputError(f"{self.name}: corrupt lakekv dump: {what}")

    def _fill(self, n: int) -> bool:
        """Make ``n`` bytes available at ``_pos``; False at end of stream."""
        while len(self._buf) - self._pos < n:
            if self._eof:
                return False
            view = memoryview(self._buf)
            self._file_hash.update(view[self._file_from : self._pos])
            if self._part_hash is not None:
                self._part_hash.update(view[self._part_from : self._pos])
            chunk = self._in.read(max(_READ, n))
            if not chunk:
                self._eof = True
            self._buf = self._buf[self._pos :] + chunk
            self._pos = self._file_from = self._part_from = 0
        return True

    _part_hash: Any = None
    _part_from = 0

    def _tag(self) -> bytes:
        if not self._fill(1):
            raise self._corrupt("truncated (no final trailer)")
        tag = self._buf[self._pos : self._pos + 1]
        self._pos += 1
        return tag

    def _blob(self, limit: int) -> bytes:
        if not self._fill(4):
            raise self._corrupt("truncated")
        (n,) = _U32.unpack_from(self._buf, self._pos)
        if n > limit:
            raise self._corrupt(f"record of {n} bytes is too large")
        self._pos += 4
        if not self._fill(n):
            raise self._corrupt("truncated")
        data = self._buf[self._pos : self._pos + n]
        self._pos += n
        return data

    def _json(self) -> dict[str, Any]:
        raw = self._blob(_MAX_META)
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise self._corrupt("unreadable metadata record") from None
        if not isinstance(obj, dict):
            raise self._corrupt("metadata record is not an object")
        return obj

    def __iter__(self) -> Iterator[Entry]:
        return chain.from_iterable(self.pages())

    def pages(self) -> Iterator[list[Entry]]:
        """The entries in file order, in pages of one partition each (at most about
        ``PAGE_ENTRIES`` entries or ``PAGE_BYTES`` key and value bytes). A partition's last
        page comes before its trailer is verified, and ``on_partition`` is called after."""
        page: list[Entry] = []
        try:
            last_partition: bytes | None = None
            totals = [0, 0, 0]  # partitions, entries, bytes
            unpack = _ENTRY.unpack_from
            while True:
                if not self._fill(1):
                    raise self._corrupt("truncated (no final trailer)")
                tag_pos = self._pos
                tag = self._tag()
                if tag == b"F":
                    self._file_hash.update(memoryview(self._buf)[self._file_from : tag_pos])
                    self._file_from = tag_pos
                    self._finish(self._json(), totals)
                    return
                if tag != b"P":
                    raise self._corrupt(f"unexpected record {tag!r} where a partition should start")
                partition = self._blob(_MAX_U32)
                where = f"partition '{show_bytes(partition)}'"
                if not partition:
                    raise self._corrupt("empty partition name")
                if last_partition is not None and partition <= last_partition:
                    raise self._corrupt(f"{where} out of order")
                last_partition = partition
                self._part_hash = hashlib.sha256()
                self._part_from = self._pos
                count = nbytes = 0
                last_key = b""
                page = []
                cut = PAGE_BYTES
                while True:
                    if not self._fill(9):
                        raise self._corrupt(f"truncated in {where}")
                    buf = self._buf
                    pos = self._pos
                    if buf[pos] != 0x45:  # "E"
                        break
                    _t, klen, vlen = unpack(buf, pos)
                    end = pos + 9 + klen + vlen
                    if end > len(buf):
                        if not self._fill(9 + klen + vlen):
                            raise self._corrupt(f"truncated in {where}")
                        buf = self._buf
                        pos = self._pos
                        end = pos + 9 + klen + vlen
                    key = buf[pos + 9 : pos + 9 + klen]
                    if not key or key <= last_key:
                        raise self._corrupt(f"{where}: keys empty or out of order")
                    last_key = key
                    self._pos = end
                    count += 1
                    nbytes += klen + vlen
                    page.append(Entry(partition, key, buf[pos + 9 + klen : end]))
                    if len(page) >= PAGE_ENTRIES or nbytes >= cut:
                        yield page
                        page = []
                        cut = nbytes + PAGE_BYTES
                if page:
                    yield page
                    page = []
                self._part_hash.update(memoryview(self._buf)[self._part_from : self._pos])
                digest = self._part_hash.hexdigest()
                self._part_hash = None
                if self._tag() != b"T":
                    raise self._corrupt(f"{where}: unexpected record, expected a trailer")
                trailer = self._json()
                if trailer.get("entries") != count or trailer.get("bytes") != nbytes:
                    raise self._corrupt(
                        f"{where}: trailer says {trailer.get('entries')} entries, found {count}"
                    )
                if trailer.get("sha256") != digest:
                    raise self._corrupt(f"{where}: checksum mismatch")
                totals[0] += 1
                totals[1] += count
                totals[2] += nbytes
                if self._on_partition is not None:
                    self._on_partition(PartitionTrailer(partition, count, nbytes, digest))
        except CorruptInputError:
            if page:
                yield page  # what came before the corruption
            raise

    def _finish(self, final: dict[str, Any], totals: list[int]) -> None:
        expected = {"partitions": totals[0], "entries": totals[1], "bytes": totals[2]}
        for name, value in expected.items():
            if final.get(name) != value:
                raise self._corrupt(f"final trailer says {name}={final.get(name)}, found {value}")
        if final.get("sha256") != self._file_hash.hexdigest():
            raise self._corrupt("final checksum mismatch")
        if self._fill(1):
            raise self._corrupt("data after the final trailer")
        self.final = final
