"""A real lakeFS server for the end-to-end tests: find the binary, configure, set up, run, stop.

The binary is built by ``make lakefs`` (the version is named once, in the Makefile) into
``.tools/lakefs/<version>/lakefs``; ``$LAKEKV_LAKEFS`` overrides the path. Without it the lakeFS
tests skip, and fail when ``CI`` is set.

A :class:`LakeFS` instance runs ``lakefs run`` on a free loopback port with a local blockstore
under a directory the caller chooses, on one :class:`Database` (PostgreSQL, DynamoDB or lakeFS's
embedded ``local`` store). Two instances given the same blockstore directory and
:data:`ENCRYPT_SECRET` serve the same objects and accept the same credentials, which is what a
migration to another database needs. Every outside call lakeFS would make (usage statistics,
version audit, e-mail subscription) is switched off or pointed at a closed loopback port.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import lakefs_sdk
import pytest
import yaml

from lakekv.testing import require_module

ROOT = Path(__file__).resolve().parent.parent

ADMIN_USER = "admin"
ACCESS_KEY_ID = "AKIAJLAKEKVTESTADMIN"
SECRET_ACCESS_KEY = "lakekv+test+secret+access+key+0123456789"
ENCRYPT_SECRET = "lakekv-end-to-end-encryption-secret"
"""``auth.encrypt.secret_key``: credentials are stored encrypted with it, so every instance
that serves a migrated database must use the same one."""

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""Dummy credentials the local DynamoDB-protocol server accepts."""

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def _required(problem: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{problem} (required because CI is set)", pytrace=False)
    pytest.skip(problem)


def lakefs_version() -> str:
    """``LAKEFS_VERSION`` as the Makefile pins it."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    m = re.search(r"^LAKEFS_VERSION\s*:=\s*(\S+)\s*$", text, re.MULTILINE)
    if m is None:
        raise RuntimeError("the Makefile does not set LAKEFS_VERSION")
    return m.group(1)


def lakefs_binary() -> Path:
    """The lakeFS binary; skips (fails under CI) when it has not been built."""
    override = os.environ.get("LAKEKV_LAKEFS")
    path = Path(override) if override else ROOT / ".tools" / "lakefs" / lakefs_version() / "lakefs"
    if not os.access(path, os.X_OK):
        _required(f"lakeFS is not built ({path}): run `make lakefs` (needs Go)")
    return path


_SETPRIV = shutil.which("setpriv")
_DIE_WITH_PARENT = [_SETPRIV, "--pdeathsig", "TERM", "--"] if _SETPRIV else []
"""util-linux's ``setpriv``: lakeFS gets SIGTERM when the test process dies, even killed
outright, so no lakeFS outlives its test run."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Database:
    """One metadata database: lakeFS's ``database:`` section and the same database for lakekv.

    ``store_url`` is lakekv's URL of the same database (``badger://`` for lakeFS's embedded
    ``local`` store).
    ``env`` is what a lakekv process needs besides the URL (AWS credentials for DynamoDB).
    """

    kind: str
    section: dict[str, Any]
    store_url: str | None
    env: Mapping[str, str] = field(default_factory=dict)
    drop: Any = None
    """A callable that removes the database (``None``: nothing to remove)."""

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, self.kind: self.section}


def postgres_server() -> str:
    """``$LAKEKV_TEST_POSTGRES`` (skips, or fails under CI, when it is not set)."""
    url = os.environ.get("LAKEKV_TEST_POSTGRES")
    if not url:
        _required("LAKEKV_TEST_POSTGRES is not set (run the tests through tests/servers.py)")
    assert url is not None
    return url


def dynamodb_endpoint() -> str:
    """``$LAKEKV_TEST_DYNAMODB`` (skips, or fails under CI, when it is not set).

    Also puts the dummy AWS credentials into this process's environment (unless some are set),
    for the lakekv stores the tests open in-process."""
    url = os.environ.get("LAKEKV_TEST_DYNAMODB")
    if not url:
        _required("LAKEKV_TEST_DYNAMODB is not set (run the tests through tests/servers.py)")
    assert url is not None
    for name, value in AWS_ENV.items():
        os.environ.setdefault(name, value)
    return url


def postgres_database(server_url: str, name: str) -> Database:
    """A fresh, empty database ``name`` on the PostgreSQL server at ``server_url``."""
    require_module("psycopg", "postgres")
    import psycopg  # noqa: PLC0415 (the postgres extra may be missing: then this skips)

    parts = urlsplit(server_url)
    admin = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return Database(
        kind="postgres",
        section={"connection_string": url + "?sslmode=disable"},
        store_url=url,
        drop=drop,
    )


def dynamodb_database(endpoint: str, table: str) -> Database:
    """DynamoDB table ``table`` (created by its first user) on the server at ``endpoint``."""

    require_module("boto3", "dynamodb")
    import boto3  # noqa: PLC0415 (the dynamodb extra may be missing: then this skips)

    def drop() -> None:
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", **_aws())
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            client.delete_table(TableName=table)

    query = urlencode({"region": "us-east-1", "endpoint": endpoint})
    return Database(
        kind="dynamodb",
        section={
            "table_name": table,
            "endpoint": endpoint,
            "aws_region": "us-east-1",
            "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        },
        store_url=f"dynamodb://{table}?{query}",
        env=AWS_ENV,
        drop=drop,
    )


def _aws() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    }


