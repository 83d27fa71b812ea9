"""Progress reporting shared by dump, load, copy and verify.

Library functions take an optional ``progress`` callback. It receives a :class:`Progress`
snapshot after each batch (from whichever worker thread finished it, so it must be
thread-safe and quick); the CLI turns it into a progress bar.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """A snapshot of a running operation. Totals are ``None`` when not known in advance."""

    phase: str
    """``"check"`` (pre-checking a file), ``"dump"``, ``"load"``, ``"copy"``, ``"sync"``,
    ``"digests"`` (both sides' partition digests, before a ``"verify"``) or ``"verify"``."""
    entries: int
    bytes: int
    """Key and value bytes processed (for ``check``: input bytes read, see ``bytes_total``)."""
    partitions_done: int
    partitions_total: int | None
    bytes_total: int | None = None


ProgressCallback = Callable[[Progress], None]


class Tracker:
    """Thread-safe counters that report to a callback at most every ``interval`` seconds."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        phase: str,
        *,
        partitions_total: int | None = None,
        bytes_total: int | None = None,
        interval: float = 0.1,
    ) -> None:
        self._callback = callback
        self.phase = phase
        self.entries = 0
        self.bytes = 0
        self.partitions_done = 0
        self.partitions_total = partitions_total
        self.bytes_total = bytes_total
        self._interval = interval
        self._last = 0.0
        self._lock = threading.Lock()

    def add(self, entries: int, nbytes: int, partitions: int = 0) -> None:
        """Count work done; report if enough time has passed."""
        with self._lock:
            self.entries += entries
            self.bytes += nbytes
            self.partitions_done += partitions
            if self._callback is None:
                return
            now = time.monotonic()
            if now - self._last < self._interval:
                return
            self._last = now
            snapshot = self._snapshot()
        self._callback(snapshot)

    def set_bytes(self, nbytes: int) -> None:
        """Set the byte counter (for phases that measure input position)."""
        with self._lock:
            self.bytes = nbytes
        self.add(0, 0)

    def finish(self) -> None:
        """Report the final state unconditionally."""
        if self._callback is not None:
            with self._lock:
                snapshot = self._snapshot()
            self._callback(snapshot)

    def _snapshot(self) -> Progress:
        return Progress(
            self.phase,
            self.entries,
            self.bytes,
            self.partitions_done,
            self.partitions_total,
            self.bytes_total,
        )
