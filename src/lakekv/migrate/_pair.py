"""What lakekv remembers of a pair of stores between passes, and the checks built on it.

A catch-up (``sync``) overwrites its target with its source. That is only safe when nothing
but lakekv wrote to the target since lakekv's last pass into it, and when the operator did not
swap the two sides. Neither can be seen in the data alone, so every pass that completes into a
target leaves a **pass record** on this machine:

    ``$LAKEKV_STATE_DIR`` (default ``$XDG_STATE_HOME/lakekv``, else ``~/.local/state/lakekv``)
    ``/pairs/<hash of both identities>.json``, mode 0600

holding both stores' identities and incarnations (:meth:`~lakekv.kv.store.Store.incarnation`)
and their **marks**: for the keys lakeFS rewrites each time it starts
(``auth``/``installation_metadata/lakefs_kv_type`` and ``…/lakefs_version``, written by
``lakefs run`` through ``initStatsMetadata`` → ``KVMetadataManager.GetMetadata`` →
``writeMetadata``: lakeFS ``cmd/lakefs/cmd/run.go:114``, ``pkg/auth/metadata.go:139``), the
row version where the driver has one (PostgreSQL ``xmin``, etcd ``mod_revision``: changed by
any write, even of the same value), else a hash of the value.

Checks made with it:

* **foreign writes** (:func:`foreign_writes`): a target mark that changed since the record
  means lakeFS (or someone) started on the target; without a record, a target whose lakeFS
  markers hold other values than the source's says the same (a lakeFS of another kind or
  version wrote them).
* **direction** (:func:`check_direction`): the target holds the change feed of a migration
  from itself to the source; or the last pass between the two ran the other way and the new
  source was not written since (so it holds nothing the target lacks but older data).
* **one at a time** (:func:`pair_lock`): a lock file per pair, held for the pass.

What the engines cannot tell is said in the runbook: on engines without row versions
(SQLite, LMDB, MySQL, DynamoDB, Redis) a lakeFS of the same version and kind that started on
the target writes the same marker values, so only a changed value is seen; writes by other
programs are not seen at all, except by ``verify``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

from lakekv.errors import LakekvError, UnsafeOperationError
from lakekv.kv.store import Store

STATE_ENV: Final = "LAKEKV_STATE_DIR"
"""Where pass records and pair locks live (a directory; created mode 0700)."""

LAKEFS_MARKS: Final = (
    (b"auth", b"installation_metadata/lakefs_kv_type"),
    (b"auth", b"installation_metadata/lakefs_version"),
)
"""Keys ``lakefs run`` writes every time it starts (see the module docstring)."""

_RECORD_VERSION: Final = 1


def state_dir() -> Path:
    """The directory of pass records and pair locks."""
    given = os.environ.get(STATE_ENV)
    if given:
        return Path(given)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "lakekv"


def _pair_hash(source_identity: str, target_identity: str) -> str:
    return hashlib.sha256(f"{source_identity}\n{target_identity}".encode()).hexdigest()[:40]


def marks(store: Store) -> dict[str, str]:
    """The store's marks (see the module docstring): per marker key its row version
    (``v:…``), else a hash of its value (``h:…``), or ``absent``."""
    out: dict[str, str] = {}
    for partition, key in LAKEFS_MARKS:
        name = f"{partition.decode()}/{key.decode()}"
        version = store.row_version(partition, key)
        if version is not None:
            out[name] = f"v:{version}"
            continue
        found = store.get_many(partition, [key]).get(key)
        out[name] = "absent" if found is None else "h:" + hashlib.sha256(found).hexdigest()[:32]
    return out


@dataclass
class PassRecord:
    """What lakekv knew of a pair at the end of its last completed pass from ``source``
    into ``target``."""

    source: str
    """The source's identity."""
    target: str
    source_url: str
    target_url: str
    what: str
    """The operation: ``copy`` or ``sync``."""
    finished_at: float
    """Unix time."""
    source_incarnation: str | None = None
    target_incarnation: str | None = None
    source_marks: dict[str, str] = field(default_factory=dict)
    target_marks: dict[str, str] = field(default_factory=dict)

    @property
    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.finished_at))


