"""LMDB driver tests beyond the shared contract: URLs, layout, a map that grows by itself (also
when another process grew it), atomic set_if across threads and processes, limits checked
before I/O, and translated errors."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lakekv import open_store
from lakekv.errors import (
    ConfigurationError,
    InvalidArgumentError,
    PredicateFailedError,
    StoreError,
    StoreUnavailableError,
)
from lakekv.kv.store import Entry, OnConflict

pytest.importorskip("lmdb")

import lmdb

from lakekv.kv.drivers.lmdb import ID_SIZE, MAX_KEY_SIZE, MAX_PARTITION_SIZE, LMDBStore

ROOT = Path(__file__).resolve().parent.parent


def test_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("lmdb:///rel") as s:
        assert isinstance(s, LMDBStore)
        assert s.path == Path("rel")
        s.set(b"p", b"k", b"v")
    assert (tmp_path / "rel" / "data.mdb").exists()
    with open_store(f"lmdb:///{tmp_path}/abs?table=other") as s:
        assert isinstance(s, LMDBStore)
        assert s.path == tmp_path / "abs"
        assert s.table == "other"


@pytest.mark.parametrize(
    "url",
    [
        "lmdb://",
        "lmdb:///",
        "lmdb://host/x",
        "lmdb:///x?table=a%20b",
        "lmdb:///x?table=" + "t" * 129,
        "lmdb:///x?synchronous=sometimes",
        "lmdb:///x?map_size=1000",
        "lmdb:///x?page_size=0",
        "lmdb:///x?unknown=1",
    ],
)
def test_bad_urls(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError):
        open_store(url)
    assert not (tmp_path / "x").exists()


def test_layout_is_an_id_per_partition_then_the_key(tmp_path: Path) -> None:
    with open_store(f"lmdb:///{tmp_path}/db?table=entries") as s:
        s.set(b"b", b"k2", b"v2")
        s.set(b"a", b"k1", b"v1")
        s.set(b"b", b"k1", b"")
    env = lmdb.open(str(tmp_path / "db"), max_dbs=4, readonly=True)
    try:
        names_db = env.open_db(b"entries:partitions", create=False)
        data_db = env.open_db(b"entries", create=False)
        with env.begin() as txn:
            names = list(txn.cursor(db=names_db))
            data = list(txn.cursor(db=data_db))
    finally:
        env.close()
    one, two = (1).to_bytes(ID_SIZE), (2).to_bytes(ID_SIZE)
    assert names == [(b"a", two), (b"b", one)]
    assert data == [(one + b"k1", b""), (one + b"k2", b"v2"), (two + b"k1", b"v1")]


def test_emptied_partition_is_unlisted_and_its_range_stays_separate(tmp_path: Path) -> None:
    with open_store(f"lmdb:///{tmp_path}/db") as s:
        s.set(b"a", b"k", b"1")
        s.set(b"b", b"k", b"2")
        s.delete(b"a", b"k")
        assert list(s.list_partitions()) == [b"b"]
        s.set(b"c", b"k", b"3")  # gets a fresh id after b's
        assert [(e.partition, e.key) for e in s.scan(b"b")] == [(b"b", b"k")]
        assert list(s.list_partitions()) == [b"b", b"c"]


def test_limits_are_lmdbs_key_size_less_the_id(tmp_path: Path) -> None:
    with open_store(f"lmdb:///{tmp_path}/db") as s:
        assert isinstance(s, LMDBStore)
        assert s._env.max_key_size() == MAX_KEY_SIZE + ID_SIZE == MAX_PARTITION_SIZE
        s.set(b"p" * MAX_PARTITION_SIZE, b"\xff" * MAX_KEY_SIZE, b"v")
        assert s.get(b"p" * MAX_PARTITION_SIZE, b"\xff" * MAX_KEY_SIZE).value == b"v"
        with pytest.raises(InvalidArgumentError, match=str(MAX_KEY_SIZE)):
            s.set(b"p", b"k" * (MAX_KEY_SIZE + 1), b"v")
        with pytest.raises(InvalidArgumentError, match=str(MAX_PARTITION_SIZE)):
            s.set(b"p" * (MAX_PARTITION_SIZE + 1), b"k", b"v")
        with pytest.raises(InvalidArgumentError):
            s.write_batch([Entry(b"p", b"k" * (MAX_KEY_SIZE + 1), b"")])
        assert list(s.scan(b"p")) == []


def test_map_grows_by_itself(tmp_path: Path) -> None:
    url = f"lmdb:///{tmp_path}/db?map_size={1 << 20}"
    big = bytes(range(256)) * 4096 * 3  # 3 MiB, three times the initial map
    with open_store(url) as s:
        assert isinstance(s, LMDBStore)
        start = s._env.info()["map_size"]
        for i in range(8):
            s.set(b"p", b"big%d" % i, big)
        s.write_batch([Entry(b"q", b"k%05d" % i, bytes(1000)) for i in range(20000)])
        assert s._env.info()["map_size"] >= 32 * start
        assert s.get(b"p", b"big7").value == big
        assert sum(1 for _ in s.scan(b"q")) == 20000


def test_map_grows_under_concurrent_threads(tmp_path: Path) -> None:
    with open_store(f"lmdb:///{tmp_path}/db?map_size={1 << 20}") as s:
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                for i in range(200):
                    s.set(b"p%d" % n, b"k%04d" % i, bytes(5000))
                    assert s.get(b"p%d" % n, b"k%04d" % i).value == bytes(5000)
                    assert len(list(s.scan(b"p%d" % n))) == i + 1
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []


_GROW_CHILD = """
import sys
from lakekv import open_store
with open_store(sys.argv[1]) as s:
    for i in range(40):
        s.set(b"child", b"k%d" % i, bytes(100_000))
