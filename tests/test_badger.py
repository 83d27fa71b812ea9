"""badger:// tests beyond the shared contract: lakeFS's key layout, locking by flock, missing
and foreign directories, read-only opens that never touch the source (also after the writer
was killed with ``kill -9``, when acknowledged writes live only in the memtable log), values
in the value log, and the one-line message without the helper."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _files import dir_fingerprint

from lakekv import open_store
from lakekv.errors import (
    DriverNotInstalledError,
    InvalidArgumentError,
    LakekvError,
    StoreInUseError,
    StoreNotFoundError,
    StoreReadOnlyError,
)
from lakekv.kv.drivers.badger import (
    MAX_KEY_SIZE,
    BadgerStore,
    _helper,
    decode_partition,
    encode_partition,
    find_helper,
)
from lakekv.kv.store import Entry, OnConflict

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _helper_built() -> None:
    """Skip without the helper binary (``make badger-helper``); fail when CI is set."""
    try:
        find_helper()
    except DriverNotInstalledError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (required because CI is set)", pytrace=False)
        pytest.skip(str(exc))


def _url(path: Path) -> str:
    return f"badger:///{path}"


def _kill_helper(store: BadgerStore) -> None:
    """``kill -9`` the helper serving ``store`` (as lakeFS killed mid-write), then drop it."""
    helper = store._live()
    helper.process.send_signal(signal.SIGKILL)
    helper.process.wait()
    with pytest.raises(LakekvError):
        store.close()


def _badger_keys(path: Path) -> list[bytes]:
    """The raw Badger keys, read by the helper of a fresh read-only store (lakeFS's view)."""
    with open_store(_url(path), read_only=True) as store:
        assert isinstance(store, BadgerStore)
        helper = store._live()
        body = helper.call(
            ord("r"), _helper.field_bytes(b"") * 2 + b"\x01" + (10**6).to_bytes(4, "little")
        )
        return [k for k, _ in _helper.decode_scan(body)[0]]


# --- layout


def test_layout_is_lakefs_compose_key(tmp_path: Path) -> None:
    """One Badger key per entry: partition, '/', key (lakeFS pkg/kv/local/store.go)."""
    db = tmp_path / "metadata"
    with open_store(_url(db)) as s:
        s.set(b"graveler", b"repos/alpha", b"r")
        s.set(b"alpha-1234", b"branches/main", b"b")
        s.set(b"odd/name", b"k", b"escaped")
    assert _badger_keys(db) == sorted(
        [
            b"graveler/repos/alpha",
            b"alpha-1234/branches/main",
            encode_partition(b"odd/name") + b"/k",
        ]
    )
    with open_store(_url(db), read_only=True) as s:
        assert list(s.list_partitions()) == [b"alpha-1234", b"graveler", b"odd/name"]


@pytest.mark.parametrize(
    "name", [b"plain", b"a/b", b"/", b"\x00", b"\x00/\x00\x01\x02", b"!badger!x", b"a\x00b"]
)
def test_partition_encoding_round_trips_without_slash(name: bytes) -> None:
    enc = encode_partition(name)
    assert b"/" not in enc
    assert not enc.startswith(b"!badger!")
    assert decode_partition(enc) == name
    assert (enc == name) == (b"/" not in name and not name.startswith((b"\x00", b"!badger!")))


def test_partitions_sharing_a_prefix_stay_apart(tmp_path: Path) -> None:
    with open_store(_url(tmp_path / "db")) as s:
        s.set(b"a", b"b/c", b"1")
        s.set(b"a/b", b"c", b"2")
        s.set(b"a-b", b"c", b"3")
        assert [(e.key, e.value) for e in s.scan(b"a")] == [(b"b/c", b"1")]
        assert [(e.key, e.value) for e in s.scan(b"a/b")] == [(b"c", b"2")]
        assert list(s.list_partitions()) == [b"a", b"a-b", b"a/b"]


def test_limits_are_declared(tmp_path: Path) -> None:
    with open_store(_url(tmp_path / "db")) as s:
        s.set(b"p" * 1024, b"k" * MAX_KEY_SIZE, b"v")
        with pytest.raises(InvalidArgumentError):
            s.set(b"p", b"k" * (MAX_KEY_SIZE + 1), b"v")


def test_write_batch_classifies(tmp_path: Path) -> None:
    with open_store(_url(tmp_path / "db")) as s:
        s.set(b"p", b"same", b"1")
        s.set(b"p", b"other", b"1")
        batch = [Entry(b"p", b"same", b"1"), Entry(b"p", b"other", b"2"), Entry(b"q", b"new", b"3")]
        r = s.write_batch(batch)
        assert (r.written, r.unchanged, r.skipped, r.conflicts) == (1, 1, 0, [batch[1]])
        r = s.write_batch(batch, OnConflict.OVERWRITE)
        assert (r.written, r.unchanged) == (1, 2)
        assert s.get(b"p", b"other").value == b"2"
        # Keys in ascending order are merged with one iterator: the same rules.
        s.set(b"q", b"b", b"same")
        s.set(b"q", b"d", b"old")
        run = [Entry(b"q", k, v) for k, v in [(b"a", b"1"), (b"b", b"same"), (b"c", b"3")]]
        run += [Entry(b"q", b"d", b"new"), Entry(b"q", b"e", b"5")]
        r = s.write_batch(run, OnConflict.SKIP)
        assert (r.written, r.unchanged, r.skipped, r.conflicts) == (3, 1, 1, [])
        assert s.get(b"q", b"d").value == b"old"
        assert s.write_batch(run).conflicts == [run[3]]
        # More than one Badger transaction holds (its size limit is about 9.6 MB).
        many = [Entry(b"big", b"%08d" % i, os.urandom(1000)) for i in range(30000)]
        assert s.write_batch(many).written == 30000
        assert sum(1 for _ in s.scan(b"big")) == 30000


def test_values_in_the_value_log(tmp_path: Path) -> None:
    """Values of 1 MiB or more live in Badger's value log behind a pointer."""
    db = tmp_path / "db"
    big = {b"%d" % i: os.urandom((1 << 20) + i) for i in range(3)}
    with open_store(_url(db)) as s:
        for k, v in big.items():
            s.set(b"p", k, v)
        s.set(b"p", b"small", b"x")
    assert sum(f.stat().st_size for f in db.glob("*.vlog")) > 3 << 20
    with open_store(_url(db), read_only=True) as s:
        assert {e.key: e.value for e in s.scan(b"p")} == {**big, b"small": b"x"}
        assert s.get(b"p", b"2").value == big[b"2"]


# --- opening


def test_missing_empty_and_foreign_directories(tmp_path: Path) -> None:
    for read_only in (False, True):
        with pytest.raises(StoreNotFoundError, match="does not exist"):
            open_store(_url(tmp_path / "missing"), create=False, read_only=read_only)
        assert not (tmp_path / "missing").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreNotFoundError, match="empty"):
        open_store(_url(tmp_path / "empty"), create=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    for create in (True, False):
        with pytest.raises(StoreNotFoundError, match="not a Badger database"):
            open_store(_url(foreign), create=create)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreNotFoundError, match="not a directory"):
        open_store(_url(tmp_path / "file"), read_only=True)
    with open_store(_url(tmp_path / "empty")) as s:  # create: an empty directory is fine
        s.set(b"p", b"k", b"v")
    with open_store(_url(tmp_path / "empty"), create=False) as s:
        assert s.get(b"p", b"k").value == b"v"


