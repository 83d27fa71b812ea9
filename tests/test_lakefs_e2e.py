"""End-to-end against the real lakeFS: lakekv migrates, reads and writes what lakeFS uses.

One scenario database is made per engine per session (``pg_scenario``, ``ddb_scenario``: the
scenario of :mod:`_lakefs_scenario` run by lakeFS itself, then lakeFS stopped, so the database
no longer changes). Each test starts the lakeFS instances it needs, once. A lakeFS serving a
migrated database shares the source's blockstore and encryption secret, as an operator moving
lakeFS to another database would.

Needs the lakeFS binary (``make lakefs``) and the test servers (``tests/servers.py`` exports
``LAKEKV_TEST_POSTGRES`` and ``LAKEKV_TEST_DYNAMODB``); without them these tests skip, and
fail when ``CI`` is set. ``make test-lakefs`` runs them alone.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _lakefs_harness as h
import _lakefs_scenario as sc
import lakefs_sdk
import pytest
from _files import dir_fingerprint
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from lakekv.cli.main import main
from lakekv.kv.registry import open_store
from lakekv.record.proto import catalog_pb2, graveler_pb2
from lakekv.refs.store import RefStore
from lakekv.testing.plugin import RUN_ID

# One worker runs them all (scripts/test.sh runs two): their lakeFS scenarios are built once.
pytestmark = [pytest.mark.lakefs, pytest.mark.xdist_group("lakefs")]

Entries = dict[bytes, dict[bytes, bytes]]
"""partition → key → value"""


# --- helpers


def run_lakekv(*args: str) -> tuple[int, str, str]:
    """Run the lakekv command line in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:
            code = 0
    return code, out.getvalue(), err.getvalue()


def lakekv(*args: str) -> str:
    """The output of a lakekv command; fails the test (with its errors) unless it exits 0."""
    code, out, err = run_lakekv(*args)
    assert code == 0, f"lakekv {' '.join(args)} exited {code}:\n{err}"
    return out


def lakekv_json(*args: str) -> Any:
    return json.loads(lakekv(*args))


def read_all(url: str) -> Entries:
    """Every entry of the store at ``url``, through lakekv's driver."""
    out: Entries = {}
    with open_store(url) as store:
        for partition in store.list_partitions():
            with store.scan(partition) as it:
                out[partition] = {e.key: e.value for e in it}
    return out


@dataclass
class Scenario:
    """A database lakeFS wrote (the scenario), with what lakeFS showed of it."""

    binary: Path
    root: Path
    database: h.Database
    blockstore: Path
    config_path: Path
    facts: sc.Facts
    observed: dict[str, Any]

    @property
    def url(self) -> str:
        assert self.database.store_url is not None
        return self.database.store_url

    def lakefs(self, database: h.Database, name: str) -> h.LakeFS:
        """A lakeFS on ``database`` serving this scenario's objects (not started)."""
        return h.LakeFS(self.binary, self.root / name, self.blockstore, database)


MakeDatabase = Callable[[str, str], h.Database]


@pytest.fixture(scope="session")
def lakefs_binary() -> Path:
    return h.lakefs_binary()


@pytest.fixture(scope="session")
def lakefs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lakefs")


@pytest.fixture(scope="session")
def make_database() -> Iterator[MakeDatabase]:
    """``make_database(engine, label)``: a fresh, empty database, removed after the session."""
    made: list[h.Database] = []

    def make(engine: str, label: str) -> h.Database:
        name = f"lakefs_{RUN_ID}_{label}".lower()
        if engine == "postgres":
            db = h.postgres_database(h.postgres_server(), name)
        elif engine == "dynamodb":
            db = h.dynamodb_database(h.dynamodb_endpoint(), name)
        else:
            raise ValueError(engine)
        made.append(db)
        return db

    yield make
    for db in made:
        if db.drop is not None:
            db.drop()


def _scenario(binary: Path, root: Path, database: h.Database, name: str) -> Scenario:
    lf = h.LakeFS(binary, root / name, root / f"{name}-blocks", database)
    lf.setup()
    with lf:
        facts = sc.build(lf.client(), lf.import_dir)
        observed = sc.observe(lf.client(), h.ACCESS_KEY_ID)
    return Scenario(binary, root, database, lf.blockstore, lf.config_path, facts, observed)


@pytest.fixture(scope="session")
def pg_scenario(lakefs_binary: Path, lakefs_root: Path, make_database: MakeDatabase) -> Scenario:
    return _scenario(lakefs_binary, lakefs_root, make_database("postgres", "scenario"), "pg")


@pytest.fixture(scope="session")
def ddb_scenario(lakefs_binary: Path, lakefs_root: Path, make_database: MakeDatabase) -> Scenario:
    return _scenario(lakefs_binary, lakefs_root, make_database("dynamodb", "scenario"), "ddb")


