"""The key-value store contract. A driver author needs to read only this file.

Data is a set of ``(partition, key, value)`` triples of arbitrary bytes. Partitions are
independent namespaces: nothing in one partition is visible from another, whatever their names
(``b"a"`` and ``b"a/b"`` are unrelated). The public methods of :class:`Store` validate their
arguments and translate driver exceptions exactly once, here; a driver implements only the
underscored methods (``_get``, ``_set``, ``_set_if``, ``_delete``, ``_scan_page``, ``_close``
and, when it declares the capability, ``_list_partitions`` or a faster ``_write_batch``).

Arguments
    ``partition`` and ``key`` must be non-empty; ``value`` must not be ``None`` but may be empty
    (``b""`` is legal and common: an empty protobuf message encodes to zero bytes). ``bytes``,
    ``bytearray`` and ``memoryview`` are accepted; results are always ``bytes``. ``str`` is
    refused: encode text yourself, bytes are bytes. A violation raises
    :class:`~lakekv.errors.InvalidArgumentError` before any I/O, and so does a partition, key or
    value larger than the driver's declared limit (:class:`Capabilities`).

Predicates
    ``get`` returns the value together with an opaque *predicate*. ``set_if(p, k, v, predicate)``
    writes only if the stored state still matches it:

    * ``None``        – only if the key is absent (create-only);
    * ``MUST_EXIST``  – only if the key is present, whatever its value;
    * a predicate from ``get`` – only if the stored value is still the one ``get`` saw.

    The built-in drivers compare *values*, as lakeFS does: if the value went A → B → A between
    the ``get`` and the ``set_if``, the ``set_if`` succeeds (the ABA case). Code that must detect
    any intervening write has to put a version or nonce inside the value. Predicates are only
    valid for the store that issued them. A failed condition raises
    :class:`~lakekv.errors.PredicateFailedError` and writes nothing.

Scans
    ``scan(partition, start=b"", batch_size=0)`` yields the entries of one partition in
    ascending unsigned bytewise key order, from ``start`` inclusive. ``batch_size`` is a page
    size hint: the first page uses it (``0`` means the store's ``page_size``), later pages double
    up to the store's ``page_cap``. Iterators hold no database connection or transaction between
    pages; a key written or deleted concurrently may or may not be seen, but a key untouched
    during the scan is never skipped or repeated. ``seek_ge(key)`` repositions the iterator at
    the first key ``>= key``, forward or backward. Using an iterator after ``close()`` raises
    :class:`~lakekv.errors.StoreClosedError`.

Snapshots
    A driver declaring ``capabilities.snapshot_reads`` implements ``_open_snapshot``:
    ``with store.snapshot() as view:`` yields a read-only :class:`Store` whose ``get``,
    ``scan``, ``scan_pages`` and ``list_partitions`` all see the store as it was at one point
    in time (when the ``with`` block was entered), whatever is written meanwhile, from any
    number of threads at once. Writes through the view raise UnsupportedError. The snapshot
    is released when the block ends; the view is unusable afterwards (StoreClosedError).
    Holding a snapshot may hold back the engine's cleanup (PostgreSQL vacuum, SQLite WAL
    checkpoints) for as long as it lasts. Without the capability ``snapshot()`` raises
    UnsupportedError.

Digests
    A driver declaring ``capabilities.digests`` lets the engine hash entries where they are,
    so two stores can be compared without moving values. ``digest_buckets(partition, bits)``
    groups a partition's entries by ``bucket = H(key) & (2**bits - 1)`` and returns, per
    non-empty bucket, its entry count and the XOR of a 64-bit hash of each (key, value);
    ``digest_bits(partition)`` suggests ``bits`` for about 16 entries a bucket, from a count
    or an estimate cheaper than a digest pass (any value is correct; it only changes the
    speed; larger partitions get more bits, so callers may use it to order work).
    ``digest_rows(partition, bits, buckets)`` returns ``(key, row hash)`` for the entries of
    the given buckets. ``H`` and the row hash are the scheme's; ``digest_probe()`` hashes a
    fixed input, so a caller can check two stores really agree before trusting a comparison.
    ``get_many`` and ``delete_many`` read and delete many keys of a partition in one call
    (every driver has them; a native one is one round trip).

Range digests
    ``digest_range(partition, start, limit)`` is the SHA-256 of at most ``limit`` entries
    from ``start`` in one canonical encoding (see :class:`RangeDigest`), with where the next
    range starts: equal digests mean equal entries, whatever the two stores. Every driver has
    it (the base class hashes a scan); one declaring ``capabilities.range_digests`` lets the
    engine compute it, so comparing two such stores moves only digests.

Raw rows
    A driver declaring ``capabilities.raw_rows`` (a format name) can hand out a range of a
    partition in its engine's own bulk format and take it back: ``read_raw(partition, start,
    limit)`` returns a :class:`RawChunk` of at most ``limit`` entries from ``start``
    (inclusive) in key order, saying where the next chunk starts; ``write_raw(chunks)`` writes
    chunks read from any store of the same format, all or nothing: when one of their keys
    already exists it writes nothing and returns ``None`` (the caller then writes those
    entries the ordinary way, with its conflict policy). Both ends of a copy or a verify with
    the same format thus move or compare bytes without decoding an entry; two chunks read
    with the same ``start`` and ``limit`` are equal exactly when they hold the same entries.

Change feeds
    A driver declaring ``capabilities.change_feed`` can have the engine record, under a name,
    which keys change from some moment on, so a later catch-up visits only those keys.
    ``feed_start(name)`` starts recording (replacing a feed of that name): every write
    committed after it returns is recorded, from any client. ``feed_read(name)`` returns a
    :class:`FeedBatch`: every (partition, key) written or deleted since the feed's confirmed
    position, the notes recorded meanwhile, and the position the batch ends at; reading
    forgets nothing, so a reader that fails reads the same changes again.
    ``feed_confirm(name, position)`` forgets what a batch held; ``feed_mark(name, note)``
    records a note (text) at this point of the feed; ``feed_drop(name)`` ends it (no error if
    there is none); ``feed_exists(name)`` tells. A change that cannot be told by key (a
    ``TRUNCATE``) sets ``FeedBatch.unknown``: the batch is then no complete account, and a
    caller must compare the stores another way. A feed lives on the server and costs it until
    dropped (PostgreSQL keeps its WAL); names are 1 to 63 of ``a-z 0-9 _``. The methods work
    on a store opened read-only: they never change an entry.

Threads
    One ``Store`` object may be used from many threads at once. Iterators are not shared
    between threads. ``close()`` may be called from any thread while others are inside a
    call: it refuses new calls, asks the driver to abandon what is in flight (``_interrupt``),
    waits for the calls to leave the driver, and only then releases connections. Calls cut
    short raise :class:`~lakekv.errors.StoreClosedError`; nothing ever crashes the interpreter.
    (Do not call ``close()`` from a signal handler that interrupted a call of the same store
    on the same thread: it would wait for itself. Set a flag in the handler instead.)

Opening: create, read-only, credentials (:class:`OpenOptions`)
    ``open_store(url, create=..., read_only=..., credentials=...)`` states the caller's
    intent and the driver must honour it in ``from_url(url, options)``:

    * ``create=True`` (the default) creates what is missing: the file, the table, the named
      store.
    * ``create=False`` opens only a store that exists; a missing one raises
      :class:`~lakekv.errors.StoreNotFoundError` naming the file / table / store, and opening
      changes nothing anywhere (no file, no DDL, no ``CreateTable``).
    * ``read_only=True`` implies ``create=False``; the base class also refuses every write
      with :class:`~lakekv.errors.StoreReadOnlyError`, and a driver should open its
      connection read-only where the engine allows (SQLite ``mode=ro``).
    * ``credentials`` are secrets handed to this one store as data (DynamoDB:
      ``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``); a driver
      refuses names it does not know (:meth:`OpenOptions.take_credentials`). Drivers never
      read credentials that a caller put into ``os.environ`` for another store.

    Migration sources are opened ``read_only``; ``verify`` opens both sides so; a dry run
    opens its target ``read_only``. The conformance suite checks every driver for this.

Identity
    :meth:`Store.identity` names the data a store reads and writes, so that tools can refuse
    to copy a store onto itself however its URL is spelled. The default is the URL without
    user, password and paging parameters, with sorted parameters; drivers refine
    ``_identity()`` (SQLite resolves the path, symlinks included; PostgreSQL folds
    ``localhost``/``127.0.0.1``/``::1`` and the default port; DynamoDB uses endpoint, region
    and table).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import struct
import sys
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Self, TypeVar

from lakekv.errors import (
    InvalidArgumentError,
    KeyNotFoundError,
    LakekvError,
    MissingKeyError,
    MissingPartitionError,
    MissingValueError,
    PredicateFailedError,
    StoreClosedError,
    StoreError,
    StoreReadOnlyError,
    UnsupportedError,
)
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

if TYPE_CHECKING:
    from lakekv.kv.snapshot import SnapshotReads

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
    "Predicate",
    "RangeDigest",
    "RawChunk",
    "ScanPaging",
    "Store",
    "ValueWithPredicate",
    "as_bytes",
    "entries_of",
    "safe_repr",
    "value_predicate",
]
"""The contract (:class:`Store`) and, re-exported for drivers and callers, the value types of
:mod:`lakekv.kv.types` and the scan engine of :mod:`lakekv.kv.scan`."""

T = TypeVar("T")
_LENGTH = struct.Struct(">I")


class Store(ABC):
    """A key-value store. See the module docstring for the full contract.

    Subclasses set ``scheme`` and ``capabilities``, implement :meth:`from_url` and the
    underscored methods, and list their client library's exception types in
    ``driver_errors`` with a matching :meth:`_translate_error`.
    """

    scheme: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    namespace_param: ClassVar[str | None] = "table"
    """The URL parameter naming an independent store on the same server (the test fixtures
    set it to give a test an empty store of its own), or ``None`` when a store is a whole
    path (a directory): the fixtures then use a sibling path named after the store."""

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

    default_paging: ClassVar[ScanPaging] = ScanPaging()
    """The driver's default first page and page cap (the ``page_size``/``page_cap`` params)."""

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

        ``options`` (see *Opening* in the module docstring): with ``options.may_create``
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

    @classmethod
    def parse_settings(cls, url: StoreURL, params: ParamReader, options: OpenOptions) -> object:
        """The driver's settings from ``url``: take each query parameter with ``params``
        (``params.take_str/int/float/bool``; what is not taken is refused) and the credentials
        with ``options.take_credentials``. Pure: no I/O. Default: no parameters, no
        credentials, no settings."""
        options.take_credentials(url, ())
        return None

    def _open(self) -> None:
        """Connect, check or create the table/file (honouring ``self.options``). Called once
        by :meth:`from_url`; on failure the base class calls :meth:`_close` and translates.
        Default: nothing to do."""
        return

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
        write the same entries, however their URLs were spelled. See *Identity* in the
        module docstring; drivers refine :meth:`_identity`."""
        self._check_open()
        return self._call(self._identity)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._url}>"

    # --- the contract ------------------------------------------------------------------------

    def get(self, partition: BytesLike, key: BytesLike) -> ValueWithPredicate:
        """The value and a predicate; KeyNotFoundError if the key or partition is missing."""
        p, k = self._check_pk(partition, key)
        self._check_open()
        result = self._call(self._get, p, k)
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
        """Compare-and-set; see *Predicates* in the module docstring.

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
            raise UnsupportedError(f"{self.scheme}:// cannot list partitions")
        self._check_open()
        return self._translating(self._list_partitions())

    def snapshot(self) -> contextlib.AbstractContextManager[Store]:
        """A read-only view of the whole store at one point in time; see *Snapshots*.

        Requires ``capabilities.snapshot_reads``; otherwise raises UnsupportedError.
        """
        if not self.capabilities.snapshot_reads:
            raise UnsupportedError(f"{self.scheme}:// cannot read at one point in time")
        self._check_open()
        return self._snapshot_view()

    @contextlib.contextmanager
    def _snapshot_view(self) -> Iterator[Store]:
        reads = self._call(self._open_snapshot)
        from lakekv.kv.snapshot import view_class  # noqa: PLC0415 (snapshot imports Store)

        view = view_class(type(self))(self, reads)
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
            raise UnsupportedError(f"{self.scheme}:// cannot record changes (no change feed)")
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
            raise UnsupportedError(f"{self.scheme}:// cannot read or write raw rows")

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

    def _check_digests(self) -> None:
        if self.capabilities.digests is None:
            raise UnsupportedError(f"{self.scheme}:// cannot compute digests")
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

    # --- what drivers implement ----------------------------------------------------------------

    @abstractmethod
    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        """The value and predicate, or ``None`` when the key is missing."""

    @abstractmethod
    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        """Upsert."""

    @abstractmethod
    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        """Conditional write, atomically; ``True`` if written, ``False`` if the condition failed.

        ``predicate`` is ``None``, ``MUST_EXIST`` or whatever this driver's ``_get`` returned
        (anything else: raise InvalidArgumentError, e.g. via :func:`value_predicate`).
        """

    @abstractmethod
    def _delete(self, partition: bytes, key: bytes) -> None:
        """Delete if present."""

    @abstractmethod
    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        """One page: up to ``limit`` ``(key, value)`` pairs in bytewise order with key ``>= start``
        (``inclusive``) or ``> start``, and whether more may follow. Hold nothing afterwards.

        A page may be shorter than ``limit`` while more follow (e.g. DynamoDB's 1 MB cap);
        returning an empty page with ``True`` is allowed but wasteful.
        """

    def _list_partitions(self) -> Iterator[bytes]:
        """Partition names in bytewise order (drivers with the capability override this)."""
        raise UnsupportedError(f"{self.scheme}:// cannot list partitions")

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        """Generic per-entry fallback; drivers with a bulk path override it."""
        result = BatchResult()
        for entry in entries:
            p, k, v = entry
            if on_conflict is OnConflict.OVERWRITE:
                current = self._get(p, k)
                if result.classify(entry, None if current is None else current.value, on_conflict):
                    self._set(p, k, v)
                continue
            while True:
                if self._set_if(p, k, v, None):  # create atomically; only then look
                    result.written += 1
                    break
                current = self._get(p, k)
                if current is not None:
                    result.classify(entry, current.value, on_conflict)
                    break
                # deleted in between: try to create again
        return result

    def _get_many(self, partition: bytes, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """Generic fallback: one ``_get`` per key; drivers override it with one query."""
        found = {}
        for key in keys:
            got = self._get(partition, key)
            if got is not None:
                found[key] = got.value
        return found

    def _delete_many(self, partition: bytes, keys: Sequence[bytes]) -> None:
        """Generic fallback: one ``_delete`` per key; drivers override it with one query."""
        for key in keys:
            self._delete(partition, key)

    def _digest_range(self, partition: bytes, start: bytes, limit: int) -> RangeDigest:
        """Generic: read up to ``limit + 1`` entries in pages and hash them."""
        h = hashlib.sha256()
        n = nbytes = 0
        pack = _LENGTH.pack
        at, inclusive = start, True
        while True:
            page, more = self._scan_page(partition, at, inclusive, min(limit + 1 - n, 10_000))
            for key, value in page:
                if n == limit:
                    return RangeDigest(partition, start, n, nbytes, h.digest(), key)
                h.update(pack(len(key)))
                h.update(key)
                h.update(pack(len(value)))
                h.update(value)
                n += 1
                nbytes += len(key) + len(value)
            if not more or not page:
                return RangeDigest(partition, start, n, nbytes, h.digest(), None)
            at, inclusive = page[-1][0], False

    def _read_raw(self, partition: bytes, start: bytes, limit: int) -> RawChunk:
        raise UnsupportedError(f"{self.scheme}:// cannot read or write raw rows")

    def _write_raw(self, chunks: list[RawChunk]) -> int | None:
        raise UnsupportedError(f"{self.scheme}:// cannot read or write raw rows")

    def _feed_start(self, name: str) -> None:
        raise UnsupportedError(f"{self.scheme}:// cannot record changes (no change feed)")

    def _feed_exists(self, name: str) -> bool:
        raise UnsupportedError(f"{self.scheme}:// cannot record changes (no change feed)")

    def _feed_read(self, name: str) -> FeedBatch:
        raise UnsupportedError(f"{self.scheme}:// cannot record changes (no change feed)")

    def _feed_mark(self, name: str, note: str) -> None:
        raise UnsupportedError(f"{self.scheme}:// cannot record changes (no change feed)")

    def _feed_confirm(self, name: str, position: str) -> None:
        raise UnsupportedError(f"{self.scheme}:// cannot record changes (no change feed)")

    def _feed_drop(self, name: str) -> None:
        raise UnsupportedError(f"{self.scheme}:// cannot record changes (no change feed)")

    def _digest_probe(self) -> int:
        raise UnsupportedError(f"{self.scheme}:// cannot compute digests")

    def _digest_bits(self, partition: bytes) -> int:
        raise UnsupportedError(f"{self.scheme}:// cannot compute digests")

    def _digest_buckets(self, partition: bytes, bits: int) -> list[tuple[int, int, int]]:
        raise UnsupportedError(f"{self.scheme}:// cannot compute digests")

    def _digest_rows(
        self, partition: bytes, bits: int, buckets: list[int]
    ) -> list[tuple[bytes, int]]:
        raise UnsupportedError(f"{self.scheme}:// cannot compute digests")

    def _open_snapshot(self) -> SnapshotReads:
        """Start a snapshot (drivers with ``snapshot_reads`` override this)."""
        raise UnsupportedError(f"{self.scheme}:// cannot read at one point in time")

    def _destroy(self) -> None:
        """Drop the table / storage (optional)."""
        raise UnsupportedError(f"{self.scheme}:// cannot destroy a store")

    @abstractmethod
    def _close(self) -> None:
        """Release resources. Called once, after every call in flight has returned."""

    def _interrupt(self) -> None:
        """Ask calls in flight on other threads to give up soon (optional, thread-safe).

        Called by ``close()`` from the closing thread; the interrupted calls may raise any of
        ``driver_errors`` (the base class reports StoreClosedError). Default: nothing, and
        ``close()`` waits for the calls to finish.
        """
        return

    def _identity(self) -> str:
        """See :meth:`identity`. Default: the URL without user, password and paging
        parameters, with parameters sorted. Drivers refine it so that spellings of one store
        compare equal; two different stores must never compare equal."""
        u = self._url
        query = tuple(sorted((k, v) for k, v in u.query if k not in ("page_size", "page_cap")))
        return StoreURL(u.scheme, host=u.host, port=u.port, path=u.path, query=query).render()

    def _translate_error(self, exc: BaseException) -> LakekvError:
        """Map one of ``driver_errors`` to a lakekv error (default: a generic StoreError)."""
        return StoreError(f"{self.scheme}:// error: {exc}")

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
        if type(partition) is bytes and type(key) is bytes and partition and key:
            caps = self.capabilities
            p_max, k_max = caps.max_partition_size, caps.max_key_size
            if (p_max is None or len(partition) <= p_max) and (k_max is None or len(key) <= k_max):
                return partition, key
        return self._check_partition(partition), self._check_key(key)

    def _check_batch(
        self, entries: Iterable[Entry | tuple[BytesLike, BytesLike, BytesLike]]
    ) -> list[Entry]:
        """Validate a batch as ``set`` would each entry, and refuse repeated keys."""
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
        if len({(e[0], e[1]) for e in checked}) != len(checked):
            seen: set[tuple[bytes, bytes]] = set()
            for e in checked:
                if (e[0], e[1]) in seen:
                    raise InvalidArgumentError(
                        f"write_batch: key {safe_repr(e[1])} of partition {safe_repr(e[0])} "
                        "appears more than once"
                    )
                seen.add((e[0], e[1]))
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
