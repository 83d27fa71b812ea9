"""The ref store: lakeFS repositories, branches, tags, commits and staged objects over a Store.

Everything is stored exactly as lakeFS stores it (see :mod:`lakekv.record.layout`), so a lakeFS
server can share the database. Policies are expressed with the store's atomic primitive:

* create-only records (repository, branch, tag, commit) are ``set_if(None)``; a predicate failure
  becomes ``RepositoryExistsError`` / ``BranchExistsError`` / ``TagExistsError`` — or, for a
  commit, means "already there" (commits are content-addressed, so adding is idempotent);
* a branch update is optimistic: read (value + predicate), compute, ``set_if(predicate)``, and
  on a lost race back off exponentially and retry, up to ``RetryPolicy.max_tries``
  (then ``ConcurrentUpdateError``).

IDs are validated with lakeFS's rules (:mod:`lakekv.refs.ids`) before any read or write.
Every method taking ``repo`` accepts a repository ID or a :class:`Repository` already read.
A ``RefStore`` is safe to share between threads.

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

import contextlib
import dataclasses
import heapq
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime

from lakekv.errors import KeyNotFoundError, PredicateFailedError
from lakekv.record import layout
from lakekv.record.codec import get_message, set_message_if
from lakekv.record.proto import graveler_pb2
from lakekv.refs._base import RepoArg
from lakekv.refs.errors import (
    BranchExistsError,
    BranchMovedError,
    BranchNotFoundError,
    CommitNotFoundError,
    ConcurrentUpdateError,
    DeleteDefaultBranchError,
    InvalidRefError,
    RefNotResolvedError,
    RepositoryExistsError,
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
from lakekv.refs.models import (
    Branch,
    Commit,
    Page,
    Repository,
    RepositoryState,
    Tag,
)
from lakekv.refs.staging import StagingOps

FIRST_COMMIT_MESSAGE = "Repository created"
"""The message of a repository's initial commit (as in lakeFS)."""
COMMIT_VERSION = 1
"""``CommitData.version`` written for new commits (lakeFS's current commit version)."""

BranchUpdate = Callable[[Branch], Branch]
"""``update_branch`` callback: the current branch → the branch to store (same ``id``).
Returning it unchanged writes nothing; raising aborts the update."""