def load_record(source_identity: str, target_identity: str) -> PassRecord | None:
    """The record of the last pass from one store into the other, or ``None`` (none on this
    machine, or unreadable)."""
    path = state_dir() / "pairs" / f"{_pair_hash(source_identity, target_identity)}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.pop("lakekv_pass_record", None) != _RECORD_VERSION:
            return None
        record = PassRecord(**data)
    except (OSError, ValueError, TypeError):
        return None
    if record.source != source_identity or record.target != target_identity:
        return None
    return record


def save_record(
    source: Store, target: Store, what: str, url_of: Callable[[Store], str]
) -> str | None:
    """Record a completed pass from ``source`` into ``target`` (marks read now, so after the
    pass's writes). A record that cannot be written is a warning (returned), not a failure:
    the pass itself is done; the next catch-up then has less to go by and says so."""
    try:
        record = PassRecord(
            source=source.identity(),
            target=target.identity(),
            source_url=url_of(source),
            target_url=url_of(target),
            what=what,
            finished_at=time.time(),
            source_incarnation=source.incarnation(),
            target_incarnation=target.incarnation(),
            source_marks=marks(source),
            target_marks=marks(target),
        )
    except LakekvError as exc:
        return f"could not read the marks to record this pass: {exc}"
    directory = state_dir() / "pairs"
    path = directory / f"{_pair_hash(record.source, record.target)}.json"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"lakekv_pass_record": _RECORD_VERSION, **asdict(record)}, f)
        os.replace(tmp, path)
    except OSError as exc:
        return (
            f"could not record this pass in {directory} ({exc.strerror or exc}): the next "
            "catch-up cannot tell whether something else wrote to the target meanwhile"
        )
    return None


def foreign_writes(source: Store, target: Store) -> str | None:
    """Evidence that something other than lakekv wrote to ``target`` since lakekv's last
    pass between the two stores (a sentence), or ``None`` when none is seen. The last pass
    may have run either way: the target's marks are compared with those it had then, as
    that pass's target or as its source (going back after a cutover)."""
    src_id, dst_id = source.identity(), target.identity()
    forward, reverse = load_record(src_id, dst_id), load_record(dst_id, src_id)
    last: tuple[PassRecord, str | None, dict[str, str]] | None = None
    if forward is not None:
        last = (forward, forward.target_incarnation, forward.target_marks)
    if reverse is not None and (forward is None or reverse.finished_at > forward.finished_at):
        last = (reverse, reverse.source_incarnation, reverse.source_marks)
    if last is not None:
        record, incarnation, before_marks = last
        if incarnation != target.incarnation():
            return None  # re-created since: nothing in it is anyone's newer work we could see
        for name, mark in marks(target).items():
            before = before_marks.get(name)
            if before is not None and before != mark:
                return (
                    f"{name} was written on the target after lakekv's last pass between "
                    f"these stores ({record.what}, {record.when}): lakeFS (or another writer) "
                    "has run on it"
                )
        return None
    # No record: only a marker whose value differs from the source's tells (lakeFS of
    # another database type rewrote it); the version is left out, since the source's lakeFS
    # may have been upgraded since the first pass.
    partition, key = LAKEFS_MARKS[0]
    mine = source.get_many(partition, [key]).get(key)
    there = target.get_many(partition, [key]).get(key)
    if mine is not None and there is not None and mine != there:
        return (
            f"the target's {partition.decode()}/{key.decode()} is "
            f"{there.decode(errors='replace')!r}, the source's "
            f"{mine.decode(errors='replace')!r}: a lakeFS has run on the target"
        )
    return None


