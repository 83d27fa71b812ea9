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
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _migrate_helpers import HiddenPartitions, StoreMaker, all_entries

from lakekv.cli.main import main
from lakekv.kv.registry import open_store
from lakekv.kv.store import Capabilities, Entry
from lakekv.kv.url import StoreURL
from lakekv.migrate import _io, copy, dump, load
from lakekv.migrate._io import check_output
from lakekv.migrate._limits import Limits, TargetLimitError


@pytest.fixture
def maker(tmp_path: Path) -> Iterator[StoreMaker]:
    m = StoreMaker(tmp_path)
    yield m
    m.cleanup()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process; its exit code, stdout and stderr."""
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:
        code = 0
    out, err = capsys.readouterr()
    return code, out, err


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

    scheme = "limited"
    capabilities = Capabilities(list_partitions=True, max_key_size=100)

    def __init__(self) -> None:
        super().__init__(open_store("memory://"), StoreURL.parse("limited://"))

    def _list_partitions(self) -> Iterator[bytes]:
        return self.inner._list_partitions()


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
    assert "partition 'part-9' key 'kkk" in msg and "1,500 entries were written before it" in msg


def test_copy_into_limited_target_names_the_entry() -> None:
    src = open_store("memory://")
    src.write_batch([*_entries(per=500), Entry(b"part-9", b"k" * 200, b"v")])
    dst = Limited()
    with pytest.raises(TargetLimitError) as err:
        copy(src, dst, workers=1, batch_entries=100)
    msg = str(err.value)
    assert "partition 'part-9' key 'kkk" in msg and "allows at most 100" in msg
    assert "1,500 entries were written before it" in msg


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
