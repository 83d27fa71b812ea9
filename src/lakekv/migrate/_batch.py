"""The one rule for how a migration pass cuts entries into ``write_batch`` calls.

A batch holds at most ``max_entries`` entries and ends with the entry that brings its bytes
(keys plus values) to ``max_bytes`` or beyond; an entry larger than ``max_bytes`` is a batch
of its own (so ``max_bytes`` 0 makes every entry one). ``copy``, ``load`` and ``sync`` all
gather their writes in a :class:`Batch`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from itertools import accumulate
from operator import add, itemgetter

from lakekv.kv.store import Entry

_KEY = itemgetter(1)
_VALUE = itemgetter(2)


class Batch:
    """Entries gathered for one ``write_batch``, bounded by count and by bytes.

    :meth:`add` and :meth:`fill` add entries; whenever the batch is :attr:`full` the caller
    writes it and empties it with :meth:`take` before adding more. Not thread-safe: a caller
    sharing one between threads holds its own lock."""

    __slots__ = ("entries", "max_bytes", "max_entries", "nbytes")

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        if max_entries < 1 or max_bytes < 0:
            raise ValueError(f"batch bounds must be positive, not {max_entries}/{max_bytes}")
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.entries: list[Entry] = []
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def full(self) -> bool:
        """Either bound reached (by at least one entry): write it before adding more."""
        n = len(self.entries)
        return n > 0 and (n >= self.max_entries or self.nbytes >= self.max_bytes)

    def add(self, entry: Entry) -> bool:
        """Add one entry; whether the batch is now full."""
        self.entries.append(entry)
        self.nbytes += len(entry[1]) + len(entry[2])
        return self.full

    def fill(self, page: Sequence[Entry]) -> Iterator[None]:
        """Add ``page``'s entries in order, yielding each time the batch is full; the caller
        takes it (:meth:`take`) before resuming. Batches end exactly where :meth:`add` one by
        one would end them, without Python code per entry."""
        sizes = list(map(add, map(len, map(_KEY, page)), map(len, map(_VALUE, page))))
        start, n = 0, len(page)
        while start < n:
            end = min(n, start + max(1, self.max_entries - len(self.entries)))
            nbytes = sum(sizes[start:end])
            if self.nbytes + nbytes >= self.max_bytes:
                # The entry that reaches the byte bound ends the batch.
                reach = list(accumulate(sizes[start:end], initial=self.nbytes))
                end = start + max(1, bisect_left(reach, self.max_bytes))
                nbytes = reach[end - start] - self.nbytes
            self.entries.extend(page[start:end])
            self.nbytes += nbytes
            start = end
            if self.full:
                yield
                if self.full:
                    raise RuntimeError("Batch.fill resumed without the full batch taken")

    def take(self) -> tuple[list[Entry], int]:
        """The entries and their bytes; the batch is empty afterwards."""
        entries, nbytes = self.entries, self.nbytes
        self.entries, self.nbytes = [], 0
        return entries, nbytes

    def keep_only(self, keep: Callable[[Entry], bool]) -> None:
        """Drop the entries ``keep`` refuses."""
        self.entries = [e for e in self.entries if keep(e)]
        self.nbytes = sum(len(e[1]) + len(e[2]) for e in self.entries)
