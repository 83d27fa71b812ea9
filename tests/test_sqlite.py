"""SQLite specifics: URL forms, layout, WAL, and atomic set_if across processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from lakekv import open_store
from lakekv.errors import ConfigurationError, PredicateFailedError
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
