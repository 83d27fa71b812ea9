"""Helpers shared by the migration operations."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from lakekv import __version__
from lakekv.errors import (
    InterruptedMigrationError,
    LakekvError,
    SameStoreError,
    StoreNotFoundError,
)
from lakekv.kv.registry import open_store
from lakekv.kv.snapshot import SnapshotView
from lakekv.kv.store import OnConflict, Store
from lakekv.kv.url import StoreURL
from lakekv.migrate import _observe
from lakekv.migrate.lakefs_config import LakeFSDatabase

StoreLike = Store | str | StoreURL | LakeFSDatabase
"""A store, or a URL (or a lakeFS configuration's database, with its credentials) to open
and close afterwards."""

BATCH_ENTRIES: Final = 20000
"""Entries per ``write_batch`` call (large batches mean few transactions: measured best for
PostgreSQL COPY and SQLite; memory stays a few MB per worker)."""
BATCH_BYTES: Final = 8 << 20
"""Key and value bytes per ``write_batch`` call (whichever limit is reached first)."""
LAKEKV_VERSION: Final = __version__
FIRST_CHUNK: Final = 1000
"""Entries in a partition's first range read whole (raw chunk or range digest); later
ranges grow by :func:`next_chunk_limit`."""


def next_chunk_limit(
    limit: int, entries: int, payload_bytes: int, max_entries: int, max_bytes: int
) -> int:
    """The size of the next range to read after one of ``entries`` entries holding
    ``payload_bytes``, read with ``limit``: four times ``limit``, at most ``max_entries``, and
    at most as many entries of that range's average size as fit in ``max_bytes``."""
    per_entry = max(1, payload_bytes // max(1, entries))
    return max(1, min(limit * 4, max_entries, max_bytes // per_entry))


@dataclass(frozen=True)
class WriteOptions:
    """How ``copy``, ``load`` and ``sync`` write into their target, fixed for the whole pass."""

    policy: OnConflict = OnConflict.FAIL
    """What to do with an entry the target holds with another value."""
    dry_run: bool = False
    """Read and count only: nothing is written and nothing is created."""
    sync: bool = False
    """``copy``: also delete target entries absent from the source."""
    force: bool = False
    """Go on despite a schema version mismatch (or, for ``copy --sync``, a source without
    one)."""
    batch_entries: int = BATCH_ENTRIES
    """Entries per ``write_batch`` call (and per source page)."""
    batch_bytes: int = BATCH_BYTES
    """Key and value bytes per ``write_batch`` call (whichever limit is reached first)."""
    workers: int = 1
    """Threads writing at once (``copy``: partitions; ``load``: batches)."""
    max_delete: int | None = None
    """``copy --sync``: stop with UnsafeOperationError before deleting more entries."""
    stop: threading.Event | None = None
    """The caller's stop request (SIGINT / SIGTERM in the command line)."""


@contextlib.contextmanager
def opened(
    store: StoreLike, *, read_only: bool = False, must_exist: bool = False
) -> Iterator[Store]:
    """``store`` itself, or the store a URL names, closed on exit.

    ``read_only``: a source. It must exist (StoreNotFoundError otherwise; nothing is
    created) and is never written. ``must_exist``: it must exist too, but may be written.
    A lakeFS configuration's credentials go to this store only.
    """
    if isinstance(store, Store):
        yield store
        return
    with _open(store, read_only, create=not (read_only or must_exist)) as s:
        yield s


def _open(store: str | StoreURL | LakeFSDatabase, read_only: bool, *, create: bool = True) -> Store:
    if isinstance(store, LakeFSDatabase):
        opened = open_store(
            store.url, read_only=read_only, create=create, credentials=store.credentials
        )
    else:
        opened = open_store(store, read_only=read_only, create=create)
    return _observe.wrap(opened, read_only=read_only)  # metrics, traces, limits if asked


@contextlib.contextmanager
def opened_for_dry_run(store: StoreLike) -> Iterator[tuple[Store, str | None]]:
    """A dry run's target, opened read-only so that nothing is created. A target that does
    not exist yet is stood in for by an empty in-memory store; the URL to report for it is
    returned alongside (``None`` when the real store was opened)."""
    if isinstance(store, Store):
        yield store, None
        return
    try:
        s = _open(store, read_only=True)
    except StoreNotFoundError:
        with open_store("memory://") as empty:
            yield empty, _describe(store)
        return
    with s:
        yield s, None


def _describe(store: StoreLike) -> str:
    if isinstance(store, LakeFSDatabase):
        return StoreURL.parse(store.url).public()
    if isinstance(store, StoreURL):
        return store.public()
    if isinstance(store, str):
        return StoreURL.parse(store).public()
    return url_of(store)


@dataclass(frozen=True)
class Sides:
    """A migration's two stores, as :func:`open_sides` opened them."""

    source: Store
    """The source, read at one point in time when its driver can (see :func:`consistent`),
    unless opened with ``snapshot=False``."""
    target: Store
    target_name: str
    """The target's URL for reports (a dry run's not-yet-existing target keeps its name)."""


def open_sides(
    stack: contextlib.ExitStack,
    source: StoreLike,
    target: StoreLike,
    *,
    dry_run: bool,
    what: str,
    snapshot: bool = True,
    check_source: Callable[[Store], None] | None = None,
) -> Sides:
    """Open a migration's source and target on ``stack`` (closed with it).

    The source is opened read-only and must exist (StoreNotFoundError); the target is opened
    for writing, or, for a dry run, read-only with an empty stand-in when it does not exist
    (:func:`opened_for_dry_run`); one store on both sides, however spelled, is SameStoreError
    (``what`` names the operation). The source is then read through :func:`consistent`,
    unless ``snapshot`` is false (the caller does so later, e.g. after starting a change
    feed that must predate the snapshot). ``check_source`` runs on the source before the
    target is opened (so a refusal it raises creates nothing).
    """
    src = stack.enter_context(opened(source, read_only=True))
    if check_source is not None:
        check_source(src)
    dst, standin = open_target(stack, target, dry_run=dry_run)
    if standin is None:
        refuse_same_store(src, dst, what)
    if snapshot:
        src = stack.enter_context(consistent(src))
    return Sides(src, dst, standin or url_of(dst))


def open_target(
    stack: contextlib.ExitStack, target: StoreLike, *, dry_run: bool
) -> tuple[Store, str | None]:
    """A migration's target opened on ``stack``: for writing, or for a dry run read-only
    with an empty stand-in when it does not exist (:func:`opened_for_dry_run`; the URL to
    report for the stand-in comes second, ``None`` when the real store was opened)."""
    if dry_run:
        return stack.enter_context(opened_for_dry_run(target))
    return stack.enter_context(opened(target)), None


def refuse_same_store(a: Store, b: Store, what: str) -> None:
    """SameStoreError when ``a`` and ``b`` are one store, however their URLs are spelled."""
    if a is b or a.identity() == b.identity():
        raise SameStoreError(
            f"{what}: {url_of(a)} and {url_of(b)} are the same store ({a.identity()}); "
            "refusing to run it against itself"
        )


@contextlib.contextmanager
def consistent(store: Store) -> Iterator[Store]:
    """``store`` seen at one point in time (``Store.snapshot()``) when its driver can, else
    ``store`` itself; :func:`is_snapshot` tells which. The snapshot ends with the block."""
    if not store.capabilities.snapshot_reads:
        yield store
        return
    with store.snapshot() as view:
        yield view


def is_snapshot(store: Store) -> bool:
    """Whether ``store`` reads at one point in time (a view from :func:`consistent`)."""
    return isinstance(store, SnapshotView)


NO_SNAPSHOT = (
    "{url} cannot be read at one point in time: entries written during this pass may be "
    "missing or mixed. Stop the writers (lakeFS), then run the catch-up pass: "
    "lakekv sync --from SOURCE --to TARGET"
)
"""The warning a report carries when a source was read without a snapshot."""


def url_of(store: Store) -> str:
    """The store's URL for reports and dump headers, without any credential
    (:meth:`StoreURL.public`): ``postgres://u:pw@db:5432/lakefs?table=kv`` becomes
    ``postgres://db:5432/lakefs?table=kv``."""
    return store.url.public()


class Stop:
    """A shared flag telling worker threads to give up (another worker failed), joined with
    the caller's ``stop`` event (a stop request: SIGINT / SIGTERM in the command line)."""

    def __init__(self, requested: threading.Event | None = None) -> None:
        self._event = threading.Event()
        self.requested_event = requested

    def set(self) -> None:
        self._event.set()

    def check(self) -> None:
        if self._event.is_set():
            raise StoppedError
        if self.requested_event is not None and self.requested_event.is_set():
            self._event.set()
            raise StoppedError

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    @property
    def requested(self) -> bool:
        """The caller asked to stop (as opposed to a worker failing)."""
        return self.requested_event is not None and self.requested_event.is_set()


def check_stop(requested: threading.Event | None, what: str) -> None:
    """InterruptedMigrationError if the caller asked ``what`` to stop."""
    if requested is not None and requested.is_set():
        raise interrupted(requested, what)


def interrupted(requested: threading.Event | None, what: str) -> InterruptedMigrationError:
    """The error for a stop request; carries the signal number if the event has one."""
    signum = getattr(requested, "signal", None)
    return InterruptedMigrationError(
        f"{what} stopped on request"
        + (f" (signal {signum})" if isinstance(signum, int) else "")
        + "; what is reported written is written, and running it again resumes",
        signum if isinstance(signum, int) else None,
    )


class StoppedError(Exception):
    """Raised inside a worker when another worker failed."""


def digests_agree(a: Store, b: Store) -> bool:
    """Both stores compute the same digests (``Store.digest_buckets`` / ``digest_partition``):
    same scheme, same probe result."""
    scheme = a.capabilities.digests
    if scheme is None or scheme != b.capabilities.digests:
        return False
    try:
        return a.digest_probe() == b.digest_probe()
    except LakekvError:  # e.g. a server too old for the functions the scheme needs
        return False
