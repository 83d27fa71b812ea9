"""The ``badger://`` store: see the package docstring for URL, layout and behaviour."""

from __future__ import annotations

import itertools
import operator
import os
import sys
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from lakekv.errors import (
    ConfigurationError,
    InvalidArgumentError,
    LakekvError,
    StoreClosedError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from lakekv.kv.drivers.badger import _helper
from lakekv.kv.drivers.badger._helper import Helper, HelperError, field_bytes
from lakekv.kv.snapshot import SnapshotReads
from lakekv.kv.store import (
    MUST_EXIST,
    BatchResult,
    Capabilities,
    Entry,
    OnConflict,
    OpenOptions,
    ScanPaging,
    Store,
    ValueWithPredicate,
    value_predicate,
)
from lakekv.kv.url import ParamReader, StoreURL

BADGER_MAX_KEY: Final = 65000
"""Badger's key limit (``txn.go``: ``maxKeySize``), partition and delimiter included."""
MAX_PARTITION_SIZE: Final = 1024
MAX_KEY_SIZE: Final = BADGER_MAX_KEY - (2 * MAX_PARTITION_SIZE + 2)
"""What is left of Badger's limit after the longest (escaped) partition and the ``/``."""
MAX_VALUE_SIZE: Final = 512 << 20
"""Below Badger's ``ValueLogFileSize`` (1 GiB); values this large cost as much memory here."""

_ESCAPE_MARK: Final = b"\x00"
_BADGER_INTERNAL: Final = b"!badger!"
_first = operator.itemgetter(0)
_second = operator.itemgetter(1)
_third = operator.itemgetter(2)
_POLICY = {OnConflict.FAIL: 0, OnConflict.SKIP: 1, OnConflict.OVERWRITE: 2}


def encode_partition(partition: bytes) -> bytes:
    """The Badger key prefix (before ``/``) of ``partition``.

    Every partition lakeFS writes (no ``/``, no leading NUL, not ``!badger!…``) is itself, so
    the layout is lakeFS's exactly. Any other partition is stored as NUL followed by the name
    with NUL escaped as ``00 02`` and ``/`` as ``00 01``: it then holds no ``/`` (so
    ``a`` and ``a/b`` cannot collide), and no plain name starts with NUL (so the two forms
    never meet)."""
    if b"/" in partition or partition[:1] == _ESCAPE_MARK or partition.startswith(_BADGER_INTERNAL):
        return _ESCAPE_MARK + partition.replace(b"\x00", b"\x00\x02").replace(b"/", b"\x00\x01")
    return partition


def decode_partition(prefix: bytes) -> bytes:
    """The inverse of :func:`encode_partition`."""
    if prefix[:1] != _ESCAPE_MARK:
        return prefix
    return prefix[1:].replace(b"\x00\x01", b"/").replace(b"\x00\x02", b"\x00")


def _prefix(partition: bytes) -> bytes:
    """The Badger key prefix of ``partition``'s keys: its encoded name and ``/``."""
    return encode_partition(partition) + b"/"


Request = Callable[[str, bytes], bytes]
"""Sends one request (its op letter, its payload) and returns the answer's payload: the store
sends it as it is, a snapshot inside its read transaction."""


# The read requests, encoded once for the store and for its snapshots.


def _read_get(request: Request, partition: bytes, key: bytes) -> ValueWithPredicate | None:
    try:
        value = request("g", field_bytes(_prefix(partition) + key))
    except HelperError as exc:
        if exc.status == _helper.NOT_FOUND:
            return None
        raise
    return ValueWithPredicate(value, value)


def _read_many(request: Request, partition: bytes, keys: Sequence[bytes]) -> dict[bytes, bytes]:
    prefix = _prefix(partition)
    body = request("m", _helper.encode_fields([prefix + k for k in keys]))
    return _helper.decode_many(keys, body)


def _read_page(
    request: Request, partition: bytes, start: bytes, inclusive: bool, limit: int
) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
    prefix = _prefix(partition)
    payload = (
        field_bytes(prefix)
        + field_bytes(prefix + start)
        + bytes([1 if inclusive else 0])
        + limit.to_bytes(4, "little")
    )
    return _helper.decode_scan(request("r", payload))


def _read_partitions(request: Request) -> Iterator[bytes]:
    # Badger orders keys, not names: ``a-b/…`` sorts before ``a/…`` though ``a`` < ``a-b``.
    yield from sorted(map(decode_partition, _helper.decode_names(request("p", b""))))


@dataclass(frozen=True)
class BadgerSettings:
    """What a ``badger://`` URL says, besides paging (see the package docstring)."""

    path: Path
    tmpdir: str | None


class BadgerStore(Store):
    """The Badger driver (lakeFS's ``local`` database); see the package docstring."""

    scheme = "badger"
    capabilities = Capabilities(
        list_partitions=True,
        native_write_batch=True,
        persistent=True,
        shared_between_processes=False,  # Badger: one process per directory (flock)
        max_partition_size=MAX_PARTITION_SIZE,
        max_key_size=MAX_KEY_SIZE,
        max_value_size=MAX_VALUE_SIZE,
        concurrent_writes=False,  # one helper, one request at a time
        snapshot_reads=True,  # a Badger read transaction kept open in the helper
    )
    driver_errors = (HelperError,)
    namespace_param = None

    default_paging = ScanPaging(page_size=1000, page_cap=10000)

    @classmethod
    def parse_settings(
        cls, url: StoreURL, params: ParamReader, options: OpenOptions
    ) -> BadgerSettings:
        tmpdir = params.take_str("tmpdir", "") or None
        options.take_credentials(url, ())
        if url.host or url.username or url.port:
            raise ConfigurationError(
                f"{url}: a badger URL has no host; write badger:///relative/dir or "
                "badger:////absolute/dir"
            )
        raw = url.path[1:] if url.path.startswith("/") else url.path
        if not raw:
            raise ConfigurationError(f"{url}: give a directory path (badger:///path/to/metadata)")
        return BadgerSettings(Path(raw), tmpdir)

    def __init__(
        self,
        url: StoreURL,
        paging: ScanPaging,
        options: OpenOptions,
        settings: BadgerSettings,
    ) -> None:
        super().__init__(url, paging, options)
        self.path = settings.path
        self._tmpdir = settings.tmpdir
        self._helper: Helper | None = None

    def _open(self) -> None:
        if not self.options.may_create and not self.path.is_dir():
            what = "is not a directory" if self.path.exists() else "does not exist"
            raise StoreNotFoundError(f"badger:// directory {self.path} {what}")
        if self.options.may_create and not self.path.parent.is_dir():
            raise ConfigurationError(
                f"badger:// cannot create {self.path}: its parent directory does not exist"
            )
        self._helper = _helper.acquire(
            self.path,
            read_only=self.options.read_only,
            create=self.options.may_create,
            tmpdir=self._tmpdir,
        )

    @property
    def opened_as(self) -> str:
        """How the helper opened the directory: ``direct``, or ``copy NANOSECONDS BYTES`` for
        a read-only open (the private copy it reads, and what making it cost)."""
        return self._live().note

    def _live(self) -> Helper:
        helper = self._helper
        if helper is None:
            raise StoreClosedError(f"store {self._url} is closed")
        return helper

    def _request(self, op: str, payload: bytes) -> bytes:
        return self._live().call(ord(op), payload)

    def _translate_error(self, exc: BaseException) -> LakekvError:
        if isinstance(exc, HelperError):
            if exc.status == _helper.INVALID:
                return InvalidArgumentError(f"badger:// {self.path}: {exc}")
            if exc.status == _helper.UNAVAILABLE:
                return StoreUnavailableError(f"badger:// {self.path}: {exc}")
        return StoreError(f"badger:// {self.path}: {exc}")

    def _identity(self) -> str:
        return f"badger://{os.path.realpath(self.path)}"

    # --- the contract ----------------------------------------------------------------------

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        return _read_get(self._request, partition, key)

    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        self._request("s", field_bytes(_prefix(partition) + key) + field_bytes(value))

    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        if predicate is None:
            mode, expected = 0, b""
        elif predicate is MUST_EXIST:
            mode, expected = 1, b""
        else:
            mode, expected = 2, value_predicate(predicate)
        full = _prefix(partition) + key
        payload = bytes([mode]) + field_bytes(full) + field_bytes(value) + field_bytes(expected)
        try:
            self._request("c", payload)
        except HelperError as exc:
            if exc.status == _helper.PREDICATE:
                return False
            raise
        return True

    def _delete(self, partition: bytes, key: bytes) -> None:
        self._request("d", field_bytes(_prefix(partition) + key))

    def _delete_many(self, partition: bytes, keys: Sequence[bytes]) -> None:
        prefix = _prefix(partition)
        self._request("D", _helper.encode_fields([prefix + k for k in keys]))

    def _get_many(self, partition: bytes, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        return _read_many(self._request, partition, keys)

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        return _read_page(self._request, partition, start, inclusive, limit)

    def _list_partitions(self) -> Iterator[bytes]:
        return _read_partitions(self._request)

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        """One request: the helper looks up the batch's keys in one read transaction and
        writes what must be written with Badger's WriteBatch; it reports per entry whether it
        was written, unchanged, skipped or a conflict. The request carries each run of one
        partition once, then the lengths as arrays and the bytes joined (no Python code per
        entry but C-level maps)."""
        runs = [(p, len(list(run))) for p, run in itertools.groupby(entries, _first)]
        keys = list(map(_second, entries))
        values = list(map(_third, entries))
        lens = array("I", map(len, keys))
        lens.extend(map(len, values))
        if sys.byteorder != "little":
            lens.byteswap()
        head = [bytes([_POLICY[on_conflict]]), len(runs).to_bytes(4, "little")]
        for p, count in runs:
            head.append(field_bytes(_prefix(p)))
            head.append(count.to_bytes(4, "little"))
        payload = b"".join([*head, lens.tobytes(), b"".join(keys), b"".join(values)])
        codes = self._request("b", payload)
        result = BatchResult(
            written=codes.count(0), unchanged=codes.count(1), skipped=codes.count(2)
        )
        if codes.count(3):
            result.conflicts = [e for e, c in zip(entries, codes, strict=True) if c == 3]
        return result

    def _open_snapshot(self) -> SnapshotReads:
        """A Badger read transaction kept open in the helper: every read through it sees the
        directory as it was when it began (Badger's MVCC), whatever is written meanwhile."""
        helper = self._live()
        body = helper.call(ord("T"), b"")
        return _Snapshot(self, helper, body[:4])

    # --- lifecycle -------------------------------------------------------------------------

    def _destroy(self) -> None:
        helper = self._live()
        helper.call(ord("X"), b"")
        helper.destroyed = True

    def _close(self) -> None:
        helper, self._helper = self._helper, None
        if helper is not None:
            _helper.release(helper)


class _Snapshot(SnapshotReads):
    """Reads in one of the helper's open read transactions (its id: 4 bytes)."""

    def __init__(self, store: BadgerStore, helper: Helper, ident: bytes) -> None:
        self._store = store
        self._helper = helper
        self._ident = ident

    def _request(self, op: str, payload: bytes) -> bytes:
        return self._helper.call(ord("V"), self._ident + op.encode() + payload)

    def get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        return _read_get(self._request, partition, key)

    def get_many(self, partition: bytes, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        return _read_many(self._request, partition, keys)

    def scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        return _read_page(self._request, partition, start, inclusive, limit)

    def list_partitions(self) -> Iterator[bytes]:
        return _read_partitions(self._request)

    def close(self) -> None:
        self._helper.call(ord("E"), self._ident)