def check_direction(
    source: Store, target: Store, what: str, feed_name: Callable[[Store, Store], str]
) -> None:
    """UnsafeOperationError when the two sides look swapped (see the module docstring)."""
    if target.capabilities.change_feed:
        reverse = feed_name(target, source)
        if target.feed_exists(reverse):
            raise UnsafeOperationError(
                f"{what}: the sides look swapped: the target records changes (change feed "
                f"{reverse}) for a migration from itself to the source. Swap --from and --to; "
                "to go back on purpose, end that feed first (lakekv untrack with the sides "
                "of that migration)"
            )
    src_id, dst_id = source.identity(), target.identity()
    reverse_record = load_record(dst_id, src_id)
    if reverse_record is None:
        return
    forward = load_record(src_id, dst_id)
    if forward is not None and forward.finished_at >= reverse_record.finished_at:
        return
    if reverse_record.target_incarnation != source.incarnation():
        return
    now = marks(source)
    if any(reverse_record.target_marks.get(n) not in (None, m) for n, m in now.items()):
        return  # the source was written since it was the target: going back
    raise UnsafeOperationError(
        f"{what}: the sides look swapped: the last pass between these stores copied the "
        f"target into the source ({reverse_record.what}, {reverse_record.when}) and the "
        "source has not been written since, so this would undo whatever the target took "
        "since then. Swap --from and --to; if you really mean to go back, add --force"
    )


@contextlib.contextmanager
def pair_lock(source_identity: str, target_identity: str, what: str) -> Iterator[None]:
    """Hold the pair's lock for the block; UnsafeOperationError naming the holder when
    another lakekv process (on this machine) holds it. The kernel releases it when a
    process dies, so a killed run never leaves it behind. Without a usable state directory
    the block runs unlocked."""
    directory = state_dir() / "locks"
    path = directory / f"{_pair_hash(*sorted((source_identity, target_identity)))}.lock"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise UnsafeOperationError(
                f"{what}: another lakekv run on these two stores is in progress ({holder}); "
                "wait for it to end, or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what}, pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)


class DeleteBudget:
    """How many target entries a pass may delete, shared by its threads.

    With ``limit`` (``--max-delete N``), at most that many: going past it raises
    UnsafeOperationError. Without it and without ``force``, a pass that compares the stores
    may delete at most a quarter of the target entries it saw (:meth:`saw`), and never less
    than :data:`FREE_DELETES`; a pass by a change feed deletes only keys the source's own
    feed lists as deleted, so the share does not apply to it (``share=False``).

    ``defer``: deletions are only collected (:meth:`take` returns nothing to delete now) and
    made by :meth:`apply` once the pass has found them all, and the share is checked then,
    against every target entry the pass saw: a pass refused for deleting too much has deleted
    nothing. Without ``defer`` (a pass with a checkpoint, or unbounded: ``force`` without
    ``limit``) deletions are made as they are found.
    """

    FREE_DELETES: Final = 1000
    SHARE: Final = 0.25

    def __init__(
        self,
        what: str,
        limit: int | None,
        force: bool,
        *,
        defer: bool = False,
        share: bool = True,
    ) -> None:
        self.what, self.limit, self.force = what, limit, force
        self.share = share and not force and limit is None
        self.defer = defer and (limit is not None or not force)
        self.deleted = 0
        self.seen = 0
        """Target entries the pass compared (for the share)."""
        self._lock = threading.Lock()
        self._deferred: list[tuple[bytes, list[bytes]]] = []

    def saw(self, n: int) -> None:
        """Count ``n`` target entries the pass compared."""
        with self._lock:
            self.seen += n

    def take(self, partition: bytes, keys: list[bytes]) -> list[bytes]:
        """Count the deletion of ``keys`` (UnsafeOperationError beyond ``limit``); the keys
        to delete now (none when deferred: :meth:`apply` deletes them)."""
        if not keys:
            return keys
        with self._lock:
            self._reserve(len(keys))
            if not self.defer:
                return keys
            self._deferred.append((partition, list(keys)))
            return []

    def apply(self, delete: Callable[[bytes, list[bytes]], None], workers: int = 1) -> None:
        """Check the share, then make the deferred deletions with ``delete(partition, keys)``,
        at most 2,000 keys a call, ``workers`` calls at once (a catch-up's deletions are
        small ones in many partitions: one at a time, they were a fifth of it); the list is
        emptied."""
        with self._lock:
            todo, self._deferred = self._deferred, []
            pending = sum(len(keys) for _, keys in todo)
            if self.share and self.deleted > self.FREE_DELETES:
                allowed = max(self.FREE_DELETES, int(self.seen * self.SHARE))
                if self.deleted > allowed:
                    self._deferred = todo
                    raise UnsafeOperationError(
                        f"{self.what} would delete {self.deleted:,} entries, more than a "
                        f"quarter of the {self.seen:,} the target holds; stopped"
                        f"{self._done(pending)}. Check that --from and --to are the right way "
                        "round; if the deletions are intended, give --max-delete N or --force"
                    )
        calls = [(p, keys[i : i + 2000]) for p, keys in todo for i in range(0, len(keys), 2000)]
        if workers <= 1 or len(calls) <= 1:
            for partition, keys in calls:
                delete(partition, keys)
            return
        with ThreadPoolExecutor(min(workers, len(calls))) as pool:
            for _ in pool.map(lambda call: delete(*call), calls):
                pass

    def _reserve(self, n: int) -> None:
        total = self.deleted + n
        if self.limit is not None and total > self.limit:
            raise UnsafeOperationError(
                f"{self.what} would delete more than {self.limit:,} entries from the "
                f"target (--max-delete); stopped{self._done(0)} (raise --max-delete if "
                "intended)"
            )
        self.deleted = total

    def _done(self, pending: int) -> str:
        if self.defer:
            return " before deleting anything"
        return f" after deleting {self.deleted - pending:,}"


def note_feed(name: str, **fields: object) -> None:
    """Remember (or update) what this machine knows of change feed ``name``: the pair's
    URLs (without credentials), when it started, whether its first pass finished
    (``ready``). ``lakekv status`` shows it beside what the server says; a note that cannot
    be written is not an error (the feed works without it)."""
    path = state_dir() / "feeds" / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    data.update(fields)
    data["name"] = name
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)


