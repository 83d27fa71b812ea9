"""Temporary files that a ``kill -9`` cannot leave behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO


@contextlib.contextmanager
def unlinked_file(prefix: str, directory: str | None = None) -> Iterator[tuple[IO[bytes], str]]:
    """A new temporary file, open for reading and writing, and a path that opens it.

    The file is removed from its directory at once, so nothing is left behind whatever ends
    the process; the path is ``/proc/self/fd/N``, valid in this process while the block
    runs. Where there is no ``/proc`` the file keeps its name until the block ends (as
    ``tempfile.NamedTemporaryFile`` would).
    """
    f = tempfile.NamedTemporaryFile(prefix=prefix, suffix=".tmp", dir=directory, delete=False)  # noqa: SIM115
    try:
        proc = f"/proc/self/fd/{f.fileno()}"
        if os.path.exists(proc):
            os.unlink(f.name)
            yield f, proc
        else:
            yield f, f.name
    finally:
        f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f.name)
