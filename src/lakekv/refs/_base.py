"""Shared plumbing of :class:`~lakekv.refs.store.RefStore`: the store, retry policy, lookups."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import Message

from lakekv.errors import InvalidArgumentError, KeyNotFoundError
from lakekv.kv.store import Store
from lakekv.record import layout
from lakekv.record.codec import get_message, scan_messages
from lakekv.record.proto import graveler_pb2
from lakekv.refs.errors import (
    BranchNotFoundError,
    InvalidRefError,
    RepositoryInDeletionError,
    RepositoryNotFoundError,
)
from lakekv.refs.ids import validate_branch_id, validate_repository_id
from lakekv.refs.models import Branch, Page, Repository, RepositoryState

T = TypeVar("T")
M = TypeVar("M", bound=Message)

RepoArg = Repository | str
"""A repository ID, or a :class:`Repository` already read (saves one lookup per call)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for optimistic updates.

    Up to ``max_tries`` attempts; before attempt *n + 1* the caller sleeps a random time in
    ``interval × [1 - jitter, 1 + jitter]``, where ``interval`` starts at ``initial_interval``,
    grows by ``multiplier`` and is capped at ``max_interval`` (lakeFS: 10 tries, 5 s cap).
    """

    max_tries: int = 10
    initial_interval: float = 0.002
    max_interval: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise InvalidArgumentError("RetryPolicy.max_tries must be >= 1")
        if self.initial_interval < 0 or self.max_interval < 0:
            raise InvalidArgumentError("RetryPolicy intervals must be >= 0")
        if not 0 <= self.jitter <= 1:
            raise InvalidArgumentError("RetryPolicy.jitter must be within [0, 1]")

    def delays(self) -> Iterator[float]:
        """The ``max_tries - 1`` sleeps between attempts."""
        interval = self.initial_interval
        for _ in range(self.max_tries - 1):
            low, high = interval * (1 - self.jitter), interval * (1 + self.jitter)
            yield random.uniform(low, high)
            interval = min(interval * self.multiplier, self.max_interval)


def utc_now() -> datetime:
    return datetime.now(UTC)


class RefStoreBase:
    """The store, the policies and the lookups every part of the ref store uses."""

    def __init__(
        self,
        store: Store,
        *,
        retry: RetryPolicy | None = None,
        staged_write_tries: int = 3,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if staged_write_tries < 1:
            raise InvalidArgumentError("staged_write_tries must be >= 1")
        self._store = store
        self._retry = retry if retry is not None else RetryPolicy()
        self._staged_write_tries = staged_write_tries
        self._clock = clock
        self._sleep = sleep

    @property
    def store(self) -> Store:
        """The underlying key-value store."""
        return self._store

    @property
    def retry(self) -> RetryPolicy:
        return self._retry

    # --- repositories ------------------------------------------------------------------------

    def get_repository(self, repository_id: str) -> Repository:
        """The repository record (whatever its state); RepositoryNotFoundError if missing."""
        rid = validate_repository_id(repository_id)
        try:
            got = get_message(
                self._store,
                layout.GRAVELER_PARTITION,
                layout.repository_key(rid),
                graveler_pb2.RepositoryData,
            )
        except KeyNotFoundError as exc:
            raise RepositoryNotFoundError(f"repository {rid!r} not found") from exc
        return Repository.from_proto(got.message)

    def _repo(self, repo: RepoArg, *, allow_deleting: bool = False) -> Repository:
        """Resolve ``repo``; an ``IN_DELETION`` repository raises RepositoryInDeletionError."""
        if isinstance(repo, Repository):
            record = repo
        elif isinstance(repo, str):
            record = self.get_repository(repo)
        else:
            raise InvalidRefError(f"repository must be an ID or a Repository, not {repo!r}")
        if record.state is RepositoryState.IN_DELETION and not allow_deleting:
            raise RepositoryInDeletionError(f"repository {record.id!r} is being deleted")
        return record

    # --- branches ----------------------------------------------------------------------------

    def _get_branch_with_predicate(self, repo: Repository, branch_id: str) -> tuple[Branch, object]:
        try:
            got = get_message(
                self._store, repo.partition, layout.branch_key(branch_id), graveler_pb2.BranchData
            )
        except KeyNotFoundError as exc:
            raise BranchNotFoundError(
                f"branch {branch_id!r} not found in repository {repo.id!r}"
            ) from exc
        return Branch.from_proto(got.message), got.predicate

    def get_branch(self, repo: RepoArg, branch_id: str) -> Branch:
        """The branch; BranchNotFoundError if missing."""
        bid = validate_branch_id(branch_id)
        return self._get_branch_with_predicate(self._repo(repo), bid)[0]

    # --- listing helpers ---------------------------------------------------------------------

    def _list_records(
        self,
        partition: bytes,
        key_prefix: bytes,
        msg_type: type[M],
        convert: Callable[[M], T],
        *,
        prefix: str,
        after: str,
        limit: int | None,
    ) -> Iterator[T]:
        if limit is not None and limit < 0:
            raise InvalidRefError(f"limit must be >= 0, not {limit}")
        if limit == 0:
            return
        entries = scan_messages(
            self._store,
            partition,
            msg_type,
            prefix=key_prefix + prefix.encode(),
            after=key_prefix + after.encode() if after else b"",
        )
        for count, entry in enumerate(entries, start=1):
            yield convert(entry.message)
            if limit is not None and count >= limit:
                return

    @staticmethod
    def _page(items: Iterator[T], amount: int, key: Callable[[T], str]) -> Page[T]:
        if amount < 1:
            raise InvalidRefError(f"amount must be >= 1, not {amount}")
        got: list[T] = []
        for item in items:
            got.append(item)
            if len(got) > amount:
                break
        if len(got) > amount:
            page = tuple(got[:amount])
            return Page(page, key(page[-1]))
        return Page(tuple(got), None)

    def _drop_partition(self, partition: bytes, prefix: bytes = b"") -> int:
        """Delete every key of ``partition`` starting with ``prefix``; the number deleted."""
        deleted = 0
        while True:
            keys: list[bytes] = []
            with self._store.scan(partition, start=prefix) as it:
                for entry in it:
                    if not entry.key.startswith(prefix):
                        break
                    keys.append(entry.key)
                    if len(keys) >= 1000:
                        break
            if not keys:
                return deleted
            for key in keys:
                self._store.delete(partition, key)
            deleted += len(keys)
