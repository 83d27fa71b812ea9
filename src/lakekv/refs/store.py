"""The ref store: lakeFS repositories, branches, tags, commits and staged objects over a Store.

:class:`RefStore` is a facade, as lakeFS's ``Graveler`` is: a
:class:`~lakekv.refs.manager.RefManager` (repositories, branches, tags, commits) and a
:class:`~lakekv.refs.staging.StagingManager`
(staged entries by staging token) do the work, and the facade owns what needs both — staged
operations on a branch (resolving it to its tokens), deleting branches and repositories with
their staging data, and the commit flow.

Everything is stored exactly as lakeFS stores it (see :mod:`lakekv.record.layout`), so a lakeFS
server can share the database. A ``RefStore`` is safe to share between threads.

Example::

    with open_store("sqlite:///lakefs.db") as kv:
        refs = RefStore(kv)
        repo = refs.create_repository("my-repo", "s3://bucket/my-repo")
        refs.create_branch(repo, "dev", "main")
        refs.stage_object(repo, "dev", b"data/a.csv", catalog_pb2.Entry(address="…", size=3))
        commit = refs.commit(repo, "dev", committer="me", message="add a.csv")
        for c in refs.log(repo, "dev"):
            print(c.id, c.message)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Concatenate, ParamSpec, TypeVar

from lakekv.errors import InvalidArgumentError
from lakekv.kv.store import Store
from lakekv.record import layout
from lakekv.record.proto import catalog_pb2
from lakekv.refs._optimistic import LostRaceError, optimistic_update
from lakekv.refs.errors import (
    BranchMovedError,
    InvalidRefError,
    StagedObjectNotFoundError,
)
from lakekv.refs.ids import new_staging_token, validate_branch_id
from lakekv.refs.manager import (
    FIRST_COMMIT_MESSAGE,
    BranchUpdate,
    RefManager,
    RepoArg,
    drop_partition,
    utc_now,
)
from lakekv.refs.models import Branch, Commit, Repository, StagedEntry
from lakekv.refs.staging import StagingManager, check_staged_key
from lakekv.retry import RetryPolicy

__all__ = ["FIRST_COMMIT_MESSAGE", "BranchUpdate", "RefStore", "StagedUpdate"]

P = ParamSpec("P")
R = TypeVar("R")

StagedUpdate = Callable[[StagedEntry | None], StagedEntry | None]
"""``update_staged`` callback: the current entry in the staging token (or ``None``) → the entry
to write, or ``None`` to leave it as it is."""


def _delegate(
    method: Callable[Concatenate[RefManager, P], R],
) -> Callable[Concatenate[RefStore, P], R]:
    """A RefStore method that calls the RefManager method of the same name."""
    name = method.__name__

    def call(self: RefStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = getattr(self._refs, name)(*args, **kwargs)
        return result

    call.__name__ = name
    call.__doc__ = method.__doc__
    return call


class RefStore:
    """Repositories, branches, tags, commits and staged objects over one Store.

    ``retry`` governs optimistic branch and staged-entry updates; ``staged_write_tries`` bounds
    the staging-token re-check of staged writes (lakeFS: 3); ``clock`` supplies creation
    times (UTC); ``sleep`` is the backoff sleep (tests may replace it).
    """

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
        self._refs = RefManager(store, retry=retry, clock=clock, sleep=sleep)
        self._staging = StagingManager(store)
        self._staged_write_tries = staged_write_tries
        self._sleep = sleep

    @property
    def store(self) -> Store:
        """The underlying key-value store."""
        return self._refs.store

    @property
    def retry(self) -> RetryPolicy:
        return self._refs.retry

    @property
    def refs(self) -> RefManager:
        """The ref manager (repositories, branches, tags, commits)."""
        return self._refs

    @property
    def staging(self) -> StagingManager:
        """The staging manager (staged entries by staging token)."""
        return self._staging

    # --- repositories, branches, tags, commits: the ref manager's ----------------------------

    get_repository = _delegate(RefManager.get_repository)
    create_repository = _delegate(RefManager.create_repository)
    list_repositories = _delegate(RefManager.list_repositories)
    list_repositories_page = _delegate(RefManager.list_repositories_page)
    get_branch = _delegate(RefManager.get_branch)
    create_branch = _delegate(RefManager.create_branch)
    list_branches = _delegate(RefManager.list_branches)
    list_branches_page = _delegate(RefManager.list_branches_page)
    update_branch = _delegate(RefManager.update_branch)
    get_tag = _delegate(RefManager.get_tag)
    create_tag = _delegate(RefManager.create_tag)
    list_tags = _delegate(RefManager.list_tags)
    list_tags_page = _delegate(RefManager.list_tags_page)
    delete_tag = _delegate(RefManager.delete_tag)
    add_commit = _delegate(RefManager.add_commit)
    get_commit = _delegate(RefManager.get_commit)
    list_commits = _delegate(RefManager.list_commits)
    resolve_ref = _delegate(RefManager.resolve_ref)
    log = _delegate(RefManager.log)

    # --- deletion, with the staging data -------------------------------------------------------

    def delete_repository(self, repository_id: str) -> None:
        """Delete a repository and everything it reaches.

        Marks the record ``IN_DELETION`` (other calls then refuse the repository), drops the
        staging and sealed partitions of every branch (lakeFS leaves these behind), its
        pull-request index entries, every key of the repository partition (branches, tags,
        commits, metadata, settings, …), and finally the record. Re-running after a crash
        resumes the deletion. RepositoryNotFoundError if there is no such repository.
        """
        repo = self._refs.mark_in_deletion(repository_id)
        for branch in self._refs.list_branches(repo, show_hidden=True):
            self._staging.drop(branch.tokens)
        store = self._refs.store
        drop_partition(store, layout.PULLS_INDEX_PARTITION, b"repos/" + repo.partition + b"/")
        drop_partition(store, repo.partition)
        self._refs.delete_repository_record(repo.id)

    def delete_branch(self, repo: RepoArg, branch_id: str) -> None:
        """Delete a branch and drop its staging and sealed partitions.

        BranchNotFoundError if missing; DeleteDefaultBranchError for the default branch."""
        self._staging.drop(self._refs.delete_branch(repo, branch_id).tokens)

    # --- staged objects on a branch -------------------------------------------------------------

    def _branch(self, repo: RepoArg, branch_id: str) -> tuple[Repository, Branch]:
        bid = validate_branch_id(branch_id)
        r = self._refs.repository(repo)
        return r, self._refs.branch_and_predicate(r, bid)[0]

    def _staged_write(self, repo: Repository, branch_id: str, entry: StagedEntry) -> str:
        """Write into the branch's current staging token, then re-read the branch: if a commit
        replaced the token meanwhile, write again into the new one (lakeFS's staged-write
        protocol, ``safeBranchWrite`` in ``pkg/graveler/graveler.go``: at once, no backoff), up
        to ``staged_write_tries`` times (then ConcurrentUpdateError). The token written."""

        def attempt() -> str:
            token = self._refs.branch_and_predicate(repo, branch_id)[0].staging_token
            self._staging.set(token, entry)
            if self._refs.branch_and_predicate(repo, branch_id)[0].staging_token != token:
                raise LostRaceError(f"a commit replaced staging token {token}")
            return token

        return optimistic_update(
            attempt,
            RetryPolicy(max_tries=self._staged_write_tries, initial_interval=0, max_interval=0),
            self._sleep,
            lambda: f"staging token of branch {branch_id!r} in {repo.id!r} kept changing",
        )

    def set_staged(self, repo: RepoArg, branch_id: str, entry: StagedEntry) -> None:
        """Stage ``entry`` (an object or a tombstone) on the branch, replacing any staged value."""
        bid = validate_branch_id(branch_id)
        check_staged_key(entry.key)
        self._staged_write(self._refs.repository(repo), bid, entry)

    def stage_object(
        self, repo: RepoArg, branch_id: str, key: bytes, entry: catalog_pb2.Entry
    ) -> StagedEntry:
        """Stage an object described by ``entry``; its identity is computed as lakeFS does."""
        staged = StagedEntry.from_catalog(check_staged_key(key), entry)
        self.set_staged(repo, branch_id, staged)
        return staged

    def delete_staged(self, repo: RepoArg, branch_id: str, key: bytes) -> None:
        """Stage a delete: write a tombstone that hides ``key`` in older tokens and commits."""
        self.set_staged(repo, branch_id, StagedEntry.tombstone(check_staged_key(key)))

    def get_staged(self, repo: RepoArg, branch_id: str, key: bytes) -> StagedEntry:
        """The staged entry for ``key`` (possibly a tombstone: check ``is_tombstone``) from the
        first token holding it; StagedObjectNotFoundError if no token does."""
        k = check_staged_key(key)
        r, branch = self._branch(repo, branch_id)
        found = self._staging.find(branch.tokens, k)
        if found is None:
            raise StagedObjectNotFoundError(
                f"key {k!r} is not staged on branch {branch.id!r} of repository {r.id!r}"
            )
        return found

    def drop_staged(self, repo: RepoArg, branch_id: str, key: bytes) -> None:
        """Remove ``key`` from the branch's current staging token (no tombstone: older data,
        if any, shows again). Idempotent."""
        k = check_staged_key(key)
        self._staging.delete(self._branch(repo, branch_id)[1].staging_token, k)

    def drop_staged_by_prefix(self, repo: RepoArg, branch_id: str, prefix: bytes) -> int:
        """Remove every key starting with ``prefix`` from the current staging token; the number
        removed. An empty prefix clears the staging token."""
        if not isinstance(prefix, bytes):
            raise InvalidRefError(f"prefix must be bytes, not {type(prefix).__name__}")
        branch = self._branch(repo, branch_id)[1]
        return self._staging.drop_by_prefix(branch.staging_token, prefix)

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
        branch = self._branch(repo, branch_id)[1]
        return self._staging.list(
            branch.tokens if tokens is None else tokens,
            prefix=prefix,
            after=after,
            include_tombstones=include_tombstones,
        )

    def update_staged(
        self, repo: RepoArg, branch_id: str, key: bytes, fn: StagedUpdate
    ) -> StagedEntry | None:
        """Compare-and-set on the staging token: ``fn`` gets the entry currently in the branch's
        staging token (``None`` if absent there) and returns the entry to write, or ``None``
        to write nothing. Retries (calling ``fn`` again) when another writer changed the key
        or a commit replaced the token; ConcurrentUpdateError when the retry budget runs out.
        Returns what is now stored (the written entry, or the unchanged current one)."""
        bid = validate_branch_id(branch_id)
        k = check_staged_key(key)
        r = self._refs.repository(repo)

        def attempt() -> StagedEntry | None:
            token = self._refs.branch_and_predicate(r, bid)[0].staging_token
            current, predicate = self._staging.get(token, k)
            new = fn(current)
            if new is None:
                return current
            if new.key != k:
                raise InvalidRefError(
                    f"update_staged callback changed the key {k!r} to {new.key!r}"
                )
            self._staging.set_if(token, new, predicate)
            if self._refs.branch_and_predicate(r, bid)[0].staging_token != token:
                raise LostRaceError(f"a commit replaced staging token {token}")
            return new

        return optimistic_update(
            attempt,
            self._refs.retry,
            self._sleep,
            lambda: f"staged key {k!r} on branch {bid!r} in {r.id!r}",
        )

    # --- the commit flow -----------------------------------------------------------------------

    def commit(
        self,
        repo: RepoArg,
        branch_id: str,
        *,
        committer: str,
        message: str,
        metadata: Mapping[str, str] | None = None,
        meta_range_id: str = "",
        creation_date: datetime | None = None,
    ) -> Commit:
        """Commit the branch's staged data (lakeFS's lock-free commit flow).

        1. CAS the branch: push its staging token to the front of ``sealed_tokens`` and start a
           fresh staging token (new writes go there from now on);
        2. build the commit: parent = the branch's commit, generation = parent's + 1;
        3. add it (create-only, idempotent);
        4. CAS the branch: ``commit_id`` = the new commit, remove the committed tokens from
           ``sealed_tokens`` — BranchMovedError if the branch's commit changed meanwhile;
        5. drop the committed staging partitions (each queued under ``cleanup-tokens`` while it
           is being dropped, as lakeFS queues them).

        lakekv does not write object-storage meta-ranges: ``meta_range_id`` names the tree the
        caller built for the staged data (empty by default).
        """
        bid = validate_branch_id(branch_id)
        refs = self._refs
        r = refs.repository(repo)
        new_token = new_staging_token(r.id, bid)

        def seal(b: Branch) -> Branch:
            return dataclasses.replace(
                b, staging_token=new_token, sealed_tokens=(b.staging_token, *b.sealed_tokens)
            )

        sealed = refs.update_branch(r, bid, seal)
        committed_tokens = set(sealed.sealed_tokens)
        parent_id = sealed.commit_id
        parent = refs.get_commit(r, parent_id)
        new_commit = refs.new_commit(
            committer=committer,
            message=message,
            meta_range_id=meta_range_id,
            creation_date=creation_date if creation_date is not None else refs.now(),
            metadata=metadata or {},
            parents=(parent_id,),
            generation=parent.generation + 1,
        )
        refs.put_commit(r, new_commit)

        def advance(b: Branch) -> Branch:
            if b.commit_id != parent_id:
                raise BranchMovedError(
                    f"branch {bid!r} moved from {parent_id} to {b.commit_id} during a commit"
                )
            remaining = tuple(t for t in b.sealed_tokens if t not in committed_tokens)
            return dataclasses.replace(b, commit_id=new_commit.id, sealed_tokens=remaining)

        refs.update_branch(r, bid, advance)
        store = refs.store
        for token in sealed.sealed_tokens:
            store.set(layout.CLEANUP_TOKENS_PARTITION, token.encode(), layout.CLEANUP_STUB_VALUE)
            self._staging.drop([token])
            store.delete(layout.CLEANUP_TOKENS_PARTITION, token.encode())
        return new_commit
