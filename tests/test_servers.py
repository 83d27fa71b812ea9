"""tests/servers.py: servers start on free loopback ports and are gone when the run ends.

Uses Redis (it starts in a fraction of a second); skipped when it is not installed, unless
``CI`` is set.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import servers

SCRIPT = Path(servers.__file__)


def _redis_or_skip() -> None:
    try:
        servers.ensure_installed("redis")
    except servers.ServerError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (required because CI is set)", pytrace=False)
        pytest.skip(str(exc))


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


def test_started_server_answers_and_stop_ends_it(tmp_path: Path) -> None:
    _redis_or_skip()
    server = servers.start_redis(tmp_path / "redis")
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    try:
        assert _ping(port) == b"+PONG\r\n"
    finally:
        server.stop()
    assert not _answers(port)


def _run_in_background(tmp_path: Path, *command: str) -> tuple[subprocess.Popen[str], str]:
    """``servers.py run --engines redis -- CMD`` in its own session; the exported URL."""
    out = tmp_path / "url"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPT),
            "run",
            "--engines",
            "redis",
            "--",
            "sh",
            "-c",
            f'echo "$LAKEKV_TEST_REDIS" > {out}; {" ".join(command)}',
        ],
        env={k: v for k, v in os.environ.items() if k != "LAKEKV_TEST_REDIS"},
        start_new_session=True,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (out.exists() and out.read_text().strip()):
        assert proc.poll() is None, "the run ended before its command started"
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.05)
    return proc, out.read_text().strip()


def test_run_exports_the_url_and_passes_on_the_exit_code(tmp_path: Path) -> None:
    _redis_or_skip()
    proc, url = _run_in_background(tmp_path, "exit 7")
    assert proc.wait(timeout=60) == 7
    assert url.startswith("redis://127.0.0.1:")
    assert not _answers(int(url.rsplit(":", 1)[1].split("/")[0]))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_stops_its_servers(tmp_path: Path, sig: signal.Signals) -> None:
    _redis_or_skip()
    proc, url = _run_in_background(tmp_path, "sleep 60")
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    assert _answers(port)
    os.killpg(proc.pid, sig)  # as a terminal's Ctrl-C reaches the whole foreground group
    proc.wait(timeout=90)
    assert not _answers(port)
    assert not (servers.RUN_DIR / str(proc.pid)).exists()


def test_a_killed_run_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    _redis_or_skip()
    proc, url = _run_in_background(tmp_path, "sleep 60")
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    proc.send_signal(signal.SIGKILL)  # the supervisor only: its server is left behind
    proc.wait(timeout=30)
    assert _answers(port)
    subprocess.run([sys.executable, str(SCRIPT), "clean"], check=True, timeout=60)
    deadline = time.monotonic() + 10
    while _answers(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _answers(port)
    assert not (servers.RUN_DIR / str(proc.pid)).exists()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the orphaned "sleep 60"