"""


def test_map_grown_by_another_process_is_adopted(tmp_path: Path) -> None:
    url = f"lmdb:///{tmp_path}/db?map_size={1 << 20}"
    with open_store(url) as s:
        assert isinstance(s, LMDBStore)
        s.set(b"parent", b"k", b"v")
        before = s._env.info()["map_size"]
        subprocess.run([sys.executable, "-c", _GROW_CHILD, url], check=True, cwd=ROOT)
        assert s.get(b"child", b"k39").value == bytes(100_000)
        s.set(b"parent", b"k2", bytes(10_000))
        assert s._env.info()["map_size"] > before
        assert len(list(s.scan(b"child"))) == 40


def _increment(url: str, n: int) -> None:
    with open_store(url) as s:
        for _ in range(n):
            while True:
                value, pred = s.get(b"p", b"counter")
                try:
                    s.set_if(b"p", b"counter", b"%d" % (int(value) + 1), pred)
                    break
                except PredicateFailedError:
                    continue


def test_set_if_is_atomic_across_processes_and_threads(tmp_path: Path) -> None:
    url = f"lmdb:///{tmp_path}/db"
    with open_store(url) as s:
        s.set(b"p", b"counter", b"0")
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_increment, args=(url, 50)) for _ in range(3)]
        for p in procs:
            p.start()
        threads = [threading.Thread(target=_increment, args=(url, 50)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        assert s.get(b"p", b"counter").value == b"250"


def test_one_environment_per_file_and_process(tmp_path: Path) -> None:
    with open_store(f"lmdb:///{tmp_path}/db") as a, open_store(f"lmdb:///{tmp_path}/./db") as b:
        assert isinstance(a, LMDBStore) and isinstance(b, LMDBStore)
        assert a._env is b._env
        a.set(b"p", b"k", b"v")
        assert b.get(b"p", b"k").value == b"v"
    with open_store(f"lmdb:///{tmp_path}/db") as c:
        assert c.get(b"p", b"k").value == b"v"


def test_tables_share_a_file_and_destroy_drops_only_theirs(tmp_path: Path) -> None:
    with open_store(f"lmdb:///{tmp_path}/db?table=a") as a:
        a.set(b"p", b"k", b"a")
        with open_store(f"lmdb:///{tmp_path}/db?table=b") as b:
            b.set(b"p", b"k", b"b")
            b.destroy()
        assert a.get(b"p", b"k").value == b"a"
    with open_store(f"lmdb:///{tmp_path}/db?table=b") as b:
        assert list(b.list_partitions()) == []


def test_write_batch_policies_in_one_transaction(tmp_path: Path) -> None:
    with open_store(f"lmdb:///{tmp_path}/db") as s:
        s.set(b"p", b"same", b"1")
        s.set(b"p", b"diff", b"old")
        batch = [Entry(b"p", b"same", b"1"), Entry(b"p", b"diff", b"new"), Entry(b"q", b"n", b"")]
        fail = s.write_batch(batch)
        assert (fail.written, fail.unchanged, fail.conflicts) == (1, 1, [batch[1]])
        over = s.write_batch(batch, OnConflict.OVERWRITE)
        assert (over.written, over.unchanged) == (1, 2)
        assert s.get(b"p", b"diff").value == b"new"


def test_errors_are_translated(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"not a directory")
    # A path that is a file is a configuration mistake (exit 2), as a wrong path is for
    # every engine, not an unavailable server.
    with pytest.raises(ConfigurationError, match="is a file"):
        open_store(f"lmdb:///{tmp_path}/file")
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "data.mdb").write_bytes(b"garbage" * 1000)
    with pytest.raises(StoreError) as corrupt:
        open_store(f"lmdb:///{tmp_path}/db")
    assert not isinstance(corrupt.value, StoreUnavailableError)  # retrying will not help
    assert isinstance(corrupt.value.__cause__, lmdb.Error)


def test_missing_parent_directory_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError):
        open_store(f"lmdb:///{tmp_path}/typo/db")
    assert not (tmp_path / "typo").exists()


def test_cli_path_that_is_a_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    cmd = [sys.executable, "-c", "from lakekv.cli.main import main; main()"]
    cmd += ["--store", f"lmdb:///{tmp_path}/file", "get", "a", "b"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 2, proc.stderr
    assert (tmp_path / "file").read_bytes() == b"x"
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
