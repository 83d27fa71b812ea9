"""SQLite specifics: URL forms, layout, WAL, and atomic set_if across processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lakekv import open_store
from lakekv.errors import (
    ConfigurationError,
    PredicateFailedError,
    StoreNotFoundError,
    StoreReadOnlyError,
)
from lakekv.kv.drivers.sqlite import SQLiteStore


def test_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///rel.db") as s:
        assert isinstance(s, SQLiteStore)
        assert s.path == Path("rel.db")
        s.set(b"p", b"k", b"v")
    assert (tmp_path / "rel.db").exists()
    with open_store(f"sqlite:///{tmp_path}/abs.db") as s:
        assert isinstance(s, SQLiteStore)
        assert s.path == tmp_path / "abs.db"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite://host/x.db",
        "sqlite:///x.db?table=drop%20table",
        "sqlite:///x.db?synchronous=sometimes",
        "sqlite:///x.db?page_size=0",
        "sqlite:///x.db?unknown=1",
    ],
)
def test_bad_urls(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError):
        open_store(url)


def test_layout_is_without_rowid_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "layout.db"
    with open_store(f"sqlite:///{path}?table=entries") as s:
        s.set(b"p", b"k", b"")
    conn = sqlite3.connect(path)
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'entries'").fetchone()[0]
    assert "WITHOUT ROWID" in sql
    assert "PRIMARY KEY (partition, key)" in sql
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = conn.execute("SELECT partition, key, value, typeof(value) FROM entries").fetchone()
    assert row == (b"p", b"k", b"", "blob")


def test_open_iterator_does_not_block_writers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/iter.db?page_size=2&page_cap=2&busy_timeout=100"
    with open_store(url) as a, open_store(url) as b:
        for i in range(6):
            a.set(b"p", b"%d" % i, b"x")
        it = a.scan(b"p")
        next(it)
        # another connection can write (and checkpoint) while the iterator is mid-scan
        b.set(b"p", b"9", b"y")
        b.delete(b"p", b"5")
        assert [e.key for e in it] == [b"1", b"2", b"3", b"4", b"9"]


def _increment(url: str, n: int) -> None:
    with open_store(url) as s:
        for _ in range(n):
            while True:
                got = s.get(b"p", b"counter")
                try:
                    s.set_if(b"p", b"counter", b"%d" % (int(got.value) + 1), got.predicate)
                    break
                except PredicateFailedError:
                    continue


def test_set_if_is_atomic_across_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/procs.db"
    with open_store(url) as s:
        s.set(b"p", b"counter", b"0")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_increment, args=(url, 100)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with open_store(url) as s:
        assert s.get(b"p", b"counter").value == b"400"


def test_threads_get_their_own_connections(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/t.db") as s:
        assert isinstance(s, SQLiteStore)
        seen: list[int] = []

        def work() -> None:
            s.set(b"p", b"k", b"v")
            seen.append(id(s._conn()))

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(seen)) == 4


_CLOSE_DURING_WRITE = """
import sys, threading, time
from lakekv import open_store
from lakekv.errors import StoreClosedError
from lakekv.kv.store import Entry
s = open_store("sqlite:///" + sys.argv[1])
batch = [Entry(b"p", b"k%06d" % i, b"v" * 100) for i in range(5000)]
started = threading.Event()
def write():
    started.set()
    try:
        for i in range(20):
            s.write_batch([Entry(e.partition, e.key + b"-%d" % i, e.value) for e in batch])
    except StoreClosedError:
        pass
t = threading.Thread(target=write)
t.start()
started.wait()
time.sleep(0.05)
s.close()
t.join()
"""


def test_close_during_write_batch_on_another_thread_never_crashes(tmp_path: Path) -> None:
    """It segfaulted (closing the connection under a running executemany) 10 runs out of 10."""
    for i in range(3):
        db = tmp_path / f"close{i}.db"
        run = subprocess.run(
            [sys.executable, "-c", _CLOSE_DURING_WRITE, str(db)],
            check=False,
            capture_output=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr.decode()[-2000:]


def test_open_without_create_never_creates_the_file(tmp_path: Path) -> None:
    typo = tmp_path / "typo.db"
    with pytest.raises(StoreNotFoundError, match=r"typo\.db does not exist"):
        open_store(f"sqlite:///{typo}", create=False)
    with pytest.raises(StoreNotFoundError):
        open_store(f"sqlite:///{typo}", read_only=True)
    assert not typo.exists()
    with open_store(f"sqlite:///{typo}") as s:
        s.set(b"p", b"k", b"v")
    with pytest.raises(StoreNotFoundError, match="no table 'other'"):
        open_store(f"sqlite:///{typo}?table=other", read_only=True)
    before = sorted(p.name for p in tmp_path.iterdir())
    with open_store(f"sqlite:///{typo}", read_only=True) as ro:
        assert ro.get(b"p", b"k").value == b"v"
        with pytest.raises(StoreReadOnlyError):
            ro.set(b"p", b"k", b"w")
    with sqlite3.connect(typo) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
    assert "other" not in tables
    assert sorted(p.name for p in tmp_path.iterdir()) <= sorted(
        set(before) | {"typo.db-shm", "typo.db-wal"}
    )


def test_identity_follows_symlinks_and_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "real.db"
    link = tmp_path / "link.db"
    with open_store(f"sqlite:///{real}") as s:
        s.set(b"p", b"k", b"v")
    link.symlink_to(real)
    monkeypatch.chdir(tmp_path)
    with (
        open_store(f"sqlite:///{real}") as a,
        open_store(f"sqlite:///{link}") as b,
        open_store("sqlite:///real.db") as c,
        open_store("sqlite:///./real.db?busy_timeout=5") as d,
        open_store("sqlite:///real.db?table=other") as e,
    ):
        assert a.identity() == b.identity() == c.identity() == d.identity()
        assert e.identity() != a.identity()
