"""The staging manager: uncommitted writes and deletes, kept per staging token (lakeFS's
``StagingManager``).

A staging token names a partition of ``StagedEntryData`` keyed by object path. A branch has one
current staging token and, while commits are in flight, sealed tokens; this module knows nothing
about branches — :class:`lakekv.refs.RefStore` resolves a branch to its tokens and calls here.
Reads consult tokens in the order given (current first, then sealed, newest first); the first
token holding a key decides, and a tombstone there hides older data. (Committed data lives in
object-storage meta-ranges, outside the key-value store.)
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator

from lakekv.errors import KeyNotFoundError
from lakekv.kv.store import Store
from lakekv.record.codec import decode_message, encode_message, scan_messages
from lakekv.record.proto import graveler_pb2
from lakekv.refs.errors import InvalidRefError
from lakekv.refs.manager import drop_partition
from lakekv.refs.models import StagedEntry


def check_staged_key(key: object) -> bytes:
    """``key`` as bytes; InvalidRefError if it is not bytes-like or is empty."""
    if not isinstance(key, bytes | bytearray | memoryview):
        raise InvalidRefError(f"staged key must be bytes, not {type(key).__name__}")
    data = bytes(key)
    if not data:
        raise InvalidRefError("staged key is empty")
    return data


class StagingManager:
    """Staged entries over one Store, addressed by staging token and key (bytes)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _decode(self, token: str, value: bytes) -> StagedEntry:
        msg = decode_message(graveler_pb2.StagedEntryData, value, where=f"staging {token}")
        return StagedEntry.from_proto(msg)

    def get(self, token: str, key: bytes) -> tuple[StagedEntry | None, object | None]:
        """The entry under ``key`` in ``token`` and its predicate; ``(None, None)`` if absent
        (``None`` is then the create-only predicate for ``set_if``)."""
        try:
            value, predicate = self._store.get(token.encode(), key)
        except KeyNotFoundError:
            return None, None
        return self._decode(token, value), predicate

    def find(self, tokens: Iterable[str], key: bytes) -> StagedEntry | None:
        """The entry (possibly a tombstone) from the first of ``tokens`` holding ``key``."""
        for token in tokens:
            entry, _ = self.get(token, key)
            if entry is not None:
                return entry
        return None

    def set(self, token: str, entry: StagedEntry) -> None:
        """Write ``entry`` under its key in ``token``, replacing what is there."""
        self._store.set(token.encode(), entry.key, encode_message(entry.to_proto()))

    def set_if(self, token: str, entry: StagedEntry, predicate: object | None) -> None:
        """Compare-and-set of ``entry`` in ``token`` (see ``Store.set_if``)."""
        self._store.set_if(token.encode(), entry.key, encode_message(entry.to_proto()), predicate)

    def delete(self, token: str, key: bytes) -> None:
        """Remove ``key`` from ``token`` (no tombstone). Idempotent."""
        self._store.delete(token.encode(), key)

    def drop_by_prefix(self, token: str, prefix: bytes = b"") -> int:
        """Remove every key of ``token`` starting with ``prefix``; the number removed."""
        return drop_partition(self._store, token.encode(), prefix)

    def drop(self, tokens: Iterable[str]) -> None:
        """Remove every entry of each of ``tokens``."""
        for token in tokens:
            drop_partition(self._store, token.encode())

    def list(
        self,
        tokens: Iterable[str],
        *,
        prefix: bytes = b"",
        after: bytes = b"",
        include_tombstones: bool = True,
    ) -> Iterator[StagedEntry]:
        """Entries in key order merged over ``tokens`` (for a key in several, the earlier token
        wins), keys starting with ``prefix`` and strictly after ``after``."""
        iterators = [
            self._token_entries(token, rank, prefix, after) for rank, token in enumerate(tokens)
        ]
        last: bytes | None = None
        for key, _rank, entry in heapq.merge(*iterators):
            if key == last:
                continue
            last = key
            if entry.is_tombstone and not include_tombstones:
                continue
            yield entry

    def _token_entries(
        self, token: str, rank: int, prefix: bytes, after: bytes
    ) -> Iterator[tuple[bytes, int, StagedEntry]]:
        for item in scan_messages(
            self._store,
            token.encode(),
            graveler_pb2.StagedEntryData,
            prefix=prefix,
            after=after,
        ):
            yield item.key, rank, StagedEntry.from_proto(item.message)
