"""The lakeFS ``kv dump`` JSON format, version "1.0", written and read as a stream.

``{"version": "1.0", "timestamp": "<RFC 3339>", "entries": [{"partition": "…", "key": "…",
"value": "<base64>"}, …]}``; ``entries`` is omitted when empty. Partitions and keys are JSON
strings, so only UTF-8 names can be represented: :class:`LakeFSJSONWriter` refuses any other
entry (naming it) instead of corrupting it (lakeFS replaces such bytes with U+FFFD). Otherwise
the writer's output is byte-identical to lakeFS's ``kv dump`` of the same entries (field order,
Go's string escaping, a whole-second timestamp), so the two can be diffed.
:func:`read_lakefs_json` parses one entry object at a time, never the whole document;
``version`` must precede ``entries`` (lakeFS writes it first).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, BinaryIO

from lakekv.display import show_bytes
from lakekv.errors import CorruptInputError, InvalidArgumentError, MigrationError
from lakekv.kv.store import Entry, entries_of

LAKEFS_DUMP_VERSION = "1.0"
_READ = 1 << 20
_FLUSH = 1 << 20
MAX_LAKEFS_VALUE = 64 << 20
"""The largest value lakekv writes into, and reads from, a lakeFS JSON dump (64 MiB).

The writer refuses a larger value (naming the entry); the reader accepts any entry whose
text fits a value of this size, so whatever the writer wrote can be read back."""
_MAX_NAME_TEXT = 8 << 20
"""Room in one entry's text for its partition, key and punctuation (escaped names)."""
_MAX_ENTRY_TEXT = 4 * ((MAX_LAKEFS_VALUE + 2) // 3) + _MAX_NAME_TEXT


class UnrepresentableEntryError(MigrationError, InvalidArgumentError):
    """An entry's partition or key is not valid UTF-8, so the lakeFS format cannot hold it."""


def looks_like_lakefs_json(head: bytes) -> bool:
    """Whether the first bytes of a (decompressed) file look like a JSON object."""
    return head.lstrip(b" \t\r\n\xef\xbb\xbf").startswith(b"{")


def rfc3339_now() -> str:
    """The current UTC time, RFC 3339 with a ``Z`` suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lakefs_timestamp(when: datetime | None = None) -> str:
    """``when`` (default now) as lakeFS stamps a dump: Go's ``time.Now().UTC().Format(
    time.RFC3339)``, whole seconds with a ``Z`` suffix, e.g. ``2026-11-30T20:45:07Z``."""
    moment = datetime.now(UTC) if when is None else when.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_GO_ESCAPES: dict[int, str] = {c: f"\\u{c:04x}" for c in range(0x20)}
_GO_ESCAPES.update(
    {
        0x08: "\\b",
        0x09: "\\t",
        0x0A: "\\n",
        0x0C: "\\f",
        0x0D: "\\r",
        0x22: '\\"',
        0x5C: "\\\\",
        0x3C: "\\u003c",
        0x3E: "\\u003e",
        0x26: "\\u0026",
        0x2028: "\\u2028",
        0x2029: "\\u2029",
    }
)


def go_json_string(text: str) -> str:
    """``text`` as a JSON string exactly as Go's ``encoding/json`` writes it with its default
    HTML escaping (what lakeFS's ``kv dump`` uses): ``<``, ``>``, ``&``, U+2028 and U+2029 as
    ``\\u003c``-style escapes, ``\\b \\f \\n \\r \\t`` short, other control characters as
    ``\\u00xx`` (lowercase hex), everything else (DEL, non-ASCII) as is."""
    return '"' + text.translate(_GO_ESCAPES) + '"'


class LakeFSJSONWriter:
    """Streams a lakeFS "1.0" dump byte for byte as lakeFS's ``kv dump`` writes one.

    lakeFS (v1.86.0 ``pkg/kv/dump.go``, ``cmd/lakefs/cmd/kv.go``) encodes its ``DumpFormat``
    with Go's ``json.Encoder``: one compact line ending in a newline, fields in the order
    ``version``, ``timestamp``, ``entries`` (omitted when empty), each entry ``partition``,
    ``key``, ``value`` (standard base64 with padding), strings escaped as
    :func:`go_json_string` does, the timestamp from :func:`lakefs_timestamp`. Call
    :meth:`add_many` any number of times, then :meth:`finish`; or, as ``dump`` does for
    every format (:class:`~lakekv.migrate.formats.DumpFormatWriter`), :meth:`begin_partition`,
    :meth:`add_page`, ..., :meth:`end_partition` for each partition, then :meth:`finish`.
    """

    def __init__(self, out: BinaryIO, timestamp: str | None = None) -> None:
        self._out = out
        self._buf: list[str] = [
            '{"version":"1.0","timestamp":' + go_json_string(timestamp or lakefs_timestamp())
        ]
        self._size = 0
        self._first = True
        self._partition: bytes | None = None
        self._p_entries = 0
        self.partitions = 0
        """Partitions written through :meth:`begin_partition` with at least one entry."""
        self.entries = 0
        self.bytes = 0

    def __enter__(self) -> LakeFSJSONWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release (the writer has no thread); for the writer protocol."""

    def begin_partition(self, partition: bytes) -> None:
        """Start a partition: :meth:`add_page` entries belong to it."""
        if self._partition is not None:
            raise ValueError("begin_partition while a partition is open")
        self._partition = partition
        self._p_entries = self.entries

    def add_page(self, pairs: Sequence[tuple[bytes, bytes]]) -> int:
        """Append ``(key, value)`` pairs of the open partition, as ``Store.scan_pages`` yields
        them; returns key+value bytes."""
        if self._partition is None:
            raise ValueError("add_page without begin_partition")
        return self.add_many(entries_of(self._partition, pairs))

    def end_partition(self) -> None:
        """Close the open partition (counted in ``partitions`` if it held entries)."""
        if self._partition is None:
            raise ValueError("end_partition without begin_partition")
        self.partitions += 1 if self.entries > self._p_entries else 0
        self._partition = None

    def add_many(self, entries: Iterable[Entry]) -> int:
        """Append entries; returns their key+value bytes. Non-UTF-8 names raise (lakeFS would
        silently replace them with U+FFFD)."""
        b64 = base64.b64encode
        buf = self._buf
        nbytes = 0
        for p, k, v in entries:
            try:
                ps = p.decode("utf-8")
                ks = k.decode("utf-8")
            except UnicodeDecodeError:
                raise UnrepresentableEntryError(
                    f"partition '{show_bytes(p)}' key '{show_bytes(k)}' is not valid UTF-8 and "
                    "cannot be written in the lakeFS dump format; use the lakekv format"
                ) from None
            if len(v) > MAX_LAKEFS_VALUE:
                raise UnrepresentableEntryError(
                    f"partition '{show_bytes(p)}' key '{show_bytes(k)}': its value is {len(v)} "
                    f"bytes, more than the lakeFS dump format allows ({MAX_LAKEFS_VALUE}); "
                    "use the lakekv format"
                )
            lead = ',"entries":[' if self._first else ","
            self._first = False
            row = (
                f'{lead}{{"partition":{go_json_string(ps)},'
                f'"key":{go_json_string(ks)},"value":"{b64(v).decode("ascii")}"}}'
            )
            buf.append(row)
            self._size += len(row)
            nbytes += len(k) + len(v)
            self.entries += 1
            if self._size >= _FLUSH:
                self._flush()
        self.bytes += nbytes
        return nbytes

    def _flush(self) -> None:
        self._out.write("".join(self._buf).encode("utf-8"))
        self._buf.clear()
        self._size = 0

    def finish(self) -> None:
        """Close the document (and its line) and flush; returns None (no checksum)."""
        if self._partition is not None:
            raise ValueError("finish while a partition is open")
        self._buf.append("}\n" if self._first else "]}\n")
        self._flush()
        self._out.flush()


class _Text:
    """Incremental UTF-8 text over a binary stream, with a cursor, for the streaming parser."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self._in = stream
        self.name = name
        self._dec = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.consumed = 0

    def more(self, at_least: int = _READ) -> bool:
        """Read another chunk (``at_least`` characters' worth); False at end of input."""
        if self.eof:
            return False
        chunk = self._in.read(max(_READ, at_least))
        try:
            text = self._dec.decode(chunk, final=not chunk)
        except UnicodeDecodeError:
            raise CorruptInputError(f"{self.name}: lakeFS dump is not valid UTF-8") from None
        if not chunk:
            self.eof = True
        self.consumed += self.pos
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        return True

    def skip_ws(self) -> str:
        """Skip whitespace; the next character ('' at end of input)."""
        while True:
            buf, pos = self.buf, self.pos
            n = len(buf)
            while pos < n and buf[pos] in " \t\r\n\ufeff":
                pos += 1
            self.pos = pos
            if pos < n:
                return buf[pos]
            if not self.more():
                return ""

    def expect(self, char: str, what: str) -> None:
        if self.skip_ws() != char:
            raise corrupt(self.name, f"expected {char!r} {what}")
        self.pos += 1

    def value(self, decoder: json.JSONDecoder) -> Any:
        """Decode one JSON value at the cursor, reading more input as needed.

        A value is at most ``_MAX_ENTRY_TEXT`` characters; numbers too long to convert,
        nesting too deep to parse and repeated object keys are corrupt input."""
        self.skip_ws()
        while True:
            try:
                obj, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # Most likely the value continues in the next chunk (read geometrically more,
                # so a long value is not re-parsed once per chunk); a real syntax error is
                # found once the value exceeds any entry lakekv writes.
                held = len(self.buf) - self.pos
                if held < _MAX_ENTRY_TEXT and not self.eof and self.more(held):
                    continue
                raise corrupt(self.name, f"invalid JSON ({exc.msg})") from None
            except _RepeatedFieldError as exc:
                raise corrupt(self.name, f"field {exc.args[0]!r} repeated in an object") from None
            except ValueError as exc:  # e.g. an integer of more than 4300 digits
                raise corrupt(self.name, f"unreadable JSON value ({exc})") from None
            except RecursionError:
                raise corrupt(self.name, "JSON nested too deeply") from None
            if end >= len(self.buf) and not self.eof and self.more():
                continue  # a number may continue in the next chunk
            self.pos = end
            return obj


class _RepeatedFieldError(Exception):
    """An object holds the same field twice (raised by :func:`_unique_fields`)."""


def _unique_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _RepeatedFieldError(k)
            seen.add(k)
    return obj


def corrupt(name: str, what: str) -> CorruptInputError:
    return CorruptInputError(f"{name}: corrupt lakeFS dump: {what}")


def read_lakefs_json(stream: BinaryIO, name: str) -> Iterator[Entry]:
    """Yield the entries of a lakeFS "1.0" dump in file order, validating as it goes.

    Raises CorruptInputError for malformed JSON, a missing or unsupported version, a
    top-level field given twice (two ``entries`` arrays), an entry without string
    ``partition``/``key``/``value`` or with a field given twice, empty names, bad base64 or
    truncation. Repeated partition+key pairs are the caller's to find (:class:`Repeats`).
    """
    text = _Text(stream, name)
    decoder = json.JSONDecoder(object_pairs_hook=_unique_fields)
    text.expect("{", "at the start of a lakeFS dump")
    version: object = None
    index = 0
    fields: set[str] = set()
    if text.skip_ws() == "}":
        text.pos += 1
    else:
        while True:
            field = text.value(decoder)
            if not isinstance(field, str):
                raise corrupt(name, "object keys must be strings")
            if field in fields:
                raise corrupt(name, f"field {field!r} appears more than once")
            fields.add(field)
            text.expect(":", f"after {field!r}")
            if field == "entries":
                if version is None:
                    raise corrupt(name, '"version" must come before "entries"')
                text.expect("[", "to start the entries")
                if text.skip_ws() == "]":
                    text.pos += 1
                else:
                    while True:
                        yield _entry(text.value(decoder), index, name)
                        index += 1
                        sep = text.skip_ws()
                        text.pos += 1
                        if sep == "]":
                            break
                        if sep != ",":
                            raise corrupt(name, f"expected ',' or ']' after entry {index - 1}")
            else:
                obj = text.value(decoder)
                if field == "version":
                    if obj != LAKEFS_DUMP_VERSION:
                        raise CorruptInputError(
                            f"{name}: unsupported lakeFS dump version {obj!r} "
                            f"(supported: {LAKEFS_DUMP_VERSION!r})"
                        )
                    version = obj
            sep = text.skip_ws()
            text.pos += 1
            if sep == "}":
                break
            if sep != ",":
                raise corrupt(name, "truncated or malformed (expected ',' or '}')")
    if version is None:
        raise corrupt(name, 'missing "version"')
    if text.skip_ws() != "":
        raise corrupt(name, "data after the end of the document")


def _entry(obj: object, index: int, name: str) -> Entry:
    if not isinstance(obj, dict):
        raise corrupt(name, f"entry {index} is not an object")
    p, k, v = obj.get("partition"), obj.get("key"), obj.get("value")
    if not (isinstance(p, str) and isinstance(k, str) and isinstance(v, str)):
        raise corrupt(name, f"entry {index} needs string partition, key and value")
    if not p or not k:
        raise corrupt(name, f"entry {index} has an empty partition or key")
    try:
        value = base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        raise corrupt(
            name, f"entry {index} (partition {p!r} key {k!r}): value is not valid base64"
        ) from None
    try:
        return Entry(p.encode("utf-8"), k.encode("utf-8"), value)
    except UnicodeEncodeError:
        raise corrupt(name, f"entry {index}: partition or key holds a lone surrogate") from None


class UnorderedError(Exception):
    """The entries left lakeFS's order: :class:`Repeats` in key order cannot go on."""


class Repeats:
    """Finds a partition+key given twice with different values in a lakeFS dump.

    In key order (contiguous partitions, keys ascending; what lakeFS writes) only the last
    entry and the finished partitions are kept, and UnorderedError is raised when the entries
    leave that order. Otherwise (``ordered=False``) a 16-byte digest of every partition+key
    and of its value is kept (about 150 bytes per entry).
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
                    raise UnorderedError
            elif e.key == last.key:
                if e.value != last.value:
                    raise _repeated(name, e)
            elif e.key < last.key:
                raise UnorderedError
        self.last = e


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _repeated(name: str, e: Entry) -> CorruptInputError:
    return CorruptInputError(
        f"{name}: corrupt lakeFS dump: partition '{show_bytes(e.partition)}' key "
        f"'{show_bytes(e.key)}' appears more than once with different values"
    )
