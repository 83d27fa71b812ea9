"""The ref manager: repositories, branches, tags and commits (lakeFS's ``RefManager``).

Every record is stored exactly as lakeFS stores it (see :mod:`lakekv.record.layout`). Policies
are expressed with the store's atomic primitive:

* create-only records (repository, branch, tag, commit) are ``set_if(None)``; a predicate failure
  becomes ``RepositoryExistsError`` / ``BranchExistsError`` / ``TagExistsError`` — or, for a
  commit, means "already there" (commits are content-addressed, so adding is idempotent);
* a branch update is optimistic (:func:`~lakekv.refs._optimistic.optimistic_update`): read
  (value + predicate), compute, ``set_if(predicate)``, on a lost race back off and retry, up to
  ``RetryPolicy.max_tries`` (then ``ConcurrentUpdateError``).

IDs are validated with lakeFS's rules (:mod:`lakekv.refs.ids`) before any read or write. Every
method taking ``repo`` accepts a repository ID or a :class:`Repository` already read. Staged
objects are not handled here: see :mod:`lakekv.refs.staging`; the commit flow, which needs both,
is :class:`lakekv.refs.RefStore`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import Message

from lakekv.errors import KeyNotFoundError, PredicateFailedError
from lakekv.kv.store import Store
from lakekv.record import layout
from lakekv.record.codec import get_message, scan_messages, set_message_if
from lakekv.record.proto import graveler_pb2
from lakekv.refs._optimistic import optimistic_update
from lakekv.refs.errors import (
    BranchExistsError,
    BranchNotFoundError,
    CommitNotFoundError,
    DeleteDefaultBranchError,
    InvalidRefError,
    RefNotResolvedError,
    RepositoryExistsError,
    RepositoryInDeletionError,
    RepositoryNotFoundError,
    TagExistsError,
    TagNotFoundError,
)
from lakekv.refs.ident import commit_id as compute_commit_id
from lakekv.refs.ids import (
    new_instance_uid,
    new_staging_token,
    validate_branch_id,
    validate_commit_id,
    validate_ref,
    validate_repository_id,
    validate_tag_id,
)
from lakekv.refs.models import Branch, Commit, Page, Repository, RepositoryState, Tag
from lakekv.retry import RetryPolicy

T = TypeVar("T")
M = TypeVar("M", bound=Message)

RepoArg = Repository | str
"""A repository ID, or a :class:`Repository` already read (saves one lookup per call)."""

FIRST_COMMIT_MESSAGE = "Repository created"
"""The message of a repository's initial commit (as in lakeFS)."""
COMMIT_VERSION = 1
"""``CommitData.version`` written for new commits (lakeFS's current commit version)."""

