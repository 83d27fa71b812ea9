"""Opening dump files: ``-`` for stdin/stdout, compression by name (write) or magic (read).

Writing to a named file goes to a temporary file next to it that is renamed into place only
when the dump completed, so a failed dump never leaves a plausible-looking partial file.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from glob import escape as glob_escape
from pathlib import Path
from typing import IO, BinaryIO, Literal, cast

import zstandard

from lakekv.errors import ConfigurationError, CorruptInputError

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


class Sink:
    """An open output: write uncompressed bytes to ``stream``; ``file_bytes`` after close."""

    def __init__(self, stream: BinaryIO, counter: _CountingWriter) -> None:
        self.stream = stream
        self._counter = counter

    @property
    def file_bytes(self) -> int:
        return self._counter.count


@contextlib.contextmanager
def open_sink(target: PathLike | BinaryIO, compression: Compression = "auto") -> Iterator[Sink]:
    """Open ``target`` (a path, ``-`` for stdout, or a binary stream) for writing a dump.

    A path is written through a temporary file renamed into place on success and removed on
    failure. A stream passed in is flushed, not closed.
    """
    tmp: Path | None = None
    final: Path | None = None
    if isinstance(target, str | os.PathLike) and os.fspath(target) != "-":
        final = Path(target)
        kind = compression_for(final.name, compression)
        remove_stale_temporaries(final)
        fd, name = tempfile.mkstemp(
            prefix=f".{final.name}.{os.getpid()}.", suffix=".tmp", dir=final.parent
        )
        tmp = Path(name)
        raw: BinaryIO = os.fdopen(fd, "wb")
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
    finally:
        if tmp is not None and final is not None:
            raw.close()
            if ok:
                os.replace(tmp, final)
            else:
                with contextlib.suppress(OSError):
                    tmp.unlink()


def remove_stale_temporaries(final: Path) -> list[Path]:
    """Remove temporary files that dumps to ``final`` left behind when they were killed
    (``.NAME.PID.XXXX.tmp`` whose process is gone); those of running dumps stay."""
    removed: list[Path] = []
    try:
        candidates = list(final.parent.glob(f".{glob_escape(final.name)}.*.tmp"))
    except OSError:
        return removed
    for path in candidates:
        middle = path.name[len(final.name) + 2 : -len(".tmp")]
        pid_text = middle.split(".", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


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


@contextlib.contextmanager
def open_source(source: PathLike | BinaryIO) -> Iterator[Source]:
    """Open a dump for reading: a path, ``-`` for stdin, or a binary stream.

    Compression (gzip, zstd) is recognised by its magic bytes, whatever the file is called.
    A missing or unreadable file is a ConfigurationError.
    """
    close_raw = False
    size: int | None = None
    if isinstance(source, str | os.PathLike) and os.fspath(source) != "-":
        path = Path(source)
        try:
            raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed below
            size = path.stat().st_size
        except OSError as exc:
            raise ConfigurationError(f"cannot open {path}: {exc.strerror or exc}") from None
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
        yield Source(stream, raw, size, describe(source))
    except (OSError, EOFError, zstandard.ZstdError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CorruptInputError(f"{describe(source)}: cannot decompress: {exc}") from exc
    finally:
        if close_raw:
            raw.close()
