"""The key-value store contract: what a driver implements. A driver author reads this file first.

The hooks of :class:`StoreContract` below are what a driver writes, grouped: the core every
driver implements, the life cycle, the bulk operations with generic fallbacks, and the optional
capability families (partition listing, snapshots, digests, raw rows, change feeds), each with
its signature. :class:`~lakekv.kv.store.Store`, beside this file, is the class drivers subclass:
its public methods validate arguments and run the hooks; the nouns (``Entry``,
``Capabilities``, ``RawChunk``, …) are :mod:`lakekv.kv.types`.

Data is a set of ``(partition, key, value)`` triples of arbitrary bytes. Partitions are
independent namespaces: nothing in one partition is visible from another, whatever their names
(``b"a"`` and ``b"a/b"`` are unrelated). The public methods of ``Store`` validate their
arguments and translate driver exceptions exactly once, there; a driver implements only the
underscored hooks (``_get``, ``_set``, ``_set_if``, ``_delete``, ``_scan_page``, ``_close``
and, when it declares the capability, ``_list_partitions``, a faster ``_write_batch``, …).

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
    the given buckets. ``digest_partition(partition)`` hashes a whole partition as a set
    (:class:`PartitionDigest`: count, bytes, XOR of a 64-bit *entry hash* of
    ``len(key) key value``, a function other than the row hash, so a comparison by buckets
    and one by partitions fail independently); ``digest_partitions()`` is every non-empty
    partition's, in one pass of the engine where it can make one (the default asks
    partition by partition). ``H``, the row hash and the entry hash are the
    scheme's; ``digest_probe()`` hashes a fixed input, so a caller can check two stores
    really agree before trusting a comparison.
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
    to copy a store onto itself however it is reached. The default is the URL without user,
    password and paging parameters, with sorted parameters; drivers refine ``_identity()``
    from the server where it has a name for itself (PostgreSQL: system identifier and
    database OID; MySQL ``server_uuid``; etcd's cluster ID; SQLite and LMDB: the file's device
    and inode; DynamoDB: endpoint, region and table). It is asked once per open store.
    :meth:`Store.incarnation` (``_incarnation()``) tells the container apart from one dropped
    and created again at the same identity (a table's OID or creation time, a random ID in a
    marker), and :meth:`Store.row_version` (``_row_version()``) tells that a key was written
    again, even with the same value; migrations record both to prove what they claim.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import ClassVar, Final, Literal

from lakekv.errors import LakekvError, StoreError, UnsupportedError
from lakekv.kv import _fallbacks
from lakekv.kv.types import (
    BatchResult,
    Capabilities,
    Entry,
    FeedBatch,
    OnConflict,
    OpenOptions,
    PartitionDigest,
    RangeDigest,
    RawChunk,
    ScanPaging,
    ValueWithPredicate,
)
from lakekv.kv.url import ParamReader, StoreURL

__all__ = ["Feature", "SnapshotReads", "StoreContract", "cannot", "store_cannot"]

Feature = Literal[
    "list_partitions", "snapshot_reads", "digests", "raw_rows", "change_feed", "destroy"
]
"""An optional feature a store may lack (the capability of that name, or ``destroy``)."""

_CANNOT: Final[dict[str, str]] = {
    "list_partitions": "list partitions",
    "snapshot_reads": "read at one point in time",
    "digests": "compute digests",
    "raw_rows": "read or write raw rows",
    "change_feed": "record changes (no change feed)",
    "destroy": "destroy a store",
}


def cannot(subject: str, feature: Feature) -> UnsupportedError:
    """The one place that words "… cannot …": ``cannot("this snapshot", "digests")``."""
    return UnsupportedError(f"{subject} cannot {_CANNOT[feature]}")


def store_cannot(scheme: str, feature: Feature) -> UnsupportedError:
    """``sqlite:// cannot list partitions``: a store of ``scheme`` lacks ``feature``."""
    return cannot(f"{scheme}://", feature)


