"""The scan engine every driver gets: keyset paging and the fast entry iterator.

A :class:`Keyset` asks a page fetcher (the store's translated ``_scan_page``) for one page at
a time; :class:`PagedIterator` turns pages into :class:`~lakekv.kv.types.Entry` objects. Neither
knows the store: :meth:`lakekv.kv.store.Store.scan` wires them up.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Self

from lakekv.errors import StoreClosedError
from lakekv.kv.types import BytesLike, Entry, as_bytes

PageFetcher = Callable[[bytes, bytes, bool, int], tuple[Sequence[tuple[bytes, bytes]], bool]]
"""``fetch(partition, start, inclusive, limit) -> (page, more)``: one keyset page (see
``Store._scan_page``), with the store's open check and error translation applied."""


class EntryIterator(ABC, Iterator[Entry]):
    """Iterator over one partition; see *Scans* in the module docstring."""

    @abstractmethod
    def __next__(self) -> Entry: ...

    @abstractmethod
    def seek_ge(self, key: BytesLike) -> None:
        """Continue from the first key ``>= key`` (forward or backward)."""

    @abstractmethod
    def close(self) -> None:
        """Release the iterator; later use raises StoreClosedError. Closing twice is harmless."""

    def __iter__(self) -> Iterator[Entry]:
        return self

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Keyset:
    """Where the next keyset page of one partition starts, and how large it is.

    :meth:`fetch` asks the driver for the page strictly after the last key it returned, so
    concurrent deletes never make a scan skip an untouched key. A failed fetch moves nothing:
    fetching again retries the same page.
    """

    __slots__ = ("cap", "fetch_page", "first", "inclusive", "more", "partition", "size", "start")

    def __init__(
        self, fetch_page: PageFetcher, partition: bytes, start: bytes, first: int, cap: int
    ) -> None:
        self.fetch_page = fetch_page
        self.partition = partition
        self.cap = cap
        self.first = max(1, min(first, cap))
        self.restart(start)

    def restart(self, start: bytes) -> None:
        """Continue from the first key ``>= start``, with a first-size page again."""
        self.start = start
        self.inclusive = True
        self.more = True
        self.size = self.first

    def fetch(self) -> Sequence[tuple[bytes, bytes]] | None:
        """The next page (possibly empty while more follow), or ``None`` at the end."""
        if not self.more:
            return None
        page, self.more = self.fetch_page(self.partition, self.start, self.inclusive, self.size)
        if page:
            self.start, self.inclusive = page[-1][0], False
        self.size = min(self.size * 2, self.cap)
        return page


class PagedIterator(EntryIterator):
    """The keyset-paging iterator every driver gets from :meth:`Store.scan`.

    Speed: entries come from ``itertools.chain`` over one ``map`` per page that builds each
    Entry from the page's row just when it is consumed, so a ``for`` loop runs no Python code
    per entry and each Entry is made in memory still warm from the last. ``seek_ge`` inside
    the page repositions the rows' list iterator under that ``map``; anywhere else it empties
    it and restarts the keyset there. Closing the iterator (or its store) empties it too.

    All position lives in this object (the rows' iterator and the keyset), none in the chain
    itself, so a chain that ended (at the end of the partition, or with an error) is simply
    replaced on the next use and carries on from the same place.
    """

    def __init__(self, cursor: Keyset) -> None:
        self._cursor = cursor
        self._partition = cursor.partition
        self._closed = False
        self._rows: list[tuple[bytes, bytes]] = []
        self._rows_it: Iterator[tuple[bytes, bytes]] = iter(self._rows)
        self._page_it: Iterator[Entry] = iter(())
        self._page_done = True
        self._keys: list[bytes] | None = None
        self._chain = self._new_chain()

    def _drain_page(self) -> None:
        """Exhaust the current page's rows in place (the chain holds the map over them)."""
        self._rows_it.__setstate__(len(self._rows))  # type: ignore[attr-defined]

    def _new_chain(self) -> Iterator[Entry]:
        # chain() walks each page's entries in C: no Python frame per entry.
        self._stale = False
        return itertools.chain.from_iterable(self._pages())

    def _pages(self) -> Iterator[Iterator[Entry]]:
        try:
            while True:
                yield self._page_it
                # chain() resumes us only once the page is exhausted, and an exhausted list
                # iterator can no longer be repositioned.
                self._page_done = True
                if self._closed:
                    raise StoreClosedError("iterator used after close()")
                page = self._cursor.fetch()
                if page is None:
                    self._stale = True  # ended: the next use starts a new chain
                    return
                self._rows = page if type(page) is list else list(page)
                self._rows_it = iter(self._rows)
                self._page_it = _entry_map(self._partition, self._rows_it)
                self._page_done = False
                self._keys = None
        except GeneratorExit:  # a replaced chain being collected: not ours to mark
            raise
        except BaseException:
            self._stale = True  # failed: the next use starts a new chain and retries
            raise

    def _live(self) -> Iterator[Entry]:
        if self._closed:
            raise StoreClosedError("iterator used after close()")
        if self._stale:
            self._chain = self._new_chain()
        return self._chain

    def __iter__(self) -> Iterator[Entry]:
        return self._live()

    def __next__(self) -> Entry:
        return next(self._live())

    def seek_ge(self, key: BytesLike) -> None:
        if self._closed:
            raise StoreClosedError("iterator used after close()")
        target = as_bytes("key", key)
        rows = self._rows
        if rows and not self._page_done and rows[0][0] <= target <= rows[-1][0]:
            # Inside the page we hold: reposition without a query.
            if self._keys is None:
                self._keys = [r[0] for r in rows]
            self._rows_it.__setstate__(bisect.bisect_left(self._keys, target))  # type: ignore[attr-defined]
            return
        self._drain_page()
        self._cursor.restart(target)

    def close(self) -> None:
        self._closed = True
        self._drain_page()
        self._rows = []
        self._keys = None


_tuple_new = tuple.__new__


def _entry_map(partition: bytes, pairs: Iterable[tuple[bytes, bytes]]) -> Iterator[Entry]:
    """``Entry(partition, key, value)`` for each ``(key, value)`` tuple, lazily, built in C
    (``tuple.__new__`` on ``(partition,) + pair``): no Python call per entry."""
    return map(
        _tuple_new,
        itertools.repeat(Entry),
        map(operator.add, itertools.repeat((partition,)), pairs),
    )


def entries_of(partition: bytes, page: Sequence[tuple[bytes, bytes]]) -> list[Entry]:
    """``Entry(partition, key, value)`` for each ``(key, value)`` pair of a page (as
    :meth:`Store.scan_pages` yields them), built without a Python call per entry."""
    try:
        return list(_entry_map(partition, page))
    except TypeError:  # pairs that are not tuples
        return [Entry(partition, key, value) for key, value in page]