def keeps_working(lf: h.LakeFS, facts: sc.Facts) -> None:
    """On a migrated lakeFS: the multipart upload begun before the move completes, a new commit
    (its pre-commit hook runs) and a merge succeed."""
    c = sc.Client(lf.client())
    key, upload_id, etag = facts.multipart
    sc.s3_client(lf.client()).complete_multipart_upload(
        Bucket=sc.ALPHA,
        Key=f"main/{key}",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert bytes(c.objects.get_object(sc.ALPHA, "main", key)) == sc.MULTIPART_PART
    runs_before = len(c.actions.list_repository_runs(sc.ALPHA, amount=1000).results)
    main_commit = c.commit(sc.ALPHA, "main", "after migration", step="1")
    assert c.branches.diff_branch(sc.ALPHA, "main").results == []
    runs = c.actions.list_repository_runs(sc.ALPHA, amount=1000).results
    assert len(runs) == runs_before + 1
    assert {r.status for r in runs} == {"completed"}
    dev_commit = c.commit(sc.ALPHA, "dev", "dev after migration")
    merged = c.refs.merge_into_branch(
        sc.ALPHA, "dev", "main", merge=lakefs_sdk.Merge(message="merge")
    )
    head = c.refs.log_commits(sc.ALPHA, "main", amount=1).results[0]
    assert head.id == merged.reference
    assert head.parents == [main_commit, dev_commit]
    paths = {o.path for o in c.objects.list_objects(sc.ALPHA, "main", amount=1000).results}
    assert "dev/wip.txt" in paths and "staged/new.txt" in paths
    assert "images/logo.bin" not in paths and "data/a.csv" not in paths
    assert bytes(c.objects.get_object(sc.ALPHA, "main", "dev/wip.txt")) == b"work in progress\n"
    c.upload(sc.BETA, "exp", "after/migration.txt", b"hello\n")
    c.commit(sc.BETA, "exp", "beta after migration")


# --- 1. copy between engines, lakeFS restarted on the copy


def test_scenario_is_what_lakefs_shows(pg_scenario: Scenario) -> None:
    """The scenario holds what the tests below rely on (guards the guards)."""
    alpha = pg_scenario.observed["repositories"][sc.ALPHA]
    beta = pg_scenario.observed["repositories"][sc.BETA]
    for (repo, branch), staged in pg_scenario.facts.staged.items():
        shown = pg_scenario.observed["repositories"][repo]["uncommitted"][branch]
        assert shown == sorted(staged.items())
    assert set(alpha["branches"]) == {"main", "dev", "feature", "fix", "abandoned", "imported"}
    assert [p for p in alpha["objects"]["imported"] if p.startswith("ext/")] == [
        f"ext/logs/day-{i}.log" for i in range(3)
    ]
    assert set(alpha["tags"]) == {"v1.0", "v2.0~merged"}
    assert {p[2] for p in alpha["pulls"]} == {"open", "merged", "closed"}
    assert len(alpha["action_runs"]) == 2
    assert any(len(c[5]) == 2 for c in alpha["logs"]["main"])  # a merge commit
    assert beta["default_branch"] == "trunk" and set(beta["tags"]) == {"first"}
    assert pg_scenario.observed["users"] == ["admin"]
    # lakeFS 1.86 runs basic auth: one user, one credential, no groups or policies.
    refused = pg_scenario.facts.auth_refusals
    assert refused["create_group"] == '501 {"message":"Not Implemented"}'
    assert refused["create_policy"] == '501 {"message":"Not Implemented"}'
    assert refused["create_user"].startswith("409")
    assert refused["create_credentials"].startswith("400")


def copied_by_config_shows_the_same(scenario: Scenario, target_db: h.Database, name: str) -> None:
    """``lakekv copy`` by the two lakeFS configurations (``scenario``'s, and lakeFS ``name``'s
    on ``target_db``), ``verify`` says identical, and lakeFS on the copy shows what lakeFS
    showed on the source and keeps working."""
    target = scenario.lakefs(target_db, name)
    lakekv(
        "copy",
        "--from-lakefs-config",
        str(scenario.config_path),
        "--to-lakefs-config",
        str(target.config_path),
    )
    assert target_db.store_url is not None
    lakekv("verify", "--from", scenario.url, "--to", target_db.store_url)
    with target:
        assert sc.observe(target.client(), h.ACCESS_KEY_ID) == scenario.observed
        keeps_working(target, scenario.facts)


def test_postgres_to_dynamodb(pg_scenario: Scenario, make_database: MakeDatabase) -> None:
    copied_by_config_shows_the_same(pg_scenario, make_database("dynamodb", "from_pg"), "pg-to-ddb")


def test_dynamodb_to_postgres(ddb_scenario: Scenario, make_database: MakeDatabase) -> None:
    target_db = make_database("postgres", "from_ddb")
    target = ddb_scenario.lakefs(target_db, "ddb-to-pg")
    assert target_db.store_url is not None
    lakekv("copy", "--from", ddb_scenario.url, "--to", target_db.store_url)
    lakekv("verify", "--from", ddb_scenario.url, "--to", target_db.store_url)
    with target:
        assert sc.observe(target.client(), h.ACCESS_KEY_ID) == ddb_scenario.observed
        keeps_working(target, ddb_scenario.facts)


# --- 1b. lakeFS's own local (Badger) database, both ways


@pytest.fixture(scope="session")
def make_local_scenario(lakefs_binary: Path, lakefs_root: Path) -> Callable[[str], Scenario]:
    """``make_local_scenario(name)``: the scenario made by lakeFS on its default ``local``
    database, then stopped; one per name (a migrated lakeFS completes the scenario's multipart
    upload in the shared blockstore, so each target gets a scenario of its own)."""
    made: dict[str, Scenario] = {}

    def make(name: str) -> Scenario:
        if name not in made:
            database = h.local_database(lakefs_root / f"local-{name}-metadata")
            made[name] = _scenario(lakefs_binary, lakefs_root, database, f"local-{name}")
        return made[name]

    return make


@pytest.fixture
def local_scenario(make_local_scenario: Callable[[str], Scenario]) -> Scenario:
    return make_local_scenario("scenario")


@pytest.mark.parametrize("engine", ["postgres", "dynamodb"])
def test_local_to_postgres_and_dynamodb(
    engine: str, make_local_scenario: Callable[[str], Scenario], make_database: MakeDatabase
) -> None:
    """A trial installation moves to production: lakeFS's ``local`` directory is copied by its
    lakeFS configuration, and lakeFS on the copy shows what it showed and keeps working. The
    source directory is not changed by a byte."""
    local_scenario = make_local_scenario(engine)
    source = Path(local_scenario.url.removeprefix("badger:///"))
    before = dir_fingerprint(source)
    target_db = make_database(engine, f"from_local_{engine}")
    copied_by_config_shows_the_same(local_scenario, target_db, f"local-to-{engine}")
    assert dir_fingerprint(source) == before  # lakeFS on the copy does not touch it either


def test_postgres_to_local(
    lakefs_binary: Path, lakefs_root: Path, make_database: MakeDatabase, tmp_path: Path
) -> None:
    """The other way: a PostgreSQL database lakeFS wrote becomes a ``local`` directory, and
    lakeFS with ``database.type: local`` on it shows the same and keeps working. (A scenario
    of its own: a migrated lakeFS completes the scenario's multipart upload in the shared
    blockstore, which another test does with ``pg_scenario``.)"""
    pg_scenario = _scenario(
        lakefs_binary, lakefs_root, make_database("postgres", "for_local"), "pg-for-local"
    )
    copied_by_config_shows_the_same(
        pg_scenario, h.local_database(tmp_path / "metadata"), "pg-to-local"
    )


def local_lakefs(binary: Path, root: Path, metadata: Path, name: str) -> h.LakeFS:
    """A lakeFS set up (not started) on its ``local`` database in ``metadata``."""
    lf = h.LakeFS(binary, root / name, root / f"{name}-blocks", h.local_database(metadata))
    lf.setup()
    return lf


def test_local_killed_mid_write_loses_no_acknowledged_write(
    lakefs_binary: Path, lakefs_root: Path, make_database: MakeDatabase, tmp_path: Path
) -> None:
    """lakeFS on ``local`` is killed with ``kill -9`` while uploading: its last writes live
    only in Badger's memtable log. While it ran, lakekv refused the directory (exit 2, "stop
    lakeFS first"); afterwards every upload lakeFS acknowledged is in the copy, as lakeFS on
    the copy shows, and the directory is left as the crash left it."""
    source = tmp_path / "metadata"
    lf = local_lakefs(lakefs_binary, lakefs_root, source, "killed")
    acked: list[str] = []
    stop = threading.Event()
    lf.start()
    try:
        c = sc.Client(lf.client())
        c.repos.create_repository(
            lakefs_sdk.RepositoryCreation(name="kill", storage_namespace="local://kill")
        )
        c.upload("kill", "main", "first.txt", b"first")
        c.commit("kill", "main", "first")

        def upload() -> None:
            client = sc.Client(lf.client())
            i = 0
            while not stop.is_set():
                path = f"load/{i:05d}.txt"
                try:
                    client.upload("kill", "main", path, b"%d" % i)
                except Exception:
                    return
                acked.append(path)
                i += 1

        writer = threading.Thread(target=upload)
        writer.start()
        time.sleep(3)
        code, _, err = run_lakekv("dump", "--from", f"badger:///{source}", str(tmp_path / "x"))
        assert code == 2 and "stop lakeFS first" in err, err
        proc = lf._proc
        assert proc is not None
        proc.kill()  # SIGKILL
        proc.wait()
        stop.set()
        writer.join()
    finally:
        stop.set()
        lf.stop()
    assert len(acked) > 5
    assert any(p.suffix == ".mem" for p in source.iterdir())
    before = dir_fingerprint(source)
    target_db = make_database("postgres", "from_killed_local")
    assert target_db.store_url is not None
    lakekv("copy", "--from", f"badger:///{source}", "--to", target_db.store_url)
    lakekv("verify", "--from", f"badger:///{source}", "--to", target_db.store_url)
    assert dir_fingerprint(source) == before
    target = h.LakeFS(lakefs_binary, lakefs_root / "killed-pg", lf.blockstore, target_db)
    with target:
        c = sc.Client(target.client())
        shown = {
            d.path
            for d in c.branches.diff_branch("kill", "main", amount=1000).results
            if d.type == "added"
        }
        assert set(acked) <= shown
        assert bytes(c.objects.get_object("kill", "main", acked[-1])) == b"%d" % (len(acked) - 1)
        c.commit("kill", "main", "after the crash")


def test_lakefs_listings_agree_on_merges_reverts_and_cherry_picks(
    lakefs_binary: Path, lakefs_root: Path, tmp_path: Path
) -> None:
    """Every ``lakekv lakefs`` listing — repos, branches, tags, log, staged — returns what
    lakeFS's API returns for the same request, in its order, page by page (``--after`` and
    ``--limit`` against the API's ``after`` and ``amount``), with ``--prefix``, for a history
    where the log's order (creation date, then ID: ``pkg/graveler/ref/commit_iterator.go``)
    differs from the generations': a side branch committed after a longer line on main and
    merged, a revert, a cherry-pick; a hidden branch, which lakeFS lists only when asked
    (``pkg/graveler/ref/branch_iterator.go``). ``staged`` is compared with the branch's
    uncommitted diff. Read from lakeFS's own ``local`` directory, which the read-only
    inspection leaves as it was."""
    source = tmp_path / "metadata"
    lf = local_lakefs(lakefs_binary, lakefs_root, source, "listings")
    repos = ("order", "order-b", "other")
    api: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    with lf:
        c = sc.Client(lf.client())
        for rid in repos:
            c.repos.create_repository(
                lakefs_sdk.RepositoryCreation(name=rid, storage_namespace=f"local://{rid}")
            )
        repo = "order"
        for name in ("side", "pick", "dev-1", "dev-2"):
            c.branches.create_branch(repo, lakefs_sdk.BranchCreation(name=name, source="main"))
        c.branches.create_branch(
            repo, lakefs_sdk.BranchCreation(name="dev-hidden", source="main", hidden=True)
        )
        for i in range(3):
            c.upload(repo, "main", f"main/{i}.txt", b"%d" % i)
            c.commit(repo, "main", f"main {i}")
        c.upload(repo, "side", "side.txt", b"side")
        side = c.commit(repo, "side", "side, newest")
        c.refs.merge_into_branch(repo, "side", "main", merge=lakefs_sdk.Merge(message="merge"))
        c.branches.revert_branch(
            repo, "main", lakefs_sdk.RevertCreation(ref="main~1", parent_number=1)
        )
        c.branches.cherry_pick(repo, "pick", lakefs_sdk.CherryPickCreation(ref=side))
        for tag, ref in (("v1", "main~2"), ("v2", "main~1"), ("v2.1", "main"), ("w", side)):
            c.tags.create_tag(repo, lakefs_sdk.TagCreation(id=tag, ref=ref))
        for name in ("a/1.txt", "a/2.txt", "b/1.txt", "c.txt"):
            c.upload(repo, "main", f"staged/{name}", name.encode())
        c.delete(repo, "main", "main/0.txt")  # a staged deletion of a committed object

        def requests() -> Iterator[tuple[Any, ...]]:
            """(listing, prefix, after, amount) for the full listing, a prefix, and the
            pages of one and of two items."""
            yield from (("repos", "", p) for p in ("", "order"))
            for b in (False, True):
                yield from (("branches", b, p) for p in ("", "dev"))
            yield from (("tags", "", p) for p in ("", "v2"))
            for ref in ("main", "side", "pick", "v2"):
                yield ("log", ref, "")
            yield from (("staged", "main", p) for p in ("", "staged/a/"))

        def ask(kind: str, arg: Any, prefix: str, after: str, amount: int) -> list[Any]:
            if kind == "repos":
                got = c.repos.list_repositories(prefix=prefix, after=after, amount=amount)
                return [(r.id, r.default_branch, r.storage_namespace) for r in got.results]
            if kind == "branches":
                got = c.branches.list_branches(
                    repo, prefix=prefix, after=after, amount=amount, show_hidden=arg
                )
                return [(b.id, b.commit_id) for b in got.results]
            if kind == "tags":
                got = c.tags.list_tags(repo, prefix=prefix, after=after, amount=amount)
                return [(t.id, t.commit_id) for t in got.results]
            if kind == "log":
                got = c.refs.log_commits(repo, arg, after=after or None, amount=amount)
                return [(e.id, e.message, e.parents) for e in got.results]
            got = c.branches.diff_branch(repo, arg, prefix=prefix, after=after, amount=amount)
            return [(d.path, "removed" if d.type == "removed" else "written") for d in got.results]

        for kind, arg, prefix in requests():
            for amount in (1, 2, 1000):
                # Page as lakeFS's clients do: after = the last ID of the page before.
                after = ""
                while True:
                    page = ask(kind, arg, prefix, after, amount)
                    api[(kind, arg, prefix, after, amount)] = page
                    if len(page) < amount:
                        break
                    after = str(page[-1][0])
        assert len(api[("log", "main", "", "", 1000)]) >= 7
    before = dir_fingerprint(source)
    url = f"badger:///{source}"

    def ours(kind: str, arg: Any, prefix: str, after: str, amount: int) -> list[Any]:
        paging = ["--after", after, "--limit", str(amount)]
        if kind == "repos":
            got = lakekv_json("-s", url, "lakefs", "repos", "--prefix", prefix, *paging, "--json")
            return [(r["id"], r["default_branch_id"], r["storage_namespace"]) for r in got]
        if kind == "branches":
            hidden = ["--show-hidden"] if arg else []
            got = lakekv_json(
                "-s",
                url,
                "lakefs",
                "branches",
                repo,
                "--prefix",
                prefix,
                *hidden,
                *paging,
                "--json",
            )
            return [(b["id"], b["commit_id"]) for b in got]
        if kind == "tags":
            got = lakekv_json(
                "-s", url, "lakefs", "tags", repo, "--prefix", prefix, *paging, "--json"
            )
            return [(t["id"], t["commit_id"]) for t in got]
        if kind == "log":
            got = lakekv_json("-s", url, "lakefs", "log", f"{repo}/{arg}", *paging, "--json")
            return [(e["id"], e["message"], e["parents"]) for e in got]
        got = lakekv_json(
            "-s", url, "lakefs", "staged", repo, arg, "--prefix", prefix, *paging, "--json"
        )
        return [(e["key"], "removed" if e["tombstone"] else "written") for e in got]

    for (kind, arg, prefix, after, amount), expected in api.items():
        assert ours(kind, arg, prefix, after, amount) == expected, (kind, arg, prefix, after)
    # The history really is one where the log's order is not the generations'.
    main_log = lakekv_json("-s", url, "lakefs", "log", f"{repo}/main", "--json")
    gens = [e["generation"] for e in main_log]
    assert gens != sorted(gens, reverse=True)
    # The hidden branch is there, and only listed when asked for.
    assert "dev-hidden" not in [b[0] for b in api[("branches", False, "", "", 1000)]]
    assert "dev-hidden" in [b[0] for b in api[("branches", True, "", "", 1000)]]
    assert dir_fingerprint(source) == before


def test_verify_local_against_its_copy(local_scenario: Scenario, tmp_path: Path) -> None:
    """``verify`` between lakeFS's ``local`` directory and its copy says identical, and finds
    one staged entry deleted from the copy."""
    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    lakekv("copy", "--from", local_scenario.url, "--to", copy)
    report = lakekv_json("verify", "--from", local_scenario.url, "--to", copy, "--json")
    assert report["equal"] is True and report["entries_a"] == report["entries_b"] > 0
    staged = b"staged/new.txt"  # uncommitted on alpha's main (the scenario)
    with open_store(copy) as store:
        holders = [p for p in store.list_partitions() if store.get_many(p, [staged])]
        assert len(holders) == 1
        store.delete(holders[0], staged)
    code, out, err = run_lakekv("verify", "--from", local_scenario.url, "--to", copy, "--json")
    assert code == 1, err
    report = json.loads(out)
    assert (report["missing"], report["extra"], report["different"]) == (1, 0, 0)


def test_cutover_while_lakefs_writes(
    lakefs_binary: Path, lakefs_root: Path, make_database: MakeDatabase
) -> None:
    """The runbook with lakeFS running: a tracked first pass while lakeFS writes, more writes
    after it, lakeFS stopped, the catch-up by the change feed; lakeFS on the new database then
    shows exactly what it showed on the old one, and keeps working."""
    source = _scenario(lakefs_binary, lakefs_root, make_database("postgres", "cut_src"), "cut-src")
    target_db = make_database("postgres", "cut_dst")
    assert target_db.store_url is not None
    target = source.lakefs(target_db, "cut-dst")
    live = source.lakefs(source.database, "cut-live")  # lakeFS again on the old database
    pair = ("--from", source.url, "--to", target_db.store_url)
    with live:
        c = sc.Client(live.client())
        c.branches.create_branch(sc.BETA, lakefs_sdk.BranchCreation(name="cutover", source="trunk"))
        stop = threading.Event()
        written: list[str] = []

        def write_while_copying() -> None:
            while not stop.is_set() and len(written) < 200:
                path = f"live/object-{len(written):03d}.txt"
                c.upload(sc.BETA, "cutover", path, path.encode())
                written.append(path)

        writer = threading.Thread(target=write_while_copying)
        writer.start()
        try:
            first = lakekv_json("copy", *pair, "--track-changes", "--json")
        finally:
            stop.set()
            writer.join()
        assert first["snapshot"] and first["change_feed_ready"] and written
        c.commit(sc.BETA, "cutover", "written during the first pass")
        c.delete(sc.BETA, "cutover", written[0])
        c.branches.delete_branch(sc.ALPHA, "abandoned")
        c.tags.create_tag(sc.BETA, lakefs_sdk.TagCreation(id="moved", ref="cutover"))
        expected = sc.observe(live.client(), h.ACCESS_KEY_ID)
    # lakeFS stopped: the downtime starts.
    code, out, err = run_lakekv("verify", *pair)
    assert code == 1, out + err  # the first pass alone is behind
    report = lakekv_json("sync", *pair, "--json")
    assert report["method"] == "changes" and not report["change_feed_kept"]
    assert report["written"] > 0 and report["deleted"] > 0 and report["warnings"] == []
    lakekv("verify", *pair)
    assert read_all(target_db.store_url) == read_all(source.url)
    with target:
        assert sc.observe(target.client(), h.ACCESS_KEY_ID) == expected
        keeps_working(target, source.facts)


@pytest.mark.parametrize("target_kind", ["postgres", "dynamodb"])
def test_cutover_command_with_a_writer_then_going_back(
    lakefs_binary: Path, lakefs_root: Path, make_database: MakeDatabase, target_kind: str
) -> None:
    """``lakekv cutover --plan`` while lakeFS takes writes, lakeFS stopped, ``lakekv
    cutover``: lakeFS on the new database shows every acknowledged operation. A lakeFS
    started on the new database too early is seen (the catch-up refuses). Then going back:
    lakeFS writes on the new database, is stopped, ``lakekv sync`` new → old, and lakeFS on
    the old database shows those writes."""
    name = f"cmd-{target_kind}"
    source = _scenario(lakefs_binary, lakefs_root, make_database("postgres", f"{name}_src"), name)
    target_db = make_database(target_kind, f"{name}_dst")
    assert target_db.store_url is not None
    pair = ("--from", source.url, "--to", target_db.store_url)
    live = source.lakefs(source.database, f"{name}-live")
    acknowledged: list[str] = []
    with live:
        c = sc.Client(live.client())
        c.branches.create_branch(sc.BETA, lakefs_sdk.BranchCreation(name="cut", source="trunk"))
        lakekv("copy", *pair, "--track-changes")
        stop = threading.Event()

        def writer() -> None:
            while not stop.is_set() and len(acknowledged) < 400:
                path = f"during/object-{len(acknowledged):03d}.txt"
                c.upload(sc.BETA, "cut", path, path.encode())
                acknowledged.append(path)  # lakeFS answered: acknowledged

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            planned = lakekv_json("cutover", *pair, "--plan", "--json")
        finally:
            stop.set()
            thread.join()
        assert planned["plan"] and planned["estimate"]["method"] in planned["estimate"]["by_method"]
        c.commit(sc.BETA, "cut", "the writes of the plan's minute")
        expected = sc.observe(live.client(), h.ACCESS_KEY_ID)
    assert acknowledged
    # lakeFS started on the new database too early: its start-up writes are seen.
    early = source.lakefs(target_db, f"{name}-early")
    with early:
        pass
    code, out, err = run_lakekv("cutover", *pair)
    assert code == 2 and "lakeFS" in err, out + err
    report = lakekv_json("cutover", *pair, "--force", "--json")
    assert report["equal"] and report["verify"]["equal"]
    assert report["lakefs_env"]["LAKEFS_DATABASE_TYPE"] == target_kind
    assert read_all(target_db.store_url) == read_all(source.url)
    target = source.lakefs(target_db, f"{name}-new")
    with target:
        assert sc.observe(target.client(), h.ACCESS_KEY_ID) == expected
        t = sc.Client(target.client())
        for path in acknowledged[:: max(1, len(acknowledged) // 20)]:
            assert bytes(t.objects.get_object(sc.BETA, "cut", path)) == path.encode()
        t.branches.create_branch(sc.BETA, lakefs_sdk.BranchCreation(name="on-new", source="cut"))
        t.upload(sc.BETA, "on-new", "written/on-new.txt", b"new")
        t.commit(sc.BETA, "on-new", "written on the new database")
        after = sc.observe(target.client(), h.ACCESS_KEY_ID)
    # Going back: new → old, without a change feed on the new side.
    back = ("--from", target_db.store_url, "--to", source.url)
    lakekv("sync", *back)
    lakekv("verify", *back)
    old_again = source.lakefs(source.database, f"{name}-back")
    with old_again:
        assert sc.observe(old_again.client(), h.ACCESS_KEY_ID) == after
        o = sc.Client(old_again.client()).objects
        assert bytes(o.get_object(sc.BETA, "on-new", "written/on-new.txt")) == b"new"


# --- 2. dump and load


def test_dump_load_into_empty_postgres(
    pg_scenario: Scenario, make_database: MakeDatabase, tmp_path: Path
) -> None:
    dump = tmp_path / "lakefs.lkv.zst"
    lakekv("dump", "--from", pg_scenario.url, str(dump))
    target_db = make_database("postgres", "loaded")
    assert target_db.store_url is not None
    lakekv("load", "--to", target_db.store_url, str(dump))
    assert read_all(target_db.store_url) == read_all(pg_scenario.url)
    with pg_scenario.lakefs(target_db, "loaded") as target:
        assert sc.observe(target.client(), h.ACCESS_KEY_ID) == pg_scenario.observed


def test_lakefs_kv_load_reads_lakekv_dump(
    pg_scenario: Scenario, make_database: MakeDatabase, tmp_path: Path
) -> None:
    """lakekv's ``--format lakefs`` file is a complete migration lakeFS itself can load."""
    dump = tmp_path / "lakefs-format.json"
    lakekv("dump", "--from", pg_scenario.url, "--format", "lakefs", str(dump))
    target_db = make_database("postgres", "kv_load")
    assert target_db.store_url is not None
    target = pg_scenario.lakefs(target_db, "kv-load")
    # lakeFS's default "skip" strategy skips the keys that are missing: overwrite loads them.
    target.command("kv", "load", "--input", str(dump), "--strategy", "overwrite")
    assert read_all(target_db.store_url) == read_all(pg_scenario.url)
    with target:
        assert sc.observe(target.client(), h.ACCESS_KEY_ID) == pg_scenario.observed


# --- 3. lakeFS's own kv dump

KV_DUMP_SECTIONS = {b"auth", b"basicAuth", b"aclauth", b"pulls", b"kv-internal-metadata"}
"""The partitions ``lakefs kv dump`` covers by default (``kv.SectionMapping``, pkg/kv/dump.go)."""


def test_lakefs_kv_dump_loads(pg_scenario: Scenario, tmp_path: Path) -> None:
    lf = pg_scenario.lakefs(pg_scenario.database, "kv-dump")
    sections = tmp_path / "sections.json"
    repo = tmp_path / "repo.json"
    lf.command("kv", "dump", "--output", str(sections))
    lf.command("kv", "dump", "--repo", sc.ALPHA, "--output", str(repo))
    source = read_all(pg_scenario.url)
    (alpha_partition,) = (p for p in source if p.startswith(b"alpha-") and b":" not in p)
    covered = {p for p in source if p in KV_DUMP_SECTIONS} | {alpha_partition}
    assert {b"auth", b"basicAuth", b"pulls", b"kv-internal-metadata"} <= covered

    target = f"sqlite:///{tmp_path / 'loaded.db'}"
    lakekv("load", "--to", target, str(sections))
    lakekv("load", "--to", target, str(repo))
    loaded = read_all(target)
    assert loaded == {p: source[p] for p in covered}
    # lakekv read the same entries lakeFS wrote into its file.
    in_file = json.loads(sections.read_text())["entries"] + json.loads(repo.read_text())["entries"]
    assert sum(len(keys) for keys in loaded.values()) == len(in_file)


def test_lakefs_kv_dump_of_local_database_loads(
    lakefs_binary: Path, lakefs_root: Path, make_database: MakeDatabase, tmp_path: Path
) -> None:
    """lakeFS's embedded ``local`` store also reaches lakekv through lakeFS's ``kv dump``: the
    load holds what the file holds, and the keys lakeFS's own
    ``kv scan`` lists in those partitions, with the same raw values."""
    db = h.local_database(tmp_path / "metadata")
    lf = h.LakeFS(lakefs_binary, lakefs_root / "local", lakefs_root / "local-blocks", db)
    lf.setup()
    with lf:
        c = sc.Client(lf.client())
        c.repos.create_repository(
            lakefs_sdk.RepositoryCreation(name="delta", storage_namespace="local://delta")
        )
        c.branches.create_branch("delta", lakefs_sdk.BranchCreation(name="side", source="main"))
        c.upload("delta", "side", "a.txt", b"a")
        c.commit("delta", "side", "one", key="value")
        c.pulls.create_pull_request(
            "delta",
            lakefs_sdk.PullRequestCreation(
                title="t", description="d", source_branch="side", destination_branch="main"
            ),
        )
    files = [tmp_path / "sections.json", tmp_path / "repo.json"]
    lf.command("kv", "dump", "--output", str(files[0]))
    lf.command("kv", "dump", "--repo", "delta", "--output", str(files[1]))
    target = make_database("postgres", "from_local")
    assert target.store_url is not None
    for f in files:
        lakekv("load", "--to", target.store_url, str(f))
    loaded = read_all(target.store_url)

    in_files: Entries = {}
    for f in files:
        for e in json.loads(f.read_text())["entries"]:
            part = in_files.setdefault(e["partition"].encode(), {})
            part[e["key"].encode()] = base64.b64decode(e["value"])
    assert loaded == in_files
    assert {b"auth", b"basicAuth", b"pulls", b"kv-internal-metadata"} <= set(loaded)
    assert len([p for p in loaded if p.startswith(b"delta-")]) == 1

    for partition, entries in loaded.items():
        if partition == b"kv-internal-metadata":
            # lakeFS's kv scan decodes unregistered keys as staged entries and fails here:
            # "KV record from value: proto: cannot parse invalid wire-format data".
            continue
        scan = lf.command("kv", "scan", partition.decode()).stdout.splitlines()
        records = [json.loads(line) for line in scan]
        assert [r["key"].encode() for r in records] == sorted(entries)
        for r in records:
            if isinstance(r["value"], str):  # lakeFS prints values it does not decode as base64
                assert base64.b64decode(r["value"]) == entries[r["key"].encode()]


# --- 4. every entry decodes

OPAQUE: list[tuple[str, str, str]] = [
    ("kv-internal-metadata", r"kv/schema/version", "ASCII schema version (pkg/kv/migration.go)"),
    (
        "auth",
        r"installation_id|installation_metadata/.+",
        "plain-string installation metadata (pkg/auth/metadata.go, KVMetadataManager)",
    ),
    ("usage", r"usage/monthly/.+", "ASCII decimal counter (pkg/stats/usage_counter.go)"),
    ("cleanup-tokens", r".+", 'the literal "stub-value" (pkg/graveler/staging/manager.go)'),
]
"""Entries lakeFS itself writes as non-protobuf values: (partition, key pattern, reason)."""


def _opaque(partition: str, key: str) -> bool:
    return any(p == partition and re.fullmatch(k, key) for p, k, _ in OPAQUE)


def _unknown_fields(msg: Message, where: str = "") -> list[str]:
    """Paths of unknown fields anywhere in ``msg`` (nested messages, repeated, maps)."""
    found = [f"{where}#{f.field_number}" for f in UnknownFieldSet(msg)]
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        name = f"{where}.{fd.name}"
        if fd.message_type.GetOptions().map_entry:
            if fd.message_type.fields_by_name["value"].message_type is not None:
                for k, v in value.items():
                    found += _unknown_fields(v, f"{name}[{k}]")
        elif fd.is_repeated:
            for i, v in enumerate(value):
                found += _unknown_fields(v, f"{name}[{i}]")
        else:
            found += _unknown_fields(value, name)
    return found


@pytest.mark.parametrize("engine", ["postgres", "dynamodb"])
def test_every_entry_decodes(engine: str, request: pytest.FixtureRequest) -> None:
    scenario: Scenario = request.getfixturevalue(
        "pg_scenario" if engine == "postgres" else "ddb_scenario"
    )
    raw = read_all(scenario.url)
    pool = descriptor_pool.Default()
    problems: list[str] = []
    seen = 0
    for partition in lakekv("-s", scenario.url, "partitions").splitlines():
        lines = lakekv("-s", scenario.url, "scan", partition, "--decode", "--json")
        for line in lines.splitlines():
            rec = json.loads(line)
            seen += 1
            where = f"{rec['partition']} {rec['key']} ({rec['rule']})"
            for err in ("error", "entry_error"):
                if err in rec:
                    problems.append(f"{where}: {rec[err]}")
            value = raw[rec["partition"].encode()][rec["key"].encode()]
            if rec["type"] is None:
                if not _opaque(rec["partition"], rec["key"]):
                    problems.append(f"{where}: decoded as raw bytes")
                elif "raw" not in rec:  # lakeFS writes every opaque value as text
                    problems.append(f"{where}: opaque value is not text")
                continue
            cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(rec["type"]))
            problems += [
                f"{where}: unknown field {u}" for u in _unknown_fields(cls.FromString(value))
            ]
            if rec.get("entry") is not None:
                staged = graveler_pb2.StagedEntryData.FromString(value)
                payload = catalog_pb2.Entry.FromString(staged.data)
                problems += [f"{where}: unknown field data{u}" for u in _unknown_fields(payload)]
    assert seen == sum(len(keys) for keys in raw.values())
    assert not problems, "\n".join(problems)


# --- 5. inspection agrees with lakeFS; verify; orphans


def test_verify_copy_is_clean(pg_scenario: Scenario, tmp_path: Path) -> None:
    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    lakekv("copy", "--from", pg_scenario.url, "--to", copy)
    lakekv("verify", "--from", pg_scenario.url, "--to", copy)
    with open_store(copy) as store:
        store.set(b"graveler", b"repos/alpha", b"tampered")
    code, out, err = run_lakekv("verify", "--from", pg_scenario.url, "--to", copy)
    assert code == 1, out + err


def test_inspection_agrees_with_lakefs(pg_scenario: Scenario) -> None:
    url = pg_scenario.url
    with pg_scenario.lakefs(pg_scenario.database, "inspect") as lf:
        c = sc.Client(lf.client())
        repos = lakekv_json("-s", url, "lakefs", "repos", "--json")
        api_repos = c.repos.list_repositories(amount=1000).results
        assert [(r["id"], r["storage_namespace"], r["default_branch_id"]) for r in repos] == [
            (r.id, r.storage_namespace, r.default_branch) for r in api_repos
        ]
        for r in api_repos:
            branches = lakekv_json("-s", url, "lakefs", "branches", r.id, "--json")
            api_branches = c.branches.list_branches(r.id, amount=1000).results
            assert [(b["id"], b["commit_id"]) for b in branches] == [
                (b.id, b.commit_id) for b in api_branches
            ]
            tags = lakekv_json("-s", url, "lakefs", "tags", r.id, "--json")
            assert [(t["id"], t["commit_id"]) for t in tags] == [
                (t.id, t.commit_id) for t in c.tags.list_tags(r.id, amount=1000).results
            ]
            for b in api_branches:
                log = lakekv_json("-s", url, "lakefs", "log", f"{r.id}/{b.id}", "--json")
                api_log = c.refs.log_commits(r.id, b.id, amount=1000).results
                assert [
                    (e["id"], e["message"], e["metadata"], e["parents"], e["committer"])
                    for e in log
                ] == [(e.id, e.message, e.metadata or {}, e.parents, e.committer) for e in api_log]
                staged = lakekv_json("-s", url, "lakefs", "staged", r.id, b.id, "--json")
                kinds = {e["key"]: "removed" if e["tombstone"] else "written" for e in staged}
                api_diff = c.branches.diff_branch(r.id, b.id, amount=1000).results
                assert kinds == {
                    d.path: "removed" if d.type == "removed" else "written" for d in api_diff
                }
                for e in staged:
                    if e["tombstone"]:
                        continue
                    stat = c.objects.stat_object(r.id, b.id, e["key"])
                    assert (e["size"], e["e_tag"]) == (stat.size_bytes, stat.checksum)


def test_orphans_on_fresh_lakefs(
    lakefs_binary: Path, lakefs_root: Path, make_database: MakeDatabase
) -> None:
    """What lakeFS leaves behind when it deletes a repository.

    A fresh, set-up lakeFS has no orphans. Deleting a branch drops its staging partitions
    (``Graveler.DeleteBranch`` queues them under ``cleanup-tokens``, then drops them), so that
    leaves nothing. Deleting a repository (``ref.Manager.deleteRepository``,
    pkg/graveler/ref/manager.go) removes its branch, tag and commit records, its metadata and
    then its ``graveler`` record, through the ref manager, which never drops staging tokens:
    every branch's staging partition with uncommitted objects stays behind, and so does the rest
    of the repository partition (pull requests, settings such as branch protection).
    """
    db = make_database("postgres", "orphans")
    assert db.store_url is not None
    lf = h.LakeFS(lakefs_binary, lakefs_root / "orphans", lakefs_root / "orphans-blocks", db)
    lf.setup()
    assert lakekv_json("-s", db.store_url, "lakefs", "orphans", "--json") == []
    with lf:
        c = sc.Client(lf.client())
        for repo in ("kept", "gone"):
            c.repos.create_repository(
                lakefs_sdk.RepositoryCreation(name=repo, storage_namespace=f"local://{repo}")
            )
            c.upload(repo, "main", "a.txt", b"a")
            c.commit(repo, "main", "one")
            c.branches.create_branch(repo, lakefs_sdk.BranchCreation(name="side", source="main"))
            c.upload(repo, "side", "b.txt", b"b")
            c.commit(repo, "side", "two")
            c.upload(repo, "side", "c.txt", b"c")
            c.upload(repo, "main", "d.txt", b"d")
        c.pulls.create_pull_request(
            "gone",
            lakefs_sdk.PullRequestCreation(
                title="t", description="d", source_branch="side", destination_branch="main"
            ),
        )
        c.repos.set_branch_protection_rules(
            "gone", [lakefs_sdk.BranchProtectionRule(pattern="release-*")]
        )
        assert lakekv_json("-s", db.store_url, "lakefs", "orphans", "--json") == []
        c.branches.delete_branch("kept", "side")
        assert lakekv_json("-s", db.store_url, "lakefs", "orphans", "--json") == []
        gone = next(
            r
            for r in lakekv_json("-s", db.store_url, "lakefs", "repos", "--json")
            if r["id"] == "gone"
        )
        gone_tokens = {
            b["staging_token"]
            for b in lakekv_json("-s", db.store_url, "lakefs", "branches", "gone", "--json")
        }
        c.repos.delete_repository("gone")
    orphans = lakekv_json("-s", db.store_url, "lakefs", "orphans", "--json")
    assert sorted((o["partition"], o["kind"], o["entries"]) for o in orphans) == sorted(
        [(gone["partition"], "repository", 2)] + [(t, "staging", 1) for t in gone_tokens]
    )
    assert not any(o["queued_for_cleanup"] for o in orphans)
    left = read_all(db.store_url)[gone["partition"].encode()]
    assert sorted(k.split(b"/")[0] for k in left) == [b"pulls", b"settings"]


# --- 6. lakekv writes, lakeFS reads


def test_refstore_repository_listed_by_lakefs(
    lakefs_binary: Path, lakefs_root: Path, make_database: MakeDatabase
) -> None:
    db = make_database("postgres", "refstore")
    assert db.store_url is not None
    blocks = lakefs_root / "refstore-blocks"
    content = {b"data/one.txt": b"one\n", b"data/two.csv": b"a,b\n1,2\n"}
    for key, body in content.items():
        path = blocks / "gamma" / "objects" / key.decode()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    with open_store(db.store_url) as store:
        refs = RefStore(store)
        repo = refs.create_repository("gamma", "local://gamma", "main")
        refs.create_branch(repo, "dev", "main")
        for key, body in content.items():
            refs.stage_object(
                repo,
                "dev",
                key,
                catalog_pb2.Entry(
                    address=f"objects/{key.decode()}",
                    address_type=catalog_pb2.Entry.AddressType.RELATIVE,
                    size=len(body),
                    e_tag=hashlib.md5(body).hexdigest(),
                    content_type="application/octet-stream",
                ),
            )
    lf = h.LakeFS(lakefs_binary, lakefs_root / "refstore", blocks, db)
    lf.setup()
    with lf:
        c = sc.Client(lf.client())
        assert [r.id for r in c.repos.list_repositories().results] == ["gamma"]
        assert {b.id for b in c.branches.list_branches("gamma").results} == {"main", "dev"}
        listing = c.objects.list_objects("gamma", "dev", amount=1000).results
        assert {o.path: o.size_bytes for o in listing} == {
            k.decode(): len(v) for k, v in content.items()
        }
        diff = c.branches.diff_branch("gamma", "dev").results
        assert sorted((d.path, d.type) for d in diff) == [
            ("data/one.txt", "added"),
            ("data/two.csv", "added"),
        ]
        for key, body in content.items():
            assert bytes(c.objects.get_object("gamma", "dev", key.decode())) == body
        # and lakeFS carries on from there
        c.commit("gamma", "dev", "committed by lakeFS")
        c.refs.merge_into_branch("gamma", "dev", "main")
        assert len(c.objects.list_objects("gamma", "main").results) == 2
