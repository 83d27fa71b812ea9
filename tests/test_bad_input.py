"""Bad input and odd paths: every case gives a clear one-line error and the README's exit code,
and leaves nothing half-written (non-seekable input, special output paths, corrupt streams,
target limits, inconsistent lakeFS JSON, secrets, table names, noisy libraries, no-ops)."""

from __future__ import annotations

import base64
import fcntl
import gzip
import io
import json
import os
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from _cli import run
from _migrate_helpers import HiddenPartitions, StoreMaker, all_entries

from lakekv.display import show_bytes
from lakekv.errors import CorruptInputError, LakekvError
from lakekv.kv.registry import open_store
from lakekv.kv.store import Capabilities, Entry, Store
from lakekv.kv.url import StoreURL, redact
from lakekv.migrate import _io, copy, dump, load
from lakekv.migrate._io import check_output
from lakekv.migrate._limits import Limits, TargetLimitError
from lakekv.migrate.dumpfile import DumpWriter
from lakekv.migrate.lakefs_json import MAX_LAKEFS_VALUE, UnrepresentableEntryError
from lakekv.testing import require_driver


def _entries(n_partitions: int = 3, per: int = 20) -> list[Entry]:
    return [
        Entry(b"part-%d" % p, b"key-%04d" % i, b"v%d" % i)
        for p in range(n_partitions)
        for i in range(per)
    ]


def _dump_bytes(entries: list[Entry], fmt: str = "lakekv") -> bytes:
    src = open_store("memory://")
    src.write_batch(entries)
    out = io.BytesIO()
    dump(src, out, format=fmt)  # type: ignore[arg-type]
    return out.getvalue()


def _lakefs_json(rows: list[tuple[str, str, bytes]], extra: str = "") -> bytes:
    body = ",".join(
        json.dumps({"partition": p, "key": k, "value": base64.b64encode(v).decode()})
        for p, k, v in rows
    )
    return (
        f'{{"version":"1.0","timestamp":"2024-01-01T00:00:00Z","entries":[{body}]{extra}}}'.encode()
    )


def _feed(path: Path | str, data: bytes) -> threading.Thread:
    """Write ``data`` into a FIFO (or pipe path) from a thread, as another process would."""

    def write() -> None:
        with open(path, "wb") as f:
            f.write(data)

    t = threading.Thread(target=write, daemon=True)
    t.start()
    return t


# --- 1. non-seekable input ----------------------------------------------------------------