def local_database(path: Path) -> Database:
    """lakeFS's embedded ``local`` (Badger) store in directory ``path``."""
    return Database(kind="local", section={"path": str(path)}, store_url=f"badger:///{path}")


class LakeFSError(RuntimeError):
    """lakeFS failed to start, stop or run a command; the message ends with its log."""


class _PortTakenError(Exception):
    """lakeFS could not listen: another process took its port first."""


class LakeFS:
    """One lakeFS server: ``setup()`` once per database, then ``start()`` / ``stop()``.

    ``workdir`` holds this instance's configuration, log and cache; ``blockstore`` is the local
    object store and may be shared with other instances.
    """

    def __init__(self, binary: Path, workdir: Path, blockstore: Path, database: Database) -> None:
        self.binary = binary
        self.workdir = workdir
        self.blockstore = blockstore
        self.database = database
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "lakefs.log"
        self.config_path = workdir / "lakefs.yaml"
        self.import_dir = blockstore.with_name(blockstore.name + "-import")
        """Files outside the blockstore that lakeFS may import (shared like the blockstore)."""
        self._proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        blockstore.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config()), encoding="utf-8")

    def config(self) -> dict[str, Any]:
        return {
            "listen_address": f"127.0.0.1:{self.port}",
            "logging": {"format": "text", "level": "INFO", "output": [str(self.log_path)]},
            "database": self.database.config(),
            "auth": {"encrypt": {"secret_key": ENCRYPT_SECRET}, "cache": {"enabled": False}},
            "blockstore": {
                "type": "local",
                "local": {
                    "path": str(self.blockstore),
                    "import_enabled": True,
                    "allowed_external_prefixes": [str(self.import_dir)],
                },
            },
            "committed": {
                "local_cache": {"dir": str(self.workdir / "cache"), "size_bytes": 64 << 20}
            },
            "stats": {"enabled": False},
            "email_subscription": {"enabled": False},
            "security": {
                "check_latest_version": False,
                # Closed loopback port: the version audit never leaves the machine.
                "audit_check_url": "http://127.0.0.1:9/audit",
                "audit_check_interval": "24h",
            },
            # Usage counters land in the ``usage`` partition within the test's lifetime.
            "usage_report": {"flush_interval": "1s"},
        }

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEFS_")}
        env.update(self.database.env)
        return env

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        # The first lines print the whole configuration: leave them out.
        kept = [line for line in text.splitlines() if "msg=Config " not in line]
        return "\n".join(kept[-lines:])

    def command(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``lakefs --config CFG ARGS`` (e.g. ``setup`` or ``kv dump``) to completion."""
        proc = subprocess.run(
            [str(self.binary), "--config", str(self.config_path), *args],
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=120,
            check=False,
        )
        if check and proc.returncode != 0:
            raise LakeFSError(
                f"lakefs {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
                f"\n--- log:\n{self._log_tail()}"
            )
        return proc

    def setup(self) -> None:
        """Create the admin user with the known keys (``lakefs setup``)."""
        self.command(
            "setup",
            "--user-name",
            ADMIN_USER,
            "--access-key-id",
            ACCESS_KEY_ID,
            "--secret-access-key",
            SECRET_ACCESS_KEY,
        )

    def start(self) -> None:
        """Run lakeFS and wait until it answers. If its port was taken meanwhile (the port is
        picked free, then bound by lakeFS), try again on another one."""
        for _ in range(3):
            try:
                self._start()
                return
            except _PortTakenError:
                self.port = free_port()
                self.endpoint = f"http://127.0.0.1:{self.port}"
                self.config_path.write_text(yaml.safe_dump(self.config()), encoding="utf-8")
        self._start()

    def _start(self) -> None:
        if self._proc is not None:
            raise LakeFSError("already running")
        out_path = self.workdir / "lakefs.out"
        out_size = out_path.stat().st_size if out_path.exists() else 0
        with open(out_path, "ab") as out:
            self._proc = subprocess.Popen(
                [*_DIE_WITH_PARENT, str(self.binary), "--config", str(self.config_path), "run"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                with open(out_path, "rb") as f:
                    f.seek(out_size)
                    said = f.read().decode(errors="replace")
                if "address already in use" in said:
                    raise _PortTakenError
                raise LakeFSError(f"lakefs run exited {code} at start:\n{said}{self._log_tail()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/api/v1/healthcheck", timeout=2):
                    if self._proc.poll() is None:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.stop()
        raise LakeFSError(f"lakefs did not answer within {START_TIMEOUT:.0f}s:\n{self._log_tail()}")

    def stop(self) -> None:
        """SIGTERM (lakeFS shuts down gracefully), SIGKILL after a timeout."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self) -> lakefs_sdk.ApiClient:
        conf = lakefs_sdk.Configuration(
            host=self.endpoint + "/api/v1", username=ACCESS_KEY_ID, password=SECRET_ACCESS_KEY
        )
        return lakefs_sdk.ApiClient(conf)

    def __enter__(self) -> LakeFS:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
