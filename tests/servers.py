"""Throwaway database servers for the test suite and the benchmarks.

Every server runs from installed binaries, as a child of this process, on a free loopback port,
with its data under ``.run/servers/<pid>/`` (a private temporary directory instead when the
repository's path is not reachable by the ``postgres`` user), and is stopped when the run ends
— normally, after a failure, on Ctrl-C or SIGTERM. Nothing here touches a system-wide service or
a fixed port. A run that was killed outright leaves its servers behind; the next run stops them
(each is its own process group, recorded in ``.run/servers/<pid>/pgids``) and removes their data.

Command line::

    python tests/servers.py run [--engines postgres,dynamodb,mysql,redis,redis-cluster,etcd] -- CMD…

starts the engines, exports one variable per engine to CMD, runs it, stops the servers and exits
with CMD's exit code:

==========================  ======================================================
``LAKEKV_TEST_POSTGRES``    ``postgres://postgres@127.0.0.1:PORT/test`` (PostgreSQL 15, trust auth)
``LAKEKV_TEST_DYNAMODB``    ``http://127.0.0.1:PORT`` (dynalite, the DynamoDB protocol)
``LAKEKV_TEST_MYSQL``       ``mysql://root@127.0.0.1:PORT/test`` (MariaDB, empty root password)
``LAKEKV_TEST_REDIS``       ``redis://127.0.0.1:PORT/0`` (Redis, no persistence)
``LAKEKV_TEST_REDIS_CLUSTER``  ``redis+cluster://127.0.0.1:P1,…,127.0.0.1:P3`` (3 masters)
``LAKEKV_TEST_ETCD``        ``etcd://127.0.0.1:P1,…,127.0.0.1:P3`` (3 members)
==========================  ======================================================

A variable that is already set points the run at an existing server: that engine is not
started. A missing binary is installed from Debian's packages when the run is root and
``apt-get`` exists (services are kept from starting while installing); otherwise the exact
install command is printed and the engine is left out — or, when ``CI`` is set, the run fails
with exit code 3 before CMD starts.

Tests that need to stop servers themselves (the etcd fail-over test) import this module and use
:class:`EtcdCluster` (or the other ``start_*`` functions) directly.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from mirakuru import SimpleExecutor, TCPExecutor
from mirakuru.exceptions import ExecutorError
from port_for import get_port

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run" / "servers"
ENGINES = ("postgres", "dynamodb", "mysql", "redis", "redis-cluster", "etcd")
ENV_NAMES = {
    "postgres": "LAKEKV_TEST_POSTGRES",
    "dynamodb": "LAKEKV_TEST_DYNAMODB",
    "mysql": "LAKEKV_TEST_MYSQL",
    "redis": "LAKEKV_TEST_REDIS",
    "redis-cluster": "LAKEKV_TEST_REDIS_CLUSTER",
    "etcd": "LAKEKV_TEST_ETCD",
}
START_TIMEOUT = 60.0
"""Seconds a server may take to answer before its start counts as failed."""


class ServerError(Exception):
    """A server could not be installed or started; the message says why and what to do."""


def log(message: str) -> None:
    print(f"servers: {message}", file=sys.stderr, flush=True)


# --- binaries -------------------------------------------------------------------------------

_APT_PACKAGES = {
    "postgres": ["postgresql"],
    "mysql": ["mariadb-server", "mariadb-client"],
    "redis": ["redis-server", "redis-tools"],
    "etcd": ["etcd-server"],
    "node": ["nodejs", "npm"],
}
_apt_updated = False


def _postgres_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for bindir in ([Path(found).resolve().parent] if found else []) + candidates:
        if (bindir / "postgres").exists() and (bindir / "initdb").exists():
            return bindir
    return None


def _version_key(path: Path) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in path.parent.name.split("."))
    except ValueError:
        return (0,)


def _present(kind: str) -> bool:
    if kind == "postgres":
        return _postgres_bindir() is not None
    tools = {
        "mysql": ["mariadbd", "mariadb-install-db", "mariadb"],
        "redis": ["redis-server", "redis-cli"],
        "etcd": ["etcd"],
        "node": ["node", "npm"],
    }[kind]
    return all(_which(t) for t in tools)


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def ensure_installed(kind: str) -> None:
    """Make the binaries of ``kind`` present, installing Debian's packages when root.

    Raises :class:`ServerError` with the install command when they are missing and cannot be
    installed here.
    """
    if _present(kind):
        return
    packages = _APT_PACKAGES[kind]
    command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ServerError(f"{kind} is not installed; install it with: sudo {' '.join(command)}")
    global _apt_updated
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    with _services_kept_down():
        if not _apt_updated:
            log("apt-get update")
            subprocess.run(["apt-get", *lock, "update", "-qq"], env=env, check=False)
            _apt_updated = True
        log(" ".join(command))
        done = subprocess.run(
            [command[0], *lock, *command[1:], "-qq"],
            env=env,
            stdout=subprocess.DEVNULL,
            check=False,
        )
    if done.returncode != 0 or not _present(kind):
        raise ServerError(f"could not install {kind}: {' '.join(command)} failed")


@contextlib.contextmanager
def _services_kept_down() -> Iterator[None]:
    """Keep Debian's maintainer scripts from starting system services while installing."""
    policy = Path("/usr/sbin/policy-rc.d")
    if policy.exists():
        yield
        return
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    try:
        yield
    finally:
        policy.unlink(missing_ok=True)


