"""Staged objects on a branch: uncommitted writes and deletes, kept per staging token.

A branch's staging token names a partition of ``StagedEntryData`` keyed by object path. A commit
*seals* the token (moves it to the front of ``sealed_tokens``) and starts a new one, so reads
consult the staging token first, then the sealed tokens in order; the first token holding a
key decides — a tombstone there hides older data. (Committed data lives in object-storage
meta-ranges, outside the key-value store: a key found in no token is reported as not staged.)

Writes follow lakeFS (§7 of the format notes): read the branch, write into its staging token,
re-read the branch, and if a commit replaced the token meanwhile, write again into the new one
(up to ``staged_write_tries`` times, then ConcurrentUpdateError).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator

from lakekv.errors import KeyNotFoundError, PredicateFailedError
from lakekv.record.codec import decode_message, encode_message, scan_messages
from lakekv.record.proto import catalog_pb2, graveler_pb2
from lakekv.refs._base import RefStoreBase, RepoArg
from lakekv.refs.errors import (
    ConcurrentUpdateError,
    InvalidRefError,
    StagedObjectNotFoundError,
)
from lakekv.refs.ids import validate_branch_id
from lakekv.refs.models import Branch, Repository, StagedEntry

StagedUpdate = Callable[[StagedEntry | None], StagedEntry | None]
"""``update_staged`` callback: the current entry in the staging token (or ``None``) → the entry
to write, or ``None`` to leave it as it is."""


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes | bytearray | memoryview):
        raise InvalidRefError(f"staged key must be bytes, not {type(key).__name__}")
    data = bytes(key)
    if not data:
        raise InvalidRefError("staged key is empty")
    return data


class StagingOps(RefStoreBase):
    """The staged-object part of :class:`~lakekv.refs.store.RefStore`."""

    def _staged_write(self, repo: Repository, branch_id: str, key: bytes, value: bytes) -> str:
        """Write into the branch's current staging token (re-checked); the token written."""
        for _ in range(self._staged_write_tries):
            branch = self._get_branch_with_predicate(repo, branch_id)[0]
            token = branch.staging_token
            self._store.set(token.encode(), key, value)
            if self._get_branch_with_predicate(repo, branch_id)[0].staging_token == token:
                return token
        raise ConcurrentUpdateError(
            f"staging token of branch {branch_id!r} in {repo.id!r} kept changing during a write "
            f"({self._staged_write_tries} tries)"
        )

    def set_staged(self, repo: RepoArg, branch_id: str, entry: StagedEntry) -> None:
        """Stage ``entry`` (an object or a tombstone) on the branch, replacing any staged value."""
        bid = validate_branch_id(branch_id)
        key = _check_key(entry.key)
        r = self._repo(repo)
        self._staged_write(r, bid, key, encode_message(entry.to_proto()))

    def stage_object(
        self, repo: RepoArg, branch_id: str, key: bytes, entry: catalog_pb2.Entry
    ) -> StagedEntry:
        """Stage an object described by ``entry``; its identity is computed as lakeFS does."""
        staged = StagedEntry.from_catalog(_check_key(key), entry)
        self.set_staged(repo, branch_id, staged)
        return staged

    def delete_staged(self, repo: RepoArg, branch_id: str, key: bytes) -> None:
        """Stage a delete: write a tombstone that hides ``key`` in older tokens and commits."""
        self.set_staged(repo, branch_id, StagedEntry.tombstone(_check_key(key)))

    def get_staged(self, repo: RepoArg, branch_id: str, key: bytes) -> StagedEntry:
        """The staged entry for ``key`` (possibly a tombstone: check ``is_tombstone``) from the
        first token holding it; StagedObjectNotFoundError if no token does."""
        bid = validate_branch_id(branch_id)
        k = _check_key(key)
        r = self._repo(repo)
        branch = self._get_branch_with_predicate(r, bid)[0]
        for token in branch.tokens:
            try:
                value, _ = self._store.get(token.encode(), k)
            except KeyNotFoundError:
                continue
            msg = decode_message(graveler_pb2.StagedEntryData, value, where=f"staging {token}")
            return StagedEntry.from_proto(msg)
        raise StagedObjectNotFoundError(
            f"key {k!r} is not staged on branch {bid!r} of repository {r.id!r}"
        )

    def drop_staged(self, repo: RepoArg, branch_id: str, key: bytes) -> None:
        """Remove ``key`` from the branch's current staging token (no tombstone: older data,
        if any, shows again). Idempotent."""
        bid = validate_branch_id(branch_id)
        k = _check_key(key)
        r = self._repo(repo)
        branch = self._get_branch_with_predicate(r, bid)[0]
        self._store.delete(branch.staging_token.encode(), k)

    def drop_staged_by_prefix(self, repo: RepoArg, branch_id: str, prefix: bytes) -> int:
        """Remove every key starting with ``prefix`` from the current staging token; the number
        removed. An empty prefix clears the staging token."""
        bid = validate_branch_id(branch_id)
        if not isinstance(prefix, bytes):
            raise InvalidRefError(f"prefix must be bytes, not {type(prefix).__name__}")
        r = self._repo(repo)
        branch = self._get_branch_with_predicate(r, bid)[0]
        return self._drop_partition(branch.staging_token.encode(), prefix)

    def list_staged(
        self,
        repo: RepoArg,
        branch_id: str,
        *,
        prefix: bytes = b"",
        after: bytes = b"",
        include_tombstones: bool = True,
        tokens: tuple[str, ...] | None = None,
    ) -> Iterator[StagedEntry]:
        """The branch's staged entries in key order, merged over its staging token and sealed
        tokens (for a key in several, the newest token wins). Keys start with ``prefix`` and
        come strictly after ``after``. ``tokens`` restricts the merge to those tokens."""
        bid = validate_branch_id(branch_id)
        r = self._repo(repo)
        branch = self._get_branch_with_predicate(r, bid)[0]
        order = branch.tokens if tokens is None else tokens
        iterators = [
            self._token_entries(token, rank, prefix, after) for rank, token in enumerate(order)
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

    def update_staged(
        self, repo: RepoArg, branch_id: str, key: bytes, fn: StagedUpdate
    ) -> StagedEntry | None:
        """Compare-and-set on the staging token: ``fn`` gets the entry currently in the branch's
        staging token (``None`` if absent there) and returns the entry to write, or ``None``
        to write nothing. Retries (calling ``fn`` again) when another writer changed the key
        or a commit replaced the token; ConcurrentUpdateError when the retry budget runs out.
        Returns what is now stored (the written entry, or the unchanged current one)."""
        bid = validate_branch_id(branch_id)
        k = _check_key(key)
        r = self._repo(repo)
        delays = self._retry.delays()
        while True:
            branch = self._get_branch_with_predicate(r, bid)[0]
            outcome, done = self._try_update(r, branch, k, fn)
            if done:
                return outcome
            delay = next(delays, None)
            if delay is None:
                raise ConcurrentUpdateError(
                    f"update of staged key {k!r} on branch {bid!r} in {r.id!r} lost to "
                    f"concurrent writers {self._retry.max_tries} times"
                )
            self._sleep(delay)

    def _try_update(
        self, repo: Repository, branch: Branch, key: bytes, fn: StagedUpdate
    ) -> tuple[StagedEntry | None, bool]:
        token = branch.staging_token
        partition = token.encode()
        current: StagedEntry | None
        predicate: object | None
        try:
            value, predicate = self._store.get(partition, key)
            current = StagedEntry.from_proto(
                decode_message(graveler_pb2.StagedEntryData, value, where=f"staging {token}")
            )
        except KeyNotFoundError:
            current, predicate = None, None
        new = fn(current)
        if new is None:
            return current, True
        if new.key != key:
            raise InvalidRefError(f"update_staged callback changed the key {key!r} to {new.key!r}")
        try:
            self._store.set_if(partition, key, encode_message(new.to_proto()), predicate)
        except PredicateFailedError:
            return None, False
        if self._get_branch_with_predicate(repo, branch.id)[0].staging_token != token:
            return None, False
        return new, True