def test_load_from_a_fifo_is_prechecked_once_and_loaded(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    feeder = _feed(fifo, _dump_bytes(_entries()))
    db = tmp_path / "t.db"
    code, out, err = run(capsys, "load", "--to", f"sqlite:///{db}", str(fifo), "--json")
    feeder.join(5)
    assert code == 0, err
    report = json.loads(out)
    assert report["written"] == 60 and report["prechecked"] is True
    assert report["source"] == str(fifo)


def test_load_of_a_corrupt_fifo_creates_nothing_on_the_target(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = bytearray(_dump_bytes(_entries()))
    data[len(data) // 2] ^= 0x01
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    feeder = _feed(fifo, bytes(data))
    db = tmp_path / "t.db"
    code, _, err = run(capsys, "load", "--to", f"sqlite:///{db}", str(fifo))
    feeder.join(5)
    assert code == 5, err
    assert str(fifo) in err and "lakekv-spool" not in err
    assert not db.exists()


def test_load_from_process_substitution_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    r, w = os.pipe()
    data = _dump_bytes(_entries(), "lakefs")

    def write() -> None:
        with os.fdopen(w, "wb") as f:
            f.write(data)

    feeder = threading.Thread(target=write, daemon=True)
    feeder.start()
    try:
        code, out, err = run(capsys, "load", "--to", "memory://fdpipe", f"/dev/fd/{r}", "--json")
        feeder.join(5)
    finally:
        os.close(r)
    assert code == 0, err
    assert json.loads(out)["written"] == 60


def test_spooling_stops_when_temporary_space_runs_out(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_io, "_SPOOL_RESERVE", 1 << 62)
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    feeder = _feed(fifo, _dump_bytes(_entries()))
    db = tmp_path / "t.db"
    code, _, err = run(capsys, "load", "--to", f"sqlite:///{db}", str(fifo))
    feeder.join(5)
    assert code == 2 and "free space" in err and "TMPDIR" in err
    assert len(err.strip().splitlines()) == 1
    assert not db.exists()


# --- 2. special output paths --------------------------------------------------------------


def test_dump_into_a_fifo_writes_it_in_place(tmp_path: Path) -> None:
    src = open_store("memory://")
    src.write_batch(_entries())
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as f:
            received.append(f.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    dump(src, fifo)
    reader.join(5)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    dst = open_store("memory://")
    assert load(dst, io.BytesIO(received[0])).written == 60


def test_character_devices_are_written_in_place_never_replaced() -> None:
    out = check_output("/dev/null")
    assert out.in_place and out.path == Path("/dev/null")
    src = open_store("memory://")
    src.write_batch(_entries())
    dump(src, "/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_dump_follows_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.lkv"
    real.write_bytes(b"old")
    link = tmp_path / "link.lkv"
    link.symlink_to(real)
    src = open_store("memory://")
    src.write_batch(_entries())
    dump(src, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert load(open_store("memory://"), real).written == 60


@pytest.mark.parametrize("kind", ["directory", "missing-parent", "empty-name"])
def test_bad_output_paths_exit_2_before_reading_the_source(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    target = {
        "directory": str(tmp_path),
        "missing-parent": str(tmp_path / "no" / "such" / "out.lkv"),
        "empty-name": "",
    }[kind]
    # Reading this source would fail with exit 3 (nothing listens on port 1).
    src = "postgres://u@127.0.0.1:1/db?connect_timeout=1"
    code, _, err = run(capsys, "dump", "--from", src, target)
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_a_stale_temporary_file_is_removed_by_the_next_dump(tmp_path: Path) -> None:
    final = tmp_path / "out.lkv"
    stale = tmp_path / ".out.lkv.abcd1234.tmp"
    stale.write_bytes(b"x" * 1000)
    live = tmp_path / ".out.lkv.live5678.tmp"
    live.write_bytes(b"y")
    other = tmp_path / ".other.lkv.abcd1234.tmp"
    other.write_bytes(b"z")
    with open(live, "rb") as held:  # a running dump holds its lock
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        src = open_store("memory://")
        src.write_batch(_entries())
        dump(src, final)
        assert not stale.exists()
        assert live.exists() and other.exists()
    assert load(open_store("memory://"), final).written == 60


# --- 3. exit codes ------------------------------------------------------------------------


def test_a_corrupt_gzip_stream_exits_5(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = gzip.compress(_dump_bytes(_entries(per=2000)))
    codes = set()
    for i, at in enumerate(range(20, len(data) - 20, max(1, len(data) // 12))):
        bad = bytearray(data)
        bad[at] ^= 0x55
        path = tmp_path / f"bad{i}.lkv.gz"
        path.write_bytes(bytes(bad))
        code, _, err = run(capsys, "load", "--to", f"memory://gz{i}", str(path))
        assert code == 5, err
        assert "internal error" not in err
        codes.add(code)
    assert codes == {5}


@pytest.mark.parametrize(
    "doc",
    [
        '{"version":"1.0","n":' + "9" * 5000 + "}",
        '{"version":"1.0","n":' + "[" * 100000 + "]" * 100000 + "}",
        '{"version":"1.0","entries":[{"partition":"p","key":"k","value":"","x":'
        + "[" * 100000
        + "]" * 100000
        + "}]}",
    ],
    ids=["5000-digit-number", "deep-nesting", "deep-nesting-in-entry"],
)
def test_hostile_lakefs_json_exits_5(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, doc: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(doc)
    code, _, err = run(capsys, "load", "--to", "memory://hostile", str(path))
    assert code == 5, err
    assert "corrupt lakeFS dump" in err


@pytest.mark.parametrize("value", ["abc", "0", "-3", "[1]", "true"])
def test_a_bad_lakefs_config_value_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str
) -> None:
    cfg = tmp_path / "lakefs.yaml"
    cfg.write_text(
        "database:\n  type: postgres\n  postgres:\n"
        "    connection_string: postgres://u@127.0.0.1:1/db\n"
        f"    max_open_connections: {value}\n"
    )
    code, _, err = run(capsys, "dump", "--from-lakefs-config", str(cfg), str(tmp_path / "o"))
    assert code == 2, err
    assert "max_open_connections" in err


@pytest.mark.parametrize("kind", ["binary", "directory", "deep-json"])
def test_an_unusable_checkpoint_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    a, b = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    with open_store(a) as s:
        s.write_batch(_entries())
    cp = tmp_path / "cp"
    if kind == "binary":
        cp.write_bytes(bytes(range(256)) * 4)
    elif kind == "directory":
        cp.mkdir()
    else:
        cp.write_text("[" * 100000 + "\n")
    code, _, err = run(capsys, "copy", "--from", a, "--to", b, "--checkpoint", str(cp))
    assert code == 2, err
    assert "internal error" not in err


# --- 4. target limits ---------------------------------------------------------------------


class Limited(HiddenPartitions):
    """A memory store declaring a 100-byte key limit (as PostgreSQL declares 1536)."""

    def __init__(self) -> None:
        super().__init__(
            open_store("memory://"),
            StoreURL.parse("limited://"),
            scheme="limited",
            capabilities=Capabilities(list_partitions=True, max_key_size=100),
        )


def _with_long_key(fmt: str) -> bytes:
    entries = [*_entries(per=3000), Entry(b"part-9", b"k" * 200, b"v")]
    return _dump_bytes(entries, fmt)


@pytest.mark.parametrize("fmt", ["lakekv", "lakefs"])
def test_precheck_refuses_an_entry_over_the_targets_limit_before_writing(
    tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / "d"
    path.write_bytes(_with_long_key(fmt))
    dst = Limited()
    with pytest.raises(TargetLimitError) as err:
        load(dst, path, batch_entries=1000)
    assert "partition 'part-9' key 'kkkk" in str(err.value)
    assert "the key is 200 bytes; limited:// allows at most 100" in str(err.value)
    assert list(dst.inner.list_partitions()) == []


def test_streamed_load_names_the_entry_and_what_was_written(tmp_path: Path) -> None:
    dst = Limited()
    with pytest.raises(TargetLimitError) as err:
        load(dst, io.BytesIO(_with_long_key("lakekv")), batch_entries=1000)
    assert "partition 'part-9'" in str(err.value)
    assert "the 9,000 entries before it were loaded" in str(err.value)


def test_copy_into_a_real_backend_names_the_entry_and_how_much_was_written(
    maker: StoreMaker, backend_url: str
) -> None:
    dst = maker.fresh(backend_url, "dst")
    limits = Limits.of(dst)
    if limits.key is None:
        pytest.skip(f"{dst.scheme}:// declares no key limit")
    src = open_store("memory://")
    src.write_batch([*_entries(per=500), Entry(b"part-9", b"k" * (limits.key + 1), b"v")])
    with pytest.raises(TargetLimitError) as err:
        copy(src, dst, workers=1, batch_entries=100)
    msg = str(err.value)
    assert "partition 'part-9' key 'kkk" in msg
    assert "1,500 entries were written (0 found unchanged) before the copy stopped" in msg


def test_copy_into_limited_target_names_the_entry() -> None:
    src = open_store("memory://")
    src.write_batch([*_entries(per=500), Entry(b"part-9", b"k" * 200, b"v")])
    dst = Limited()
    with pytest.raises(TargetLimitError) as err:
        copy(src, dst, workers=1, batch_entries=100)
    msg = str(err.value)
    assert "partition 'part-9' key 'kkk" in msg and "allows at most 100" in msg
    assert "1,500 entries were written (0 found unchanged) before the copy stopped" in msg


def test_copy_with_many_workers_states_exactly_what_was_written() -> None:
    """Other workers may still finish batches after one meets the entry: the count is taken
    once all have stopped, so it equals what the target holds."""
    src = open_store("memory://")
    src.write_batch([*_entries(per=500), Entry(b"part-9", b"k" * 200, b"v")])
    dst = Limited()
    with pytest.raises(TargetLimitError) as err:
        copy(src, dst, workers=4, batch_entries=50)
    held = sum(1 for p in dst.list_partitions() for _ in dst.scan(p))
    assert f"{held:,} entries were written (0 found unchanged) before the copy stopped" in str(
        err.value
    )


def test_postgres_load_of_an_oversized_key_writes_nothing(
    capsys: pytest.CaptureFixture[str], maker: StoreMaker, backend_url: str, tmp_path: Path
) -> None:
    dst = maker.fresh(backend_url, "dst")
    limits = Limits.of(dst)
    if limits.key is None:
        pytest.skip(f"{dst.scheme}:// declares no key limit")
    path = tmp_path / "d.lkv"
    path.write_bytes(
        _dump_bytes([*_entries(per=1000), Entry(b"part-9", b"k" * (limits.key + 464), b"v")])
    )
    code, _, err = run(capsys, "load", "--to", dst.url.render(reveal_password=True), str(path))
    assert code == 2, err
    assert "partition 'part-9' key 'kkk" in err
    assert all_entries(dst) == []


# --- 5. lakeFS JSON consistency -----------------------------------------------------------


@pytest.mark.parametrize(
    "rows",
    [
        [("p", "a", b"1"), ("p", "b", b"2"), ("p", "b", b"3")],
        # Not in lakeFS's order: the repeat comes back after another partition.
        [("p", "b", b"1"), ("q", "a", b"2"), ("p", "b", b"3")],
        [("p", "b", b"1"), ("p", "a", b"2"), ("p", "b", b"3")],
    ],
    ids=["adjacent", "partition-reappears", "keys-unordered"],
)
def test_a_repeated_key_with_different_values_exits_5_with_nothing_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, rows: list[tuple[str, str, bytes]]
) -> None:
    path = tmp_path / "d.json"
    path.write_bytes(_lakefs_json(rows))
    db = tmp_path / "t.db"
    code, _, err = run(capsys, "load", "--to", f"sqlite:///{db}", str(path))
    assert code == 5, err
    assert "partition 'p' key 'b' appears more than once with different values" in err
    assert not db.exists()


def test_a_repeated_key_with_the_same_value_loads(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_bytes(_lakefs_json([("p", "b", b"1"), ("q", "a", b"2"), ("p", "b", b"1")]))
    dst = open_store("memory://")
    report = load(dst, path)
    assert report.conflicts == 0 and sorted(all_entries(dst)) == [
        Entry(b"p", b"b", b"1"),
        Entry(b"q", b"a", b"2"),
    ]


@pytest.mark.parametrize(
    "doc",
    [
        _lakefs_json([("p", "a", b"1")], ',"entries":[]'),
        _lakefs_json([("p", "a", b"1")], ',"version":"1.0"'),
        b'{"version":"1.0","entries":[{"partition":"p","key":"a","key":"b","value":""}]}',
        b'{"version":"1.0","entries":[{"partition":"p","key":"a","value":"","value":"eA=="}]}',
    ],
    ids=["two-entries-arrays", "two-versions", "repeated-key-field", "repeated-value-field"],
)
def test_repeated_fields_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, doc: bytes
) -> None:
    path = tmp_path / "d.json"
    path.write_bytes(doc)
    db = tmp_path / "t.db"
    code, _, err = run(capsys, "load", "--to", f"sqlite:///{db}", str(path))
    assert code == 5, err
    assert "more than once" in err or "repeated" in err
    assert not db.exists()


def test_lakefs_writer_and_reader_limits_agree(tmp_path: Path) -> None:
    src = open_store("memory://")
    big = os.urandom(60 << 20)
    src.set(b"p", b"big", big)
    path = tmp_path / "big.json"
    dump(src, path, format="lakefs")
    dst = open_store("memory://")
    assert load(dst, path).written == 1
    assert dst.get(b"p", b"big").value == big
    del big
    src.set(b"p", b"big", b"\0" * (MAX_LAKEFS_VALUE + 1))
    with pytest.raises(UnrepresentableEntryError, match="partition 'p' key 'big'"):
        dump(src, tmp_path / "too-big.json", format="lakefs")
    assert not (tmp_path / "too-big.json").exists()


# --- 6. secrets ---------------------------------------------------------------------------


def test_yaml_errors_do_not_quote_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = tmp_path / "lakefs.yaml"
    cfg.write_text(
        "database:\n  type: dynamodb\n  dynamodb:\n"
        '    aws_secret_access_key: "Sup3rS3cretValue\n    table_name: kv\n'
    )
    code, _, err = run(capsys, "dump", "--from-lakefs-config", str(cfg), str(tmp_path / "o"))
    assert code == 2 and "not valid YAML" in err and "line" in err
    assert "Sup3rS3cret" not in err


def test_traceback_output_is_redacted(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = "postgres://u:Hunter2Secret@127.0.0.1:1/db?connect_timeout=1&sslpassword=KeyPass99"
    code, out, err = run(capsys, "--traceback", "get", "-s", url, "p", "k")
    assert code in (2, 3), err
    assert "Traceback" in err
    assert "Hunter2Secret" not in err + out and "KeyPass99" not in err + out


@pytest.mark.parametrize("name", ["password", "sslpassword", "token", "secret", "api_key"])
def test_secret_looking_url_parameters_are_never_echoed(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    url = StoreURL.parse(f"postgres://u@h/db?{name}=TopSecret42&table=kv")
    assert "TopSecret42" not in str(url) and "TopSecret42" not in repr(url)
    assert "TopSecret42" in url.render(reveal_password=True)
    code, _, err = run(capsys, "get", "-s", f"sqlite:///x.db?{name}=TopSecret42", "p", "k")
    assert code == 2 and "unknown parameter" in err
    assert "TopSecret42" not in err
    assert "TopSecret42" not in redact(f"failed: {name}=TopSecret42 and more")
    assert "TopSecret42" not in redact("a remembered secret TopSecret42 anywhere")


# --- 7. PostgreSQL table names ------------------------------------------------------------


@pytest.mark.parametrize("table", ["t" * 60, " ", " kv", "kv\n", ""])
def test_postgres_table_names_beyond_the_limit_exit_2(
    capsys: pytest.CaptureFixture[str], table: str
) -> None:
    require_driver("postgres")
    url = f"postgres://u@127.0.0.1:1/db?table={quote(table)}"
    code, _, err = run(capsys, "get", "-s", url, "p", "k")
    assert code == 2, err
    assert "table must be a name of 1 to 59 bytes" in err


def test_postgres_table_name_of_the_documented_maximum_works(backend_url: str) -> None:
    if StoreURL.parse(backend_url).scheme not in ("postgres", "postgresql"):
        pytest.skip("PostgreSQL only")
    url = StoreURL.parse(backend_url).with_params(table=_max_table())
    with open_store(url) as s:
        try:
            s.set(b"p", b"k", b"v")
            assert s.get(b"p", b"k").value == b"v"
        finally:
            s.destroy()  # type: ignore[attr-defined]


def _max_table() -> str:
    return ("t" + uuid.uuid4().hex + "x" * 59)[:59]


# --- 8. output ----------------------------------------------------------------------------


_NOISY = """
import logging, sys
import lakekv.cli.kv as kv
opened = kv.open_store
def noisy(url):
    for _ in range(78):
        logging.getLogger("psycopg.pool").warning("error connecting in 'pool-1': boom")
    return opened(url)
kv.open_store = noisy
from lakekv.cli.main import main
main(sys.argv[1:])
"""


def test_library_logging_is_silent_by_default_and_shown_with_v() -> None:
    def lakekv(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _NOISY, *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )

    quiet = lakekv("get", "-s", "memory://", "p", "k")
    assert quiet.returncode == 1 and len(quiet.stderr.strip().splitlines()) == 1
    assert "boom" not in quiet.stderr
    loud = lakekv("-v", "get", "-s", "memory://", "p", "k")
    assert loud.returncode == 1
    assert "WARNING psycopg.pool: error connecting in 'pool-1': boom" in loud.stderr


def test_text_output_escapes_unambiguously(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert show_bytes(b"a\\x00") == "a\\\\x00"
    assert show_bytes(b"a\x00") == "a\\x00"
    assert show_bytes(b"\x1b[31mred") == "\\x1b[31mred"
    assert show_bytes(b"\xff") == "\\xff"
    assert show_bytes("ü".encode()) == "ü"
    assert show_bytes("\u202e".encode()) == "\\u202e"
    store = f"sqlite:///{tmp_path}/e.db"
    code, _, _ = run(capsys, "set", "-s", store, "-e", "hex", "70", "6b", "001b5b33316d5c")
    assert code == 0
    code, out, _ = run(capsys, "get", "-s", store, "p", "k")
    assert code == 0 and out == "\\x00\\x1b[31m\\\\\n"
    code, out, _ = run(capsys, "scan", "-s", store, "p")
    assert out == "k\t\\x00\\x1b[31m\\\\\n"
    assert "\x1b" not in out and "\x00" not in out


# --- 9. silent no-ops ---------------------------------------------------------------------


def test_dump_of_a_missing_partition_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/a.db"
    with open_store(db) as s:
        s.write_batch(_entries())
    out = tmp_path / "o.lkv"
    code, _, err = run(capsys, "dump", "--from", db, "-p", "part-1", "-p", "nope", str(out))
    assert code == 2 and "partition 'nope' does not exist" in err
    assert not out.exists()
    code, _, err = run(
        capsys, "copy", "--from", db, "--to", f"sqlite:///{tmp_path}/b.db", "-p", "nope"
    )
    assert code == 2 and "partition 'nope' does not exist" in err
    code, _, err = run(capsys, "dump", "--from", db, "-p", "part-1", str(out))
    assert code == 0, err


def _dump_with_header(**header: object) -> bytes:
    out = io.BytesIO()
    with DumpWriter(out, {"created": "x", "lakefs_schema_version": None, **header}) as w:
        w.begin_partition(b"p")
        w.add_many([Entry(b"p", b"k", b"v")])
        w.end_partition()
        w.finish()
    return out.getvalue()


@pytest.mark.parametrize(
    "header",
    [{"version": True}, {"version": 1.0}, {"version": "1"}, {"lakefs_schema_version": 4}],
    ids=["version-true", "version-float", "version-string", "numeric-schema-version"],
)
def test_odd_dump_headers_exit_5(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, header: dict[str, object]
) -> None:
    path = tmp_path / "d.lkv"
    path.write_bytes(_dump_with_header(**header))
    code, _, err = run(capsys, "load", "--to", f"sqlite:///{tmp_path}/t.db", str(path))
    assert code == 5, err
    assert not (tmp_path / "t.db").exists()


@pytest.mark.parametrize(
    "scheme", ["postgres://u@127.0.0.1:1/db", "sqlite:///x.db", "dynamodb://t"]
)
def test_a_blank_table_parameter_exits_2(capsys: pytest.CaptureFixture[str], scheme: str) -> None:
    sep = "&" if "?" in scheme else "?"
    code, _, err = run(capsys, "get", "-s", f"{scheme}{sep}table=%20", "p", "k")
    assert code == 2, err


def test_a_streamed_repeated_key_stops_the_load(tmp_path: Path) -> None:
    doc = _lakefs_json([("p", "a", b"1"), ("p", "b", b"2"), ("p", "b", b"3"), ("q", "c", b"")])
    dst = open_store("memory://")
    with pytest.raises(CorruptInputError, match="appears more than once"):
        load(dst, io.BytesIO(doc))
    assert Entry(b"p", b"b", b"3") not in all_entries(dst)


LAKEKV = [str(Path(sys.executable).with_name("lakekv"))]


def _sample_db(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path}/s.db"
    with open_store(db) as s:
        s.write_batch(_entries(per=3000))
    return db


def test_dump_to_dev_stdout_writes_through_a_shell_redirection(tmp_path: Path) -> None:
    db = _sample_db(tmp_path)
    out = tmp_path / "out.lkv"
    out.write_bytes(b"")
    inode = out.stat().st_ino
    with open(out, "wb") as f:
        proc = subprocess.run(
            [*LAKEKV, "dump", "--from", db, "/dev/stdout"],
            stdout=f,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    assert "dumped 9,000 entries" in proc.stderr  # the summary stays out of the dump
    assert out.stat().st_ino == inode
    assert load(open_store("memory://"), out).written == 9000


@pytest.mark.parametrize("args", [["scan", "part-1"], ["dump", "--from", "{db}", "-"]])
def test_a_closed_output_pipe_ends_quietly_with_0(tmp_path: Path, args: list[str]) -> None:
    db = f"sqlite:///{tmp_path}/big.db"
    with open_store(db) as s:  # far more than a pipe buffers
        s.write_batch([Entry(b"part-1", b"k%05d" % i, b"v" * 1000) for i in range(20000)])
    cmd = [*LAKEKV, "--store", db, *[a.replace("{db}", db) for a in args]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(60) == 0, err
    assert err == b""


def test_a_failed_output_write_is_one_line_exit_6(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    code, _, err = run(capsys, "dump", "--from", _sample_db(tmp_path), "/dev/full")
    assert code == 6 and err.strip() == "error: cannot write /dev/full: No space left on device"


def test_traceback_of_a_chained_error_is_redacted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(url: str) -> Store:
        StoreURL.parse(url)  # as the driver does: the URL's secrets are now known
        try:
            raise RuntimeError("libpq said: user=u password=Hunter3Secret; echo Hunter3Secret")
        except RuntimeError as exc:
            raise LakekvError("cannot connect") from exc

    monkeypatch.setattr("lakekv.cli.kv.open_store", failing)
    code, out, err = run(
        capsys, "--traceback", "get", "-s", "postgres://u:Hunter3Secret@h/db", "p", "k"
    )
    assert code == 6 and "Traceback" in err and "RuntimeError: libpq said" in err
    assert "Hunter3Secret" not in err + out


def test_the_temporary_file_of_a_killed_dump_is_removed_by_the_next_dump(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/big.db"
    with open_store(db) as s:  # incompressible, so the gzip dump takes a while
        s.write_batch([Entry(b"part-1", b"k%05d" % i, os.urandom(2000)) for i in range(15000)])
    final = tmp_path / "out.lkv.gz"
    proc = subprocess.Popen(
        [*LAKEKV, "dump", "--from", db, str(final)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not list(tmp_path.glob(".out.lkv.gz.*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        proc.kill()
        proc.wait(30)
    left = list(tmp_path.glob(".out.lkv.gz.*.tmp"))
    if not left:
        pytest.skip("the dump finished before it could be killed")
    assert not final.exists()
    src = open_store("memory://")
    src.set(b"p", b"k", b"v")
    dump(src, final)
    assert not any(p.exists() for p in left)
    assert load(open_store("memory://"), final).written == 1


def test_dump_to_dev_stdout_under_an_appending_redirection_keeps_the_file(
    tmp_path: Path,
) -> None:
    db = _sample_db(tmp_path)
    out = tmp_path / "log"
    out.write_bytes(b"HEAD")
    with open(out, "ab") as f:
        proc = subprocess.run(
            [*LAKEKV, "dump", "--from", db, "/dev/stdout"],
            stdout=f,
            stderr=subprocess.PIPE,
            check=False,
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data.startswith(b"HEAD\x89LKV")
    assert load(open_store("memory://"), io.BytesIO(data[4:])).written == 9000