# --- ports and processes --------------------------------------------------------------------


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(also_free: Callable[[int], Sequence[int]] = lambda p: ()) -> int:
    """A free loopback port; ``also_free(port)`` lists ports that must be free with it."""
    for _ in range(200):
        port = get_port(None)
        assert port is not None
        if all(0 < p < 65536 and _port_is_free(p) for p in also_free(port)):
            return port
    raise ServerError("found no free loopback port")


@dataclass
class Process:
    """One server process (its own process group), logging to ``log``."""

    name: str
    executor: SimpleExecutor
    log: Path

    def stop(self) -> None:
        with contextlib.suppress(ExecutorError, OSError):
            self.executor.stop()
        with contextlib.suppress(ExecutorError, OSError):
            self.executor.kill()


@dataclass
class Server:
    """A started engine: the variable it exports and its processes, stopped in reverse order."""

    engine: str
    url: str
    processes: list[Process] = field(default_factory=list)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def _spawn(
    executor_type: type[SimpleExecutor],
    name: str,
    command: list[str],
    workdir: Path,
    **kwargs: object,
) -> Process:
    workdir.mkdir(parents=True, exist_ok=True)
    logfile = workdir / f"{name}.log"
    out = logfile.open("ab")
    executor = executor_type(
        command,
        timeout=START_TIMEOUT,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        **kwargs,
    )
    try:
        executor.start()
    except ExecutorError as exc:
        with contextlib.suppress(ExecutorError, OSError):
            executor.kill()
        tail = logfile.read_text(errors="replace").strip().splitlines()[-5:]
        raise ServerError(
            f"{name} did not start: {exc}; log {logfile}: {' | '.join(tail)}"
        ) from exc
    finally:
        out.close()
    _record_pgid(workdir, executor)
    return Process(name, executor, logfile)


def _run_dir_of(workdir: Path) -> Path | None:
    return next((p for p in [workdir, *workdir.parents] if p.parent == RUN_DIR), None)


def _record_pgid(workdir: Path, executor: SimpleExecutor) -> None:
    run_dir = _run_dir_of(workdir)
    if executor.process is not None and run_dir is not None:
        pid = executor.process.pid
        with (run_dir / "pgids").open("a") as f:
            f.write(f"{pid} {_start_time(pid)}\n")


def _start_time(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot), or "" if it is gone."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat_line.rsplit(")", 1)[1].split()[19]


def _wait_for(what: str, check: Callable[[], bool], timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise ServerError(f"{what} did not become ready within {timeout:.0f} s")


def _as_postgres_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _reachable_by_postgres(path: Path) -> bool:
    """Whether every ancestor of ``path`` lets other users through (``postgres`` must enter)."""
    if os.geteuid() != 0:
        return True
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents] if p.exists())


# --- engines --------------------------------------------------------------------------------


