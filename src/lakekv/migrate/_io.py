"""Opening dump files: ``-`` for stdin/stdout, compression by name (write) or magic (read).

Writing to a named regular file (or a new one) goes to a temporary file next to it,
``.<name>.<random>.tmp``, renamed into place only when the dump completed, so a failed dump
never leaves a plausible-looking partial file. A symbolic link is followed (the file it
points to is replaced, the link stays). A FIFO, character device or socket, and any path
under ``/dev`` or ``/proc`` (``/dev/stdout``, ``/dev/fd/N``, even when it leads to a regular
file), is written in place, appending. A live dump holds a lock on its temporary file; the next
dump to the same path removes temporary files nobody holds (left by a killed dump).

Reading input that cannot be read twice (a FIFO, ``<(…)``, stdin) for ``load``'s pre-check
spools it once into a temporary file in ``$TMPDIR`` (see :func:`rereadable`), which must have
room for the whole input as stored (compressed input stays compressed).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import io
import os
import re
import shutil
import stat
import sys
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Literal, cast

import zstandard

from lakekv._files import unlinked_file
from lakekv.errors import ConfigurationError, CorruptInputError, MigrationError

Compression = Literal["auto", "none", "gzip", "zstd"]
PathLike = str | os.PathLike[str]
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 20


def compression_for(name: str, requested: Compression = "auto") -> Literal["none", "gzip", "zstd"]:
    """The compression for an output: explicit, else from the file name's ending."""
    if requested != "auto":
        return requested
    if name.endswith(".gz"):
        return "gzip"
    if name.endswith(".zst"):
        return "zstd"
    return "none"


def describe(target: PathLike | BinaryIO) -> str:
    """A name for reports: the path, ``-`` for standard streams, else the stream's name."""
    if isinstance(target, str | os.PathLike):
        return os.fspath(target)
    name = getattr(target, "name", None)
    return name if isinstance(name, str) else "<stream>"


class _CountingWriter(io.RawIOBase):
    """Counts bytes passing to ``raw`` (the size of the file after compression)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        n = self.raw.write(data)
        self.count += len(data) if n is None else n
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


class OutputError(MigrationError):
    """Writing a dump's output failed (disk full, I/O error): exit 6, one line."""


class Sink:
    """An open output: write uncompressed bytes to ``stream``; ``file_bytes`` after close."""

    def __init__(self, stream: BinaryIO, counter: _CountingWriter) -> None:
        self.stream = stream
        self._counter = counter

    @property
    def file_bytes(self) -> int:
        return self._counter.count


@dataclass(frozen=True)
class OutputPath:
    """Where a dump to a named path goes: ``path`` (symlinks resolved), replaced or in place."""

    path: Path
    in_place: bool
    """True for a FIFO, character or block device or socket: written directly, never renamed."""


