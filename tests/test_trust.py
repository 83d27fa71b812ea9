"""A claim of "identical" is proven: every way the catch-up, a resumed copy or a change feed
could report success on a target that differs is refused or falls back to comparing.

Each test is one case an operator can run into (the sides swapped, the target re-created,
lakeFS started on the new database too early, …); each fails on a lakekv that trusts what it
cannot prove.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from _cli import run
from _migrate_helpers import FailingWrites, StoreMaker

from lakekv import open_store
from lakekv._files import unlinked_file
from lakekv.errors import (
    ConfigurationError,
    InterruptedMigrationError,
    LakekvError,
    SchemaVersionMismatchError,
    UnsafeOperationError,
)
from lakekv.kv.store import Store
from lakekv.kv.url import StoreURL
from lakekv.migrate import (
    LAKEFS_SCHEMA_VERSION,
    SCHEMA_KEY,
    SCHEMA_PARTITION,
    copy,
    sync,
    untrack,
    verify,
)
from lakekv.migrate._pair import LAKEFS_MARKS, pair_lock
from lakekv.migrate.feeds import feed_name

ROOT = Path(__file__).resolve().parent.parent
KV_TYPE = LAKEFS_MARKS[0]
"""``auth``/``installation_metadata/lakefs_kv_type``: lakeFS rewrites it at every start."""


def _lakefs_like(store: Store, entries: int = 200, kv_type: bytes = b"postgres") -> None:
    """A small lakeFS-shaped database: the schema version, lakeFS's start-up markers, and
    entries in three partitions."""
    batch = [
        (p, b"k%04d" % i, b"v%d" % i)
        for p in (b"graveler", b"auth", b"repo-x")
        for i in range(entries)
    ]
    batch.append((KV_TYPE[0], KV_TYPE[1], kv_type))
    batch.append((SCHEMA_PARTITION, SCHEMA_KEY, LAKEFS_SCHEMA_VERSION))
    store.write_batch(batch)


def _sqlite(tmp_path: Path, name: str) -> Store:
    return open_store(f"sqlite:///{tmp_path}/{name}.db")


# --- 1, 2, 5, 6: a change feed vouches only for what it can -------------------------------------


def test_a_filtered_first_pass_is_not_ready(feed_backend: str, maker: StoreMaker) -> None:
    src, dst = maker.fresh(feed_backend, "src"), maker.fresh(feed_backend, "dst")
    _lakefs_like(src)
    try:
        first = copy(src, dst, track_changes=True, partitions=[b"graveler", SCHEMA_PARTITION])
        assert not first.change_feed_ready
        assert any("only some partitions" in w for w in first.warnings)
        src.set(b"auth", b"written-after", b"x")
        report = sync(src, dst)
        assert report.method != "changes"
        assert verify(src, dst).equal
    finally:
        untrack(src, dst)


def test_a_tracked_pass_onto_a_filled_target_is_not_ready(
    feed_backend: str, maker: StoreMaker
) -> None:
    """Case: copy, a key set and copied, then deleted on the source; a tracked pass onto
    that target must not vouch for it (the stale key is in no feed)."""
    src, dst = maker.fresh(feed_backend, "src"), maker.fresh(feed_backend, "dst")
    _lakefs_like(src)
    try:
        copy(src, dst)
        src.set(b"auth", b"u1", b"user")
        copy(src, dst)
        src.delete(b"auth", b"u1")
        tracked = copy(src, dst, track_changes=True)
        assert not tracked.change_feed_ready
        assert any("held entries before it began" in w for w in tracked.warnings)
        report = sync(src, dst)
        assert report.method != "changes" and report.deleted == 1
        assert verify(src, dst).equal
        # --sync makes the target equal to the source, so that pass can vouch for it.
        src.delete(b"auth", b"k0001")
        again = copy(src, dst, track_changes=True, sync=True)
        assert again.change_feed_ready and again.deleted == 1
        assert sync(src, dst).method == "changes"
        assert verify(src, dst).equal
    finally:
        untrack(src, dst)


def test_the_postponed_cutover_does_not_resurrect_deletions(
    feed_backend: str, maker: StoreMaker
) -> None:
    """The runbook's postpone path: tracked pass, untrack, deletions on the source, the same
    tracked pass again into the filled target, then the catch-up."""
    src, dst = maker.fresh(feed_backend, "src"), maker.fresh(feed_backend, "dst")
    _lakefs_like(src)
    try:
        copy(src, dst, track_changes=True)
        assert untrack(src, dst).ended
        for i in range(10):
            src.delete(b"repo-x", b"k%04d" % i)
        again = copy(src, dst, track_changes=True)
        assert not again.change_feed_ready
        report = sync(src, dst)
        assert report.deleted == 10
        assert verify(src, dst).equal
    finally:
        untrack(src, dst)


def test_a_source_table_recreated_is_seen(feed_backend: str, maker: StoreMaker) -> None:
    """``pg_restore --clean`` drops and re-creates the table: the feed cannot list that."""
    src, dst = maker.fresh(feed_backend, "src"), maker.fresh(feed_backend, "dst")
    _lakefs_like(src)
    url = str(src.url)
    try:
        assert copy(src, dst, track_changes=True).change_feed_ready
        src.destroy()
        with open_store(url) as recreated:
            _lakefs_like(recreated, entries=150)  # a restore of an older backup
            report = sync(recreated, dst)
            assert report.method != "changes"
            assert any("re-created" in w for w in report.warnings)
            assert verify(recreated, dst).equal
            assert not recreated.feed_exists(feed_name(recreated, dst))  # ended, no leak
    finally:
        with open_store(url) as again:
            untrack(again, dst)


def test_a_target_recreated_is_seen(feed_backend: str, maker: StoreMaker) -> None:
    src, dst = maker.fresh(feed_backend, "src"), maker.fresh(feed_backend, "dst")
    _lakefs_like(src)
    url = str(dst.url)
    try:
        assert copy(src, dst, track_changes=True).change_feed_ready
        dst.destroy()
        with open_store(url) as empty:
            report = sync(src, empty)
            assert report.method != "changes"
            assert verify(src, empty).equal
    finally:
        with open_store(url) as again:
            untrack(src, again)
            again.destroy()


def test_refusals_leave_no_feed(feed_backend: str, maker: StoreMaker) -> None:
    src, dst = maker.fresh(feed_backend, "src"), maker.fresh(feed_backend, "dst")
    _lakefs_like(src)
    dst.set(SCHEMA_PARTITION, SCHEMA_KEY, b"3")
    name = feed_name(src, dst)
    with pytest.raises(SchemaVersionMismatchError):
        copy(src, dst, track_changes=True)
    assert not src.feed_exists(name)
    dst.delete(SCHEMA_PARTITION, SCHEMA_KEY)
    with pytest.raises(LakekvError, match="does not exist"):
        copy(src, dst, track_changes=True, partitions=[b"no-such-partition"])
    assert not src.feed_exists(name)


# --- 3: the catch-up knows its direction ---------------------------------------------------------


def test_swapped_sides_are_refused_by_the_feed(feed_backend: str, maker: StoreMaker) -> None:
    src, dst = maker.fresh(feed_backend, "src"), maker.fresh(feed_backend, "dst")
    _lakefs_like(src)
    try:
        copy(src, dst, track_changes=True)
        src.set(b"graveler", b"newer1", b"x")
        with pytest.raises(UnsafeOperationError, match="swapped"):
            sync(dst, src)
        assert src.get(b"graveler", b"newer1").value == b"x"
    finally:
        untrack(src, dst)


def test_swapped_sides_are_refused_by_the_pass_record(tmp_path: Path) -> None:
    with _sqlite(tmp_path, "s") as s, _sqlite(tmp_path, "t") as t:
        _lakefs_like(s)
        copy(s, t)
        s.set(b"graveler", b"newer1", b"x")
        with pytest.raises(UnsafeOperationError, match="swapped"):
            sync(t, s)
        assert s.get(b"graveler", b"newer1").value == b"x"
        # The right way round is fine, and so is going back once the new side was written.
        sync(s, t)
        t.set(*KV_TYPE, b"local")  # lakeFS of another database type started on it
        t.set(b"graveler", b"written-on-new", b"y")
        back = sync(t, s, force=False)
        assert back.written >= 2
        assert verify(t, s).equal


# --- 7: the catch-up never deletes writes it did not make ----------------------------------------


def test_lakefs_started_on_the_target_is_refused(backend: str, maker: StoreMaker) -> None:
    src, dst = maker.fresh(backend, "src"), maker.fresh(backend, "dst")
    _lakefs_like(src)
    copy(src, dst)
    src.set(b"graveler", b"on-old", b"1")
    # lakeFS starts on the new database: it rewrites its markers, here with the same value
    # where the engine has row versions, else with its own database type.
    same = dst.row_version(*KV_TYPE) is not None
    dst.set(*KV_TYPE, b"postgres" if same else b"dynamodb")
    dst.set(b"repo-x", b"commits/new-on-target", b"c")
    with pytest.raises(UnsafeOperationError, match="lakeFS"):
        sync(src, dst)
    assert dst.get(b"repo-x", b"commits/new-on-target").value == b"c"
    forced = sync(src, dst, force=True)
    assert forced.deleted == 1
    assert verify(src, dst).equal


def test_without_a_record_a_foreign_marker_is_refused(tmp_path: Path) -> None:
    with _sqlite(tmp_path, "s") as s, _sqlite(tmp_path, "t") as t:
        _lakefs_like(s)
        copy(s, t)
        for record in (Path(os.environ["LAKEKV_STATE_DIR"]) / "pairs").iterdir():
            record.unlink()  # e.g. the first pass ran on another machine
        sync(s, t)  # same markers: nothing says another lakeFS ran there
        for record in (Path(os.environ["LAKEKV_STATE_DIR"]) / "pairs").iterdir():
            record.unlink()
        t.set(*KV_TYPE, b"dynamodb")
        with pytest.raises(UnsafeOperationError, match="a lakeFS has run on the target"):
            sync(s, t)


# --- sync deletes within a budget, one at a time, and stops on request --------------------------


def test_sync_delete_budget(backend: str, maker: StoreMaker, tmp_path: Path) -> None:
    """Comparing (merge, or digests where both stores compute them), a sync deletes at most a
    quarter of the target entries it saw, and refuses before deleting anything."""
    s, t = maker.fresh(backend, "s"), maker.fresh(backend, "t")
    _lakefs_like(s, entries=100)
    copy(s, t)
    t.write_batch([(b"extra", b"e%05d" % i, b"") for i in range(1500)])
    for method in ("merge", "auto"):
        with pytest.raises(UnsafeOperationError, match="more than a quarter of the"):
            sync(s, t, method=method)
        assert sum(1 for _ in t.scan(b"extra")) == 1500  # nothing deleted
    with pytest.raises(UnsafeOperationError, match="--max-delete"):
        sync(s, t, max_delete=10)
    report = sync(s, t, max_delete=1500)
    assert report.deleted == 1500
    assert verify(s, t).equal
    with pytest.raises(LakekvError, match="add --sync"):
        copy(f"sqlite:///{tmp_path}/s.db", f"sqlite:///{tmp_path}/u.db", max_delete=1)


def test_a_catch_up_by_the_feed_deletes_what_the_source_deleted(
    feed_backend: str, maker: StoreMaker
) -> None:
    """The feed lists the source's own deletions: no share applies to them."""
    s, t = maker.fresh(feed_backend, "s"), maker.fresh(feed_backend, "t")
    _lakefs_like(s, entries=1000)
    try:
        copy(s, t, track_changes=True)
        s.delete_many(b"repo-x", [b"k%04d" % i for i in range(1000)])
        report = sync(s, t)
        assert report.method == "changes" and report.deleted == 1000
        assert verify(s, t).equal
    finally:
        untrack(s, t)