def start_postgres(workdir: Path) -> Server:
    """PostgreSQL: ``initdb`` into ``workdir`` and ``postgres`` on a free port, TCP only.

    Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the data is
    thrown away. ``wal_level=logical``, as ``copy --track-changes`` needs on a source.
    Database ``test`` exists; user ``postgres`` with trust authentication.
    """
    ensure_installed("postgres")
    bindir = _postgres_bindir()
    assert bindir is not None
    if not _reachable_by_postgres(workdir):
        workdir = Path(tempfile.mkdtemp(prefix="lakekv-pg-"))
        _record_external(workdir)
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
        shutil.chown(data, "postgres")
    subprocess.run(
        _as_postgres_user(
            [
                str(bindir / "initdb"),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
                str(data),
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    port = free_port()
    command = _as_postgres_user(
        [
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=500",
            "-c",
            "max_replication_slots=40",
            "-c",
            "wal_level=logical",
        ]
    )
    proc = _spawn(
        TCPExecutor,
        "postgres",
        command,
        workdir,
        host="127.0.0.1",
        port=port,
        stop_signal=signal.SIGINT,
    )
    pg_isready = str(bindir / "pg_isready")
    _wait_for(
        "postgres",
        lambda: (
            subprocess.run(
                [pg_isready, "-q", "-h", "127.0.0.1", "-p", str(port)], check=False
            ).returncode
            == 0
        ),
    )
    subprocess.run(
        [
            str(bindir / "psql"),
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-c",
            "CREATE DATABASE test",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return Server("postgres", f"postgres://postgres@127.0.0.1:{port}/test", [proc])


def start_dynamodb(workdir: Path) -> Server:
    """dynalite (pinned in ``scripts/dynalite/``, installed by ``scripts/dynalite.sh install``).

    In memory; tables are created and deleted at once.
    """
    ensure_installed("node")
    subprocess.run([str(ROOT / "scripts" / "dynalite.sh"), "install"], check=True)
    cli = ROOT / ".tools" / "dynalite" / "node_modules" / "dynalite" / "cli.js"
    port = free_port()
    command = [
        "node",
        str(ROOT / "scripts" / "dynalite" / "serve.js"),
        str(cli),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--createTableMs",
        "0",
        "--deleteTableMs",
        "0",
        "--updateTableMs",
        "0",
    ]
    proc = _spawn(TCPExecutor, "dynalite", command, workdir, host="127.0.0.1", port=port)
    return Server("dynamodb", f"http://127.0.0.1:{port}", [proc])


def start_mysql(workdir: Path) -> Server:
    """MariaDB: ``mariadb-install-db`` into ``workdir``, ``mariadbd`` on a free port.

    User ``root`` with an empty password; database ``test`` exists. Durability is relaxed.
    """
    ensure_installed("mysql")
    data = workdir / "data"
    root_user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [
            _which("mariadb-install-db") or "mariadb-install-db",
            "--no-defaults",
            f"--datadir={data}",
            *root_user,
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    port = free_port()
    socket_dir = Path(tempfile.mkdtemp(prefix="lakekv-my-"))
    _record_external(socket_dir)
    command = [
        _which("mariadbd") or "mariadbd",
        "--no-defaults",
        f"--datadir={data}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={socket_dir}/s",
        f"--pid-file={workdir}/mariadbd.pid",
        *root_user,
        "--innodb-flush-log-at-trx-commit=0",
        "--skip-log-bin",
        "--max-connections=300",
        "--max-allowed-packet=256M",
    ]
    proc = _spawn(TCPExecutor, "mariadb", command, workdir, host="127.0.0.1", port=port)
    client = _which("mariadb") or "mariadb"
    _wait_for(
        "mariadb",
        lambda: (
            subprocess.run(
                [
                    client,
                    "-h127.0.0.1",
                    f"-P{port}",
                    "-uroot",
                    "-e",
                    "CREATE DATABASE IF NOT EXISTS test",
                ],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ).returncode
            == 0
        ),
    )
    return Server("mysql", f"mysql://root@127.0.0.1:{port}/test", [proc])


def _redis_command(workdir: Path, port: int, *extra: str) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    return [
        _which("redis-server") or "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--daemonize",
        "no",
        *extra,
    ]


def start_redis(workdir: Path) -> Server:
    """One Redis server without persistence."""
    ensure_installed("redis")
    port = free_port()
    proc = _spawn(
        TCPExecutor, "redis", _redis_command(workdir, port), workdir, host="127.0.0.1", port=port
    )
    return Server("redis", f"redis://127.0.0.1:{port}/0", [proc])


def start_redis_cluster(workdir: Path, masters: int = 3) -> Server:
    """A Redis Cluster of ``masters`` masters and no replicas, every slot assigned."""
    ensure_installed("redis")
    server = Server("redis-cluster", "")
    try:
        ports: list[int] = []
        for i in range(masters):
            # The cluster bus listens on port + 10000.
            port = free_port(lambda p: (p + 10000,))
            node_dir = workdir / f"node{i}"
            command = _redis_command(
                node_dir,
                port,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node_dir / "nodes.conf"),
            )
            server.processes.append(
                _spawn(TCPExecutor, f"redis-{port}", command, workdir, host="127.0.0.1", port=port)
            )
            ports.append(port)
        cli = _which("redis-cli") or "redis-cli"
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )

        def cluster_ok() -> bool:
            for p in ports:
                out = subprocess.run(
                    [cli, "-p", str(p), "cluster", "info"],
                    capture_output=True,
                    text=True,
                    check=False,
                ).stdout
                if "cluster_state:ok" not in out:
                    return False
            return True

        _wait_for("redis cluster", cluster_ok)
    except BaseException:
        server.stop()
        raise
    server.url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
    return server


class EtcdCluster:
    """An etcd cluster of ``size`` members on loopback ports, data under ``workdir``.

    ``endpoints`` lists the client URLs (``127.0.0.1:PORT``); ``stop_member(i)`` and
    ``start_member(i)`` stop and restart one member (its data is kept). Use as a context
    manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, workdir: Path, size: int = 3) -> None:
        ensure_installed("etcd")
        self.workdir = workdir
        self.size = size
        self.client_ports = [free_port() for _ in range(size)]
        self.peer_ports = [free_port() for _ in range(size)]
        self.members: list[Process | None] = [None] * size
        self._token = f"lakekv-{os.getpid()}-{time.monotonic_ns()}"

    @property
    def endpoints(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.client_ports]

    @property
    def url(self) -> str:
        return "etcd://" + ",".join(self.endpoints)

    def _command(self, i: int) -> list[str]:
        cluster = ",".join(f"m{j}=http://127.0.0.1:{p}" for j, p in enumerate(self.peer_ports))
        client = f"http://127.0.0.1:{self.client_ports[i]}"
        peer = f"http://127.0.0.1:{self.peer_ports[i]}"
        return [
            _which("etcd") or "etcd",
            "--name",
            f"m{i}",
            "--data-dir",
            str(self.workdir / f"m{i}"),
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            cluster,
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            self._token,
            "--logger",
            "zap",
            "--log-outputs",
            "stderr",
            "--unsafe-no-fsync",
        ]

    def _spawn_member(self, i: int) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Members wait for a quorum before they serve: start them all, then wait for health.
        self.members[i] = _spawn(SimpleExecutor, f"etcd-m{i}", self._command(i), self.workdir)

    def healthy(self, i: int) -> bool:
        url = f"http://127.0.0.1:{self.client_ports[i]}/health"
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return bool(json.loads(resp.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    def start(self) -> EtcdCluster:
        try:
            for i in range(self.size):
                self._spawn_member(i)
            for i in range(self.size):
                _wait_for(f"etcd member m{i}", functools.partial(self.healthy, i))
        except BaseException:
            self.stop()
            raise
        return self

    def stop_member(self, i: int) -> None:
        member = self.members[i]
        if member is not None:
            member.stop()
            self.members[i] = None

    def start_member(self, i: int) -> None:
        if self.members[i] is None:
            self._spawn_member(i)

    def stop(self) -> None:
        for i in range(self.size):
            self.stop_member(i)

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_etcd(workdir: Path) -> Server:
    """A three-member etcd cluster."""
    cluster = EtcdCluster(workdir, size=3).start()
    return Server("etcd", cluster.url, [m for m in cluster.members if m is not None])


STARTERS: dict[str, Callable[[Path], Server]] = {
    "postgres": start_postgres,
    "dynamodb": start_dynamodb,
    "mysql": start_mysql,
    "redis": start_redis,
    "redis-cluster": start_redis_cluster,
    "etcd": start_etcd,
}


# --- run directories: one per supervisor, stale ones cleaned up -------------------------------


def _record_external(path: Path) -> None:
    """Remember a directory outside ``.run/`` so that it is removed with this run's data."""
    run_dir = RUN_DIR / str(os.getpid())
    if run_dir.is_dir():
        with (run_dir / "external").open("a") as f:
            f.write(f"{path}\n")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_run_dir(run_dir: Path) -> None:
    external = run_dir / "external"
    if external.exists():
        for line in external.read_text().split():
            shutil.rmtree(line, ignore_errors=True)
    shutil.rmtree(run_dir, ignore_errors=True)


def clean_stale() -> None:
    """Stop the servers of earlier runs whose supervisor is gone, and remove their data."""
    if not RUN_DIR.is_dir():
        return
    for run_dir in RUN_DIR.iterdir():
        if not run_dir.name.isdigit() or _alive(int(run_dir.name)):
            continue
        pgids = run_dir / "pgids"
        if pgids.exists():
            for line in pgids.read_text().splitlines():
                pgid, _, started = line.partition(" ")
                _kill_group_if_ours(int(pgid), started)
        log(f"removed the leftovers of an earlier run ({run_dir})")
        _remove_run_dir(run_dir)


def _kill_group_if_ours(pgid: int, started: str) -> None:
    """SIGKILL process group ``pgid`` if its leader is still the process recorded.

    The leader's start time (``/proc/PID/stat``) must equal ``started``, so a recycled process
    ID never gets another program killed.
    """
    if _start_time(pgid) == started:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)


# --- the supervisor ---------------------------------------------------------------------------


def run(engines: Sequence[str], command: Sequence[str]) -> int:
    """Start ``engines``, run ``command`` with their variables, stop them; ``command``'s code.

    Exit 3 without running ``command`` when an engine cannot be started and ``CI`` is set.
    """
    clean_stale()
    run_dir = RUN_DIR / str(os.getpid())
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    servers: list[Server] = []
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, frame: FrameType | None) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)
        else:
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        missing: list[str] = []
        for engine in engines:
            name = ENV_NAMES[engine]
            if os.environ.get(name):
                log(f"{engine}: using {name} from the environment")
                continue
            started = time.monotonic()
            try:
                server = STARTERS[engine](run_dir / engine)
            except (ServerError, subprocess.CalledProcessError, OSError) as exc:
                detail = (
                    exc.stderr.decode(errors="replace").strip()
                    if isinstance(exc, subprocess.CalledProcessError) and exc.stderr
                    else ""
                )
                log(f"{engine}: {exc}{' ' + detail if detail else ''}")
                missing.append(engine)
                continue
            servers.append(server)
            env[name] = server.url
            log(f"{engine}: {server.url} (ready in {time.monotonic() - started:.1f} s)")
        if missing and os.environ.get("CI"):
            log(f"CI is set: every engine is required, and {', '.join(missing)} did not start")
            return 3
        if missing:
            log(f"left out (their tests do not run): {', '.join(missing)}")
        child = subprocess.Popen(list(command), env=env)
        return child.wait()
    except KeyboardInterrupt:
        if child is not None:
            return child.wait()
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for server in reversed(servers):
            server.stop()
        _remove_run_dir(run_dir)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="servers.py",
        description="Run a command with throwaway database servers on free loopback ports.",
        epilog="example: python tests/servers.py run --engines postgres -- pytest -x",
    )
    sub = parser.add_subparsers(dest="verb", required=True)
    run_p = sub.add_parser("run", help="start servers, run CMD with their variables, stop them")
    run_p.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help=f"comma-separated subset of {','.join(ENGINES)} (default: all)",
    )
    run_p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS…]")
    sub.add_parser("clean", help="stop the servers of runs that were killed, remove their data")
    args = parser.parse_args(argv)
    if args.verb == "clean":
        clean_stale()
        return 0
    engines = [e for e in args.engines.split(",") if e]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engine(s): {', '.join(unknown)}")
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    return run(engines, command)


if __name__ == "__main__":
    sys.exit(main())