@pytest.fixture
def database(tmp_path: Path) -> Path:
    db = tmp_path / "metadata"
    with open_store(_url(db)) as s:
        s.write_batch([Entry(b"graveler", b"k%04d" % i, b"v%d" % i) for i in range(100)])
    return db


@contextlib.contextmanager
def _lakefs_lock(path: Path) -> Iterator[int]:
    """Hold lakeFS's lock on ``path``: flock(LOCK_EX|LOCK_NB) on the directory itself."""
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        yield fd
    finally:
        os.close(fd)


def test_a_running_lakefs_is_refused(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lakeFS holds flock(LOCK_EX) on the directory: read-only and read-write opens are both
    refused with "stop lakeFS first", and the command line exits 2 with one line."""
    before = dir_fingerprint(database)
    with _lakefs_lock(database):
        for read_only in (True, False):
            with pytest.raises(StoreInUseError, match="stop lakeFS first"):
                open_store(_url(database), read_only=read_only)
        from _cli import run  # noqa: PLC0415

        code, _, err = run(capsys, "--store", _url(database), "get", "graveler", "k0001")
        assert code == 2, err
        assert "stop lakeFS first" in err and len(err.strip().splitlines()) == 1
    assert dir_fingerprint(database) == before


def test_a_stale_lock_file_is_not_a_lock(database: Path) -> None:
    """The LOCK file is a PID file that a crash leaves behind: only the flock counts."""
    (database / "LOCK").write_text("999999\n")
    with open_store(_url(database), read_only=True) as s:
        assert s.get(b"graveler", b"k0001").value == b"v1"
    with open_store(_url(database)) as s:
        s.set(b"graveler", b"after", b"x")


def test_a_read_only_source_keeps_lakefs_out(database: Path) -> None:
    """While lakekv reads, its shared flock makes lakeFS's exclusive one fail."""
    with open_store(_url(database), read_only=True) as s:
        fd = os.open(database, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        assert s.get(b"graveler", b"k0002").value == b"v2"


def test_read_only_never_writes_a_clean_source(database: Path) -> None:
    """A cleanly closed directory that was opened more than once holds an empty value log
    that is not the newest: Badger's own read-only open deletes it (value.go,
    valueLog.open). lakekv reads a private copy instead and leaves every byte as it was."""
    with open_store(_url(database)) as s:  # lakeFS restarted: a second value log
        s.set(b"graveler", b"again", b"x")
    vlogs = sorted(database.glob("*.vlog"))
    assert len(vlogs) >= 2 and vlogs[0].stat().st_size == 20  # Badger's header alone
    before = dir_fingerprint(database)
    with open_store(_url(database), read_only=True) as s:
        assert isinstance(s, BadgerStore)
        assert s.opened_as.startswith("copy ")
        assert sum(1 for _ in s.scan(b"graveler")) == 101
        with pytest.raises(StoreReadOnlyError):
            s.set(b"graveler", b"x", b"y")
    assert dir_fingerprint(database) == before


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    """The writer is killed with SIGKILL while writing: every write it acknowledged (set,
    overwrite, delete, a value in the value log) is read back from the memtable log by a
    read-only open, which replays a private copy and leaves the source as it was."""
    db = tmp_path / "metadata"
    store = open_store(_url(db))
    assert isinstance(store, BadgerStore)
    store.write_batch([Entry(b"graveler", b"old%03d" % i, b"o") for i in range(50)])
    store.close()  # flushed to an SST: what follows lives only in the memtable log
    store = open_store(_url(db))
    assert isinstance(store, BadgerStore)
    big = os.urandom(3 << 20)
    store.set(b"graveler", b"big", big)
    store.set(b"graveler", b"old000", b"changed")
    store.delete(b"graveler", b"old001")
    acked: dict[bytes, bytes] = {}
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            key, value = b"new%06d" % i, b"value %d" % i
            try:
                store.set(b"repo-1", key, value)
            except LakekvError:
                return
            acked[key] = value
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.5)
    _kill_helper(store)
    stop.set()
    writer.join()
    assert len(acked) > 10
    assert any(p.suffix == ".mem" and p.stat().st_size for p in db.iterdir())
    before = dir_fingerprint(db)
    # A scratch directory of its own: under xdist another worker's read-only opens put their
    # copies in the shared temporary directory at any moment.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    copies: set[Path] = set()
    with open_store(f"{_url(db)}?tmpdir={scratch}", read_only=True) as s:
        assert isinstance(s, BadgerStore)
        assert s.opened_as.startswith("copy ")
        assert len(set(scratch.glob("lakekv-badger-*")) - copies) == 1
        got = {e.key: e.value for e in s.scan(b"repo-1")}
        assert {k: got.get(k) for k in acked} == acked
        assert s.get(b"graveler", b"big").value == big
        assert s.get(b"graveler", b"old000").value == b"changed"
        assert s.get_many(b"graveler", [b"old001", b"old002"]) == {b"old002": b"o"}
        assert list(s.list_partitions()) == [b"graveler", b"repo-1"]
    assert dir_fingerprint(db) == before
    assert set(scratch.glob("lakekv-badger-*")) <= copies  # the private copy is gone
    # A read-write open (lakeFS's next start, or lakekv writing) replays it too.
    with open_store(_url(db)) as s:
        assert {e.key: e.value for e in s.scan(b"repo-1")} == got


def test_read_only_open_never_empties_the_sources_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory whose level 0 is due for compaction, as a large database's is: Badger
    compacts the private copy of a read-only open and empties every table file it retires.
    The source's table files stay whole (the copy shares no inode with them)."""
    db = tmp_path / "metadata"
    monkeypatch.setenv("LAKEKV_BADGER_TUNING", "memtable=1048576,compactors=0")
    with open_store(_url(db)) as s:
        for i in range(8):  # about 1 MB each: a memtable, then a level-0 table, each
            s.write_batch([Entry(b"p", b"%d-%05d" % (i, j), os.urandom(200)) for j in range(5000)])
    monkeypatch.delenv("LAKEKV_BADGER_TUNING")
    tables = sorted(db.glob("*.sst"))
    assert len(tables) >= 6 and all(t.stat().st_size > 0 for t in tables)
    before = dir_fingerprint(db)
    with open_store(_url(db), read_only=True) as s:
        assert sum(1 for _ in s.scan(b"p")) == 40_000
        time.sleep(1)  # the copy's compaction runs meanwhile
    assert dir_fingerprint(db) == before
    with open_store(_url(db), read_only=True) as s:  # and it still reads whole
        assert sum(1 for _ in s.scan(b"p")) == 40_000


def test_private_copy_goes_to_tmpdir_and_is_removed(tmp_path: Path) -> None:
    db = tmp_path / "metadata"
    store = open_store(_url(db))
    assert isinstance(store, BadgerStore)
    store.set(b"p", b"k", b"v")
    _kill_helper(store)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with open_store(f"{_url(db)}?tmpdir={scratch}", read_only=True) as s:
        assert s.get(b"p", b"k").value == b"v"
        assert [p.name[:14] for p in scratch.iterdir()] == ["lakekv-badger-"]
    assert list(scratch.iterdir()) == []


def test_a_copy_left_by_a_killed_helper_is_removed_by_the_next(tmp_path: Path) -> None:
    """A read-only helper killed outright cannot remove its private copy; the next read-only
    open removes every copy whose helper is gone (its owner lock is free) and leaves the copy
    of a helper still running alone."""
    db = tmp_path / "metadata"
    with open_store(_url(db)) as s:
        s.set(b"p", b"k", b"v")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    url = f"{_url(db)}?tmpdir={scratch}"
    killed = open_store(url, read_only=True)
    assert isinstance(killed, BadgerStore)
    left = set(scratch.iterdir())
    assert len(left) == 1
    _kill_helper(killed)
    assert set(scratch.iterdir()) == left  # nobody removed it
    other = tmp_path / "other"
    with open_store(_url(other)) as s:
        s.set(b"p", b"k", b"w")
    with open_store(f"{_url(other)}?tmpdir={scratch}", read_only=True) as running:
        running_copy = set(scratch.iterdir())
        assert len(running_copy) == 1 and not running_copy & left  # the dead one's is gone
        with open_store(url, read_only=True) as s:  # a third open spares the running copy
            assert s.get(b"p", b"k").value == b"v"
            assert running_copy < set(scratch.iterdir())
        assert running.get(b"p", b"k").value == b"w"
    assert list(scratch.iterdir()) == []


def test_one_process_shares_one_helper(database: Path) -> None:
    with open_store(_url(database)) as a, open_store(_url(database), read_only=True) as b:
        assert isinstance(a, BadgerStore) and isinstance(b, BadgerStore)
        assert a._live() is b._live()
        a.set(b"graveler", b"shared", b"1")
        assert b.get(b"graveler", b"shared").value == b"1"
        assert a.identity() == b.identity() == f"badger://{os.path.realpath(database)}"


def test_destroy_removes_badger_files_only(tmp_path: Path) -> None:
    db = tmp_path / "db"
    with open_store(_url(db)) as s:
        s.set(b"p", b"k", b"v")
        s.destroy()
    assert not db.exists()


def test_without_the_helper_one_line_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(_helper.HELPER_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(_helper, "__file__", str(tmp_path / "a/b/c/d/e/f/_helper.py"))
    with pytest.raises(DriverNotInstalledError) as err:
        open_store(_url(tmp_path / "db"))
    message = str(err.value)
    assert "\n" not in message
    assert "make badger-helper" in message and f"go build -C {_helper.HELPER_SOURCE}" in message
    assert not (tmp_path / "db").exists()
    monkeypatch.setenv(_helper.HELPER_ENV, str(tmp_path / "nope"))
    with pytest.raises(DriverNotInstalledError, match="not an executable"):
        open_store(_url(tmp_path / "db"))


def test_cli_missing_parent_exits_2(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "from lakekv.cli.main import main; main()"]
    cmd += ["--store", _url(tmp_path / "missing" / "metadata"), "partitions"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "missing").exists()