def test_two_syncs_of_one_pair_cannot_run_at_once(tmp_path: Path) -> None:
    with _sqlite(tmp_path, "s") as s, _sqlite(tmp_path, "t") as t:
        _lakefs_like(s)
        with pair_lock(t.identity(), s.identity(), "sync"):
            with pytest.raises(UnsafeOperationError, match="another lakekv run"):
                sync(s, t)
            with pytest.raises(UnsafeOperationError, match="another lakekv run"):
                copy(s, t)
        sync(s, t)


def test_sync_stops_on_request(tmp_path: Path) -> None:
    with _sqlite(tmp_path, "s") as s, _sqlite(tmp_path, "t") as t:
        _lakefs_like(s, entries=3000)
        stop = threading.Event()
        stop.set()
        for method in ("auto", "merge"):
            with pytest.raises(InterruptedMigrationError):
                sync(s, t, method=method, stop=stop, batch_entries=100)


# --- 4: a resumed copy vouches only for a target that still holds what it wrote ------------------


def _interrupted(src: Store, dst: Store, ckpt: Path) -> None:
    with pytest.raises(LakekvError, match="simulated crash"):
        copy(src, FailingWrites(dst, ok_batches=3), checkpoint=ckpt, batch_entries=50, workers=1)


def test_resume_into_a_recreated_target_is_refused(tmp_path: Path) -> None:
    with _sqlite(tmp_path, "s") as s:
        _lakefs_like(s, entries=300)
        with _sqlite(tmp_path, "t") as t:
            _interrupted(s, t, tmp_path / "c.ckpt")
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"t.db{suffix}").unlink(missing_ok=True)
        with pytest.raises(ConfigurationError, match="re-created or emptied"):
            copy(s, f"sqlite:///{tmp_path}/t.db", checkpoint=tmp_path / "c.ckpt")
        (tmp_path / "c.ckpt").unlink()
        copy(s, f"sqlite:///{tmp_path}/t.db", checkpoint=tmp_path / "c.ckpt")
        assert verify(s, f"sqlite:///{tmp_path}/t.db").equal


