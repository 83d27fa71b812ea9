"""Copy checkpoints: an append-only JSON-lines file that survives ``kill -9``.

Line 1 identifies the copy: ``{"lakekv_checkpoint": 1, "source": URL, "target": URL,
"sync": bool}`` (URLs without passwords). Every later line is written after a batch is stored
in the target: ``{"done": [partitions finished], "at": [partition, last key written] | null,
"conflicts": n}``, names in base64. A torn last line (the process died while writing it) is
ignored; the batch it described is simply copied again, which is safe because writes are
idempotent. Resuming skips finished partitions and restarts the others at their last key.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path
from typing import IO

from lakekv.errors import ConfigurationError

_VERSION = 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Checkpoint:
    """State loaded from, and progress appended to, a checkpoint file."""

    def __init__(self, path: Path, identity: dict[str, object]) -> None:
        self.path = path
        self.done: set[bytes] = set()
        self.at: dict[bytes, bytes] = {}
        self.previous_conflicts = 0
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._identity = {"lakekv_checkpoint": _VERSION, **identity}

    @classmethod
    def open(cls, path: str | os.PathLike[str], identity: dict[str, object]) -> Checkpoint:
        """Load ``path`` if it exists (refusing one made for another copy), then append to it."""
        cp = cls(Path(path), identity)
        try:
            if cp.path.exists() and cp.path.stat().st_size > 0:
                cp._load()
                cp._file = open(cp.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
            else:
                cp._file = open(cp.path, "w", encoding="utf-8")  # noqa: SIM115
                cp._append(cp._identity)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot use checkpoint {cp.path}: {exc.strerror or exc}"
            ) from None
        return cp

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                lines = f.read().split("\n")
        except (UnicodeDecodeError, ValueError):
            raise ConfigurationError(f"{self.path} is not a lakekv checkpoint") from None
        try:
            head = json.loads(lines[0])
        except (ValueError, RecursionError):
            raise ConfigurationError(f"{self.path} is not a lakekv checkpoint") from None
        if not isinstance(head, dict) or head.get("lakekv_checkpoint") != _VERSION:
            raise ConfigurationError(f"{self.path} is not a lakekv checkpoint")
        for name in ("source", "target", "sync"):
            if head.get(name) != self._identity.get(name):
                raise ConfigurationError(
                    f"checkpoint {self.path} belongs to another copy ({name} was "
                    f"{head.get(name)!r}, now {self._identity.get(name)!r}); "
                    "use a new checkpoint file"
                )
        for line in lines[1:]:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                done = [base64.b64decode(p) for p in rec.get("done", [])]
                at = rec.get("at")
                conflicts = int(rec.get("conflicts", 0))
            except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError):
                continue  # a torn last line
            for p in done:
                self.done.add(p)
                self.at.pop(p, None)
            if at:
                self.at[base64.b64decode(at[0])] = base64.b64decode(at[1])
            self.previous_conflicts += conflicts

    def _append(self, record: dict[str, object]) -> None:
        assert self._file is not None
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def record(self, done: list[bytes], at: tuple[bytes, bytes] | None, conflicts: int) -> None:
        """Note that a batch is stored: ``done`` partitions finished, ``at`` the last key."""
        rec: dict[str, object] = {
            "done": [_b64(p) for p in done],
            "at": [_b64(at[0]), _b64(at[1])] if at else None,
            "conflicts": conflicts,
        }
        with self._lock:
            self._append(rec)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