def forget_feed(name: str) -> None:
    """The feed ended: drop this machine's note of it."""
    with contextlib.suppress(OSError):
        (state_dir() / "feeds" / f"{name}.json").unlink()


def feed_notes() -> dict[str, dict[str, object]]:
    """This machine's notes of change feeds, by name."""
    out: dict[str, dict[str, object]] = {}
    directory = state_dir() / "feeds"
    with contextlib.suppress(OSError):
        for path in directory.glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(data, dict):
                    out[path.stem] = data
    return out


def _plan_path(source_identity: str, target_identity: str) -> Path:
    return state_dir() / "plans" / f"{_pair_hash(source_identity, target_identity)}.json"


def load_plan(source_identity: str, target_identity: str) -> dict[str, object] | None:
    """The pair's plan record (``lakekv cutover --plan`` rates, and rates observed in real
    passes), or ``None``."""
    try:
        data = json.loads(_plan_path(source_identity, target_identity).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save_plan(source_identity: str, target_identity: str, record: dict[str, object]) -> None:
    """Write the pair's plan record (failures are ignored: a plan is advice)."""
    path = _plan_path(source_identity, target_identity)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f)


def observe_rate(
    source_identity: str, target_identity: str, method: str, seconds: float, amount: int
) -> None:
    """Keep what a real catch-up of the pair took per unit of work (a change for the change
    feed, an entry otherwise), for the cutover's estimates."""
    record = load_plan(source_identity, target_identity) or {}
    observed = record.get("observed")
    observed = dict(observed) if isinstance(observed, dict) else {}
    observed[method] = seconds / max(1, amount)
    record["observed"] = observed
    save_plan(source_identity, target_identity, record)