def test_resume_into_a_target_that_lost_writes_is_refused(
    backend: str, maker: StoreMaker, tmp_path: Path
) -> None:
    src, dst = maker.fresh(backend, "src"), maker.fresh(backend, "dst")
    _lakefs_like(src, entries=300)
    _interrupted(src, dst, tmp_path / "c.ckpt")
    # The server lost its last acknowledged writes (a crash, a restart without persistence).
    for p in list(dst.list_partitions()):
        for e in list(dst.scan(p)):
            dst.delete(p, e.key)
    with pytest.raises(ConfigurationError, match="no longer holds what earlier runs wrote"):
        copy(src, dst, checkpoint=tmp_path / "c.ckpt")


# --- 8: verify's verdict survives a closed output pipe ------------------------------------------


def test_verify_exit_status_survives_a_closed_pipe(tmp_path: Path) -> None:
    with _sqlite(tmp_path, "a") as a, _sqlite(tmp_path, "b") as b:
        _lakefs_like(a, entries=20)
        copy(a, b)
        b.set(b"graveler", b"extra", b"x")
    cmd = [sys.executable, "-c", "from lakekv.cli.main import main; main()", "verify"]
    cmd += ["--from", f"sqlite:///{tmp_path}/a.db", "--to", f"sqlite:///{tmp_path}/b.db"]
    for extra in ([], ["--json"]):
        for _ in range(3):
            r, w = os.pipe()
            os.close(r)  # nobody reads: the first write fails with EPIPE
            proc = subprocess.run(
                cmd + extra, stdout=w, stderr=subprocess.PIPE, cwd=ROOT, timeout=120, check=False
            )
            os.close(w)
            assert proc.returncode == 1, proc.stderr


