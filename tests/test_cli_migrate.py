"""The migration commands: exit codes, summaries, pipes, and crash recovery in real processes
(a copy killed with SIGKILL and resumed; PostgreSQL connections terminated mid-copy)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from _cli import run
from _migrate_helpers import StoreMaker, all_entries, materialize

from lakekv.kv.registry import open_store
from lakekv.kv.store import Entry
from lakekv.kv.url import StoreURL
from lakekv.migrate import SCHEMA_KEY, SCHEMA_PARTITION
from lakekv.testing import require_available
from lakekv.testing.plugin import configured_stores

LAKEKV = [str(Path(sys.executable).with_name("lakekv"))]
"""The installed console script, run as a separate process."""


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*LAKEKV, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
    )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LAKEKV_STORE", None)
    return env


def shared_url(maker: StoreMaker, base: str, name: str) -> str:
    """A URL for an isolated store that another process can open too."""
    url = materialize(base, maker.tmp)
    require_available(url)
    store = maker.fresh(base, name)
    assert store.capabilities.shared_between_processes
    return store.url.render(reveal_password=True)


def test_sample_copy_verify_summary(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a, b = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    code, out, _ = run(capsys, "sample", "--to", a, "--entries", "3000", "--seed", "1")
    assert code == 0 and "wrote 3,000 entries" in out
    code, out, _ = run(capsys, "copy", "--from", a, "--to", b)
    assert code == 0 and "copied 3,000 entries" in out and "written 3,000" in out
    code, out, _ = run(capsys, "verify", "--from", a, "--to", b, "--json")
    report = json.loads(out)
    assert code == 0 and report["equal"] is True and report["entries_b"] == 3000
    code, out, _ = run(capsys, "copy", "--from", a, "--to", b, "--json")
    assert code == 0 and json.loads(out)["unchanged"] == 3000


def test_exit_codes_for_conflicts_differences_and_schema(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a, b = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    with open_store(a) as sa, open_store(b) as sb:
        sa.write_batch([Entry(b"p", b"k", b"1"), Entry(SCHEMA_PARTITION, SCHEMA_KEY, b"4")])
        sb.set(b"p", b"k", b"2")
    code, out, _ = run(capsys, "verify", "--from", a, "--to", b)
    assert code == 1 and "different: partition 'p' key 'k'" in out
    code, out, _ = run(capsys, "copy", "--from", a, "--to", b)
    assert code == 4 and "conflicts 1" in out and "conflict: partition 'p' key 'k'" in out
    code, _, _ = run(capsys, "copy", "--from", a, "--to", b, "--on-conflict", "overwrite")
    assert code == 0
    with open_store(b) as sb:
        sb.set(SCHEMA_PARTITION, SCHEMA_KEY, b"3")
    code, _, err = run(capsys, "copy", "--from", a, "--to", b)
    assert code == 2 and "schema versions (4 and 3)" in err
    code, _, _ = run(capsys, "copy", "--from", a, "--to", b, "--force", "--on-conflict", "skip")
    assert code == 0
    code, _, err = run(capsys, "copy", "--from", a)
    assert code == 2 and "--to" in err


@pytest.mark.parametrize("kind", ["truncated", "flipped", "wrong-version", "bad-base64"])
def test_corrupt_files_exit_5_and_write_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    a = f"sqlite:///{tmp_path}/a.db"
    run(capsys, "sample", "--to", a, "--entries", "500")
    if kind == "bad-base64":
        doc = {
            "version": "1.0",
            "timestamp": "2024-01-01T00:00:00Z",
            "entries": [
                {"partition": "graveler", "key": "repos/a", "value": "AAAA"},
                {"partition": "graveler", "key": "repos/b", "value": "%%%"},
            ],
        }
        data = json.dumps(doc).encode()
    else:
        run(capsys, "dump", "--from", a, str(tmp_path / "good.lkv"))
        data = (tmp_path / "good.lkv").read_bytes()
        if kind == "truncated":
            data = data[: len(data) // 2]
        elif kind == "flipped":
            data = data[:-400] + bytes([data[-400] ^ 0x10]) + data[-399:]
        else:
            data = data.replace(b'"version":1', b'"version":2', 1)
    bad = tmp_path / "bad.dump"
    bad.write_bytes(data)
    target = f"sqlite:///{tmp_path}/t.db"
    code, _, err = run(capsys, "load", "--to", target, str(bad))
    assert code == 5, err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "t.db").exists()  # checked before the target was even opened
    with open_store(target) as t:
        assert all_entries(t) == []


def test_dump_to_stdout_and_load_from_stdin(tmp_path: Path) -> None:
    a, b = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    subprocess.run([*LAKEKV, "sample", "--to", a, "--entries", "2000"], check=True, env=_env())
    dumper = spawn("dump", "--from", a, "--compression", "zstd", "-")
    assert dumper.stdout is not None
    loaded = subprocess.run(
        [*LAKEKV, "load", "--to", b, "--json", "-"],
        stdin=dumper.stdout,
        capture_output=True,
        env=_env(),
        check=False,
    )
    dumper.stdout.close()
    assert dumper.wait() == 0
    assert b"dumped 2,000 entries" in (dumper.stderr.read() if dumper.stderr else b"")
    assert loaded.returncode == 0, loaded.stderr
    report = json.loads(loaded.stdout)
    assert report["written"] == 2000 and report["prechecked"] is False
    verified = subprocess.run([*LAKEKV, "verify", "--from", a, "--to", b], env=_env(), check=False)
    assert verified.returncode == 0


def _wait_for_lines(path: Path, lines: int, proc: subprocess.Popen[bytes], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.read_text(encoding="utf-8").count("\n") >= lines:
            return
        time.sleep(0.005)


@pytest.mark.lakekv_requires("shared_between_processes")
def test_copy_killed_with_sigkill_resumes(backend_url: str, maker: StoreMaker) -> None:
    src = shared_url(maker, backend_url, "src")
    dst = shared_url(maker, backend_url, "dst")
    subprocess.run([*LAKEKV, "sample", "--to", src, "--entries", "6000"], check=True, env=_env())
    ckpt = maker.tmp / "copy.ckpt"
    args = ["copy", "--from", src, "--to", dst, "--checkpoint", str(ckpt), "--batch-size", "100"]
    proc = spawn(*args, "--workers", "2")
    _wait_for_lines(ckpt, 8, proc, 60)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the copy finished before it could be killed"
    with open_store(dst) as t:
        copied = len(all_entries(t))
    assert 0 < copied < 6000
    resumed = subprocess.run(
        [*LAKEKV, *args, "--json"], capture_output=True, env=_env(), check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["conflicts"] == 0 and report["entries"] < 6000
    verified = subprocess.run(
        [*LAKEKV, "verify", "--from", src, "--to", dst],
        capture_output=True,
        env=_env(),
        check=False,
    )
    assert verified.returncode == 0, verified.stdout


def _postgres_url(config: pytest.Config) -> str:
    for url in configured_stores(config):
        if StoreURL.parse(url).scheme in ("postgres", "postgresql"):
            return url
    pytest.skip("no postgres:// store configured (--store postgres://...)")


def test_postgres_connections_terminated_during_copy(
    request: pytest.FixtureRequest, maker: StoreMaker
) -> None:
    psycopg = pytest.importorskip("psycopg")
    base = _postgres_url(request.config)
    require_available(base)
    app = f"lakekv-test-{uuid.uuid4().hex[:8]}"
    src = f"sqlite:///{maker.tmp}/src.db"
    table = f"m_term_{uuid.uuid4().hex[:8]}"
    dst = StoreURL.parse(base).with_params(table=table, application_name=app)
    dst_url = dst.render(reveal_password=True)
    subprocess.run([*LAKEKV, "sample", "--to", src, "--entries", "8000"], check=True, env=_env())
    ckpt = maker.tmp / "copy.ckpt"
    args = [
        "copy",
        "--from",
        src,
        "--to",
        dst_url,
        "--checkpoint",
        str(ckpt),
        "--batch-size",
        "100",
    ]
    conninfo = StoreURL.parse(base).without_params().render(reveal_password=True)
    conninfo = conninfo.replace("postgres://", "postgresql://", 1)
    try:
        proc = spawn(*args, "--json")
        terminated = 0
        with psycopg.connect(conninfo, autocommit=True) as admin:
            _wait_for_lines(ckpt, 3, proc, 60)
            for _ in range(5):
                if proc.poll() is not None:
                    break
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (app,),
                ).fetchall()
                terminated += len(rows)
                time.sleep(0.15)
        _out, err = proc.communicate(timeout=120)
        assert terminated > 0, "no connection was terminated"
        assert proc.returncode in (0, 3), err
        if proc.returncode == 3:
            assert b"error: " in err
            again = subprocess.run([*LAKEKV, *args], capture_output=True, env=_env(), check=False)
            assert again.returncode == 0, again.stderr
        verified = subprocess.run(
            [*LAKEKV, "verify", "--from", src, "--to", dst_url],
            capture_output=True,
            env=_env(),
            check=False,
        )
        assert verified.returncode == 0, verified.stdout
    finally:
        with open_store(dst_url) as s:
            s.destroy()
