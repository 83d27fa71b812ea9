"""The ``lakekv-badger`` helper process: finding it, starting it, talking to it.

One helper serves one directory for this Python process; every store opened on that directory
shares it (Badger allows one open per directory, and lakeFS's flock enforces it across
processes). Requests are serialised by a lock: one request, one response, in order. The
framing is the one ``helper/main.go`` documents.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import shutil
import struct
import subprocess
import sys
import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate, islice
from pathlib import Path
from typing import IO, Final

from lakekv.errors import (
    ConfigurationError,
    DriverNotInstalledError,
    StoreError,
    StoreInUseError,
    StoreNotFoundError,
    StoreUnavailableError,
)

HELPER_ENV: Final = "LAKEKV_BADGER_HELPER"
HELPER_NAME: Final = "lakekv-badger"
HELPER_SOURCE: Final = Path(__file__).resolve().parent / "helper"
"""The helper's Go source, shipped with the package."""

# Statuses (helper/main.go).
OK: Final = 0
NOT_FOUND: Final = 1
LOCKED: Final = 2
NOT_BADGER: Final = 3
ERROR: Final = 4
PREDICATE: Final = 5
INVALID: Final = 6
UNAVAILABLE: Final = 7

_HEAD = struct.Struct("<BI")
_U32 = struct.Struct("<I")
_SCAN_HEAD = struct.Struct("<IB")
_pack_u32 = _U32.pack


class HelperError(Exception):
    """A request the helper answered with an error status (translated by the store)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def find_helper() -> Path:
    """The helper binary: ``$LAKEKV_BADGER_HELPER``, else ``.tools/badger/lakekv-badger`` of the
    checkout this package runs from, else ``lakekv-badger`` on ``PATH``.

    Raises DriverNotInstalledError, in one line, saying how to build it."""
    env = os.environ.get(HELPER_ENV)
    if env:
        path = Path(env)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise DriverNotInstalledError(
            f"badger:// helper {HELPER_ENV}={env} is not an executable file"
        )
    checkout = Path(__file__).resolve().parents[5] / ".tools" / "badger" / HELPER_NAME
    if checkout.is_file() and os.access(checkout, os.X_OK):
        return checkout
    found = shutil.which(HELPER_NAME)
    if found:
        return Path(found)
    raise DriverNotInstalledError(
        f"badger:// needs its helper program {HELPER_NAME} (built with Go from Badger's own "
        f"module): run `make badger-helper` in a lakekv checkout, or "
        f"`go build -C {HELPER_SOURCE} -o /usr/local/bin/{HELPER_NAME} .` "
        f"(or set {HELPER_ENV} to the binary)"
    )


def field_bytes(data: bytes) -> bytes:
    """``data`` as a length-prefixed field."""
    return _pack_u32(len(data)) + data


@dataclass
class Helper:
    """A running helper process on one directory."""

    path: Path
    mode: str
    process: subprocess.Popen[bytes]
    note: str
    users: int = 1
    destroyed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    said: collections.deque[bytes] = field(default_factory=lambda: collections.deque(maxlen=20))
    """The helper's last lines on stderr, read by a thread as they come (a pipe nobody reads
    would stop the helper once full)."""
    _drain: threading.Thread | None = None

    def __post_init__(self) -> None:
        err = self.process.stderr
        if err is not None:
            self._drain = threading.Thread(
                target=lambda: self.said.extend(iter(err.readline, b"")),
                name=f"lakekv-badger stderr {self.process.pid}",
                daemon=True,
            )
            self._drain.start()

    def _said(self) -> str:
        if self._drain is not None:
            self._drain.join(timeout=5)
        return b"".join(self.said).decode("utf-8", "replace").strip()[-500:]

    def call(self, op: int, payload: bytes) -> bytes:
        """Send one request; the response payload, or HelperError for an error status."""
        with self.lock:
            stdin, stdout = self._pipes()
            try:
                stdin.write(_HEAD.pack(op, len(payload)))
                stdin.write(payload)
                stdin.flush()
                status, size = _HEAD.unpack(_read(stdout, 5))
                body = _read(stdout, size)
            except (OSError, EOFError) as exc:
                raise StoreUnavailableError(
                    f"badger:// helper for {self.path} stopped: {self._stderr_tail() or exc}"
                ) from exc
        if status != OK:
            raise HelperError(status, body.decode("utf-8", "replace"))
        return body

    def call_first(self) -> str:
        """Read the helper's first response: whether it opened the directory."""
        stdin, stdout = self._pipes()
        del stdin
        try:
            status, size = _HEAD.unpack(_read(stdout, 5))
            body = _read(stdout, size)
        except (OSError, EOFError) as exc:
            self.process.wait()
            raise StoreUnavailableError(
                f"badger:// helper for {self.path} did not start: {self._stderr_tail() or exc}"
            ) from exc
        if status != OK:
            raise HelperError(status, body.decode("utf-8", "replace"))
        return body.decode()

    def stop_quietly(self) -> None:
        with contextlib.suppress(Exception):
            if self.process.stdin is not None:
                self.process.stdin.close()
        with contextlib.suppress(Exception):
            self.process.wait(timeout=30)
        if self._drain is not None:
            self._drain.join(timeout=5)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:
            raise StoreUnavailableError(f"badger:// helper for {self.path} is closed")
        return stdin, stdout

    def _stderr_tail(self) -> str:
        if self.process.poll() is None:
            return ""
        return self._said()

    def stop(self) -> None:
        """Ask the helper to close the database and wait for it (Badger flushes on close)."""
        with self.lock:
            stdin, stdout = self.process.stdin, self.process.stdout
            try:
                if stdin is not None:
                    stdin.write(_HEAD.pack(ord("q"), 0))
                    stdin.flush()
                    stdin.close()
                if stdout is not None:
                    stdout.read()
            except OSError:
                pass
            code = self.process.wait()
            msg = self._said()
            for pipe in (self.process.stdout, self.process.stderr):
                if pipe is not None:
                    pipe.close()
        if code != 0:
            raise StoreError(f"badger:// helper for {self.path} failed closing: {msg or code}")


