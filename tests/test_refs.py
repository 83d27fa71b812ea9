"""The ref store over every configured backend (``--store``): each test gets an empty store."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from lakekv.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    KeyNotFoundError,
    NotFoundError,
    PredicateFailedError,
    RefError,
    UnsupportedError,
)
from lakekv.kv.store import Store
from lakekv.record import layout
from lakekv.record.proto import catalog_pb2, graveler_pb2
from lakekv.record.registry import LAKEFS_TYPES
from lakekv.refs import (
    FIRST_COMMIT_MESSAGE,
    Branch,
    BranchExistsError,
    BranchMovedError,
    BranchNotFoundError,
    Commit,
    CommitNotFoundError,
    ConcurrentUpdateError,
    DeleteDefaultBranchError,
    InvalidIDError,
    RefNotResolvedError,
    RefStore,
    Repository,
    RepositoryExistsError,
    RepositoryInDeletionError,
    RepositoryNotFoundError,
    RepositoryState,
    RetryPolicy,
    StagedEntry,
    StagedObjectNotFoundError,
    Tag,
    TagExistsError,
    TagNotFoundError,
)
from lakekv.refs.orphans import OrphanKind, find_orphans

T0 = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
FAST_RETRY = RetryPolicy(max_tries=200, initial_interval=0.0005, max_interval=0.02)


@pytest.fixture
def refs(fresh_store: Store) -> RefStore:
    return RefStore(fresh_store, retry=FAST_RETRY)


@pytest.fixture
def repo(refs: RefStore) -> Repository:
    return refs.create_repository("repo-one", "s3://bucket/repo-one", creation_date=T0)


def partition_keys(store: Store, partition: bytes) -> list[bytes]:
    with store.scan(partition) as it:
        return [e.key for e in it]


def entry(address: str, size: int = 1) -> catalog_pb2.Entry:
    return catalog_pb2.Entry(address=address, size=size, e_tag=f"etag-{address}")


# --- repositories -----------------------------------------------------------------------------


def test_create_repository_writes_commit_branch_and_record(
    refs: RefStore, fresh_store: Store
) -> None:
    repo = refs.create_repository("my-repo", "s3://b/p", "trunk", creation_date=T0)
    assert repo.state is RepositoryState.ACTIVE
    assert len(repo.instance_uid) == 20
    assert repo.partition == f"my-repo-{repo.instance_uid}".encode()
    assert refs.get_repository("my-repo") == repo
    branch = refs.get_branch("my-repo", "trunk")
    assert branch.staging_token.startswith("my-repo-trunk:")
    first = refs.get_commit(repo, branch.commit_id)
    assert first.message == FIRST_COMMIT_MESSAGE
    assert first.generation == 1
    assert first.parents == ()
    assert first.creation_date == T0
    keys = partition_keys(fresh_store, repo.partition)
    assert keys == [b"branches/trunk", b"commits/" + first.id.encode()]
    assert partition_keys(fresh_store, b"graveler") == [b"repos/my-repo"]


def test_create_repository_twice_raises_exists(refs: RefStore, repo: Repository) -> None:
    with pytest.raises(RepositoryExistsError) as info:
        refs.create_repository(repo.id, "s3://other")
    assert isinstance(info.value, AlreadyExistsError)
    assert isinstance(info.value, RefError)
    assert refs.get_repository(repo.id) == repo


def test_lost_create_race_removes_its_fresh_partition(
    refs: RefStore, fresh_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another creator wins between the existence check and the create-only record write.
    real_set_if = fresh_store.set_if
    made: list[bytes] = []

    def racing_set_if(partition: bytes, key: bytes, value: bytes, predicate: object) -> None:
        if partition == b"graveler":
            real_set_if(partition, key, b"someone else", None)
        else:
            made.append(partition)
        real_set_if(partition, key, value, predicate)

    monkeypatch.setattr(fresh_store, "set_if", racing_set_if)
    with pytest.raises(RepositoryExistsError) as info:
        refs.create_repository("raced", "s3://b")
    assert isinstance(info.value.__cause__, PredicateFailedError)
    assert made, "the commit and branch were written before the record"
    assert all(partition_keys(fresh_store, p) == [] for p in set(made))


def test_get_missing_repository(refs: RefStore) -> None:
    with pytest.raises(RepositoryNotFoundError) as info:
        refs.get_repository("nope-nope")
    assert isinstance(info.value, NotFoundError)
    assert isinstance(info.value.__cause__, KeyNotFoundError)


def test_list_repositories_ordered_prefix_after_and_pages(refs: RefStore) -> None:
    ids = ["b-repo", "a-repo", "a-repo-2", "c-repo", "a-zzz"]
    for rid in ids:
        refs.create_repository(rid, f"s3://b/{rid}")
    assert [r.id for r in refs.list_repositories()] == sorted(ids)
    assert [r.id for r in refs.list_repositories(prefix="a-")] == ["a-repo", "a-repo-2", "a-zzz"]
    assert [r.id for r in refs.list_repositories(after="a-repo")] == [
        "a-repo-2",
        "a-zzz",
        "b-repo",
        "c-repo",
    ]
    assert [r.id for r in refs.list_repositories(prefix="a-", after="a-repo", limit=1)] == [
        "a-repo-2"
    ]
    seen: list[str] = []
    after = ""
    while True:
        page = refs.list_repositories_page(after=after, amount=2)
        seen.extend(r.id for r in page.items)
        assert len(page.items) <= 2
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == sorted(ids)


def test_delete_repository_removes_everything_including_staging(
    refs: RefStore, fresh_store: Store, repo: Repository
) -> None:
    refs.create_branch(repo, "dev", "main")
    refs.stage_object(repo, "dev", b"a", entry("a"))
    refs.stage_object(repo, "main", b"m", entry("m"))
    # A commit that leaves a sealed token behind (simulating an interrupted commit).
    refs.update_branch(
        repo, "dev", lambda b: dataclasses.replace(b, sealed_tokens=("repo-one-dev:sealed",))
    )
    fresh_store.set(b"repo-one-dev:sealed", b"s", b"")
    refs.create_tag(repo, "v1", "main")
    tokens = [t for b in refs.list_branches(repo) for t in b.tokens]
    assert len(tokens) == 3
    refs.delete_repository(repo.id)
    with pytest.raises(RepositoryNotFoundError):
        refs.get_repository(repo.id)
    assert partition_keys(fresh_store, repo.partition) == []
    for token in tokens:
        assert partition_keys(fresh_store, token.encode()) == []
    assert partition_keys(fresh_store, b"graveler") == []
    # Re-created under the same name: a fresh instance UID and partition.
    again = refs.create_repository(repo.id, "s3://bucket/again")
    assert again.instance_uid != repo.instance_uid
    assert again.partition != repo.partition
    assert [b.id for b in refs.list_branches(again)] == ["main"]


def test_delete_missing_repository(refs: RefStore) -> None:
    with pytest.raises(RepositoryNotFoundError):
        refs.delete_repository("not-there")


def test_repository_in_deletion_refuses_writes_and_deletion_resumes(
    refs: RefStore, fresh_store: Store, repo: Repository
) -> None:
    record = dataclasses.replace(repo, state=RepositoryState.IN_DELETION)
    fresh_store.set(
        b"graveler", b"repos/" + repo.id.encode(), record.to_proto().SerializeToString()
    )
    with pytest.raises(RepositoryInDeletionError) as info:
        refs.create_branch(repo.id, "x", "main")
    assert isinstance(info.value, ConflictError)
    assert [r.state for r in refs.list_repositories()] == [RepositoryState.IN_DELETION]
    refs.delete_repository(repo.id)
    assert list(refs.list_repositories()) == []
    assert partition_keys(fresh_store, repo.partition) == []


# --- branches ---------------------------------------------------------------------------------


def test_branch_create_get_list_delete(
    refs: RefStore, fresh_store: Store, repo: Repository
) -> None:
    main = refs.get_branch(repo, "main")
    dev = refs.create_branch(repo, "dev", "main")
    assert dev.commit_id == main.commit_id
    assert dev.staging_token != main.staging_token
    assert refs.get_branch(repo.id, "dev") == dev
    refs.create_branch(repo, "feature-1", main.commit_id)
    assert [b.id for b in refs.list_branches(repo)] == ["dev", "feature-1", "main"]
    assert [b.id for b in refs.list_branches(repo, prefix="f")] == ["feature-1"]
    assert [b.id for b in refs.list_branches(repo, after="dev", limit=1)] == ["feature-1"]
    page = refs.list_branches_page(repo, amount=2)
    assert [b.id for b in page.items] == ["dev", "feature-1"]
    assert page.next_after == "feature-1"
    # A hidden branch is left out unless asked for, as lakeFS's ListBranches does; ``limit``
    # counts what is listed.
    refs.update_branch(repo, "dev", lambda b: dataclasses.replace(b, hidden=True))
    assert [b.id for b in refs.list_branches(repo, limit=1)] == ["feature-1"]
    assert [b.id for b in refs.list_branches(repo, show_hidden=True, limit=1)] == ["dev"]
    assert refs.list_branches_page(repo, amount=5).next_after is None
    refs.stage_object(repo, "dev", b"k", entry("k"))
    refs.delete_branch(repo, "dev")
    with pytest.raises(BranchNotFoundError):
        refs.get_branch(repo, "dev")
    assert partition_keys(fresh_store, dev.staging_token.encode()) == []
    with pytest.raises(BranchNotFoundError):
        refs.delete_branch(repo, "dev")


def test_branch_create_errors(refs: RefStore, repo: Repository) -> None:
    refs.create_branch(repo, "dev", "main")
    with pytest.raises(BranchExistsError) as info:
        refs.create_branch(repo, "dev", "main")
    assert isinstance(info.value.__cause__, PredicateFailedError)
    with pytest.raises(RefNotResolvedError):
        refs.create_branch(repo, "other", "no-such-ref")
    with pytest.raises(DeleteDefaultBranchError) as info2:
        refs.delete_branch(repo, "main")
    assert isinstance(info2.value, InvalidArgumentError)


def test_update_branch_no_change_writes_nothing(
    refs: RefStore, repo: Repository, fresh_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = refs.get_branch(repo, "main")

    def no_writes(*_args: object) -> None:
        raise AssertionError("unexpected write")

    monkeypatch.setattr(fresh_store, "set_if", no_writes)
    assert refs.update_branch(repo, "main", lambda b: b) == before


def test_update_branch_rejects_id_change(refs: RefStore, repo: Repository) -> None:
    with pytest.raises(InvalidArgumentError):
        refs.update_branch(repo, "main", lambda b: dataclasses.replace(b, id="other"))


def test_update_branch_gives_up_with_concurrent_update_error(
    fresh_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    refs = RefStore(
        fresh_store, retry=RetryPolicy(max_tries=4, initial_interval=0.01), sleep=sleeps.append
    )
    repo = refs.create_repository("contended", "s3://b")
    calls = 0

    def interfering(b: Branch) -> Branch:
        nonlocal calls
        calls += 1
        # Someone else updates the branch after our read: our set_if must fail.
        other = dataclasses.replace(b, commit_id=f"other-{calls}")
        fresh_store.set(repo.partition, b"branches/main", other.to_proto().SerializeToString())
        return dataclasses.replace(b, commit_id="mine")

    with pytest.raises(ConcurrentUpdateError) as info:
        refs.update_branch(repo, "main", interfering)
    assert isinstance(info.value, ConflictError)
    assert isinstance(info.value.__cause__, PredicateFailedError)
    assert calls == 4
    assert len(sleeps) == 3
    # Exponential with ±50 % jitter: 0.01, 0.02, 0.04 seconds.
    for sleep, interval in zip(sleeps, (0.01, 0.02, 0.04), strict=True):
        assert interval * 0.5 <= sleep <= interval * 1.5
    assert refs.get_branch(repo, "main").commit_id == "other-4"


def run_threads(n: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def wrapped(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]


def test_eight_threads_updating_one_branch_lose_no_update(refs: RefStore, repo: Repository) -> None:
    refs.update_branch(repo, "main", lambda b: dataclasses.replace(b, commit_id="0"))
    per_thread = 10
    results: list[int] = []
    lock = threading.Lock()

    def increment(b: Branch) -> Branch:
        return dataclasses.replace(b, commit_id=str(int(b.commit_id) + 1))

    def worker(_i: int) -> None:
        for _ in range(per_thread):
            stored = refs.update_branch(repo, "main", increment)
            with lock:
                results.append(int(stored.commit_id))

    run_threads(8, worker)
    # Every successful update saw a distinct predecessor: values 1..80, each exactly once.
    assert sorted(results) == list(range(1, 8 * per_thread + 1))
    assert refs.get_branch(repo, "main").commit_id == str(8 * per_thread)


@pytest.mark.parametrize("kind", ["branch", "tag"])
def test_two_threads_creating_the_same_ref_exactly_one_wins(
    refs: RefStore, repo: Repository, kind: str
) -> None:
    rounds = 5
    for r in range(rounds):
        name = f"race-{r}"
        barrier = threading.Barrier(2)
        outcomes: list[object] = [None, None]

        def create(
            i: int,
            name: str = name,
            barrier: threading.Barrier = barrier,
            outcomes: list[object] = outcomes,
        ) -> None:
            barrier.wait()
            try:
                if kind == "branch":
                    outcomes[i] = refs.create_branch(repo, name, "main")
                else:
                    outcomes[i] = refs.create_tag(repo, name, "main")
            except (BranchExistsError, TagExistsError) as exc:
                outcomes[i] = exc

        run_threads(2, create)
        winners = [o for o in outcomes if isinstance(o, Branch | Tag)]
        losers = [o for o in outcomes if isinstance(o, BranchExistsError | TagExistsError)]
        assert len(winners) == 1
        assert len(losers) == 1
        expected = BranchExistsError if kind == "branch" else TagExistsError
        assert isinstance(losers[0], expected)
        stored = refs.get_branch(repo, name) if kind == "branch" else refs.get_tag(repo, name)
        assert stored == winners[0]


# --- ID validation ----------------------------------------------------------------------------


@pytest.fixture
def no_writes(fresh_store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*_args: object) -> None:
        raise AssertionError("a write happened before validation")

    for name in ("set", "set_if", "delete", "get", "scan"):
        monkeypatch.setattr(fresh_store, name, refuse)
    yield


BAD_REPOSITORY_IDS = [
    "",
    "ab",
    "Upper-case",
    "-dash-first",
    "under_score",
    "a" * 64,
    "sp ace",
    "é-r",
]
BAD_BRANCH_IDS = ["", "-x", "a/b", "a b", "é", "a:b", "a.b"]
BAD_TAG_IDS = [
    *("", "@", "a..b", "a//b", "a/", "a.", "x.lock", "a b", "a~^", "q?", "a[", "a\\b"),
    *("a@{b", "a/.b", "/abs", "tab\tx", "v1/patch", "release/v1"),
]


def test_invalid_repository_ids_rejected_before_any_io(refs: RefStore, no_writes: None) -> None:
    for bad in BAD_REPOSITORY_IDS:
        with pytest.raises(InvalidIDError):
            refs.create_repository(bad, "s3://b")
        with pytest.raises(InvalidIDError):
            refs.get_repository(bad)
        with pytest.raises(InvalidIDError):
            refs.delete_repository(bad)


def test_invalid_branch_ids_rejected_before_any_io(refs: RefStore, no_writes: None) -> None:
    for bad in BAD_BRANCH_IDS:
        with pytest.raises(InvalidIDError):
            refs.create_repository("good-repo", "s3://b", bad)
        with pytest.raises(InvalidIDError):
            refs.create_branch("good-repo", bad, "main")
        with pytest.raises(InvalidIDError):
            refs.update_branch("good-repo", bad, lambda b: b)
        with pytest.raises(InvalidIDError):
            refs.set_staged("good-repo", bad, StagedEntry(b"k", b"i", b""))
        with pytest.raises(InvalidIDError):
            refs.commit("good-repo", bad, committer="c", message="m")


def test_invalid_tag_ids_rejected_before_any_io(refs: RefStore, no_writes: None) -> None:
    for bad in BAD_TAG_IDS:
        with pytest.raises(InvalidIDError):
            refs.create_tag("good-repo", bad, "main")
        with pytest.raises(InvalidIDError):
            refs.get_tag("good-repo", bad)


def test_valid_unusual_ids(refs: RefStore) -> None:
    repo = refs.create_repository("a-b", "s3://b", "_x-1")
    # lakeFS allows these (pkg/graveler/validate.go): '~', a leading '.', DEL.
    for tag in ("release-v1.0~rc1", ".hidden", "del\x7f"):
        refs.create_tag(repo, tag, "_x-1")
    assert [t.id for t in refs.list_tags(repo)] == [".hidden", "del\x7f", "release-v1.0~rc1"]


# --- tags -------------------------------------------------------------------------------------


def test_tags(refs: RefStore, repo: Repository) -> None:
    head = refs.get_branch(repo, "main").commit_id
    t1 = refs.create_tag(repo, "v1", "main")
    assert t1 == Tag("v1", head)
    refs.create_tag(repo, "v1-patch", head)
    refs.create_tag(repo, "v2", "v1")
    assert refs.get_tag(repo, "v2").commit_id == head
    assert [t.id for t in refs.list_tags(repo)] == ["v1", "v1-patch", "v2"]
    assert [t.id for t in refs.list_tags(repo, prefix="v1-")] == ["v1-patch"]
    assert [t.id for t in refs.list_tags(repo, after="v1-patch")] == ["v2"]
    with pytest.raises(TagExistsError):
        refs.create_tag(repo, "v1", "main")
    refs.delete_tag(repo, "v1")
    with pytest.raises(TagNotFoundError):
        refs.get_tag(repo, "v1")
    with pytest.raises(TagNotFoundError):
        refs.delete_tag(repo, "v1")


# --- commits and log --------------------------------------------------------------------------


def test_add_commit_is_create_only_and_idempotent(
    refs: RefStore, fresh_store: Store, repo: Repository
) -> None:
    root = refs.get_branch(repo, "main").commit_id

    def add() -> Commit:
        return refs.add_commit(
            repo,
            committer="me",
            message="hello",
            parents=[root],
            metadata={"k": "v"},
            creation_date=T0,
        )

    c1 = add()
    assert c1.generation == 2
    c2 = add()
    assert c1 == c2
    assert refs.get_commit(repo, c1.id) == c1
    commit_keys = [
        k for k in partition_keys(fresh_store, repo.partition) if k.startswith(b"commits/")
    ]
    assert len(commit_keys) == 2
    with pytest.raises(CommitNotFoundError):
        refs.get_commit(repo, "0" * 64)


def test_log_walks_parents_newest_first(refs: RefStore, repo: Repository) -> None:
    root = refs.get_branch(repo, "main").commit_id

    def add(msg: str, parents: list[str], seconds: int) -> str:
        return refs.add_commit(
            repo,
            committer="me",
            message=msg,
            parents=parents,
            creation_date=T0 + timedelta(seconds=seconds),
        ).id

    a = add("a", [root], 10)
    b = add("b", [a], 20)
    c = add("c", [a], 30)  # a sibling of b: same generation, later date
    m = add("merge", [b, c], 40)
    d = add("d", [m], 50)
    merge = refs.get_commit(repo, m)
    assert merge.generation == 4
    assert merge.parents == (b, c)
    log = [x.message for x in refs.log(repo, d)]
    assert log == ["d", "merge", "c", "b", "a", FIRST_COMMIT_MESSAGE]
    assert [x.message for x in refs.log(repo, d, limit=2)] == ["d", "merge"]
    # Paging as lakeFS's LogCommits: after = a commit of the walk (or a ref naming one).
    assert [x.message for x in refs.log(repo, d, after=m, limit=2)] == ["c", "b"]
    assert [x.message for x in refs.log(repo, d, after=b)] == ["a", FIRST_COMMIT_MESSAGE]
    assert list(refs.log(repo, b, after=c)) == []  # c is not in b's history
    refs.create_tag(repo, "t", b)
    assert [x.message for x in refs.log(repo, "t")] == ["b", "a", FIRST_COMMIT_MESSAGE]
    with pytest.raises(RefNotResolvedError):
        list(refs.log(repo, "nothing"))


def test_log_orders_by_date_then_id_like_lakefs(refs: RefStore, repo: Repository) -> None:
    """lakeFS 1.86 (pkg/graveler/ref/commit_iterator.go) takes the newest reachable commit by
    creation date, then ID — not by generation: a recent side branch merged into a longer,
    older line of commits comes first."""
    root = refs.get_branch(repo, "main").commit_id

    def add(msg: str, parents: list[str], seconds: int) -> str:
        return refs.add_commit(
            repo,
            committer="me",
            message=msg,
            parents=parents,
            creation_date=T0 + timedelta(seconds=seconds),
        ).id

    a = add("a", [root], 10)
    b = add("b", [a], 20)
    c = add("c", [b], 30)  # generation 4
    x = add("x", [root], 40)  # generation 2, newer
    y = add("y", [root], 40)  # same date as x: the larger ID first
    m = add("merge", [c, x, y], 50)
    log = [x.message for x in refs.log(repo, m)]
    same_date = ["x", "y"] if x > y else ["y", "x"]
    assert log == ["merge", *same_date, "c", "b", "a", FIRST_COMMIT_MESSAGE]
    assert [x.message for x in refs.log(repo, m, limit=2)] == ["merge", same_date[0]]


def test_commit_flow(refs: RefStore, fresh_store: Store, repo: Repository) -> None:
    before = refs.get_branch(repo, "main")
    refs.stage_object(repo, "main", b"data/a", entry("a"))
    refs.delete_staged(repo, "main", b"data/b")
    commit = refs.commit(
        repo, "main", committer="me", message="first data", metadata={"x": "y"}, creation_date=T0
    )
    after = refs.get_branch(repo, "main")
    assert after.commit_id == commit.id
    assert after.sealed_tokens == ()
    assert after.staging_token != before.staging_token
    assert commit.parents == (before.commit_id,)
    assert commit.generation == 2
    assert dict(commit.metadata) == {"x": "y"}
    assert partition_keys(fresh_store, before.staging_token.encode()) == []
    assert partition_keys(fresh_store, layout.CLEANUP_TOKENS_PARTITION) == []
    assert list(refs.list_staged(repo, "main")) == []
    assert [c.id for c in refs.log(repo, "main")] == [commit.id, before.commit_id]


def test_commit_detects_branch_moved(
    refs: RefStore, fresh_store: Store, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = refs.add_commit(repo, committer="x", message="elsewhere", creation_date=T0)
    real_put = refs.refs.put_commit

    def put_then_move(r: Repository, c: Commit) -> None:
        real_put(r, c)
        refs.update_branch(repo, "main", lambda b: dataclasses.replace(b, commit_id=other.id))

    monkeypatch.setattr(refs.refs, "put_commit", put_then_move)
    with pytest.raises(BranchMovedError):
        refs.commit(repo, "main", committer="me", message="m")
    assert refs.get_branch(repo, "main").commit_id == other.id


# --- staged objects ---------------------------------------------------------------------------


def test_staged_set_get_tombstone_drop(refs: RefStore, repo: Repository) -> None:
    staged = refs.stage_object(repo, "main", b"x/1", entry("addr-1", 5))
    got = refs.get_staged(repo, "main", b"x/1")
    assert got == staged
    assert not got.is_tombstone
    catalog = got.catalog_entry()
    assert catalog is not None
    assert (catalog.address, catalog.size) == ("addr-1", 5)
    refs.delete_staged(repo, "main", b"x/1")
    assert refs.get_staged(repo, "main", b"x/1").is_tombstone
    refs.drop_staged(repo, "main", b"x/1")
    with pytest.raises(StagedObjectNotFoundError):
        refs.get_staged(repo, "main", b"x/1")
    refs.drop_staged(repo, "main", b"x/1")  # idempotent
    with pytest.raises(InvalidArgumentError):
        refs.get_staged(repo, "main", b"")


def test_staged_list_prefix_after_and_merge_over_sealed_tokens(
    refs: RefStore, fresh_store: Store, repo: Repository
) -> None:
    for key in (b"a/1", b"a/2", b"a/3", b"b/1"):
        refs.stage_object(repo, "main", key, entry(key.decode()))
    # Seal the token without committing (as a commit does in its first step).
    refs.update_branch(
        repo,
        "main",
        lambda b: dataclasses.replace(
            b, staging_token="repo-one-main:new", sealed_tokens=(b.staging_token,)
        ),
    )
    refs.stage_object(repo, "main", b"a/2", entry("a/2-new"))
    refs.delete_staged(repo, "main", b"a/3")
    listed = list(refs.list_staged(repo, "main"))
    assert [e.key for e in listed] == [b"a/1", b"a/2", b"a/3", b"b/1"]
    by_key = {e.key: e for e in listed}
    new_a2 = by_key[b"a/2"].catalog_entry()
    assert new_a2 is not None
    assert new_a2.address == "a/2-new"
    assert by_key[b"a/3"].is_tombstone
    assert refs.get_staged(repo, "main", b"a/3").is_tombstone
    old_a1 = refs.get_staged(repo, "main", b"a/1").catalog_entry()
    assert old_a1 is not None
    assert old_a1.address == "a/1"
    visible = [e.key for e in refs.list_staged(repo, "main", include_tombstones=False)]
    assert visible == [b"a/1", b"a/2", b"b/1"]
    assert [e.key for e in refs.list_staged(repo, "main", prefix=b"a/", after=b"a/1")] == [
        b"a/2",
        b"a/3",
    ]
    # drop by prefix affects the current staging token only
    assert refs.drop_staged_by_prefix(repo, "main", b"a/") == 2
    assert partition_keys(fresh_store, b"repo-one-main:new") == []
    assert [e.key for e in refs.list_staged(repo, "main")] == [b"a/1", b"a/2", b"a/3", b"b/1"]


def test_staged_write_retries_when_a_commit_seals_the_token(
    refs: RefStore, fresh_store: Store, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_set = fresh_store.set
    sealed_once: list[str] = []

    def set_then_seal(partition: bytes, key: bytes, value: bytes) -> None:
        real_set(partition, key, value)
        if not sealed_once and b":" in partition:
            sealed_once.append(partition.decode())
            refs.update_branch(
                repo,
                "main",
                lambda b: dataclasses.replace(
                    b, staging_token="repo-one-main:fresh", sealed_tokens=(b.staging_token,)
                ),
            )

    monkeypatch.setattr(fresh_store, "set", set_then_seal)
    refs.stage_object(repo, "main", b"k", entry("k"))
    # Written again into the new token, so a commit of the sealed one cannot lose it.
    assert partition_keys(fresh_store, b"repo-one-main:fresh") == [b"k"]
    assert partition_keys(fresh_store, sealed_once[0].encode()) == [b"k"]


def test_staged_write_gives_up_when_the_token_keeps_changing(
    refs: RefStore, fresh_store: Store, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_set = fresh_store.set
    n = 0

    def set_then_seal(partition: bytes, key: bytes, value: bytes) -> None:
        nonlocal n
        real_set(partition, key, value)
        if b":" in partition:
            n += 1
            refs.update_branch(
                repo, "main", lambda b: dataclasses.replace(b, staging_token=f"repo-one-main:{n}")
            )

    monkeypatch.setattr(fresh_store, "set", set_then_seal)
    with pytest.raises(ConcurrentUpdateError):
        refs.stage_object(repo, "main", b"k", entry("k"))
    assert n == 3


def test_update_staged_compare_and_set(refs: RefStore, repo: Repository) -> None:
    def bump(current: StagedEntry | None) -> StagedEntry:
        count = 0 if current is None else int(current.data)
        return StagedEntry(b"counter", b"id", str(count + 1).encode())

    per_thread = 10

    def worker(_i: int) -> None:
        for _ in range(per_thread):
            refs.update_staged(repo, "main", b"counter", bump)

    run_threads(4, worker)
    assert refs.get_staged(repo, "main", b"counter").data == str(4 * per_thread).encode()
    # Returning None leaves the entry alone.
    kept = refs.update_staged(repo, "main", b"counter", lambda cur: None)
    assert kept is not None
    assert kept.data == str(4 * per_thread).encode()
    with pytest.raises(InvalidArgumentError):
        refs.update_staged(repo, "main", b"counter", lambda cur: StagedEntry(b"other", b"i"))


# --- decoding and orphans ---------------------------------------------------------------------


def build_sample(refs: RefStore) -> list[Repository]:
    repos = []
    for rid in ("alpha", "beta-repo"):
        repo = refs.create_repository(rid, f"s3://b/{rid}", creation_date=T0)
        refs.create_branch(repo, "dev", "main")
        refs.stage_object(repo, "dev", b"dir/file\xff.bin", entry("x", 10))
        refs.delete_staged(repo, "dev", b"gone")
        refs.commit(repo, "dev", committer="me", message="c1", metadata={"a": "b"})
        refs.stage_object(repo, "dev", b"later", entry("later"))
        refs.create_tag(repo, "v1-rc", "dev")
        refs.stage_object(repo, "main", b"m", entry("m"))
        repos.append(repo)
    return repos


def test_every_key_decodes_to_its_own_type(refs: RefStore, fresh_store: Store) -> None:
    repos = build_sample(refs)
    expected_by_prefix = {
        b"branches/": graveler_pb2.BranchData,
        b"commits/": graveler_pb2.CommitData,
        b"tags/": graveler_pb2.TagData,
    }
    checked = 0
    for entry_ in _walk(fresh_store, b"graveler"):
        record = LAKEFS_TYPES.decode(*entry_)
        assert isinstance(record.message, graveler_pb2.RepositoryData)
        checked += 1
    for repo in repos:
        for p, k, v in _walk(fresh_store, repo.partition):
            record = LAKEFS_TYPES.decode(p, k, v)
            want = next(t for pre, t in expected_by_prefix.items() if k.startswith(pre))
            assert type(record.message) is want, (k, record.rule)
            assert record.message.SerializeToString() == v
            checked += 1
        for branch in refs.list_branches(repo):
            for p, k, v in _walk(fresh_store, branch.staging_token.encode()):
                record = LAKEFS_TYPES.decode(p, k, v)
                assert isinstance(record.message, graveler_pb2.StagedEntryData)
                assert record.message.key == k
                checked += 1
    assert checked == 2 + 2 * 5 + 2 * 2  # records, 5 per repository, 2 staged per repository


def _walk(store: Store, partition: bytes) -> Iterator[tuple[bytes, bytes, bytes]]:
    with store.scan(partition) as it:
        for e in it:
            yield e.partition, e.key, e.value


def test_orphans(refs: RefStore, fresh_store: Store) -> None:
    repos = build_sample(refs)
    if not fresh_store.capabilities.list_partitions:
        with pytest.raises(UnsupportedError):
            find_orphans(fresh_store)
        return
    assert find_orphans(fresh_store) == []
    # What lakeFS leaves behind: a deleted repository's staging partition and records.
    dev = refs.get_branch(repos[0], "dev")
    fresh_store.delete(b"graveler", b"repos/alpha")
    fresh_store.set(b"cleanup-tokens", dev.staging_token.encode(), b"stub-value")
    fresh_store.set(b"something-else", b"k", b"v")
    found = {o.partition: o for o in find_orphans(fresh_store)}
    assert set(found) == {
        repos[0].partition,
        dev.staging_token.encode(),
        refs.get_branch(repos[0], "main").staging_token.encode(),
        b"something-else",
    }
    assert found[repos[0].partition].kind is OrphanKind.REPOSITORY
    assert found[repos[0].partition].owner == "alpha"
    staging = found[dev.staging_token.encode()]
    assert staging.kind is OrphanKind.STAGING
    assert staging.owner == "alpha-dev"
    assert staging.queued_for_cleanup
    assert staging.entries == 1
    assert found[b"something-else"].kind is OrphanKind.UNKNOWN


def test_repository_record_bytes_are_lakefs_messages(
    refs: RefStore, fresh_store: Store, repo: Repository
) -> None:
    raw, _ = fresh_store.get(b"graveler", b"repos/repo-one")
    msg = graveler_pb2.RepositoryData()
    msg.ParseFromString(raw)
    assert msg.id == "repo-one"
    assert msg.default_branch_id == "main"
    assert msg.instance_uid == repo.instance_uid
    assert msg.creation_date.seconds == int(T0.timestamp())
    assert msg.state == graveler_pb2.ACTIVE
    with pytest.raises(KeyNotFoundError):
        fresh_store.get(b"graveler", b"repos/other")