def check_output(target: PathLike) -> OutputPath:
    """Check that a dump can be written to ``target`` (not ``-``), before any work is done.

    A FIFO, device or socket, or a path under ``/dev`` or ``/proc``, is to be written in
    place; anything else through a temporary file next to the file a symlink points to.
    Raises ConfigurationError for an empty name, a directory, a missing parent directory or
    one this process cannot write into.
    """
    text = os.fspath(target)
    if not text:
        raise ConfigurationError("the output file name is empty")
    try:
        st = os.stat(text)  # through symlinks, /dev/stdout and /dev/fd/N included
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ConfigurationError(f"cannot write {text}: {exc.strerror or exc}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise ConfigurationError(f"cannot write {text}: it is a directory")
    # /dev/stdout, /dev/fd/N, /proc/self/fd/N name an open descriptor, even when it leads
    # to a regular file (a shell redirection): write through it, never replace what it names.
    special = os.path.abspath(text).startswith(("/dev/", "/proc/"))
    if st is not None and (special or not stat.S_ISREG(st.st_mode)):
        if not os.access(text, os.W_OK):
            raise ConfigurationError(f"cannot write {text}: permission denied")
        return OutputPath(Path(text), in_place=True)
    path = Path(os.path.realpath(text))  # the file a symlink points to is replaced
    parent = path.parent
    if not parent.is_dir():
        raise ConfigurationError(f"cannot write {text}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigurationError(f"cannot write {text}: directory {parent} is not writable")
    return OutputPath(path, in_place=False)


def _temp_pattern(final: Path) -> re.Pattern[str]:
    return re.compile(re.escape(f".{final.name}.") + r"[a-z0-9_]{8}\.tmp")


def remove_stale_temporaries(final: Path) -> list[Path]:
    """Remove temporary files of earlier dumps to ``final`` that no live dump holds.

    A dump holds an exclusive ``flock`` on its temporary file until it ends, so a file whose
    lock can be taken was left by a dump that was killed. Returns the files removed.
    """
    pattern = _temp_pattern(final)
    removed: list[Path] = []
    try:
        names = os.listdir(final.parent)
    except OSError:
        return removed
    for name in names:
        if not pattern.fullmatch(name):
            continue
        candidate = final.parent / name
        try:
            fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            candidate.unlink()
            removed.append(candidate)
        except OSError:
            pass  # held by a running dump, or already gone
        finally:
            os.close(fd)
    return removed


@contextlib.contextmanager
def open_sink(target: PathLike | BinaryIO, compression: Compression = "auto") -> Iterator[Sink]:
    """Open ``target`` (a path, ``-`` for stdout, or a binary stream) for writing a dump.

    A path is checked with :func:`check_output`. A regular (or new) file is written through a
    locked temporary file renamed into place on success and removed on failure; stale
    temporary files of killed dumps to the same path are removed first. A FIFO or device is
    written in place. A stream passed in is flushed, not closed.
    """
    tmp: Path | None = None
    final: Path | None = None
    if isinstance(target, str | os.PathLike) and os.fspath(target) != "-":
        out = check_output(target)
        kind = compression_for(Path(target).name, compression)
        if out.in_place:
            try:
                # Appending: through /dev/stdout a shell's ">>" keeps what the file holds.
                raw: BinaryIO = open(out.path, "ab")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot write {os.fspath(target)}: {exc.strerror or exc}"
                ) from None
        else:
            final = out.path
            remove_stale_temporaries(final)
            fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
            fcntl.flock(fd, fcntl.LOCK_EX)
            tmp = Path(name)
            raw = os.fdopen(fd, "wb")
    elif isinstance(target, str | os.PathLike):
        kind = compression_for("-", compression)
        raw = sys.stdout.buffer
    else:
        kind = compression_for(describe(target), compression)
        raw = target
    counter = _CountingWriter(raw)
    ok = False
    try:
        if kind == "gzip":
            stream = cast(
                BinaryIO,
                gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=counter, mtime=0),
            )
        elif kind == "zstd":
            stream = cast(
                BinaryIO,
                zstandard.ZstdCompressor(level=3).stream_writer(
                    cast(IO[bytes], counter), closefd=False
                ),
            )
        else:
            stream = cast(BinaryIO, io.BufferedWriter(counter, buffer_size=_CHUNK))
        sink = Sink(stream, counter)
        yield sink
        stream.flush()
        if kind != "none":
            stream.close()
        else:
            stream.flush()
        raw.flush()
        ok = True
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(
            f"cannot write {describe(target)}: {exc.strerror or exc}"
            + ("; nothing was left behind" if tmp is not None else "")
        ) from exc
    finally:
        if tmp is not None and final is not None:
            if ok:
                os.replace(tmp, final)
            else:
                with contextlib.suppress(OSError):
                    tmp.unlink()
            raw.close()  # releases the lock only once the file is renamed or removed
        elif isinstance(target, str | os.PathLike) and os.fspath(target) != "-":
            with contextlib.suppress(OSError):  # a failed write was reported above
                raw.close()


class Source:
    """An open input: uncompressed bytes from ``stream``; ``position`` counts raw bytes read."""

    def __init__(self, stream: BinaryIO, raw: BinaryIO, size: int | None, name: str) -> None:
        self.stream = stream
        self._raw = raw
        self.size = size
        """Size of the (possibly compressed) file, when it is a regular file."""
        self.name = name

    @property
    def position(self) -> int:
        """Bytes of the underlying file consumed so far (for progress)."""
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0


_SPOOL_RESERVE = 256 << 20
"""Free space a spool leaves on its file system for everybody else (bytes)."""


class _SpoolFullError(Exception):
    pass


