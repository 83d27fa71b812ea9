"""The generic bulk operations of :mod:`lakekv.kv.contract`, built from the core hooks.

A driver without a faster way inherits these; each is written once, here.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lakekv.kv.types import BatchResult, Entry, OnConflict, RangeDigest

if TYPE_CHECKING:
    from lakekv.kv.contract import StoreContract

_LENGTH = struct.Struct(">I")


def write_batch(
    store: StoreContract, entries: Sequence[Entry], on_conflict: OnConflict
) -> BatchResult:
    """Per entry: create atomically with ``_set_if(None)``, and only then look at what is there."""
    result = BatchResult()
    for entry in entries:
        p, k, v = entry
        if on_conflict is OnConflict.OVERWRITE:
            current = store._get(p, k)
            if result.classify(entry, None if current is None else current.value, on_conflict):
                store._set(p, k, v)
            continue
        while True:
            if store._set_if(p, k, v, None):  # create atomically; only then look
                result.written += 1
                break
            current = store._get(p, k)
            if current is not None:
                result.classify(entry, current.value, on_conflict)
                break
            # deleted in between: try to create again
    return result


def get_many(store: StoreContract, partition: bytes, keys: Sequence[bytes]) -> dict[bytes, bytes]:
    """One ``_get`` per key."""
    found = {}
    for key in keys:
        got = store._get(partition, key)
        if got is not None:
            found[key] = got.value
    return found


def delete_many(store: StoreContract, partition: bytes, keys: Sequence[bytes]) -> None:
    """One ``_delete`` per key."""
    for key in keys:
        store._delete(partition, key)


def digest_range(store: StoreContract, partition: bytes, start: bytes, limit: int) -> RangeDigest:
    """Read up to ``limit + 1`` entries in pages of ``_scan_page`` and hash them."""
    import hashlib  # noqa: PLC0415 (start-up: a store that is only read does not need it)

    h = hashlib.sha256()
    n = nbytes = 0
    pack = _LENGTH.pack
    at, inclusive = start, True
    while True:
        page, more = store._scan_page(partition, at, inclusive, min(limit + 1 - n, 10_000))
        for key, value in page:
            if n == limit:
                return RangeDigest(partition, start, n, nbytes, h.digest(), key)
            h.update(pack(len(key)))
            h.update(key)
            h.update(pack(len(value)))
            h.update(value)
            n += 1
            nbytes += len(key) + len(value)
        if not more or not page:
            return RangeDigest(partition, start, n, nbytes, h.digest(), None)
        at, inclusive = page[-1][0], False
