"""The :class:`Store` base class: the validating public API and the machinery around the hooks.

The contract (what each operation means, and the hooks a driver implements) is
:mod:`lakekv.kv.contract`: read that first. This file holds what every store shares: opening
(:meth:`Store.from_url`), argument validation, error translation and redaction, calls in flight
and ``close()``, scans and snapshots. The value types of :mod:`lakekv.kv.types` and the scan
engine of :mod:`lakekv.kv.scan` are re-exported here, so ``from lakekv.kv.store import Store,
Entry, Capabilities`` is all a driver imports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import operator
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Self, TypeVar, cast

from lakekv.errors import (
    InvalidArgumentError,
    KeyNotFoundError,
    LakekvError,
    MissingKeyError,
    MissingPartitionError,
    MissingValueError,
    PredicateFailedError,
    StoreClosedError,
    StoreReadOnlyError,
)
from lakekv.kv.contract import StoreContract, store_cannot
from lakekv.kv.scan import EntryIterator, Keyset, PagedIterator, entries_of
from lakekv.kv.types import (
    DEFAULT_OPEN,
    MUST_EXIST,
    BatchResult,
    BytesLike,
    Capabilities,
    Entry,
    FeedBatch,
    OnConflict,
    OpenOptions,
    PartitionDigest,
    Predicate,
    RangeDigest,
    RawChunk,
    ScanPaging,
    ValueWithPredicate,
    as_bytes,
    safe_repr,
    value_predicate,
)
from lakekv.kv.url import ParamReader, StoreURL, redact

__all__ = [
    "DEFAULT_OPEN",
    "MUST_EXIST",
    "BatchResult",
    "BytesLike",
    "Capabilities",
    "Entry",
    "EntryIterator",
    "FeedBatch",
    "OnConflict",
    "OpenOptions",
    "PagedIterator",
    "PartitionDigest",
    "Predicate",
    "RangeDigest",
    "RawChunk",
    "ScanPaging",
    "Store",
    "StoreContract",
    "ValueWithPredicate",
    "as_bytes",
    "entries_of",
    "safe_repr",
    "value_predicate",
]
"""The base class (:class:`Store`) and, re-exported for drivers and callers, the contract's
hooks (:mod:`lakekv.kv.contract`), the value types of :mod:`lakekv.kv.types` and the scan
engine of :mod:`lakekv.kv.scan`."""

T = TypeVar("T")


_P = operator.itemgetter(0)
_K = operator.itemgetter(1)
_V = operator.itemgetter(2)


def _ascending(ps: list[bytes], ks: list[bytes]) -> bool:
    """Entries whose partitions are ``ps`` and keys ``ks`` sorted by partition, then key, with
    no ``(partition, key)`` twice — as pages of scans are, one partition after another.
    Compared in C, with Python code per partition only."""
    at = 0
    last: bytes | None = None
    for p, run in itertools.groupby(ps):
        if last is not None and p <= last:
            return False
        n = len(list(run))
        if not all(map(operator.lt, ks[at : at + n - 1], ks[at + 1 : at + n])):
            return False
        last, at = p, at + n
    return True


class Store(StoreContract):
    """A key-value store: the contract of :mod:`lakekv.kv.contract`, validated and run.

    Drivers subclass it: they set ``scheme`` and ``capabilities``, implement
    :meth:`parse_settings` and the hooks of :class:`~lakekv.kv.contract.StoreContract`, and
    list their client library's exception types in ``driver_errors`` with a matching
    :meth:`_translate_error`. What this class adds is shared machinery: a driver overrides
    ``__init__`` (to keep its settings) and the hooks, nothing else.
    """

    def __init__(
        self,
        url: StoreURL,
        paging: ScanPaging,
        options: OpenOptions = DEFAULT_OPEN,
        settings: object = None,
    ) -> None:
        """Remember what :meth:`from_url` parsed; no I/O (that is :meth:`_open`'s).

        A driver that keeps typed settings overrides ``__init__`` with its settings type,
        calls this, and keeps the settings it needs."""
        self._url = url
        self.paging = paging
        self.options = options
        self._closed = False
        self._close_lock = threading.Lock()
        self._inflight: list[None] = []
        """One item per call inside the driver (list append/pop are atomic: no lock)."""
        self._iterators: weakref.WeakSet[PagedIterator] = weakref.WeakSet()

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def from_url(
        cls, url: StoreURL, options: OpenOptions = DEFAULT_OPEN, **overrides: object
    ) -> Self:
        """Open the store named by ``url``: the one life cycle every driver follows.

        1. :meth:`parse_settings` reads the driver's query parameters into a settings object
           (pure: no I/O), then ``page_size``/``page_cap`` are read (defaults
           :attr:`default_paging`), and any parameter left over is a ConfigurationError;
        2. ``overrides`` replace fields of the settings (a frozen dataclass): this is how tests
           inject doubles, e.g. ``DynamoDBStore.from_url(url, client=fake)``;
        3. the store is constructed (``cls(url, paging, options, settings)``: no I/O);
        4. :meth:`_open` does the I/O inside one guard: on any failure the store is closed
           again and the error is translated (``driver_errors``) and redacted.

        ``options`` (see *Opening* in :mod:`lakekv.kv.contract`): with ``options.may_create``
        false, ``_open`` raises StoreNotFoundError naming what is missing and creates nothing;
        with ``options.read_only`` it opens read-only where the engine can. Credentials are
        taken in :meth:`parse_settings` with ``options.take_credentials``.
        """
        params = ParamReader(url)
        settings = cls.parse_settings(url, params, options)
        paging = ScanPaging.from_params(
            params, page_size=cls.default_paging.page_size, page_cap=cls.default_paging.page_cap
        )
        params.reject_unknown()
        if overrides:
            if not dataclasses.is_dataclass(settings) or isinstance(settings, type):
                raise TypeError(f"{cls.__name__} settings take no overrides")
            settings = dataclasses.replace(settings, **overrides)
        store = cls(url, paging, options, settings)
        store._open_guarded()
        return store

    def _open_guarded(self) -> None:
        try:
            self._open()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self._close()
            self._closed = True
            if isinstance(exc, LakekvError):
                raise self._redacted(exc) from exc.__cause__
            if isinstance(exc, self.driver_errors):
                raise self._redacted(self._translate_error(exc)) from exc
            raise

    @property
    def url(self) -> StoreURL:
        """The URL this store was opened with (prints without its password)."""
        return self._url

    @property
    def read_only(self) -> bool:
        """Opened with ``read_only=True``: every write raises StoreReadOnlyError."""
        return self.options.read_only

    def identity(self) -> str:
        """What names this store's data: two open stores with equal identities read and
        write the same entries, however their URLs were spelled. See *Identity* in
        :mod:`lakekv.kv.contract`; drivers refine :meth:`_identity`."""
        self._check_open()
        known = self.__dict__.get("_identity_known")
        if known is None:
            # What names the data does not change while the store is open (a re-created
            # table or file is told apart by ``incarnation()``): asked once.
            known = self.__dict__["_identity_known"] = self._call(self._identity)
        return str(known)

    def incarnation(self) -> str | None:
        """What tells this store's data container apart from an earlier or later one at the
        same :meth:`identity`: it changes when the table, file or namespace is dropped and
        created again (PostgreSQL: the table's OID; SQLite, LMDB: the file's inode; DynamoDB:
        the table's creation time; MySQL: the table's creation time; Redis, etcd: a random
        ID written into the store's marker when it is created). ``None`` when the driver
        cannot tell. Migrations record it, so a checkpoint or a change feed never vouches for
        a target that was re-created since."""
        self._check_open()
        return self._call(self._incarnation)

    def row_version(self, partition: BytesLike, key: BytesLike) -> str | None:
        """A tag that changes every time the key is written, even with the value it already
        had (PostgreSQL: the row's ``xmin``; etcd: its ``mod_revision``), or ``None`` when
        the key is missing or the driver cannot tell. Migrations use it to see whether
        anything else wrote to a target since their last pass."""
        p, k = self._check_pk(partition, key)
        self._check_open()
        return self._call(self._row_version, p, k)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._url}>"

    # --- the contract ------------------------------------------------------------------------

    def get(self, partition: BytesLike, key: BytesLike) -> ValueWithPredicate:
        """The value and a predicate; KeyNotFoundError if the key or partition is missing."""
        # The hottest call: the fast path of _check_pk and the body of _call are written out
        # here, because on LMDB each extra Python call costs a sixth of the read itself
        # (bench/ops.py). Same checks, same errors; tests/test_store_base.py holds them equal.
        caps = self.capabilities
        if (
            type(partition) is bytes is type(key)
            and partition
            and key
            and len(partition) <= caps.partition_limit
            and len(key) <= caps.key_limit
        ):
            p, k = partition, key
        else:
            p, k = self._check_pk(partition, key)
        inflight = self._inflight
        inflight.append(None)
        try:
            if self._closed:
                raise StoreClosedError(f"store {self._url} is closed")
            result = self._get(p, k)
        except LakekvError:
            raise
        except self.driver_errors as exc:
            raise self._failed(exc) from exc
        finally:
            inflight.pop()
        if result is None:
            raise KeyNotFoundError(f"key {safe_repr(k)} not found in partition {safe_repr(p)}")
        return result

    def set(self, partition: BytesLike, key: BytesLike, value: BytesLike) -> None:
        """Store ``value`` under ``key``, creating or replacing it (unconditional upsert)."""
        p, k, v = self._check_pkv(partition, key, value)
        self._check_writable()
        self._call(self._set, p, k, v)

    def set_if(
        self,
        partition: BytesLike,
        key: BytesLike,
        value: BytesLike,
        predicate: Predicate | None,
    ) -> None:
        """Compare-and-set; see *Predicates* in :mod:`lakekv.kv.contract`.

        Raises PredicateFailedError (and writes nothing) when the condition does not hold.
        """
        p, k, v = self._check_pkv(partition, key, value)
        self._check_writable()
        if not self._call(self._set_if, p, k, v, predicate):
            raise PredicateFailedError(
                f"set_if on key {safe_repr(k)} in partition {safe_repr(p)}: predicate failed"
            )

    def delete(self, partition: BytesLike, key: BytesLike) -> None:
        """Remove ``key``. Idempotent: a missing key or partition is not an error."""
        p, k = self._check_pk(partition, key)
        self._check_writable()
        self._call(self._delete, p, k)

    def scan(
        self, partition: BytesLike, start: BytesLike = b"", batch_size: int = 0
    ) -> EntryIterator:
        """Entries of ``partition`` in bytewise key order from ``start`` (inclusive).

        ``batch_size`` is the first page's size (``0``: the store's ``page_size``); later pages
        double up to ``page_cap``. An empty or missing partition yields nothing.
        """
        iterator = PagedIterator(self._keyset(partition, start, batch_size, "batch_size"))
        with self._close_lock:  # closing the store closes its iterators
            self._iterators.add(iterator)
        return iterator

    def scan_pages(
        self, partition: BytesLike, start: BytesLike = b"", page_size: int = 0
    ) -> Iterator[Sequence[tuple[bytes, bytes]]]:
        """The entries of ``partition`` as pages of ``(key, value)`` pairs, for bulk readers.

        The same keyset pages as :meth:`scan` (bytewise order, ``start`` inclusive, first page
        ``page_size`` or the store's, doubling to ``page_cap``), without building an
        :class:`Entry` per row. A plain generator: an error ends it; to continue, call again
        with ``start`` just after the last key received (``last + b"\\x00"``).
        """
        return self._pages(self._keyset(partition, start, page_size, "page_size"))

    @staticmethod
    def _pages(cursor: Keyset) -> Iterator[Sequence[tuple[bytes, bytes]]]:
        while (page := cursor.fetch()) is not None:
            if page:
                yield page

    def _keyset(self, partition: BytesLike, start: BytesLike, first_page: int, name: str) -> Keyset:
        """Validate scan arguments once, for :meth:`scan` and :meth:`scan_pages`."""
        p = self._check_partition(partition)
        s = as_bytes("start", start)
        if not isinstance(first_page, int) or first_page < 0:
            raise InvalidArgumentError(f"{name} must be an int >= 0, not {first_page!r}")
        self._check_open()
        return Keyset(
            self._fetch_page, p, s, first_page or self.paging.page_size, self.paging.page_cap
        )

    def _fetch_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        """One translated ``_scan_page`` call on an open store (the scan engine's fetcher)."""
        self._check_open()
        return self._call(self._scan_page, partition, start, inclusive, limit)

    def list_partitions(self) -> Iterator[bytes]:
        """Every non-empty partition name, in bytewise order.

        Requires ``capabilities.list_partitions``; otherwise raises UnsupportedError. Like a
        scan, a partition created or emptied while iterating may or may not be listed.
        """
        if not self.capabilities.list_partitions:
            raise store_cannot(self.scheme, "list_partitions")
        self._check_open()
        return self._translating(self._list_partitions())

    def snapshot(self) -> contextlib.AbstractContextManager[Store]:
        """A read-only view of the whole store at one point in time; see *Snapshots*.

        Requires ``capabilities.snapshot_reads``; otherwise raises UnsupportedError.
        """
        if not self.capabilities.snapshot_reads:
            raise store_cannot(self.scheme, "snapshot_reads")
        self._check_open()
        return self._snapshot_view()

    @contextlib.contextmanager
    def _snapshot_view(self) -> Iterator[Store]:
        reads = self._call(self._open_snapshot)
        from lakekv.kv.snapshot import SnapshotView  # noqa: PLC0415 (snapshot imports Store)

        view = SnapshotView(self, reads)
        try:
            yield view
        finally:
            view.close()

    def get_many(self, partition: BytesLike, keys: Iterable[BytesLike]) -> dict[bytes, bytes]:
        """The values of those ``keys`` present in ``partition`` (absent ones are left out)."""
        p = self._check_partition(partition)
        ks = [self._check_key(k) for k in keys]
        self._check_open()
        if not ks:
            return {}
        return self._call(self._get_many, p, ks)

    def delete_many(self, partition: BytesLike, keys: Iterable[BytesLike]) -> None:
        """Delete ``keys`` from ``partition``; missing ones are no error. Not atomic."""
        p = self._check_partition(partition)
        ks = [self._check_key(k) for k in keys]
        self._check_open()
        if ks:
            self._call(self._delete_many, p, ks)

    def digest_range(
        self, partition: BytesLike, start: BytesLike = b"", limit: int = 20_000
    ) -> RangeDigest:
        """The SHA-256 of at most ``limit`` entries of ``partition`` from ``start``
        (inclusive), keys ascending, in the canonical encoding of :class:`RangeDigest`, and
        where the next range starts. Every store computes the same digest for the same
        entries; with ``capabilities.range_digests`` the engine computes it (no value leaves
        the server), otherwise the entries are read and hashed here. A missing partition
        gives the digest of no entries."""
        p, s = self._check_range(partition, start, limit)
        self._check_open()
        return self._call(self._digest_range, p, s, limit)

    def read_raw(
        self, partition: BytesLike, start: BytesLike = b"", limit: int = 50_000
    ) -> RawChunk:
        """At most ``limit`` entries of ``partition`` from ``start`` (inclusive), keys
        ascending, in the driver's raw format; see *Raw rows*. An empty or missing partition
        gives a chunk of no entries. UnsupportedError without ``capabilities.raw_rows``."""
        p, s = self._check_range(partition, start, limit)
        self._check_raw()
        return self._call(self._read_raw, p, s, limit)

    def _check_range(
        self, partition: BytesLike, start: BytesLike, limit: int
    ) -> tuple[bytes, bytes]:
        """Validate the arguments of a range read once, for both kinds."""
        p = self._check_partition(partition)
        s = as_bytes("start", start)
        if not isinstance(limit, int) or limit < 1:
            raise InvalidArgumentError(f"limit must be an int >= 1, not {limit!r}")
        return p, s

    def write_raw(self, chunks: Sequence[RawChunk]) -> int | None:
        """Write ``chunks`` (read from a store of the same raw format) in one transaction:
        the number of entries written, or ``None`` when a key of theirs already exists here
        (then nothing is written). See *Raw rows*."""
        self._check_raw()
        self._check_writable()
        if not any(c.entries for c in chunks):
            return 0
        return self._call(self._write_raw, list(chunks))

    def feed_start(self, name: str) -> None:
        """Start recording changes under ``name``, replacing a feed of that name; see *Change
        feeds*. UnsupportedError without ``capabilities.change_feed`` or when the engine is
        not set up for it (the message says what to change)."""
        self._call(self._feed_start, self._check_feed(name))

    def writers(self) -> list[str] | None:
        """Other clients connected to this store's database that could be writing to it,
        one line each (who, from where, doing what), excluding lakekv's own connections;
        ``None`` when the engine cannot tell. A cutover checks it to see that lakeFS is
        stopped."""
        self._check_open()
        return self._call(self._writers)

    def feeds(self) -> list[dict[str, object]] | None:
        """Every change feed lakekv holds on this store's server (``name``, ``active``,
        ``held_bytes`` of log kept for it, ``lost`` when the server dropped log it needed),
        whichever pair it belongs to; ``None`` without ``capabilities.change_feed``."""
        if not self.capabilities.change_feed:
            return None
        self._check_open()
        return self._call(self._feeds)

    def feed_check(self) -> None:
        """UnsupportedError, saying what to change, unless :meth:`feed_start` can succeed
        here (the capability, and the engine set up for it); nothing is started or written.
        Lets a caller refuse before it changes anything else."""
        self._check_feed("check")
        self._call(self._feed_check)

    def feed_exists(self, name: str) -> bool:
        """Whether a feed ``name`` is recording (False without ``capabilities.change_feed``)."""
        if not self.capabilities.change_feed:
            return False
        return self._call(self._feed_exists, self._check_feed(name))

    def feed_read(self, name: str) -> FeedBatch:
        """The changes feed ``name`` holds since its confirmed position (nothing is
        forgotten; see :meth:`feed_confirm`). StoreError if there is no such feed."""
        return self._call(self._feed_read, self._check_feed(name))

    def feed_mark(self, name: str, note: str) -> None:
        """Record ``note`` (printable ASCII, at most 200 characters) in feed ``name`` here;
        a later :meth:`feed_read` lists it among ``notes``."""
        if not isinstance(note, str) or not note.isascii() or not note.isprintable():
            raise InvalidArgumentError(f"a feed note must be printable ASCII, not {note!r}")
        if len(note) > 200:
            raise InvalidArgumentError("a feed note must be at most 200 characters")
        self._call(self._feed_mark, self._check_feed(name), note)

    def feed_confirm(self, name: str, position: str) -> None:
        """Forget the changes of feed ``name`` up to ``position`` (from a :class:`FeedBatch`
        of this feed)."""
        if not isinstance(position, str) or not position:
            raise InvalidArgumentError(f"position must be a non-empty str, not {position!r}")
        self._call(self._feed_confirm, self._check_feed(name), position)

    def feed_drop(self, name: str) -> None:
        """Stop feed ``name`` and release what it holds on the server; no error if none."""
        self._call(self._feed_drop, self._check_feed(name))

    def _check_feed(self, name: str) -> str:
        if not self.capabilities.change_feed:
            raise store_cannot(self.scheme, "change_feed")
        if (
            not isinstance(name, str)
            or not 1 <= len(name) <= 63
            or name.strip("abcdefghijklmnopqrstuvwxyz0123456789_")
        ):
            raise InvalidArgumentError(f"a feed name is 1 to 63 of a-z 0-9 _, not {name!r}")
        self._check_open()
        return name

    def _check_raw(self) -> None:
        if self.capabilities.raw_rows is None:
            raise store_cannot(self.scheme, "raw_rows")

    def digest_probe(self) -> int:
        """The scheme's row hash of a fixed input; see *Digests*. UnsupportedError without
        ``capabilities.digests``."""
        self._check_digests()
        return self._call(self._digest_probe)

    def digest_bits(self, partition: BytesLike) -> int:
        """A good ``bits`` for :meth:`digest_buckets` of ``partition``; see *Digests*."""
        p = self._check_partition(partition)
        self._check_digests()
        return max(0, min(24, self._call(self._digest_bits, p)))

    def digest_buckets(self, partition: BytesLike, bits: int) -> list[tuple[int, int, int]]:
        """``(bucket, count, xor of row hashes)`` for each non-empty bucket of ``partition``
        under ``bits``; see *Digests*."""
        p = self._check_partition(partition)
        if not 0 <= bits <= 30:
            raise InvalidArgumentError(f"bits must be between 0 and 30, not {bits!r}")
        self._check_digests()
        return self._call(self._digest_buckets, p, bits)

    def digest_rows(
        self, partition: BytesLike, bits: int, buckets: Iterable[int]
    ) -> list[tuple[bytes, int]]:
        """``(key, row hash)`` of every entry of ``partition`` in ``buckets``; see *Digests*."""
        p = self._check_partition(partition)
        if not 0 <= bits <= 30:
            raise InvalidArgumentError(f"bits must be between 0 and 30, not {bits!r}")
        wanted = list(buckets)
        self._check_digests()
        if not wanted:
            return []
        return self._call(self._digest_rows, p, bits, wanted)

    def digest_partition(self, partition: BytesLike) -> PartitionDigest:
        """The whole of ``partition`` hashed as a set, by the engine: its entry count, key and
        value bytes, and the XOR of every entry's 64-bit entry hash; see *Digests*. An absent
        partition gives ``PartitionDigest(0, 0, 0)``."""
        p = self._check_partition(partition)
        self._check_digests()
        return self._call(self._digest_partition, p)

    def digest_partitions(self) -> dict[bytes, PartitionDigest]:
        """:meth:`digest_partition` of every non-empty partition, by name, computed in one
        pass where the engine can (PostgreSQL reads each row once; partition by partition it
        would read each hash partition of the table once per partition it holds)."""
        self._check_digests()
        if not self.capabilities.list_partitions:
            raise store_cannot(self.scheme, "list_partitions")
        return self._call(self._digest_partitions)

    def _check_digests(self) -> None:
        if self.capabilities.digests is None:
            raise store_cannot(self.scheme, "digests")
        self._check_open()

    def write_batch(
        self,
        entries: Iterable[Entry | tuple[BytesLike, BytesLike, BytesLike]],
        on_conflict: OnConflict | str = OnConflict.FAIL,
    ) -> BatchResult:
        """Write many entries, possibly across partitions, as fast as the driver can.

        Each entry is written as by ``set_if(None)``; an entry whose key exists with the *same*
        value counts as ``unchanged``; with a *different* value ``on_conflict`` decides (see
        :class:`OnConflict`). The batch is not atomic: after an error some entries may be
        written, and writing the same batch again is safe. A ``(partition, key)`` repeated in one
        batch is an InvalidArgumentError (nothing is written).
        """
        policy = OnConflict(on_conflict)
        checked = self._check_batch(entries)
        self._check_writable()
        if not checked:
            return BatchResult()
        return self._call(self._write_batch, checked, policy)

    def destroy(self) -> None:
        """Delete the whole store: every partition and the table (or named store) holding them.

        Irreversible. Meant for isolated, throw-away stores such as the test fixtures make.
        The store is closed afterwards. Drivers that cannot do it raise UnsupportedError.
        """
        self._check_writable()
        self._call(self._destroy)
        self.close()

    def close(self) -> None:
        """Release connections and files. Closing twice is harmless; later use raises.

        Safe while other threads are inside calls: new calls are refused at once, the driver
        is asked to abandon calls in flight (``_interrupt``), and connections are released
        only after every call has left the driver; the calls cut short raise
        StoreClosedError.
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            iterators = list(self._iterators)
        for iterator in iterators:
            iterator.close()
        # A call registers itself before it checks ``_closed``, and ``_closed`` is set before
        # this reads the registrations: every call either sees ``_closed`` or is waited for.
        if self._inflight:
            with contextlib.suppress(*self.driver_errors):  # best effort
                self._interrupt()
            while self._inflight:
                time.sleep(0.001)
        try:
            self._close()
        except LakekvError:
            raise
        except self.driver_errors as exc:
            raise self._redacted(self._translate_error(exc)) from exc

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- helpers for the base class and drivers ------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"store {self._url} is closed")

    def _check_writable(self) -> None:
        if self.options.read_only:
            raise StoreReadOnlyError(f"store {self._url} is open read-only")
        if self._closed:
            raise StoreClosedError(f"store {self._url} is closed")

    def _call(self, fn: Callable[..., T], *args: object) -> T:
        """Call a driver method, translating its exceptions once; ``close()`` waits for it."""
        inflight = self._inflight
        inflight.append(None)
        try:
            if self._closed:
                raise StoreClosedError(f"store {self._url} is closed")
            return fn(*args)
        except LakekvError:
            raise
        except self.driver_errors as exc:
            raise self._failed(exc) from exc
        finally:
            inflight.pop()

    def _failed(self, exc: BaseException) -> LakekvError:
        if self._closed:
            return StoreClosedError(f"store {self._url} was closed during the call")
        return self._redacted(self._translate_error(exc))

    def _translating(self, it: Iterator[T]) -> Iterator[T]:
        """Wrap a driver generator so that its exceptions are translated too (and each step
        counts as a call in flight for ``close()``)."""
        while True:
            try:
                item = self._call(next, it)
            except StopIteration:
                return
            yield item

    def _redacted(self, err: LakekvError) -> LakekvError:
        secrets = [self._url.password] if self._url.password else []
        args = tuple(redact(a, secrets) if isinstance(a, str) else a for a in err.args)
        err.args = args
        return err

    def _check_partition(self, partition: object) -> bytes:
        return self._check_name(
            "partition", partition, MissingPartitionError, self.capabilities.max_partition_size
        )

    def _check_key(self, key: object) -> bytes:
        return self._check_name("key", key, MissingKeyError, self.capabilities.max_key_size)

    def _check_name(
        self,
        what: str,
        value: object,
        missing: type[InvalidArgumentError],
        limit: int | None,
    ) -> bytes:
        """``value`` as bytes: ``missing`` when it is None or empty, InvalidArgumentError when
        it is not bytes-like or longer than ``limit`` (the driver's declared maximum)."""
        data = as_bytes(what, value, missing)
        if not data:
            raise missing(f"{what} is empty")
        if limit is not None and len(data) > limit:
            raise InvalidArgumentError(
                f"{what} is {len(data)} bytes; {self.scheme}:// allows at most {limit}"
            )
        return data

    def _check_pk(self, partition: object, key: object) -> tuple[bytes, bytes]:
        # Fast path for the common case (non-empty bytes within the limits); anything else
        # goes through the full checks, which raise the precise error.
        caps = self.capabilities
        if (
            type(partition) is bytes is type(key)
            and partition
            and key
            and len(partition) <= caps.partition_limit
            and len(key) <= caps.key_limit
        ):
            return partition, key
        return self._check_partition(partition), self._check_key(key)

    def _check_batch(
        self, entries: Iterable[Entry | tuple[BytesLike, BytesLike, BytesLike]]
    ) -> list[Entry]:
        """Validate a batch as ``set`` would each entry, and refuse repeated keys.

        A list of well-formed ``Entry`` objects (what every migration pass sends) is checked
        with C-level maps and no Python code per entry; anything else, or a batch that fails
        one of those checks, goes entry by entry, which also names the offending entry. The two
        paths accept the same batches: ``test_store_base`` holds them equal."""
        columns = None
        if isinstance(entries, list) and entries:
            columns = self._clean_columns(entries)
        if columns is None:
            checked = self._check_entries(entries)
        else:
            checked = cast(list[Entry], entries)  # every item an Entry: _clean_columns
            if _ascending(*columns):  # pages of scans: no key can repeat
                return checked
        if len(set(zip(map(_P, checked), map(_K, checked), strict=True))) != len(checked):
            seen: set[tuple[bytes, bytes]] = set()
            for e in checked:
                if (e[0], e[1]) in seen:
                    raise InvalidArgumentError(
                        f"write_batch: key {safe_repr(e[1])} of partition {safe_repr(e[0])} "
                        "appears more than once"
                    )
                seen.add((e[0], e[1]))
        return checked

    def _clean_columns(self, entries: list[Entry]) -> tuple[list[bytes], list[bytes]] | None:
        """The partitions and the keys of ``entries`` when every item is an ``Entry`` of
        non-empty bytes within every limit (checked by maps), else ``None``."""
        if set(map(type, entries)) != {Entry}:
            return None
        ps, ks, vs = list(map(_P, entries)), list(map(_K, entries)), list(map(_V, entries))
        if not set(map(type, ps)) | set(map(type, ks)) | set(map(type, vs)) <= {bytes}:
            return None
        caps = self.capabilities
        big = sys.maxsize
        pl, kl, vl = list(map(len, ps)), list(map(len, ks)), list(map(len, vs))
        clean = (
            min(pl) > 0
            and max(pl) <= (caps.max_partition_size or big)
            and min(kl) > 0
            and max(kl) <= (caps.max_key_size or big)
            and max(vl) <= (caps.max_value_size or big)
            and (
                caps.max_item_size is None
                or max(map(operator.add, map(operator.add, pl, kl), vl)) <= caps.max_item_size
            )
        )
        return (ps, ks) if clean else None

    def _check_entries(
        self, entries: Iterable[Entry | tuple[BytesLike, BytesLike, BytesLike]]
    ) -> list[Entry]:
        """Validate entry by entry (the path of any batch the maps did not clear)."""
        caps = self.capabilities
        big = sys.maxsize
        p_max = caps.max_partition_size or big
        k_max = caps.max_key_size or big
        v_max = caps.max_value_size or big
        i_max = caps.max_item_size or big
        checked: list[Entry] = []
        append = checked.append
        for e in entries:
            # Fast path: an Entry of bytes, non-empty and within every limit.
            if type(e) is Entry:
                p, k, v = e
                if (
                    type(p) is bytes
                    and type(k) is bytes
                    and type(v) is bytes
                    and 0 < len(p) <= p_max
                    and 0 < len(k) <= k_max
                    and len(v) <= v_max
                    and len(p) + len(k) + len(v) <= i_max
                ):
                    append(e)
                    continue
            append(Entry(*self._check_pkv(e[0], e[1], e[2])))
        return checked

    def _check_pkv(
        self, partition: object, key: object, value: object
    ) -> tuple[bytes, bytes, bytes]:
        p, k = self._check_pk(partition, key)
        v = as_bytes("value", value, MissingValueError)
        caps = self.capabilities
        if caps.max_value_size is not None and len(v) > caps.max_value_size:
            raise InvalidArgumentError(
                f"value is {len(v)} bytes; {self.scheme}:// allows at most {caps.max_value_size}"
            )
        if caps.max_item_size is not None and len(p) + len(k) + len(v) > caps.max_item_size:
            raise InvalidArgumentError(
                f"item (partition + key + value) is {len(p) + len(k) + len(v)} bytes; "
                f"{self.scheme}:// allows at most {caps.max_item_size}"
            )
        return p, k, v
