"""Content addresses: lakeFS's identity encoding, hashed with SHA-256.

Every value is written with a one-byte type tag:

=========  ====  ==========================================================================
kind       tag   encoding after the tag
=========  ====  ==========================================================================
bytes      0     length as an int64 (below), then the bytes
string     1     length as an int64, then the UTF-8 bytes
int64      2     the byte ``8``, then 8 bytes big-endian (two's complement)
strings    3     count as an int64, then each string
map        4     count as an int64, then key and value strings in sorted key order
embedded   5     the embedded identity (a SHA-256 digest) written as bytes
=========  ====  ==========================================================================

A commit ID is the hex SHA-256 of: string ``"commit:v1"``, committer, message, meta-range ID,
creation time as int64 Unix seconds, metadata map, and the parents embedded (their identity is
the SHA-256 of the string-list encoding of the parent IDs). Version and generation are not
hashed. Map keys sort by code point, which for UTF-8 is the bytewise order Go uses.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from lakekv.record.proto import catalog_pb2

TYPE_BYTES: Final = 0
TYPE_STRING: Final = 1
TYPE_INT64: Final = 2
TYPE_STRING_SLICE: Final = 3
TYPE_STRING_MAP: Final = 4
TYPE_EMBEDDED: Final = 5

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class AddressWriter:
    """Accumulates an identity encoding; :meth:`identity` is its SHA-256 digest."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def _tag(self, tag: int) -> None:
        self._hash.update(bytes((tag,)))

    def int64(self, value: int) -> AddressWriter:
        self._tag(TYPE_INT64)
        self._hash.update(b"\x08" + struct.pack(">q", value))
        return self

    def bytes_(self, value: bytes) -> AddressWriter:
        self._tag(TYPE_BYTES)
        self.int64(len(value))
        self._hash.update(value)
        return self

    def string(self, value: str) -> AddressWriter:
        data = value.encode("utf-8")
        self._tag(TYPE_STRING)
        self.int64(len(data))
        self._hash.update(data)
        return self

    def string_opt(self, value: str) -> AddressWriter:
        """A string only when non-empty (lakeFS ``MarshalStringOpt``)."""
        if value:
            self.string(value)
        return self

    def strings(self, values: Sequence[str]) -> AddressWriter:
        self._tag(TYPE_STRING_SLICE)
        self.int64(len(values))
        for v in values:
            self.string(v)
        return self

    def string_map(self, values: Mapping[str, str]) -> AddressWriter:
        self._tag(TYPE_STRING_MAP)
        self.int64(len(values))
        for k in sorted(values, key=lambda s: s.encode("utf-8")):
            self.string(k)
            self.string(values[k])
        return self

    def embedded(self, identity: bytes) -> AddressWriter:
        self._tag(TYPE_EMBEDDED)
        self.bytes_(identity)
        return self

    def identity(self) -> bytes:
        """The SHA-256 digest of everything written so far."""
        return self._hash.digest()


def unix_seconds(when: datetime) -> int:
    """Whole seconds since the Unix epoch, rounded down (Go ``Time.Unix``); naive means UTC."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(seconds=1)


def parents_identity(parents: Sequence[str]) -> bytes:
    """The identity of a parent list: SHA-256 of its string-list encoding."""
    return AddressWriter().strings(parents).identity()


def commit_identity(
    *,
    committer: str,
    message: str,
    meta_range_id: str,
    creation_date: datetime,
    metadata: Mapping[str, str],
    parents: Sequence[str],
) -> bytes:
    """The raw identity of a commit (see the module docstring)."""
    return (
        AddressWriter()
        .string("commit:v1")
        .string(committer)
        .string(message)
        .string(meta_range_id)
        .int64(unix_seconds(creation_date))
        .string_map(metadata)
        .embedded(parents_identity(parents))
        .identity()
    )


def commit_id(
    *,
    committer: str,
    message: str,
    meta_range_id: str,
    creation_date: datetime,
    metadata: Mapping[str, str],
    parents: Sequence[str],
) -> str:
    """The content-addressed commit ID: hex of :func:`commit_identity`."""
    return commit_identity(
        committer=committer,
        message=message,
        meta_range_id=meta_range_id,
        creation_date=creation_date,
        metadata=metadata,
        parents=parents,
    ).hex()


def entry_identity(entry: catalog_pb2.Entry) -> bytes:
    """The identity of an object entry (lakeFS catalog): size, ETag, metadata map and, when
    set, content type. This is the ``identity`` of its staged entry."""
    return (
        AddressWriter()
        .int64(entry.size)
        .string(entry.e_tag)
        .string_map(dict(entry.metadata))
        .string_opt(entry.content_type)
        .identity()
    )