@contextlib.contextmanager
def rereadable(source: PathLike | BinaryIO) -> Iterator[PathLike]:
    """A path from which ``source`` can be read twice: the path of a regular file itself,
    else (a FIFO, ``/dev/fd/N`` from ``<(…)``, a device, ``-`` for stdin, a stream) a
    temporary copy in ``$TMPDIR``, removed on exit.

    The copy is made in one pass and stops with ConfigurationError (exit 2) before the
    file system has less than 256 MiB free; the input is copied as stored (compressed input
    stays compressed). A missing path is returned as is (opening it reports the error).
    """
    raw: BinaryIO
    close = False
    if isinstance(source, str | os.PathLike) and os.fspath(source) != "-":
        try:
            st = os.stat(source)
        except OSError:
            yield source
            return
        if stat.S_ISREG(st.st_mode):
            yield source
            return
        if stat.S_ISDIR(st.st_mode):
            raise ConfigurationError(f"cannot read {os.fspath(source)}: it is a directory")
        try:
            raw = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise ConfigurationError(
                f"cannot open {os.fspath(source)}: {exc.strerror or exc}"
            ) from None
        close = True
    elif isinstance(source, str | os.PathLike):
        raw = sys.stdin.buffer
    else:
        raw = source
    try:
        # Unlinked at once: a process killed meanwhile leaves no spool file behind.
        with unlinked_file("lakekv-spool-") as (spool, path):
            try:
                _spool(raw, spool, describe(source), os.path.dirname(spool.name))
            finally:
                if close:
                    raw.close()
            yield path
    finally:
        if close:
            raw.close()


def _spool(raw: BinaryIO, spool: IO[bytes], name: str, where: str) -> None:
    try:
        while True:
            chunk = raw.read(_CHUNK)
            if not chunk:
                break
            free = shutil.disk_usage(where).free
            if free - len(chunk) < _SPOOL_RESERVE:
                raise _SpoolFullError(free)
            spool.write(chunk)
        spool.flush()
    except (_SpoolFullError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno not in (28, 122):  # ENOSPC, EDQUOT
            raise ConfigurationError(f"cannot read {name}: {exc.strerror or exc}") from None
        raise ConfigurationError(
            f"{name} cannot be read twice, and {where} has not enough free space to hold a "
            "copy of it for the pre-check; set TMPDIR to a directory with room for the whole "
            "input, or save the input to a file first"
        ) from None


@contextlib.contextmanager
def open_source(source: PathLike | BinaryIO, display: str | None = None) -> Iterator[Source]:
    """Open a dump for reading: a path, ``-`` for stdin, or a binary stream.

    Compression (gzip, zstd) is recognised by its magic bytes, whatever the file is called.
    A missing or unreadable file is a ConfigurationError. ``display`` names the input in
    messages (default: the path).
    """
    close_raw = False
    size: int | None = None
    if isinstance(source, str | os.PathLike) and os.fspath(source) != "-":
        path = Path(source)
        try:
            raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed below
            size = path.stat().st_size
        except OSError as exc:
            raise ConfigurationError(
                f"cannot open {display or path}: {exc.strerror or exc}"
            ) from None
        close_raw = True
    elif isinstance(source, str | os.PathLike):
        raw = sys.stdin.buffer
    else:
        raw = source
    try:
        buffered = (
            raw
            if isinstance(raw, io.BufferedReader)
            else io.BufferedReader(cast(io.RawIOBase, raw), buffer_size=_CHUNK)
        )
        head = buffered.peek(4)[:4]
        stream: BinaryIO
        if head.startswith(_GZIP_MAGIC):
            stream = cast(BinaryIO, gzip.GzipFile(fileobj=buffered, mode="rb"))
        elif head.startswith(_ZSTD_MAGIC):
            reader = zstandard.ZstdDecompressor().stream_reader(buffered, closefd=False)
            stream = cast(
                BinaryIO, io.BufferedReader(cast(io.RawIOBase, reader), buffer_size=_CHUNK)
            )
        else:
            stream = cast(BinaryIO, buffered)
        yield Source(stream, raw, size, display or describe(source))
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CorruptInputError(f"{display or describe(source)}: cannot decompress: {exc}") from exc
    finally:
        if close_raw:
            raw.close()
