"""Comparing directories byte for byte, sparse files included."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def dir_fingerprint(path: Path) -> dict[str, tuple[str, int, int]]:
    """Every file of a directory: a hash of its contents, its size and modification time (ns).

    Badger's logs are large sparse files (a 2 GiB value log, a 128 MiB memtable log): the
    hash covers their data regions and where they are (a hole reads as zeros anyway)."""
    out = {}
    for entry in sorted(path.iterdir()):
        st = entry.stat()
        h = hashlib.sha256()
        fd = os.open(entry, os.O_RDONLY)
        try:
            pos = 0
            while pos < st.st_size:
                try:
                    data = os.lseek(fd, pos, os.SEEK_DATA)
                except OSError:  # no data after pos
                    break
                hole = os.lseek(fd, data, os.SEEK_HOLE)
                h.update(data.to_bytes(8, "little"))
                os.lseek(fd, data, os.SEEK_SET)
                while data < hole:
                    chunk = os.read(fd, min(hole - data, 1 << 24))
                    if not chunk:
                        break
                    h.update(chunk)
                    data += len(chunk)
                pos = hole
        finally:
            os.close(fd)
        out[entry.name] = (h.hexdigest(), st.st_size, st.st_mtime_ns)
    return out
