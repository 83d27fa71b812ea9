"""``lakekv cutover`` (and ``--plan``), ``lakekv status`` and going back."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import psycopg
import pytest
from _cli import run
from _migrate_helpers import StoreMaker

from lakekv import open_store
from lakekv.errors import InterruptedMigrationError, UnsafeOperationError
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
from lakekv.migrate._pair import LAKEFS_MARKS
from lakekv.migrate.cutover import _estimate, cutover, plan, status
from lakekv.migrate.feeds import feed_name
from lakekv.migrate.lakefs_config import lakefs_settings

KV_TYPE = LAKEFS_MARKS[0]


def _lakefs_like(store: Store, entries: int = 300) -> None:
    batch = [
        (p, b"k%04d" % i, b"v%d" % i)
        for p in (b"graveler", b"auth", b"repo-x")
        for i in range(entries)
    ]
    batch += [(*KV_TYPE, b"postgres"), (SCHEMA_PARTITION, SCHEMA_KEY, LAKEFS_SCHEMA_VERSION)]
    store.write_batch(batch)


def test_plan_then_cutover_by_the_feed(feed_backend: str, maker: StoreMaker) -> None:
    src, dst = maker.fresh(feed_backend, "src"), maker.fresh(feed_backend, "dst")
    _lakefs_like(src)
    try:
        assert copy(src, dst, track_changes=True).change_feed_ready
        for i in range(20):
            src.set(b"graveler", b"new%d" % i, b"x")
        rehearsal = plan(src, dst)
        assert not rehearsal.equal and rehearsal.estimate is not None
        assert set(rehearsal.estimate.by_method) >= {"changes", "merge"}
        assert rehearsal.estimate.method == min(
            rehearsal.estimate.by_method,
            key=lambda m: rehearsal.estimate.by_method[m],  # type: ignore[union-attr]
        )
        assert src.feed_exists(rehearsal_feed(src, dst))  # the plan changed nothing
        feeds = status(src)
        mine = [f for f in feeds if f.name == rehearsal_feed(src, dst)]
        assert mine and mine[0].ready and mine[0].source == rehearsal.source
        report = cutover(src, dst, settle=0.2)
        assert report.equal and report.verify is not None and report.verify.equal
        assert report.sync is not None and report.sync.inserted == 20
        names = [s.name for s in report.steps]
        assert names[-5:] == ["quiet", "estimate", "catch-up", "verify", "still quiet"]
        assert names[0] == "process start"  # (Linux: from /proc)
        still = report.steps[-1]
        assert "no new change" in still.detail
        assert sum(s.seconds for s in report.steps[-3:]) >= 0.2  # settle spans all three
        assert report.lakefs_env["LAKEFS_DATABASE_TYPE"] == "postgres"
        assert not src.feed_exists(rehearsal_feed(src, dst))  # ended once still quiet
        assert report.sync.change_feed_kept is False
    finally:
        untrack(src, dst)


def rehearsal_feed(src: Store, dst: Store) -> str:
    return feed_name(src, dst)


def test_cutover_refuses_while_lakefs_is_connected(feed_backend: str, maker: StoreMaker) -> None:
    src, dst = maker.fresh(feed_backend, "src"), maker.fresh(feed_backend, "dst")
    _lakefs_like(src)
    copy(src, dst)
    url = StoreURL.parse(str(src.url))
    conninfo = f"host={url.host} port={url.port} dbname={url.path.strip('/')} user={url.username}"
    with psycopg.connect(conninfo + " application_name=lakefs"):
        with pytest.raises(UnsafeOperationError, match="stop lakeFS first"):
            cutover(src, dst, settle=0)
        assert cutover(src, dst, settle=0, allow_sessions=True).equal


def test_cutover_refuses_a_source_still_written(feed_backend: str, maker: StoreMaker) -> None:
    src, dst = maker.fresh(feed_backend, "src"), maker.fresh(feed_backend, "dst")
    _lakefs_like(src)
    stop = threading.Event()

    def writer() -> None:
        with open_store(str(src.url)) as s:
            i = 0
            while not stop.is_set():
                s.set(b"graveler", b"w%d" % i, b"x")
                i += 1
                time.sleep(0.01)

    try:
        copy(src, dst, track_changes=True)
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        try:
            with pytest.raises(UnsafeOperationError, match="still writes to the source"):
                cutover(src, dst, settle=0.5, allow_sessions=True)
        finally:
            stop.set()
            thread.join()
        assert src.feed_exists(feed_name(src, dst))  # kept for the next try
        assert cutover(src, dst, settle=0.2).equal
    finally:
        untrack(src, dst)


def test_a_stop_during_the_settle_wait_ends_the_cutover_and_keeps_the_feed(
    feed_backend: str, maker: StoreMaker
) -> None:
    """The wait for ``settle`` after the verify ends at once on a stop request (Ctrl-C),
    without ending the feed: the next cutover goes by it."""
    src, dst = maker.fresh(feed_backend, "src"), maker.fresh(feed_backend, "dst")
    _lakefs_like(src)
    try:
        copy(src, dst, track_changes=True)
        src.set(b"graveler", b"late", b"x")
        stop = threading.Event()
        timer = threading.Timer(0.5, stop.set)
        timer.start()
        started = time.monotonic()
        with pytest.raises(InterruptedMigrationError):
            cutover(src, dst, settle=60, stop=stop)
        assert time.monotonic() - started < 10
        assert src.feed_exists(feed_name(src, dst))
        again = cutover(src, dst, settle=0)
        assert again.equal and again.sync is not None and again.sync.method == "changes"
    finally:
        untrack(src, dst)


def test_going_back_after_the_cutover(backend: str, maker: StoreMaker) -> None:
    """Cutover old → new, lakeFS runs on the new database, then back: stop it, sync
    new → old, verify. The old side is never emptied; no feed is needed on the new side."""
    old, new = maker.fresh(backend, "old"), maker.fresh(backend, "new")
    _lakefs_like(old)
    copy(old, new)
    assert cutover(old, new, settle=0).equal
    # lakeFS starts on the new database (rewrites its markers) and takes writes.
    same = new.row_version(*KV_TYPE) is not None
    new.set(*KV_TYPE, b"postgres" if same else b"dynamodb")
    new.set(b"repo-x", b"commits/after-cutover", b"c")
    new.delete(b"repo-x", b"k0001")
    back = sync(new, old)
    assert back.deleted == 1
    assert verify(new, old).equal
    assert old.get(b"repo-x", b"commits/after-cutover").value == b"c"


def test_the_method_is_chosen_by_estimate() -> None:
    record = {"rates": {"changes": 1e-3, "digests": 1e-6, "merge": 3e-6}, "verify_rate": 1e-6}
    # Few changes: the feed; a feed listing more changes than entries: not the fast path.
    few = _estimate(record, 1_000_000, 100, "auto", possible=["changes", "digests", "merge"])
    assert few.method == "changes"
    many = _estimate(record, 10_000, 25_000, "auto", possible=["changes", "digests", "merge"])
    assert many.method == "digests"
    assert _estimate(record, 10_000, 25_000, "merge").method == "merge"
    # Without a plan: the feed unless it lists half as many changes as there are entries.
    assert _estimate({}, 10_000, 100, "auto", possible=["changes", "merge"]).method == "changes"
    assert _estimate({}, 10_000, 9_000, "auto", possible=["changes", "merge"]).method == "merge"


def test_lakefs_settings_mask_the_password() -> None:
    section, env = lakefs_settings(
        StoreURL.parse(
            "postgres://lakefs:s3cret@db.example:5433/meta?table=kv2&schema=lake&pool_size=4&sslmode=require"
        )
    )
    conn = section["postgres"]["connection_string"]
    assert "s3cret" not in conn and "****" in conn
    assert "lakefskv_table=kv2" in conn and "search_path=lake" in conn and "sslmode=require" in conn
    assert "pool_size" not in conn
    assert env["LAKEFS_DATABASE_POSTGRES_CONNECTION_STRING"] == conn
    section, env = lakefs_settings(
        StoreURL.parse("dynamodb://kvstore?region=eu-west-1&endpoint=http://127.0.0.1:8000")
    )
    assert section == {
        "type": "dynamodb",
        "dynamodb": {
            "table_name": "kvstore",
            "aws_region": "eu-west-1",
            "endpoint": "http://127.0.0.1:8000",
        },
    }
    assert env["LAKEFS_DATABASE_DYNAMODB_AWS_REGION"] == "eu-west-1"


def test_cli_cutover_and_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = f"sqlite:///{tmp_path}/old.db", f"sqlite:///{tmp_path}/new.db"
    with open_store(a) as s:
        _lakefs_like(s, entries=50)
    copy(a, b)
    code, out, err = run(capsys, "cutover", "--from", a, "--to", b, "--plan")
    assert code == 0, err
    assert "estimate: catch-up by" in out
    code, out, err = run(capsys, "cutover", "--from", a, "--to", b, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["equal"] is True and report["verify"]["equal"] is True
    assert any("cannot be seen" in c for c in report["quiet_checks"])
    code, out, err = run(capsys, "status", "--from", a)
    assert code == 2 and "no change feeds" in err
    code, _, err = run(capsys, "cutover", "--from", a, "--to", f"sqlite:///{tmp_path}/typo.db")
    assert code == 2, err
    assert not (tmp_path / "typo.db").exists()