BranchUpdate = Callable[[Branch], Branch]
"""``update_branch`` callback: the current branch → the branch to store (same ``id``).
Returning it unchanged writes nothing; raising aborts the update."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def drop_partition(store: Store, partition: bytes, prefix: bytes = b"") -> int:
    """Delete every key of ``partition`` starting with ``prefix``; the number deleted."""
    deleted = 0
    while True:
        keys: list[bytes] = []
        with store.scan(partition, start=prefix) as it:
            for entry in it:
                if not entry.key.startswith(prefix):
                    break
                keys.append(entry.key)
                if len(keys) >= 1000:
                    break
        if not keys:
            return deleted
        for key in keys:
            store.delete(partition, key)
        deleted += len(keys)


def page_of(items: Iterator[T], amount: int, key: Callable[[T], str]) -> Page[T]:
    """The first ``amount`` of ``items`` and the ``after`` value that continues them."""
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


class RefManager:
    """Repositories, branches, tags and commits over one Store; safe to share between threads.

    ``retry`` governs optimistic updates; ``clock`` supplies creation times (UTC); ``sleep`` is
    the backoff sleep (tests may replace it).
    """

    def __init__(
        self,
        store: Store,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._retry = retry if retry is not None else RetryPolicy()
        self._clock = clock
        self._sleep = sleep

    @property
    def store(self) -> Store:
        """The underlying key-value store."""
        return self._store

    @property
    def retry(self) -> RetryPolicy:
        return self._retry

    def now(self) -> datetime:
        """The current time from the manager's clock (UTC)."""
        return self._clock()

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

    def repository(self, repo: RepoArg, *, allow_deleting: bool = False) -> Repository:
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

    def branch_and_predicate(self, repo: Repository, branch_id: str) -> tuple[Branch, object]:
        """The branch (ID already validated) and its predicate; BranchNotFoundError if missing."""
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
        return self.branch_and_predicate(self.repository(repo), bid)[0]

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
        keep: Callable[[T], bool] | None = None,
    ) -> Iterator[T]:
        """Records under ``key_prefix`` in key order; ``keep`` (if given) filters them before
        ``limit`` counts, as lakeFS's iterators skip before its listings count."""
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
        count = 0
        for entry in entries:
            item = convert(entry.message)
            if keep is not None and not keep(item):
                continue
            yield item
            count += 1
            if limit is not None and count >= limit:
                return

    def create_repository(
        self,
        repository_id: str,
        storage_namespace: str,
        default_branch_id: str = "main",
        *,
        creation_date: datetime | None = None,
        read_only: bool = False,
        storage_id: str = "",
        committer: str = "",
    ) -> Repository:
        """Create a repository with its initial commit and default branch.

        In lakeFS's order, each write create-only: the initial commit (generation 1, message
        "Repository created"), the default branch (fresh staging token), then the repository
        record. The repository gets a fresh instance UID, hence a fresh partition, even if a
        deleted repository had the same ID. RepositoryExistsError if the ID is taken (then the
        commit and branch just written to the fresh partition are removed again).
        """
        rid = validate_repository_id(repository_id)
        bid = validate_branch_id(default_branch_id)
        if not isinstance(storage_namespace, str) or not storage_namespace:
            raise InvalidRefError("storage namespace is empty")
        record_key = layout.repository_key(rid)
        try:
            self._store.get(layout.GRAVELER_PARTITION, record_key)
        except KeyNotFoundError:
            pass
        else:
            raise RepositoryExistsError(f"repository {rid!r} already exists")
        when = creation_date if creation_date is not None else self._clock()
        repo = Repository(
            id=rid,
            storage_namespace=storage_namespace,
            default_branch_id=bid,
            creation_date=when,
            instance_uid=new_instance_uid(),
            read_only=read_only,
            storage_id=storage_id,
        )
        first = self.new_commit(
            committer=committer,
            message=FIRST_COMMIT_MESSAGE,
            meta_range_id="",
            creation_date=when,
            metadata={},
            parents=(),
            generation=1,
        )
        self.put_commit(repo, first)
        branch = Branch(id=bid, commit_id=first.id, staging_token=new_staging_token(rid, bid))
        set_message_if(self._store, repo.partition, layout.branch_key(bid), branch.to_proto(), None)
        try:
            set_message_if(
                self._store, layout.GRAVELER_PARTITION, record_key, repo.to_proto(), None
            )
        except PredicateFailedError as exc:
            drop_partition(self._store, repo.partition)
            raise RepositoryExistsError(f"repository {rid!r} already exists") from exc
        return repo

    def list_repositories(
        self, *, prefix: str = "", after: str = "", limit: int | None = None
    ) -> Iterator[Repository]:
        """Repositories in ID order whose ID starts with ``prefix``, strictly after ``after``,
        at most ``limit``. Includes repositories being deleted (see ``state``)."""
        return self._list_records(
            layout.GRAVELER_PARTITION,
            layout.REPOS_PREFIX,
            graveler_pb2.RepositoryData,
            Repository.from_proto,
            prefix=prefix,
            after=after,
            limit=limit,
        )

    def list_repositories_page(
        self, *, prefix: str = "", after: str = "", amount: int = 100
    ) -> Page[Repository]:
        """One page of :meth:`list_repositories`; continue with ``after=page.next_after``."""
        return page_of(self.list_repositories(prefix=prefix, after=after), amount, lambda r: r.id)

    def mark_in_deletion(self, repository_id: str) -> Repository:
        """Set the repository's state to ``IN_DELETION`` (optimistically); the record as
        marked. Already marked: returned as it is. RepositoryNotFoundError if missing."""
        rid = validate_repository_id(repository_id)
        key = layout.repository_key(rid)

        def attempt() -> Repository:
            try:
                got = get_message(
                    self._store, layout.GRAVELER_PARTITION, key, graveler_pb2.RepositoryData
                )
            except KeyNotFoundError as exc:
                raise RepositoryNotFoundError(f"repository {rid!r} not found") from exc
            repo = Repository.from_proto(got.message)
            if repo.state is RepositoryState.IN_DELETION:
                return repo
            deleting = dataclasses.replace(repo, state=RepositoryState.IN_DELETION)
            set_message_if(
                self._store, layout.GRAVELER_PARTITION, key, deleting.to_proto(), got.predicate
            )
            return deleting

        return optimistic_update(
            attempt, self._retry, self._sleep, lambda: f"marking repository {rid!r} deleted"
        )

    def delete_repository_record(self, repository_id: str) -> None:
        """Remove the repository record itself (idempotent). The caller first removed what it
        reaches (see :meth:`lakekv.refs.RefStore.delete_repository`)."""
        rid = validate_repository_id(repository_id)
        self._store.delete(layout.GRAVELER_PARTITION, layout.repository_key(rid))

    # --- branches ----------------------------------------------------------------------------

    def create_branch(self, repo: RepoArg, branch_id: str, source: str) -> Branch:
        """Create ``branch_id`` at the commit ``source`` names (a branch, tag or commit ID),
        with a fresh staging token. BranchExistsError if it exists (create-only write);
        RefNotResolvedError if ``source`` names nothing."""
        bid = validate_branch_id(branch_id)
        validate_ref(source)
        r = self.repository(repo)
        commit = self.resolve_ref(r, source)
        branch = Branch(id=bid, commit_id=commit, staging_token=new_staging_token(r.id, bid))
        try:
            set_message_if(
                self._store, r.partition, layout.branch_key(bid), branch.to_proto(), None
            )
        except PredicateFailedError as exc:
            raise BranchExistsError(
                f"branch {bid!r} already exists in repository {r.id!r}"
            ) from exc
        return branch

    def list_branches(
        self,
        repo: RepoArg,
        *,
        prefix: str = "",
        after: str = "",
        limit: int | None = None,
        show_hidden: bool = False,
    ) -> Iterator[Branch]:
        """Branches in ID order (``prefix``, strictly ``after``, at most ``limit``). Hidden
        branches (``BranchData.hidden``, e.g. created with ``hidden: true``) are left out
        unless ``show_hidden``, as lakeFS's ``ListBranches`` does
        (``pkg/graveler/ref/branch_iterator.go``)."""
        r = self.repository(repo, allow_deleting=True)
        return self._list_records(
            r.partition,
            layout.BRANCHES_PREFIX,
            graveler_pb2.BranchData,
            Branch.from_proto,
            prefix=prefix,
            after=after,
            limit=limit,
            keep=None if show_hidden else lambda b: not b.hidden,
        )

    def list_branches_page(
        self,
        repo: RepoArg,
        *,
        prefix: str = "",
        after: str = "",
        amount: int = 100,
        show_hidden: bool = False,
    ) -> Page[Branch]:
        """One page of :meth:`list_branches`."""
        return page_of(
            self.list_branches(repo, prefix=prefix, after=after, show_hidden=show_hidden),
            amount,
            lambda b: b.id,
        )

    def delete_branch(self, repo: RepoArg, branch_id: str) -> Branch:
        """Delete the branch record; the branch as it was (its tokens are the caller's to drop).

        BranchNotFoundError if missing; DeleteDefaultBranchError for the default branch."""
        bid = validate_branch_id(branch_id)
        r = self.repository(repo)
        if bid == r.default_branch_id:
            raise DeleteDefaultBranchError(
                f"branch {bid!r} is the default branch of repository {r.id!r}"
            )
        branch = self.branch_and_predicate(r, bid)[0]
        self._store.delete(r.partition, layout.branch_key(bid))
        return branch

    def update_branch(self, repo: RepoArg, branch_id: str, fn: BranchUpdate) -> Branch:
        """Optimistically replace the branch with ``fn(branch)``.

        Reads the branch and its predicate, calls ``fn``, and writes with ``set_if``; when a
        concurrent writer got there first, backs off (exponentially, with jitter) and retries
        with a fresh read — ``fn`` may therefore run several times and must not have side
        effects it cannot repeat. Returns the stored branch. BranchNotFoundError if missing;
        ConcurrentUpdateError after ``retry.max_tries`` lost races; whatever ``fn`` raises.
        """
        bid = validate_branch_id(branch_id)
        r = self.repository(repo)
        key = layout.branch_key(bid)

        def attempt() -> Branch:
            current, predicate = self.branch_and_predicate(r, bid)
            new = fn(current)
            if not isinstance(new, Branch) or new.id != current.id:
                raise InvalidRefError(f"update_branch callback must return branch {bid!r}")
            if new != current:
                set_message_if(self._store, r.partition, key, new.to_proto(), predicate)
            return new

        return optimistic_update(
            attempt, self._retry, self._sleep, lambda: f"branch {bid!r} of repository {r.id!r}"
        )

    # --- tags --------------------------------------------------------------------------------

    def create_tag(self, repo: RepoArg, tag_id: str, source: str) -> Tag:
        """Tag the commit ``source`` names. TagExistsError if the tag exists (create-only)."""
        tid = validate_tag_id(tag_id)
        validate_ref(source)
        r = self.repository(repo)
        tag = Tag(id=tid, commit_id=self.resolve_ref(r, source))
        try:
            set_message_if(self._store, r.partition, layout.tag_key(tid), tag.to_proto(), None)
        except PredicateFailedError as exc:
            raise TagExistsError(f"tag {tid!r} already exists in repository {r.id!r}") from exc
        return tag

    def get_tag(self, repo: RepoArg, tag_id: str) -> Tag:
        """The tag; TagNotFoundError if missing."""
        tid = validate_tag_id(tag_id)
        r = self.repository(repo)
        try:
            got = get_message(self._store, r.partition, layout.tag_key(tid), graveler_pb2.TagData)
        except KeyNotFoundError as exc:
            raise TagNotFoundError(f"tag {tid!r} not found in repository {r.id!r}") from exc
        return Tag.from_proto(got.message)

    def list_tags(
        self, repo: RepoArg, *, prefix: str = "", after: str = "", limit: int | None = None
    ) -> Iterator[Tag]:
        """Tags in ID order (``prefix``, strictly ``after``, at most ``limit``)."""
        r = self.repository(repo, allow_deleting=True)
        return self._list_records(
            r.partition,
            layout.TAGS_PREFIX,
            graveler_pb2.TagData,
            Tag.from_proto,
            prefix=prefix,
            after=after,
            limit=limit,
        )

    def list_tags_page(
        self, repo: RepoArg, *, prefix: str = "", after: str = "", amount: int = 100
    ) -> Page[Tag]:
        """One page of :meth:`list_tags`."""
        return page_of(self.list_tags(repo, prefix=prefix, after=after), amount, lambda t: t.id)

    def delete_tag(self, repo: RepoArg, tag_id: str) -> None:
        """Delete a tag; TagNotFoundError if missing."""
        tid = validate_tag_id(tag_id)
        r = self.repository(repo)
        self.get_tag(r, tid)
        self._store.delete(r.partition, layout.tag_key(tid))

    # --- commits -----------------------------------------------------------------------------

    def new_commit(
        self,
        *,
        committer: str,
        message: str,
        meta_range_id: str,
        creation_date: datetime,
        metadata: Mapping[str, str],
        parents: Sequence[str],
        generation: int,
        version: int = COMMIT_VERSION,
    ) -> Commit:
        """A commit with its content address computed (:mod:`lakekv.refs.ident`); not stored."""
        cid = compute_commit_id(
            committer=committer,
            message=message,
            meta_range_id=meta_range_id,
            creation_date=creation_date,
            metadata=metadata,
            parents=parents,
        )
        return Commit(
            id=cid,
            committer=committer,
            message=message,
            creation_date=creation_date,
            meta_range_id=meta_range_id,
            metadata=dict(metadata),
            parents=tuple(parents),
            version=version,
            generation=generation,
        )

    def put_commit(self, repo: Repository, commit: Commit) -> None:
        """Store ``commit`` create-only; one already stored under its ID is this commit (the ID
        is its content address), so storing it again is a no-op."""
        with contextlib.suppress(PredicateFailedError):
            set_message_if(
                self._store, repo.partition, layout.commit_key(commit.id), commit.to_proto(), None
            )

    def add_commit(
        self,
        repo: RepoArg,
        *,
        committer: str,
        message: str,
        parents: Sequence[str] = (),
        meta_range_id: str = "",
        metadata: Mapping[str, str] | None = None,
        creation_date: datetime | None = None,
        generation: int | None = None,
        version: int = COMMIT_VERSION,
    ) -> Commit:
        """Store a commit under its content address and return it.

        Create-only and idempotent: adding the same commit again stores nothing and returns
        the same ID. ``generation`` defaults to 1 + the highest parent generation (1 without
        parents); the parents must then exist (CommitNotFoundError otherwise).
        """
        for p in parents:
            validate_commit_id(p)
        r = self.repository(repo)
        if generation is None:
            generation = 1 + max((self.get_commit(r, p).generation for p in parents), default=0)
        commit = self.new_commit(
            committer=committer,
            message=message,
            meta_range_id=meta_range_id,
            creation_date=creation_date if creation_date is not None else self._clock(),
            metadata=metadata or {},
            parents=parents,
            generation=generation,
            version=version,
        )
        self.put_commit(r, commit)
        return commit

    def get_commit(self, repo: RepoArg, commit_id: str) -> Commit:
        """The commit; CommitNotFoundError if missing."""
        cid = validate_commit_id(commit_id)
        r = self.repository(repo, allow_deleting=True)
        try:
            got = get_message(
                self._store, r.partition, layout.commit_key(cid), graveler_pb2.CommitData
            )
        except KeyNotFoundError as exc:
            raise CommitNotFoundError(f"commit {cid!r} not found in repository {r.id!r}") from exc
        return Commit.from_proto(got.message)

    def list_commits(
        self, repo: RepoArg, *, prefix: str = "", after: str = "", limit: int | None = None
    ) -> Iterator[Commit]:
        """Every stored commit, in commit-ID order (not history order: see :meth:`log`)."""
        r = self.repository(repo, allow_deleting=True)
        return self._list_records(
            r.partition,
            layout.COMMITS_PREFIX,
            graveler_pb2.CommitData,
            Commit.from_proto,
            prefix=prefix,
            after=after,
            limit=limit,
        )

    def resolve_ref(self, repo: RepoArg, ref: str) -> str:
        """The commit ID ``ref`` names: a branch, else a tag, else a commit ID.

        RefNotResolvedError if it is none of them."""
        name = validate_ref(ref)
        r = self.repository(repo, allow_deleting=True)
        try:
            return self.branch_and_predicate(r, validate_branch_id(name))[0].commit_id
        except (BranchNotFoundError, InvalidRefError):
            pass
        try:
            return self.get_tag(r, name).commit_id
        except (TagNotFoundError, InvalidRefError):
            pass
        try:
            return self.get_commit(r, name).id
        except (CommitNotFoundError, InvalidRefError):
            pass
        raise RefNotResolvedError(f"{name!r} is no branch, tag or commit of repository {r.id!r}")

    def log(
        self, repo: RepoArg, ref: str, *, limit: int | None = None, after: str = ""
    ) -> Iterator[Commit]:
        """The history of ``ref``: it and all its ancestors, each once, newest first, in
        lakeFS 1.86's order (``pkg/graveler/ref/commit_iterator.go``): a walk from ``ref``
        that always takes the newest commit reached so far by creation date, then by ID (both
        descending) — not by generation, so with merges of older branches a commit may come
        before one of higher generation, as lakeFS shows it. A missing ancestor raises
        CommitNotFoundError.

        ``after`` (a ref, resolved to its commit) pages on: only the commits that come after
        it in that walk — none when it is not in the history, as lakeFS's ``LogCommits``
        answers for ``after`` (``pkg/catalog/catalog.go``, ``ListCommits``' ``FromReference``).
        ``limit`` counts the commits returned."""
        r = self.repository(repo, allow_deleting=True)
        start = self.resolve_ref(r, ref)
        if limit is not None and limit < 0:
            raise InvalidRefError(f"limit must be >= 0, not {limit}")
        skip_to = self.resolve_ref(r, after) if after else None
        return self._walk(r, start, limit, skip_to)

    def _walk(
        self, repo: Repository, start: str, limit: int | None, skip_to: str | None
    ) -> Iterator[Commit]:
        heap = [_Newest(self.get_commit(repo, start))]
        seen = {start}
        produced = 0
        while heap and (limit is None or produced < limit):
            commit = heapq.heappop(heap).commit
            if skip_to is None:
                yield commit
                produced += 1
            elif commit.id == skip_to:
                skip_to = None
            for parent in commit.parents:
                if parent not in seen:
                    seen.add(parent)
                    heapq.heappush(heap, _Newest(self.get_commit(repo, parent)))


class _Newest:
    """Heap item: the newest commit (creation date, then ID, descending) pops first, as in
    lakeFS's ``commitsPriorityQueue.Less``."""

    __slots__ = ("commit",)

    def __init__(self, commit: Commit) -> None:
        self.commit = commit

    def __lt__(self, other: _Newest) -> bool:
        a, b = self.commit, other.commit
        return (a.creation_date, a.id) > (b.creation_date, b.id)
