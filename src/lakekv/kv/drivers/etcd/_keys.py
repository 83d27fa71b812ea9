"""How ``(partition, key)`` pairs become etcd keys.

An etcd key is ``PREFIX 00 | esc(partition) 00 01 | key`` where ``esc`` doubles nothing but
writes each ``00`` byte of the partition as ``00 FF``. So:

* ``esc(partition) 00 01`` never occurs inside another partition's encoding (inside ``esc`` a
  ``00`` is always followed by ``FF``): no encoded partition is a prefix of another's, and the
  keys of one partition are exactly the range ``[head, head[:-1] + 02)`` — contiguous, and
  disjoint from every other partition's range (``b"a"`` and ``b"a/b"`` cannot overlap);
* the encoding keeps bytewise order, of keys within a partition and of partitions, so one
  ``Range`` reads a partition in scan order and a skip scan lists partitions in order;
* the prefix (no ``00`` byte) followed by ``00`` keeps stores with different prefixes apart
  even when one prefix starts another (``a`` and ``ab``, ``a`` and ``a/b``).

The store's marker is ``PREFIX 01 lakekv-store``. It lies after ``[PREFIX 00, PREFIX 01)``,
the range holding every partition of the store, so no partition's range, scan or skip scan
meets it. Prefixes are printable (no ``00`` or ``01`` byte), so it is in no other prefix's
range either: for a longer prefix ``PREFIX c…`` (``c`` printable) it sorts before
``PREFIX c… 00``, and for a shorter one ``Q`` (``PREFIX = Q c…``) after ``Q 01``. Two
prefixes have the same marker only if they are equal.
"""

from __future__ import annotations

from typing import Final

TERMINATOR: Final = b"\x00\x01"


def escape(partition: bytes) -> bytes:
    """The partition with each ``00`` byte written ``00 FF``."""
    if b"\x00" in partition:
        return partition.replace(b"\x00", b"\x00\xff")
    return partition


def unescape(encoded: bytes) -> bytes:
    return encoded.replace(b"\x00\xff", b"\x00")


def prefix_range(prefix: bytes) -> tuple[bytes, bytes]:
    """``[start, end)`` of every entry stored under ``prefix`` (the marker lies after it)."""
    return prefix + b"\x00", prefix + b"\x01"


def store_marker(prefix: bytes) -> bytes:
    """The key whose presence says that the store under ``prefix`` exists."""
    return prefix + b"\x01lakekv-store"


def partition_head(prefix: bytes, partition: bytes) -> bytes:
    """The bytes every key of ``partition`` starts with."""
    return prefix + b"\x00" + escape(partition) + TERMINATOR


def head_end(head: bytes) -> bytes:
    """The first etcd key after every key that starts with ``head`` (a partition head)."""
    return head[:-1] + b"\x02"


def split(prefix: bytes, etcd_key: bytes) -> tuple[bytes, bytes]:
    """``(partition, key)`` of an etcd key under ``prefix`` (ValueError if it is not one)."""
    body = etcd_key[len(prefix) + 1 :]
    i = 0
    while True:
        i = body.find(b"\x00", i)
        if i < 0 or i + 1 >= len(body):
            raise ValueError(f"not a lakekv key: {etcd_key!r}")
        if body[i + 1] == 0x01:
            return unescape(body[:i]), body[i + 2 :]
        i += 2