class RefStore(StagingOps):
    """Repositories, branches, tags, commits and staged objects over one Store.

    ``retry`` governs optimistic branch and staged-entry updates; ``staged_write_tries`` bounds
    the staging-token re-check of staged writes (lakeFS: 3); ``clock`` supplies creation
    times (UTC); ``sleep`` is the backoff sleep (tests may replace it).
    """

    # --- repositories ------------------------------------------------------------------------

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
        first = self._new_commit(
            committer=committer,
            message=FIRST_COMMIT_MESSAGE,
            meta_range_id="",
            creation_date=when,
            metadata={},
            parents=(),
            generation=1,
        )
        self._put_commit(repo, first)
        branch = Branch(id=bid, commit_id=first.id, staging_token=new_staging_token(rid, bid))
        set_message_if(self._store, repo.partition, layout.branch_key(bid), branch.to_proto(), None)
        try:
            set_message_if(
                self._store, layout.GRAVELER_PARTITION, record_key, repo.to_proto(), None
            )
        except PredicateFailedError as exc:
            self._drop_partition(repo.partition)
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
        return self._page(
            self.list_repositories(prefix=prefix, after=after), amount, lambda r: r.id
        )

    def delete_repository(self, repository_id: str) -> None:
        """Delete a repository and everything it reaches.

        Marks the record ``IN_DELETION`` (other calls then refuse the repository), drops the
        staging and sealed partitions of every branch (lakeFS leaves these behind), its
        pull-request index entries, every key of the repository partition (branches, tags,
        commits, metadata, settings, …), and finally the record. Re-running after a crash
        resumes the deletion. RepositoryNotFoundError if there is no such repository.
        """
        rid = validate_repository_id(repository_id)
        repo = self._mark_in_deletion(rid)
        for branch in self.list_branches(repo):
            for token in branch.tokens:
                self._drop_partition(token.encode())
        self._drop_partition(layout.PULLS_INDEX_PARTITION, b"repos/" + repo.partition + b"/")
        self._drop_partition(repo.partition)
        self._store.delete(layout.GRAVELER_PARTITION, layout.repository_key(rid))

    def _mark_in_deletion(self, rid: str) -> Repository:
        key = layout.repository_key(rid)
        delays = self._retry.delays()
        while True:
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
            try:
                set_message_if(
                    self._store, layout.GRAVELER_PARTITION, key, deleting.to_proto(), got.predicate
                )
            except PredicateFailedError as exc:
                delay = next(delays, None)
                if delay is None:
                    raise ConcurrentUpdateError(
                        f"repository {rid!r} kept changing while marking it for deletion"
                    ) from exc
                self._sleep(delay)
                continue
            return deleting

    # --- branches ----------------------------------------------------------------------------

    def create_branch(self, repo: RepoArg, branch_id: str, source: str) -> Branch:
        """Create ``branch_id`` at the commit ``source`` names (a branch, tag or commit ID),
        with a fresh staging token. BranchExistsError if it exists (create-only write);
        RefNotResolvedError if ``source`` names nothing."""
        bid = validate_branch_id(branch_id)
        validate_ref(source)
        r = self._repo(repo)
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
        self, repo: RepoArg, *, prefix: str = "", after: str = "", limit: int | None = None
    ) -> Iterator[Branch]:
        """Branches in ID order (``prefix``, strictly ``after``, at most ``limit``)."""
        r = self._repo(repo, allow_deleting=True)
        return self._list_records(
            r.partition,
            layout.BRANCHES_PREFIX,
            graveler_pb2.BranchData,
            Branch.from_proto,
            prefix=prefix,
            after=after,
            limit=limit,
        )

    def list_branches_page(
        self, repo: RepoArg, *, prefix: str = "", after: str = "", amount: int = 100
    ) -> Page[Branch]:
        """One page of :meth:`list_branches`."""
        return self._page(
            self.list_branches(repo, prefix=prefix, after=after), amount, lambda b: b.id
        )

    def delete_branch(self, repo: RepoArg, branch_id: str) -> None:
        """Delete a branch and drop its staging and sealed partitions.

        BranchNotFoundError if missing; DeleteDefaultBranchError for the default branch."""
        bid = validate_branch_id(branch_id)
        r = self._repo(repo)
        if bid == r.default_branch_id:
            raise DeleteDefaultBranchError(
                f"branch {bid!r} is the default branch of repository {r.id!r}"
            )
        branch = self._get_branch_with_predicate(r, bid)[0]
        self._store.delete(r.partition, layout.branch_key(bid))
        for token in branch.tokens:
            self._drop_partition(token.encode())

    def update_branch(self, repo: RepoArg, branch_id: str, fn: BranchUpdate) -> Branch:
        """Optimistically replace the branch with ``fn(branch)``.

        Reads the branch and its predicate, calls ``fn``, and writes with ``set_if``; when a
        concurrent writer got there first, backs off (exponentially, with jitter) and retries
        with a fresh read — ``fn`` may therefore run several times and must not have side
        effects it cannot repeat. Returns the stored branch. BranchNotFoundError if missing;
        ConcurrentUpdateError after ``retry.max_tries`` lost races; whatever ``fn`` raises.
        """
        bid = validate_branch_id(branch_id)
        r = self._repo(repo)
        key = layout.branch_key(bid)
        delays = self._retry.delays()
        while True:
            current, predicate = self._get_branch_with_predicate(r, bid)
            new = fn(current)
            if not isinstance(new, Branch) or new.id != current.id:
                raise InvalidRefError(f"update_branch callback must return branch {bid!r}")
            if new == current:
                return current
            try:
                set_message_if(self._store, r.partition, key, new.to_proto(), predicate)
            except PredicateFailedError as exc:
                delay = next(delays, None)
                if delay is None:
                    raise ConcurrentUpdateError(
                        f"branch {bid!r} of repository {r.id!r}: update lost to concurrent "
                        f"writers {self._retry.max_tries} times"
                    ) from exc
                self._sleep(delay)
                continue
            return new

    # --- tags --------------------------------------------------------------------------------

    def create_tag(self, repo: RepoArg, tag_id: str, source: str) -> Tag:
        """Tag the commit ``source`` names. TagExistsError if the tag exists (create-only)."""
        tid = validate_tag_id(tag_id)
        validate_ref(source)
        r = self._repo(repo)
        tag = Tag(id=tid, commit_id=self.resolve_ref(r, source))
        try:
            set_message_if(self._store, r.partition, layout.tag_key(tid), tag.to_proto(), None)
        except PredicateFailedError as exc:
            raise TagExistsError(f"tag {tid!r} already exists in repository {r.id!r}") from exc
        return tag

    def get_tag(self, repo: RepoArg, tag_id: str) -> Tag:
        """The tag; TagNotFoundError if missing."""
        tid = validate_tag_id(tag_id)
        r = self._repo(repo)
        try:
            got = get_message(self._store, r.partition, layout.tag_key(tid), graveler_pb2.TagData)
        except KeyNotFoundError as exc:
            raise TagNotFoundError(f"tag {tid!r} not found in repository {r.id!r}") from exc
        return Tag.from_proto(got.message)

    def list_tags(
        self, repo: RepoArg, *, prefix: str = "", after: str = "", limit: int | None = None
    ) -> Iterator[Tag]:
        """Tags in ID order (``prefix``, strictly ``after``, at most ``limit``)."""
        r = self._repo(repo, allow_deleting=True)
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
        return self._page(self.list_tags(repo, prefix=prefix, after=after), amount, lambda t: t.id)

    def delete_tag(self, repo: RepoArg, tag_id: str) -> None:
        """Delete a tag; TagNotFoundError if missing."""
        tid = validate_tag_id(tag_id)
        r = self._repo(repo)
        self.get_tag(r, tid)
        self._store.delete(r.partition, layout.tag_key(tid))

    # --- commits -----------------------------------------------------------------------------

    def _new_commit(
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

    def _put_commit(self, repo: Repository, commit: Commit) -> None:
        # Content-addressed: a commit already stored under this ID is this commit.
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
        r = self._repo(repo)
        if generation is None:
            generation = 1 + max((self.get_commit(r, p).generation for p in parents), default=0)
        commit = self._new_commit(
            committer=committer,
            message=message,
            meta_range_id=meta_range_id,
            creation_date=creation_date if creation_date is not None else self._clock(),
            metadata=metadata or {},
            parents=parents,
            generation=generation,
            version=version,
        )
        self._put_commit(r, commit)
        return commit

    def get_commit(self, repo: RepoArg, commit_id: str) -> Commit:
        """The commit; CommitNotFoundError if missing."""
        cid = validate_commit_id(commit_id)
        r = self._repo(repo, allow_deleting=True)
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
        r = self._repo(repo, allow_deleting=True)
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
        r = self._repo(repo, allow_deleting=True)
        try:
            return self._get_branch_with_predicate(r, validate_branch_id(name))[0].commit_id
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

    def log(self, repo: RepoArg, ref: str, *, limit: int | None = None) -> Iterator[Commit]:
        """The history of ``ref``: it and all its ancestors, each once, newest first — by
        generation, then creation date, then ID (all descending). A missing ancestor raises
        CommitNotFoundError."""
        r = self._repo(repo, allow_deleting=True)
        start = self.resolve_ref(r, ref)
        if limit is not None and limit < 0:
            raise InvalidRefError(f"limit must be >= 0, not {limit}")
        return self._walk(r, start, limit)

    def _walk(self, repo: Repository, start: str, limit: int | None) -> Iterator[Commit]:
        heap = [_Newest(self.get_commit(repo, start))]
        seen = {start}
        produced = 0
        while heap and (limit is None or produced < limit):
            commit = heapq.heappop(heap).commit
            yield commit
            produced += 1
            for parent in commit.parents:
                if parent not in seen:
                    seen.add(parent)
                    heapq.heappush(heap, _Newest(self.get_commit(repo, parent)))

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
        r = self._repo(repo)
        new_token = new_staging_token(r.id, bid)

        def seal(b: Branch) -> Branch:
            return dataclasses.replace(
                b, staging_token=new_token, sealed_tokens=(b.staging_token, *b.sealed_tokens)
            )

        sealed = self.update_branch(r, bid, seal)
        committed_tokens = set(sealed.sealed_tokens)
        parent_id = sealed.commit_id
        parent = self.get_commit(r, parent_id)
        new_commit = self._new_commit(
            committer=committer,
            message=message,
            meta_range_id=meta_range_id,
            creation_date=creation_date if creation_date is not None else self._clock(),
            metadata=metadata or {},
            parents=(parent_id,),
            generation=parent.generation + 1,
        )
        self._put_commit(r, new_commit)

        def advance(b: Branch) -> Branch:
            if b.commit_id != parent_id:
                raise BranchMovedError(
                    f"branch {bid!r} moved from {parent_id} to {b.commit_id} during a commit"
                )
            remaining = tuple(t for t in b.sealed_tokens if t not in committed_tokens)
            return dataclasses.replace(b, commit_id=new_commit.id, sealed_tokens=remaining)

        self.update_branch(r, bid, advance)
        for token in sealed.sealed_tokens:
            self._store.set(
                layout.CLEANUP_TOKENS_PARTITION, token.encode(), layout.CLEANUP_STUB_VALUE
            )
            self._drop_partition(token.encode())
            self._store.delete(layout.CLEANUP_TOKENS_PARTITION, token.encode())
        return new_commit


class _Newest:
    """Heap item: the newest commit (generation, then date, then ID, descending) pops first."""

    __slots__ = ("commit",)

    def __init__(self, commit: Commit) -> None:
        self.commit = commit

    def __lt__(self, other: _Newest) -> bool:
        a, b = self.commit, other.commit
        return (a.generation, a.creation_date, a.id) > (b.generation, b.creation_date, b.id)