class StoreContract(ABC):
    """The hooks a driver implements; :class:`~lakekv.kv.store.Store` runs them.

    Subclass :class:`~lakekv.kv.store.Store`, not this: set ``scheme`` and ``capabilities``,
    implement :meth:`parse_settings` and the abstract hooks, and those optional ones the
    declared capabilities call for. Every hook receives validated arguments (``bytes``,
    non-empty, within the declared limits; the store open; writable for writes; the
    capability declared) and runs inside the base class's guard: exceptions listed in
    ``driver_errors`` are translated by :meth:`_translate_error`, and ``close()`` waits for
    the hook to return. A hook never needs to check its arguments again.
    """

    scheme: str = ""
    """The URL scheme (a class attribute of a driver; a wrapper sets it per instance)."""
    capabilities: Capabilities = Capabilities()
    """What the driver can do (:class:`~lakekv.kv.types.Capabilities`); tools ask it."""
    driver_errors: tuple[type[BaseException], ...] = ()
    """The client library's exception types; the base class hands them to
    :meth:`_translate_error`. Anything else that is not a LakekvError is a bug and propagates."""
    namespace_param: ClassVar[str | None] = "table"
    """The URL parameter naming an independent store on the same server (the test fixtures
    set it to give a test an empty store of its own), or ``None`` when a store is a whole
    path (a directory): the fixtures then use a sibling path named after the store."""
    default_paging: ClassVar[ScanPaging] = ScanPaging()
    """The driver's default first page and page cap (the ``page_size``/``page_cap`` params)."""

    _url: StoreURL
    """The URL the store was opened with (set by the base class)."""

    # --- opening and closing -------------------------------------------------------------

    @classmethod
    def parse_settings(cls, url: StoreURL, params: ParamReader, options: OpenOptions) -> object:
        """The driver's settings from ``url``: take each query parameter with ``params``
        (``params.take_str/int/float/bool``; what is not taken is refused) and the credentials
        with ``options.take_credentials``. Pure: no I/O. Default: no parameters, no
        credentials, no settings."""
        options.take_credentials(url, ())
        return None

    def _open(self) -> None:
        """Connect, check or create the table/file (honouring ``self.options``, see *Opening*).
        Called once by ``from_url``; on failure the base class calls :meth:`_close` and
        translates. Default: nothing to do."""
        return

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
        """See *Identity*. Default: the URL without user, password and paging parameters, with
        parameters sorted. Drivers refine it so that spellings of one store compare equal;
        two different stores must never compare equal."""
        u = self._url
        query = tuple(sorted((k, v) for k, v in u.query if k not in ("page_size", "page_cap")))
        return StoreURL(u.scheme, host=u.host, port=u.port, path=u.path, query=query).render()

    def _incarnation(self) -> str | None:
        """See *Identity*: what changes when the table, file or namespace is dropped and
        created again (a table's OID, a random ID in the store's marker). Default: ``None``
        (the driver cannot tell)."""
        return None

    def _row_version(self, partition: bytes, key: bytes) -> str | None:
        """A tag that changes at every write of the key, even of the same value (``xmin``,
        a revision), or ``None`` when the key is missing. Default: ``None`` (cannot tell)."""
        return None

    def _writers(self) -> list[str] | None:
        """Other clients connected to the store's database, excluding lakekv's own, one line
        each. Default: ``None`` (the engine cannot tell)."""
        return None

    def _translate_error(self, exc: BaseException) -> LakekvError:
        """Map one of ``driver_errors`` to a lakekv error (default: a generic StoreError)."""
        return StoreError(f"{self.scheme}:// error: {exc}")

    def _destroy(self) -> None:
        """Drop the table / storage (optional; ``close()`` follows)."""
        raise store_cannot(self.scheme, "destroy")

    # --- the core: every driver ----------------------------------------------------------

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
        (anything else: raise InvalidArgumentError, e.g. via
        :func:`~lakekv.kv.types.value_predicate`).
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

    # --- bulk operations: generic fallbacks, override with one round trip ----------------

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        """Write ``entries`` as ``write_batch`` describes (no key repeats in ``entries``).
        Default: per entry, ``_set_if(None)`` then ``_get``; a driver with a bulk path
        overrides it and declares ``native_write_batch``."""
        return _fallbacks.write_batch(self, entries, on_conflict)

    def _get_many(self, partition: bytes, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """The values of the present ``keys``. Default: one ``_get`` per key."""
        return _fallbacks.get_many(self, partition, keys)

    def _delete_many(self, partition: bytes, keys: Sequence[bytes]) -> None:
        """Delete ``keys`` if present. Default: one ``_delete`` per key."""
        _fallbacks.delete_many(self, partition, keys)

    def _digest_range(self, partition: bytes, start: bytes, limit: int) -> RangeDigest:
        """See *Range digests*. Default: read the range with ``_scan_page`` and hash it here;
        a driver declaring ``range_digests`` computes it in the engine."""
        return _fallbacks.digest_range(self, partition, start, limit)

    # --- capability list_partitions --------------------------------------------------------

    def _list_partitions(self) -> Iterator[bytes]:
        """Non-empty partition names in bytewise order."""
        raise store_cannot(self.scheme, "list_partitions")

    # --- capability snapshot_reads (see *Snapshots*) ---------------------------------------

    def _open_snapshot(self) -> SnapshotReads:
        """Start a snapshot: reads at this point in time until its ``close()``."""
        raise store_cannot(self.scheme, "snapshot_reads")

    # --- capability digests (see *Digests*) ------------------------------------------------

    def _digest_probe(self) -> int:
        """The scheme's row hash of a fixed input."""
        raise store_cannot(self.scheme, "digests")

    def _digest_bits(self, partition: bytes) -> int:
        """A ``bits`` giving about 16 entries a bucket (clamped to 0..24 by the caller)."""
        raise store_cannot(self.scheme, "digests")

    def _digest_buckets(self, partition: bytes, bits: int) -> list[tuple[int, int, int]]:
        """``(bucket, count, xor of row hashes)`` per non-empty bucket (``0 <= bits <= 30``)."""
        raise store_cannot(self.scheme, "digests")

    def _digest_rows(
        self, partition: bytes, bits: int, buckets: list[int]
    ) -> list[tuple[bytes, int]]:
        """``(key, row hash)`` of every entry in ``buckets`` (a non-empty list)."""
        raise store_cannot(self.scheme, "digests")

    def _digest_partition(self, partition: bytes) -> PartitionDigest:
        """Count, bytes and XOR of entry hashes of the whole partition (zeros when absent)."""
        raise store_cannot(self.scheme, "digests")

    def _digest_partitions(self) -> dict[bytes, PartitionDigest]:
        """``_digest_partition`` of every non-empty partition. Default: one call per listed
        partition; a driver overrides it when its engine can digest them all in one pass."""
        return {p: self._digest_partition(p) for p in self._list_partitions()}

    # --- capability raw_rows (see *Raw rows*) ----------------------------------------------

    def _read_raw(self, partition: bytes, start: bytes, limit: int) -> RawChunk:
        """At most ``limit`` entries from ``start`` (inclusive), in the raw format."""
        raise store_cannot(self.scheme, "raw_rows")

    def _write_raw(self, chunks: list[RawChunk]) -> int | None:
        """Write ``chunks`` (some hold entries) all or nothing: the count, or ``None`` if a
        key exists."""
        raise store_cannot(self.scheme, "raw_rows")

    # --- capability change_feed (see *Change feeds*; ``name`` is validated) ---------------

    def _feed_check(self) -> None:
        """UnsupportedError, saying what to change, unless ``_feed_start`` can succeed (the
        engine set up for it). Default: nothing to check."""
        return

    def _feed_start(self, name: str) -> None:
        """Start recording under ``name``, replacing a feed of that name."""
        raise store_cannot(self.scheme, "change_feed")

    def _feeds(self) -> list[dict[str, object]]:
        """Every feed lakekv holds on the server: ``name``, ``database``, ``active``,
        ``held_bytes``, ``lost``."""
        raise store_cannot(self.scheme, "change_feed")

    def _feed_exists(self, name: str) -> bool:
        """Whether feed ``name`` is recording."""
        raise store_cannot(self.scheme, "change_feed")

    def _feed_read(self, name: str) -> FeedBatch:
        """Everything since the confirmed position (StoreError if there is no such feed)."""
        raise store_cannot(self.scheme, "change_feed")

    def _feed_mark(self, name: str, note: str) -> None:
        """Record ``note`` (printable ASCII, at most 200 characters) at this point."""
        raise store_cannot(self.scheme, "change_feed")

    def _feed_confirm(self, name: str, position: str) -> None:
        """Forget the changes up to ``position`` (from a FeedBatch of this feed)."""
        raise store_cannot(self.scheme, "change_feed")

    def _feed_drop(self, name: str) -> None:
        """End feed ``name`` and release what it holds (no error if there is none)."""
        raise store_cannot(self.scheme, "change_feed")


class SnapshotReads(ABC):
    """What a driver returns from ``_open_snapshot``: reads at one point in time.

    The methods mean what the driver's hooks of the same name (with an underscore) mean,
    and are called from many threads at once. :meth:`close` is called once, at the end of the
    ``with store.snapshot()`` block.
    """

    @abstractmethod
    def get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None: ...

    @abstractmethod
    def scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]: ...

    @abstractmethod
    def close(self) -> None: ...

    def list_partitions(self) -> Iterator[bytes]:
        raise cannot("this snapshot", "list_partitions")

    def get_many(self, partition: bytes, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        found = {}
        for key in keys:
            got = self.get(partition, key)
            if got is not None:
                found[key] = got.value
        return found

    def digest_buckets(self, partition: bytes, bits: int) -> list[tuple[int, int, int]]:
        raise cannot("this snapshot", "digests")

    def digest_rows(
        self, partition: bytes, bits: int, buckets: list[int]
    ) -> list[tuple[bytes, int]]:
        raise cannot("this snapshot", "digests")

    def digest_partition(self, partition: bytes) -> PartitionDigest:
        raise cannot("this snapshot", "digests")

    def digest_partitions(self) -> dict[bytes, PartitionDigest]:
        raise cannot("this snapshot", "digests")

    def read_raw(self, partition: bytes, start: bytes, limit: int) -> RawChunk:
        raise cannot("this snapshot", "raw_rows")

    def digest_range(self, partition: bytes, start: bytes, limit: int) -> RangeDigest | None:
        """``None``: the view computes it from ``scan_page`` (the generic way)."""
        return None
