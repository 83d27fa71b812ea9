"""Copy checkpoints: an append-only JSON-lines file that survives ``kill -9``.

Line 1 identifies the copy: ``{"lakekv_checkpoint": 3, "source": URL, "target": URL,
"source_identity": ..., "target_identity": ..., "source_incarnation": ...,
"target_incarnation": ..., "sync": bool, "on_conflict": policy, "partitions": [names] |
null, "target_was_empty": bool}`` (URLs without passwords; identities and incarnations as
``Store.identity`` and ``Store.incarnation``). A run with another source or target is
refused, and so is one whose source or target was re-created since (a dropped table, a
deleted file, a Redis namespace lost in a restart), and one with other options while the
pass is unfinished: a checkpoint never resumes a different copy, nor vouches for data that
is gone. ``target_was_empty`` (not compared) says whether the pass began on an empty target.
Every later line is written after a batch is stored in the target: ``{"done": [partitions
finished], "at": [partition, resume key] | null, "last": [partition, key written],
"conflicts": n}``, names in base64 (``last`` only when it is not ``at``: a raw chunk's resume
key is the next chunk's first key, not written yet). A
torn last line (the process died while writing it) is ignored; the batch it described is
simply copied again, which is safe because writes are idempotent. Resuming skips finished
partitions and restarts the others at their last key.

A pass that completed appends ``{"finished": true}``. The next run with that file does not
skip anything: it starts a new full pass (the file is rewritten), so entries added to the
source since are copied: the catch-up run before a cutover. The file is created mode 0600
(it holds repository, branch and object names).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
from pathlib import Path
from typing import IO

from lakekv.errors import ConfigurationError

_VERSION = 3
_PAIR_FIELDS = ("source_identity", "target_identity", "source_incarnation", "target_incarnation")
"""Always compared: a checkpoint never serves another source or target, nor one that was
re-created (emptied) since (``Store.incarnation``)."""
_OPTION_FIELDS = ("sync", "on_conflict", "partitions")
"""Compared while a pass is unfinished (a finished one is discarded, whatever its options)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Checkpoint:
    """State loaded from, and progress appended to, a checkpoint file."""

    def __init__(self, path: Path, identity: dict[str, object]) -> None:
        self.path = path
        self.done: set[bytes] = set()
        self.at: dict[bytes, bytes] = {}
        """Per unfinished partition, where a resumed run starts reading (inclusive)."""
        self.last: dict[bytes, bytes] = {}
        """Per unfinished partition, a key an earlier run wrote last (or nearly: a raw chunk's
        first key), which the target must still hold for the resume to be sound."""
        self.previous_conflicts = 0
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._identity = {"lakekv_checkpoint": _VERSION, **identity}
        self.finished = False
        """The file's last pass had completed."""
        self.new_pass = False
        """This run starts a new full pass because the previous one had finished."""
        self.header: dict[str, object] = dict(self._identity)
        """The first line of the pass being run: the one loaded when resuming, else the new
        one."""

    @classmethod
    def open(cls, path: str | os.PathLike[str], identity: dict[str, object]) -> Checkpoint:
        """Load ``path`` if it exists (refusing one made for another copy), then append to it;
        a finished pass is discarded and a new one begins."""
        cp = cls(Path(path), identity)
        try:
            if cp.path.exists() and cp.path.stat().st_size > 0:
                cp._load()
                if cp.finished:
                    cp.header = dict(cp._identity)
                    cp.new_pass = True
                    cp.done.clear()
                    cp.at.clear()
                    cp.previous_conflicts = 0
                    cp._file = _open_private(cp.path, truncate=True)
                    cp._append(cp._identity)
                else:
                    cp._file = _open_private(cp.path, truncate=False)
            else:
                cp._file = _open_private(cp.path, truncate=True)
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
        if not isinstance(head, dict) or "lakekv_checkpoint" not in head:
            raise ConfigurationError(f"{self.path} is not a lakekv checkpoint")
        if head.get("lakekv_checkpoint") != _VERSION:
            raise ConfigurationError(
                f"checkpoint {self.path} has version {head.get('lakekv_checkpoint')!r} "
                f"(this lakekv writes {_VERSION}); use a new checkpoint file"
            )
        self.header = head
        for name in _PAIR_FIELDS:
            if head.get(name) != self._identity.get(name):
                side = name.split("_")[0]
                if name.endswith("_incarnation") or head.get(side) == self._identity.get(side):
                    raise ConfigurationError(
                        f"checkpoint {self.path}: the {side} {head.get(side)} was re-created "
                        f"or emptied since the checkpoint was written ({name.split('_')[1]} "
                        f"was {head.get(name)!r}, now {self._identity.get(name)!r}), so the "
                        "progress it records no longer holds; delete the checkpoint file to "
                        "copy from the start"
                    )
                raise ConfigurationError(
                    f"checkpoint {self.path} belongs to another copy "
                    f"({name.removesuffix('_identity')} was {head.get(name)!r}, now "
                    f"{self._identity.get(name)!r}); use a new checkpoint file"
                )
        self._read_progress(lines[1:])
        if self.finished:
            return
        for name in _OPTION_FIELDS:
            if head.get(name) != self._identity.get(name):
                raise ConfigurationError(
                    f"checkpoint {self.path} belongs to another copy: its unfinished pass ran "
                    f"with {name}={head.get(name)!r}, now {self._identity.get(name)!r}; resume "
                    "with the same options, or use a new checkpoint file"
                )

    def _read_progress(self, lines: list[str]) -> None:
        for line in lines:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if rec.get("finished") is True:
                    self.finished = True
                    continue
                done = [base64.b64decode(p) for p in rec.get("done", [])]
                at = rec.get("at")
                last = rec.get("last", at)
                conflicts = int(rec.get("conflicts", 0))
            except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError):
                continue  # a torn last line
            for p in done:
                self.done.add(p)
                self.at.pop(p, None)
                self.last.pop(p, None)
            if at:
                self.at[base64.b64decode(at[0])] = base64.b64decode(at[1])
            if last:
                self.last[base64.b64decode(last[0])] = base64.b64decode(last[1])
            self.previous_conflicts += conflicts

    def _append(self, record: dict[str, object]) -> None:
        assert self._file is not None
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def record(
        self,
        done: list[bytes],
        at: tuple[bytes, bytes] | None,
        conflicts: int,
        last: tuple[bytes, bytes] | None = None,
    ) -> None:
        """Note that a batch is stored: ``done`` partitions finished, ``at`` where to resume,
        ``last`` a key it wrote (``None``: none is known, as for a partition's first raw
        chunk, whose start is not necessarily a key)."""
        rec: dict[str, object] = {
            "done": [_b64(p) for p in done],
            "at": [_b64(at[0]), _b64(at[1])] if at else None,
            "conflicts": conflicts,
        }
        if last != at:  # (``None``: no key of this batch is known to be written)
            rec["last"] = [_b64(last[0]), _b64(last[1])] if last is not None else None
        with self._lock:
            self._append(rec)

    def finish(self) -> None:
        """Mark the pass complete: the next run with this file is a new full pass."""
        with self._lock:
            self._append({"finished": True})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _open_private(path: Path, *, truncate: bool) -> IO[str]:
    """``path`` for appending (or rewritten when ``truncate``), created mode 0600, and made
    0600 if it was not."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else os.O_APPEND)
    fd = os.open(path, flags, 0o600)
    with contextlib.suppress(OSError):  # not ours to change (another owner): go on
        os.fchmod(fd, 0o600)
    return os.fdopen(fd, "a" if not truncate else "w", encoding="utf-8")