def _read(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError("the helper closed its output")
    return data


_helpers: dict[str, Helper] = {}
_helpers_lock = threading.Lock()


def acquire(path: Path, *, read_only: bool, create: bool, tmpdir: str | None) -> Helper:
    """The helper serving ``path`` (started if none runs in this process). A read-write helper
    serves read-only stores too; a read-only one serves only read-only stores."""
    real = os.path.realpath(path)
    with _helpers_lock:
        running = _helpers.get(real)
        if running is not None and (running.mode == "rw" or read_only):
            running.users += 1
            return running
        if running is not None:
            raise StoreInUseError(
                f"badger directory {path} is open read-only in this process: close it before "
                "opening it for writing"
            )
        helper = _start(path, read_only=read_only, create=create, tmpdir=tmpdir)
        _helpers[real] = helper
        return helper


def release(helper: Helper) -> None:
    """One store is done with ``helper``; the last one stops it."""
    with _helpers_lock:
        helper.users -= 1
        if helper.users > 0:
            return
        real = os.path.realpath(helper.path)
        if _helpers.get(real) is helper:
            del _helpers[real]
    helper.stop()
    if helper.destroyed:
        remove_badger_files(helper.path)


def remove_badger_files(path: Path) -> None:
    """Remove Badger's files from ``path``, and ``path`` itself if that empties it."""
    with contextlib.suppress(FileNotFoundError):
        for entry in path.iterdir():
            name = entry.name
            if entry.is_file() and (
                name in ("MANIFEST", "KEYREGISTRY", "DISCARD", "LOCK")
                or name.endswith((".sst", ".vlog", ".mem"))
            ):
                entry.unlink()
        with contextlib.suppress(OSError):
            path.rmdir()


def _start(path: Path, *, read_only: bool, create: bool, tmpdir: str | None) -> Helper:
    binary = find_helper()
    cmd = [str(binary), "-dir", str(path), "-mode", "ro" if read_only else "rw"]
    if create and not read_only:
        cmd.append("-create")
    if tmpdir:
        cmd += ["-tmp", tmpdir]
    try:
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=1 << 20,
            close_fds=True,
        )
    except OSError as exc:
        raise DriverNotInstalledError(f"cannot run the badger:// helper {binary}: {exc}") from exc
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:  # 1 MiB pipes: a page crosses in a few writes, not dozens
            with contextlib.suppress(OSError, AttributeError):
                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
    helper = Helper(path, "ro" if read_only else "rw", process, "")
    try:
        helper.note = helper.call_first()
    except HelperError as exc:
        helper.stop_quietly()
        raise open_error(path, exc) from exc
    return helper


def open_error(path: Path, exc: HelperError) -> Exception:
    """The lakekv error for a helper that could not open ``path``."""
    msg = str(exc)
    if exc.status == LOCKED:
        return StoreInUseError(
            f"badger directory {path} is in use by another program (a running lakeFS holds its "
            "lock): stop lakeFS first"
        )
    if exc.status == NOT_FOUND:
        return StoreNotFoundError(f"badger:// {msg}")
    if exc.status == NOT_BADGER:
        return StoreNotFoundError(f"badger:// {msg}")
    if exc.status == INVALID:
        return ConfigurationError(f"badger:// {msg}")
    if exc.status == UNAVAILABLE:
        return StoreUnavailableError(f"badger:// {path}: {msg}")
    return StoreError(f"badger:// cannot open {path}: {msg}")


def decode_scan(body: bytes) -> tuple[list[tuple[bytes, bytes]], bool]:
    """A scan response: ``(key, value)`` pairs and whether more follow."""
    n, more = _SCAN_HEAD.unpack_from(body, 0)
    if n == 0:
        return [], bool(more)
    lens = array("I")
    lens.frombytes(body[5 : 5 + 8 * n])
    if sys.byteorder != "little":
        lens.byteswap()
    bounds = list(accumulate(lens, initial=5 + 8 * n))
    cut = map(body.__getitem__, map(slice, bounds, islice(bounds, 1, None)))
    keys = list(islice(cut, n))
    values = list(cut)
    return list(zip(keys, values, strict=True)), bool(more)


def encode_fields(items: Sequence[bytes]) -> bytes:
    """A count, then each item as a field."""
    return _pack_u32(len(items)) + b"".join([_pack_u32(len(i)) + i for i in items])


def decode_many(keys: Sequence[bytes], body: bytes) -> dict[bytes, bytes]:
    """A get-many response: per key, 0 (missing) or the value's length + 1, then the value."""
    found: dict[bytes, bytes] = {}
    pos = 0
    for key in keys:
        size = int.from_bytes(body[pos : pos + 4], "little")
        pos += 4
        if size:
            found[key] = body[pos : pos + size - 1]
            pos += size - 1
    return found


def decode_names(body: bytes) -> list[bytes]:
    """A partitions response: the encoded partition names, in the order Badger keeps them."""
    count = int.from_bytes(body[:4], "little")
    names = []
    pos = 4
    for _ in range(count):
        size = int.from_bytes(body[pos : pos + 4], "little")
        names.append(body[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return names