def test_sync_applies_lakefs_variables_to_one_side_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(
            f"database:\n  type: postgres\n  postgres:\n    connection_string: postgres://u@h/{name}\n"
        )
    monkeypatch.setenv("LAKEFS_DATABASE_TYPE", "mem")
    for command in ("sync", "untrack"):
        code, _, err = run(
            capsys,
            command,
            "--from-lakefs-config",
            str(tmp_path / "a.yaml"),
            "--to-lakefs-config",
            str(tmp_path / "b.yaml"),
        )
        assert code == 2, err
        assert "LAKEFS_DATABASE_TYPE" in err


# --- kill -9 leaves nothing behind ----------------------------------------------------------------


def test_temporary_files_are_unlinked_at_once(tmp_path: Path) -> None:
    """MySQL's LOAD DATA batches and the spool of an input read twice use such files: a
    process killed while one is open leaves no file behind."""
    with unlinked_file("lakekv-load-", str(tmp_path)) as (f, path):
        f.write(b"data")
        f.flush()
        assert list(tmp_path.iterdir()) == []
        with open(path, "rb") as again:
            assert again.read() == b"data"
    assert list(tmp_path.iterdir()) == []


def test_files_lakekv_creates_are_private(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/new.db") as s:
        s.set(b"auth", b"k", b"secret")
    assert (tmp_path / "new.db").stat().st_mode & 0o077 == 0
    lmdb = pytest.importorskip("lmdb")
    assert lmdb is not None
    with open_store(f"lmdb:///{tmp_path}/env") as s:
        s.set(b"auth", b"k", b"secret")
    assert (tmp_path / "env" / "data.mdb").stat().st_mode & 0o077 == 0
    assert (tmp_path / "env").stat().st_mode & 0o077 == 0


def test_one_sqlite_file_through_a_hard_link_is_one_store(tmp_path: Path) -> None:
    with _sqlite(tmp_path, "a") as a:
        _lakefs_like(a, entries=5)
    os.link(tmp_path / "a.db", tmp_path / "b.db")
    with pytest.raises(LakekvError, match="same store"):
        verify(f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db")


def test_another_spelling_of_the_source_finds_its_feed(
    feed_backend: str, maker: StoreMaker
) -> None:
    src, dst = maker.fresh(feed_backend, "src"), maker.fresh(feed_backend, "dst")
    _lakefs_like(src)
    url = StoreURL.parse(str(src.url))
    if url.host not in ("127.0.0.1", "localhost"):
        pytest.skip("the test server is not on this machine's loopback")
    other = str(dataclasses.replace(url, host="127.1"))
    try:
        assert copy(src, dst, track_changes=True).change_feed_ready
        src.set(b"graveler", b"after", b"x")
        with open_store(other, read_only=True) as same:
            assert same.identity() == src.identity()
            report = sync(same, dst)
        assert report.method == "changes"
        assert verify(src, dst).equal
    finally:
        untrack(src, dst)


def test_lmdb_open_adopts_a_map_another_process_grew(tmp_path: Path) -> None:
    pytest.importorskip("lmdb")
    url = f"lmdb:///{tmp_path}/env?map_size=1048576"
    with open_store(url) as first:
        first.set(b"p", b"k", b"v")
        grow = (
            "from lakekv import open_store\n"
            f"with open_store({url!r}) as s:\n"
            "    s.write_batch([(b'big', b'%06d' % i, b'x' * 4096) for i in range(2000)])\n"
        )
        subprocess.run([sys.executable, "-c", grow], check=True, cwd=ROOT, timeout=120)
        # This process still maps the old size: opening another table must adopt the new one.
        with open_store(f"lmdb:///{tmp_path}/env?table=other&map_size=1048576") as second:
            second.set(b"p", b"k", b"v")
            assert second.get(b"p", b"k").value == b"v"
        assert first.get(b"big", b"001999").value == b"x" * 4096


def test_url_mistakes_are_exit_2_on_postgres(feed_backend: str) -> None:
    """A missing database or an unknown role is a configuration mistake (exit 2), as on
    MySQL, not an unavailable server (exit 3)."""
    url = StoreURL.parse(feed_backend)
    for bad in (
        dataclasses.replace(url, path="/lakekv_no_such_database"),
        dataclasses.replace(url, username="lakekv_nobody"),
    ):
        code, _, err = _cli_exit("--store", str(bad), "get", "a", "b")
        assert code == 2, err


def _cli_exit(*args: str) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", "from lakekv.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_a_redis_cluster_reached_through_another_node_is_the_same_store(backend: str) -> None:
    url = StoreURL.parse(backend)
    if url.scheme != "redis+cluster":
        pytest.skip("Redis Cluster only")
    hosts = url.host_list(6379)
    if len(hosts) < 2:
        pytest.skip("the cluster URL names one node")
    query = "&".join(f"{k}={v}" for k, v in url.query)
    first = f"redis+cluster://{hosts[0][0]}:{hosts[0][1]}?{query}"
    last = f"redis+cluster://{hosts[-1][0]}:{hosts[-1][1]}?{query}"
    with open_store(first) as a, open_store(last) as b:
        assert a.identity() == b.identity()
        with pytest.raises(LakekvError, match="same store"):
            verify(a, b)


@pytest.mark.serial  # ALTER SYSTEM: every other test's change feeds could lose their WAL
def test_a_feed_whose_wal_the_server_dropped_is_compared_instead(
    feed_backend: str, maker: StoreMaker
) -> None:
    """``max_slot_wal_keep_size`` lets the server drop WAL a slot still needs (``wal_status``
    ``lost``): the catch-up compares the stores, with a warning, instead of failing."""
    src, dst = maker.fresh(feed_backend, "src"), maker.fresh(feed_backend, "dst")
    _lakefs_like(src, entries=50)
    url = StoreURL.parse(feed_backend)
    conninfo = f"host={url.host} port={url.port} dbname={url.path.strip('/')} user={url.username}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        (keep,) = conn.execute("SHOW max_slot_wal_keep_size").fetchone() or ("-1",)
        try:
            assert copy(src, dst, track_changes=True).change_feed_ready
            conn.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
            conn.execute("SELECT pg_reload_conf()")
            name = feed_name(src, dst)
            for _ in range(60):  # WAL past the limit, then a checkpoint removes it
                src.write_batch([(b"bulk", b"%06d" % i, b"x" * 2000) for i in range(2000)])
                conn.execute("SELECT pg_switch_wal()")
                conn.execute("CHECKPOINT")
                row = conn.execute(
                    "SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s", (name,)
                ).fetchone()
                if row is not None and row[0] == "lost":
                    break
            else:
                pytest.skip("the server kept the slot's WAL")
            report = sync(src, dst)
            assert report.method != "changes"
            assert any("dropped WAL" in w for w in report.warnings)
            assert verify(src, dst).equal
        finally:
            conn.execute(f"ALTER SYSTEM SET max_slot_wal_keep_size = '{keep}'")
            conn.execute("SELECT pg_reload_conf()")
            untrack(src, dst)
