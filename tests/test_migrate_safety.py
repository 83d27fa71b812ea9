"""What the migration commands refuse: operator mistakes that would destroy or cross data.

Each test reproduces a mistake that used to lose or cross data with exit code 0.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _cli import run

from lakekv.errors import (
    ConfigurationError,
    InterruptedMigrationError,
    KeyNotFoundError,
    SameStoreError,
    UnsafeOperationError,
)
from lakekv.kv.registry import open_store
from lakekv.kv.store import Entry, OpenOptions
from lakekv.kv.url import ParamReader, StoreURL
from lakekv.migrate import SCHEMA_KEY, SCHEMA_PARTITION, copy, dump, load, verify
from lakekv.migrate.lakefs_config import lakefs_sides
from lakekv.migrate.reports import CopyReport, LoadReport

LAKEKV = [str(Path(sys.executable).with_name("lakekv"))]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LAKEKV_STORE", None)
    return env


def _entries(url: str) -> list[Entry]:
    with open_store(url, read_only=True) as s:
        out: list[Entry] = []
        for p in s.list_partitions():
            with s.scan(p) as it:
                out.extend(it)
        return out


def _lakefs_db(url: str, n: int = 50, *, version: bytes | None = b"4") -> None:
    """A small store with ``n`` entries in two partitions and (unless None) a schema version."""
    with open_store(url) as s:
        s.write_batch([Entry(b"graveler", b"repos/r%04d" % i, b"v%d" % i) for i in range(n)])
        s.write_batch([Entry(b"repo-1", b"k%04d" % i, b"x" * 10) for i in range(n)])
        if version is not None:
            s.set(SCHEMA_PARTITION, SCHEMA_KEY, version)


# --- 1. a source that does not exist is never created -------------------------------------


def test_copy_sync_from_a_mistyped_source_creates_nothing_and_deletes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"sqlite:///{tmp_path}/target.db"
    _lakefs_db(target)
    before = _entries(target)
    typo = tmp_path / "typo.db"
    code, _out, err = run(capsys, "copy", "--sync", "--from", f"sqlite:///{typo}", "--to", target)
    assert code == 2, err
    assert "typo.db does not exist" in err
    assert not typo.exists()
    assert _entries(target) == before


def test_dump_and_verify_of_a_missing_store_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = f"sqlite:///{tmp_path}/real.db"
    _lakefs_db(real)
    missing = tmp_path / "missing.db"
    out = tmp_path / "out.lkv"
    code, _, err = run(capsys, "dump", "--from", f"sqlite:///{missing}", str(out))
    assert code == 2, err
    assert not out.exists() and not missing.exists()
    code, _, err = run(capsys, "verify", "--from", real, "--to", f"sqlite:///{missing}")
    assert code == 2, err
    assert not missing.exists()
    code, _, err = run(capsys, "verify", "--from", f"sqlite:///{missing}", "--to", real)
    assert code == 2, err
    assert not missing.exists()
    # a missing table in an existing file is just as missing, and is not created either
    code, _, err = run(capsys, "dump", "--from", real + "?table=typo", str(out))
    assert code == 2 and "no table 'typo'" in err
    with sqlite3.connect(tmp_path / "real.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "typo" not in tables


def test_sync_from_a_source_without_schema_version_needs_force(tmp_path: Path) -> None:
    src = f"sqlite:///{tmp_path}/src.db"
    dst = f"sqlite:///{tmp_path}/dst.db"
    _lakefs_db(src, 5, version=None)
    _lakefs_db(dst, 20)
    with pytest.raises(UnsafeOperationError, match="no lakeFS schema version"):
        copy(src, dst, sync=True)
    assert len(_entries(dst)) == 41
    report = copy(src, dst, sync=True, force=True)
    assert report.deleted == 31 and report.lakefs_schema_version is None


def test_copy_reports_a_source_without_schema_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = f"sqlite:///{tmp_path}/src.db"
    _lakefs_db(src, 5, version=None)
    code, out, _ = run(capsys, "copy", "--from", src, "--to", f"sqlite:///{tmp_path}/d.db")
    assert code == 0
    assert "holds no lakeFS schema version" in out


def test_max_delete_stops_a_sync_that_would_delete_too_much(tmp_path: Path) -> None:
    src = f"sqlite:///{tmp_path}/src.db"
    dst = f"sqlite:///{tmp_path}/dst.db"
    _lakefs_db(src, 10)
    _lakefs_db(dst, 100)
    with pytest.raises(UnsafeOperationError, match="more than 5"):
        copy(src, dst, sync=True, max_delete=5, workers=1)
    assert len(_entries(dst)) >= 201 - 5
    assert copy(src, dst, sync=True, max_delete=1000).deleted > 0
    assert verify(src, dst).equal


# --- 2. crossed sides ---------------------------------------------------------------------------


def _dynamodb_config(path: Path, key: str, secret: str, table: str) -> Path:
    path.write_text(
        "database:\n"
        "  type: dynamodb\n"
        "  dynamodb:\n"
        f"    table_name: {table}\n"
        "    endpoint: http://127.0.0.1:9\n"
        "    aws_region: us-east-1\n"
        f"    aws_access_key_id: {key}\n"
        f"    aws_secret_access_key: {secret}\n"
    )
    return path


@pytest.fixture
def no_aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("AWS_", "LAKEFS_DATABASE_")):
            monkeypatch.delenv(name)
    yield


@pytest.mark.usefixtures("no_aws_env")
def test_lakefs_config_credentials_never_enter_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _dynamodb_config(tmp_path / "old.yaml", "OLDKEY", "oldsecret", "kvstore")
    new = _dynamodb_config(tmp_path / "new.yaml", "NEWKEY", "newsecret", "kvstore2")
    code, _, err = run(
        capsys, "copy", "--from-lakefs-config", str(old), "--to-lakefs-config", str(new)
    )
    assert code == 3, err  # nothing listens on port 9
    assert "oldsecret" not in err and "newsecret" not in err
    assert "AWS_ACCESS_KEY_ID" not in os.environ
    assert "AWS_SECRET_ACCESS_KEY" not in os.environ
    sides = lakefs_sides({"from": old, "to": new})
    assert sides["from"].credentials["aws_access_key_id"] == "OLDKEY"
    assert sides["to"].credentials["aws_access_key_id"] == "NEWKEY"


@pytest.mark.usefixtures("no_aws_env")
def test_each_dynamodb_store_signs_with_its_own_credentials() -> None:
    dynamodb = pytest.importorskip("lakekv.kv.drivers.dynamodb")
    dynamodb_client = pytest.importorskip("lakekv.kv.drivers.dynamodb.client")

    def client_key(creds: dict[str, str]) -> str:
        url = StoreURL.parse("dynamodb://tbl?region=us-east-1&endpoint=http://127.0.0.1:9")
        options = OpenOptions(credentials=creds)
        settings = dynamodb.DynamoDBStore.parse_settings(url, ParamReader(url), options)
        client = dynamodb_client.make_client(url, settings)
        try:
            return str(client._request_signer._credentials.access_key)  # type: ignore[attr-defined]
        finally:
            client.close()

    a = client_key({"aws_access_key_id": "AAA", "aws_secret_access_key": "a"})
    b = client_key({"aws_access_key_id": "BBB", "aws_secret_access_key": "b"})
    assert (a, b) == ("AAA", "BBB")
    assert "AWS_ACCESS_KEY_ID" not in os.environ
    with pytest.raises(ConfigurationError, match="not understood"):
        open_store("memory://", credentials={"aws_access_key_id": "x"})


@pytest.mark.usefixtures("no_aws_env")
def test_environment_overrides_apply_to_one_config_side_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _dynamodb_config(tmp_path / "old.yaml", "OLDKEY", "oldsecret", "kvstore")
    new = _dynamodb_config(tmp_path / "new.yaml", "NEWKEY", "newsecret", "kvstore2")
    monkeypatch.setenv("LAKEFS_DATABASE_DYNAMODB_TABLE_NAME", "other")
    code, _, err = run(
        capsys, "copy", "--from-lakefs-config", str(old), "--to-lakefs-config", str(new)
    )
    assert code == 2, err
    assert "LAKEFS_DATABASE_DYNAMODB_TABLE_NAME" in err and "both sides" in err
    with pytest.raises(ConfigurationError, match="both sides"):
        lakefs_sides({"from": old, "to": new})
    # with one side a URL, the variables apply to the config's side
    sides = lakefs_sides({"from": old, "to": None})
    assert set(sides) == {"from"}
    assert "table=other" in sides["from"].url


def test_copy_and_verify_refuse_one_store_however_spelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "lakefs.db"
    _lakefs_db(f"sqlite:///{real}")
    (tmp_path / "link.db").symlink_to(real)
    monkeypatch.chdir(tmp_path)
    spellings = [
        ("sqlite:///lakefs.db", f"sqlite:///{real}"),
        (f"sqlite:///{tmp_path}/link.db", "sqlite:///./lakefs.db?busy_timeout=100"),
    ]
    before = _entries(f"sqlite:///{real}")
    for a, b in spellings:
        for command in (["copy", "--sync"], ["copy", "--on-conflict", "overwrite"], ["verify"]):
            code, _, err = run(capsys, *command, "--from", a, "--to", b)
            assert code == 2, (command, a, b, err)
            assert "same store" in err
    assert _entries(f"sqlite:///{real}") == before
    with open_store("memory://shared") as keep:
        keep.set(b"p", b"k", b"v")
        with pytest.raises(SameStoreError):
            verify("memory://shared", "memory://shared?page_size=7")
        with pytest.raises(SameStoreError):
            copy(keep, keep)


# --- 3. checkpoints ---------------------------------------------------------------------------


def test_a_finished_checkpoint_does_not_hide_later_changes(tmp_path: Path) -> None:
    src = f"sqlite:///{tmp_path}/src.db"
    dst = f"sqlite:///{tmp_path}/dst.db"
    ckpt = tmp_path / "copy.ckpt"
    _lakefs_db(src, 30)
    first = copy(src, dst, checkpoint=ckpt)
    assert first.written == 61
    with open_store(src) as s:  # the source changes before the catch-up run
        s.set(b"repo-1", b"added-later", b"new")
        s.set(b"new-partition", b"k", b"v")
    again = copy(src, dst, checkpoint=ckpt)
    assert again.new_pass
    assert again.written == 2 and again.unchanged == 61
    assert verify(src, dst).equal


def test_a_checkpoint_refuses_another_copy_or_other_options(tmp_path: Path) -> None:
    src = f"sqlite:///{tmp_path}/src.db"
    dst = f"sqlite:///{tmp_path}/dst.db"
    other = f"sqlite:///{tmp_path}/other.db"
    _lakefs_db(src, 10)
    ckpt = tmp_path / "copy.ckpt"
    stopped = threading.Event()
    stopped.set()
    with pytest.raises(InterruptedMigrationError):  # an unfinished pass
        copy(src, dst, checkpoint=ckpt, partitions=[b"graveler"], stop=stopped)
    with pytest.raises(ConfigurationError, match="another copy"):
        copy(src, other, checkpoint=ckpt, partitions=[b"graveler"])
    with pytest.raises(ConfigurationError, match="another copy"):
        copy(src, dst, checkpoint=ckpt)  # all partitions this time
    with pytest.raises(ConfigurationError, match="another copy"):
        copy(src, dst, checkpoint=ckpt, partitions=[b"graveler"], on_conflict="overwrite")
    assert copy(src, dst, checkpoint=ckpt, partitions=[b"graveler"]).written == 10
    # finished: the next run is a new pass, with any options, but never another pair
    with pytest.raises(ConfigurationError, match="another copy"):
        copy(other, dst, checkpoint=ckpt)
    assert copy(src, dst, checkpoint=ckpt).written == 11


def test_checkpoint_files_are_private(tmp_path: Path) -> None:
    src = f"sqlite:///{tmp_path}/src.db"
    _lakefs_db(src, 10)
    ckpt = tmp_path / "copy.ckpt"
    old = os.umask(0o022)
    try:
        copy(src, f"sqlite:///{tmp_path}/dst.db", checkpoint=ckpt)
    finally:
        os.umask(old)
    assert stat.S_IMODE(ckpt.stat().st_mode) == 0o600


# --- 4. sample --------------------------------------------------------------------------------


def test_sample_refuses_a_store_that_is_not_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = f"sqlite:///{tmp_path}/real.db"
    with open_store(real) as s:
        s.set(b"graveler", b"repos/precious", b"data")
    code, _, err = run(capsys, "sample", "--to", real, "--entries", "100")
    assert code == 2, err
    assert "not empty" in err
    assert [e.key for e in _entries(real)] == [b"repos/precious"]
    code, _, err = run(capsys, "sample", "--to", real, "--entries", "100", "--force")
    assert code == 0, err


# --- 6. half-finished targets -------------------------------------------------------------------


def test_copy_with_conflicts_does_not_write_the_schema_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = f"sqlite:///{tmp_path}/src.db"
    dst = f"sqlite:///{tmp_path}/dst.db"
    _lakefs_db(src, 10)
    with open_store(dst) as s:
        s.set(b"graveler", b"repos/r0003", b"a different value")
    ckpt = str(tmp_path / "copy.ckpt")
    code, out, _ = run(capsys, "copy", "--from", src, "--to", dst, "--json", "--checkpoint", ckpt)
    assert code == 4
    report = json.loads(out)
    assert report["conflicts"] == 1 and report["schema_version_withheld"]
    with open_store(dst, read_only=True) as s, pytest.raises(KeyError):
        _get_or_keyerror(s)
    # the same command again finds the conflict again, and still withholds the version
    code, out, _ = run(capsys, "copy", "--from", src, "--to", dst, "--json", "--checkpoint", ckpt)
    assert code == 4 and json.loads(out)["schema_version_withheld"]
    code, _, _ = run(
        capsys,
        "copy",
        "--from",
        src,
        "--to",
        dst,
        "--on-conflict",
        "overwrite",
        "--checkpoint",
        ckpt,
    )
    assert code == 0
    with open_store(dst, read_only=True) as s:
        assert s.get(SCHEMA_PARTITION, SCHEMA_KEY).value == b"4"


def _get_or_keyerror(store: object) -> bytes:
    try:
        return store.get(SCHEMA_PARTITION, SCHEMA_KEY).value  # type: ignore[attr-defined, no-any-return]
    except KeyNotFoundError as exc:
        raise KeyError("no schema version") from exc


def test_load_with_conflicts_does_not_write_the_schema_version(tmp_path: Path) -> None:
    src = f"sqlite:///{tmp_path}/src.db"
    dst = f"sqlite:///{tmp_path}/dst.db"
    _lakefs_db(src, 10)
    dump(src, tmp_path / "d.lkv")
    with open_store(dst) as s:
        s.set(b"repo-1", b"k0001", b"a different value")
    report = load(dst, tmp_path / "d.lkv")
    assert len(report.conflicts) == 1 if isinstance(report.conflicts, list) else report.conflicts
    assert report.schema_version_withheld
    with open_store(dst, read_only=True) as s, pytest.raises(KeyError):
        _get_or_keyerror(s)


@pytest.mark.parametrize("how", ["copy", "load"])
def test_conflicts_on_a_target_that_held_a_schema_version_warn_alike(
    tmp_path: Path, how: str
) -> None:
    """One rule for every pass (``Pass._schema_last``): nothing to withhold, so a warning."""
    src = f"sqlite:///{tmp_path}/src.db"
    dst = f"sqlite:///{tmp_path}/dst.db"
    _lakefs_db(src, 10)
    with open_store(dst) as s:
        s.set(b"repo-1", b"k0001", b"a different value")
        s.set(SCHEMA_PARTITION, SCHEMA_KEY, b"4")
    if how == "copy":
        report: CopyReport | LoadReport = copy(src, dst)
    else:
        dump(src, tmp_path / "d.lkv")
        report = load(dst, tmp_path / "d.lkv")
    assert report.conflicts == 1
    assert not report.schema_version_withheld
    assert any("held lakeFS's schema version before this pass" in w for w in report.warnings)


def test_dry_runs_create_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = f"sqlite:///{tmp_path}/src.db"
    _lakefs_db(src, 10)
    dump(src, tmp_path / "d.lkv")
    new = tmp_path / "new.db"
    code, out, err = run(capsys, "copy", "--from", src, "--to", f"sqlite:///{new}", "--dry-run")
    assert code == 0, err
    assert "would write 21" in out
    code, out, err = run(
        capsys, "load", "--to", f"sqlite:///{new}", "--dry-run", str(tmp_path / "d.lkv")
    )
    assert code == 0, err
    assert "would write 21" in out
    assert not new.exists()
    # an existing file without the table: no table either
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    code, _, err = run(capsys, "copy", "--from", src, "--to", f"sqlite:///{empty}", "--dry-run")
    assert code == 0, err
    with sqlite3.connect(empty) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0


# --- 5. stopping: signals, killed dumps ----------------------------------------------------------


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 200,000-entry SQLite source (40 partitions), built once for the module's tests,
    which only read it (copy, dump, verify open their sources read-only)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('big') / 'src.db'}"
    with open_store(url) as s:
        for p in range(40):
            s.write_batch(
                [Entry(b"part-%03d" % p, b"key-%06d" % i, b"v" * 200) for i in range(5000)]
            )
        s.set(SCHEMA_PARTITION, SCHEMA_KEY, b"4")
    return url


def _wait_for(path: Path, proc: subprocess.Popen[bytes], *, lines: int = 0, size: int = 0) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"finished early: {proc.communicate()}")
        if path.exists():
            if lines and path.read_bytes().count(b"\n") >= lines:
                return
            if size and path.stat().st_size >= size:
                return
        time.sleep(0.02)
    raise AssertionError("the command made no progress")


def _stop(proc: subprocess.Popen[bytes], *signals: int) -> tuple[int, float, bytes]:
    sent = time.monotonic()
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.05)
    _out, err = proc.communicate(timeout=60)
    return proc.returncode, time.monotonic() - sent, err


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_copy_promptly_and_a_rerun_resumes(
    tmp_path: Path, sig: int, code: int, big_source: str
) -> None:
    src = big_source
    dst = f"sqlite:///{tmp_path}/dst.db?synchronous=full"
    ckpt = tmp_path / "copy.ckpt"
    args = ["copy", "--from", src, "--to", dst, "--checkpoint", str(ckpt), "--batch-size", "500"]
    proc = subprocess.Popen([*LAKEKV, *args], stderr=subprocess.PIPE, env=_env())
    _wait_for(ckpt, proc, lines=4)
    rc, seconds, err = _stop(proc, sig)
    assert rc == code, err
    assert seconds < 3, seconds  # "about a second" on a loaded 2-core machine
    assert b"stopped on request" in err
    with open_store(dst, read_only=True) as s, pytest.raises(KeyError):
        _get_or_keyerror(s)  # an interrupted copy never looks complete
    again = subprocess.run([*LAKEKV, *args, "--json"], capture_output=True, env=_env(), check=False)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["entries"] < 200001 and report["conflicts"] == 0
    assert verify(src, dst).equal


def test_a_second_ctrl_c_stops_at_once_without_crashing(tmp_path: Path, big_source: str) -> None:
    src = big_source
    dst = f"sqlite:///{tmp_path}/dst.db?synchronous=full"
    ckpt = tmp_path / "copy.ckpt"
    args = ["copy", "--from", src, "--to", dst, "--checkpoint", str(ckpt), "--batch-size", "500"]
    for _ in range(3):
        proc = subprocess.Popen([*LAKEKV, *args], stderr=subprocess.PIPE, env=_env())
        _wait_for(ckpt, proc, lines=2)
        rc, _, err = _stop(proc, signal.SIGINT, signal.SIGINT)
        assert rc == 130, (rc, err)  # never -11 (SIGSEGV)
        ckpt.unlink()


def test_a_signal_stops_load(tmp_path: Path, big_source: str) -> None:
    src = big_source
    dump(src, tmp_path / "d.lkv")
    dst = f"sqlite:///{tmp_path}/dst.db?synchronous=full"
    marker = tmp_path / "dst.db"
    proc = subprocess.Popen(
        [*LAKEKV, "load", "--to", dst, "--batch-size", "500", str(tmp_path / "d.lkv")],
        stderr=subprocess.PIPE,
        env=_env(),
    )
    _wait_for(marker, proc, size=200_000)
    rc, seconds, err = _stop(proc, signal.SIGTERM)
    assert rc == 143, err
    assert seconds < 3, seconds
    with open_store(dst, read_only=True) as s, pytest.raises(KeyError):
        _get_or_keyerror(s)


def test_a_killed_dump_leaves_no_temporary_file(tmp_path: Path, big_source: str) -> None:
    src = big_source
    out = tmp_path / "out.lkv"
    proc = subprocess.Popen(
        [*LAKEKV, "dump", "--from", src, "--compression", "gzip", str(out)],
        stderr=subprocess.PIPE,
        env=_env(),
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.lkv.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    rc, seconds, err = _stop(proc, signal.SIGTERM)
    assert rc == 143, err
    assert seconds < 3, seconds
    assert not out.exists()
    assert list(tmp_path.glob(".out.lkv.*")) == []


def test_the_next_dump_removes_a_killed_dumps_temporary_file(tmp_path: Path) -> None:
    src = f"sqlite:///{tmp_path}/src.db"
    _lakefs_db(src, 10)
    out = tmp_path / "out.lkv"
    stale = tmp_path / ".out.lkv.abcd1234.tmp"  # as a dump killed with SIGKILL leaves it
    stale.write_bytes(b"partial")
    unrelated = tmp_path / ".other.lkv.abcd1234.tmp"
    unrelated.write_bytes(b"x")
    dump(src, out)
    assert out.exists() and not stale.exists() and unrelated.exists()
