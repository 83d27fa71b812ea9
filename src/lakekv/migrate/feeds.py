"""Change feeds in a migration, their whole life cycle in one place: a tracked first pass
starts one (:func:`start`), marks it ready when it can vouch for the target
(:func:`ready_note`, :func:`why_not_ready`), the catch-up reads it and decides whether to
trust it (:func:`read`), then ends it or keeps it for another pass (:func:`after_pass`), and
:func:`untrack` ends one without a pass. The store capability itself is *Change feeds* in the
store contract."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterable
from functools import partial

from lakekv.errors import (
    LakekvError,
    UnsafeOperationError,
    UnsupportedError,
)
from lakekv.kv.store import FeedBatch, Store
from lakekv.migrate import _retry
from lakekv.migrate._common import StoreLike, opened, refuse_same_store, url_of
from lakekv.migrate._pair import forget_feed, note_feed
from lakekv.migrate.reports import CopyReport, UntrackReport


def feed_name(source: Store, target: Store) -> str:
    """The name of the change feed a tracked first pass from ``source`` to ``target`` starts
    on the source (``copy(track_changes=True)``) and the catch-up (:func:`sync`) reads:
    ``lakekv_`` and 40 hex digits of a hash of both identities, so each pair has its own."""
    pair = f"{source.identity()}\n{target.identity()}".encode()
    return "lakekv_" + hashlib.sha256(pair).hexdigest()[:40]


READY_NOTE = "ready"
"""The first word of the note a tracked pass records in its change feed once the target holds
everything the source held when the feed started, except what the feed lists as changed
since (:func:`ready_note`). A catch-up by the feed requires it (without it, e.g. after an
interrupted first pass, the feed alone cannot tell what the target lacks)."""


def ready_note(source: Store, target: Store) -> str:
    """The ready note, naming both stores' incarnations (``Store.incarnation``), so a
    catch-up can tell that neither was re-created since the note was written."""
    body = {"source": source.incarnation(), "target": target.incarnation()}
    return f"{READY_NOTE} {json.dumps(body, sort_keys=True, separators=(',', ':'))}"


def parse_ready(notes: list[str]) -> dict[str, str | None] | None:
    """The incarnations of the last ready note among ``notes``, or ``None`` without one (a
    bare ``ready`` from an older lakekv names none, and does not count)."""
    for note in reversed(notes):
        word, _, rest = note.partition(" ")
        if word != READY_NOTE:
            continue
        try:
            body = json.loads(rest)
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        return {k: (None if v is None else str(v)) for k, v in body.items()}
    return None


def can_track(src: Store) -> None:
    """UnsupportedError unless a change feed can be started on ``src`` (the capability, and
    the engine set up for it); checked before the target is opened, so a refusal creates
    nothing."""
    if not src.capabilities.change_feed:
        raise UnsupportedError(
            f"copy --track-changes: {url_of(src)} cannot record changes; copy without it "
            "(the catch-up pass then compares the two stores)"
        )
    src.feed_check()


def start(src: Store, dst: Store, target_name: str, *, resuming: bool) -> str:
    """Start the change feed of a tracked pass on ``src`` (before its snapshot), or keep the
    one an interrupted run of the same pass started (UnsafeOperationError if it is gone);
    its name. A new feed is noted on this machine for ``lakekv status``."""
    name = feed_name(src, dst)
    if resuming:
        if not src.feed_exists(name):
            raise UnsafeOperationError(
                "copy --track-changes: this resumes an interrupted pass, but the change feed "
                f"its first run started on {url_of(src)} is gone, so changes made meanwhile "
                "would be missed. Delete the checkpoint file to start a new pass"
            )
        return name
    src.feed_start(name)
    note_feed(name, source=url_of(src), target=target_name, started_at=time.time(), ready=False)
    return name


def end(src: Store, name: str) -> None:
    """End the feed ``name`` on ``src`` and forget its local notes (every way a feed ends)."""
    src.feed_drop(name)
    forget_feed(name)


def abandon(src: Store, name: str) -> None:
    """End a feed this run started, after a refusal before anything was copied."""
    with contextlib.suppress(LakekvError):
        end(src, name)


def mark_ready(src: Store, dst: Store, name: str, retries: _retry.RetryCounter) -> None:
    """Record in the feed that the target is ready (:func:`ready_note`)."""
    _retry.call(partial(src.feed_mark, name, ready_note(src, dst)), retries)
    note_feed(name, ready=True, ready_at=time.time())


def why_not_ready(
    report: CopyReport, given: list[bytes] | None, sync: bool, target_was_empty: bool
) -> str | None:
    """Why a tracked pass cannot vouch that the target equals the source up to its feed's
    start (``None``: it can)."""
    if given is not None:
        return "it copied only some partitions"
    if report.conflicts or report.previous_conflicts or report.skipped:
        return "it met conflicts or skipped entries"
    if not target_was_empty and not sync:
        return (
            "the target held entries before it began, and entries the source does not have "
            "are not in the change feed"
        )
    return None


FEED_NOT_READY = (
    "the change feed is not marked ready because {why}: the target may differ from the "
    "source in ways the feed does not list, so the catch-up pass will compare the stores"
)


class Tracked:
    """The source's change feed of this pair, as read before the pass."""

    def __init__(self, name: str, batch: FeedBatch, why_not: str | None) -> None:
        self.name, self.batch, self.why_not = name, batch, why_not

    @property
    def usable(self) -> bool:
        return self.why_not is None


def why_untrusted(raw: Store, dst: Store, batch: FeedBatch) -> str | None:
    """Why ``batch`` (read from the pair's feed) cannot account for every change since the
    first pass, or ``None`` when it can: the one rule :func:`read` and a cutover's estimate
    share."""
    ready = parse_ready(batch.notes)
    if batch.unknown is not None:
        return f"the change feed holds a change not told by key ({batch.unknown})"
    if ready is None:
        return (
            "the change feed holds no record that its first pass finished complete (it was "
            "interrupted, met conflicts, copied only some partitions, or began on a target "
            "that held entries)"
        )
    if ready.get("source") != raw.incarnation():
        return (
            "the source's table was re-created since the first pass (as pg_restore --clean "
            "does), which the feed cannot list"
        )
    if ready.get("target") != dst.incarnation():
        return "the target was re-created or emptied since the first pass"
    return None


def read(
    raw: Store,
    dst: Store,
    method: str,
    partitions: Iterable[bytes] | None,
    retries: _retry.RetryCounter,
    batch: FeedBatch | None = None,
) -> Tracked | None:
    """Read this pair's change feed, if the source has one; whether it can be trusted.
    ``batch``: the feed as the caller has just read it (not read again)."""
    name = feed_name(raw, dst)
    if batch is not None:
        return Tracked(name, batch, _why_not(raw, dst, batch, method, partitions))
    if not _retry.call(partial(raw.feed_exists, name), retries):
        if method == "changes":
            raise UnsupportedError(
                f"sync --method changes: {url_of(raw)} holds no change feed for this target "
                "(start one with lakekv copy --track-changes)"
            )
        return None
    batch = _retry.call(partial(raw.feed_read, name), retries)
    return Tracked(name, batch, _why_not(raw, dst, batch, method, partitions))


def _why_not(
    raw: Store,
    dst: Store,
    batch: FeedBatch,
    method: str,
    partitions: Iterable[bytes] | None,
) -> str | None:
    """Why a pass with ``method`` over ``partitions`` must not go by ``batch`` (``None``: it
    may); UnsafeOperationError where ``method`` is ``changes`` and it must not."""
    why_not = why_untrusted(raw, dst, batch)
    if why_not is None and partitions is not None:
        why_not = "only some partitions were asked for"
    elif why_not is None and method in ("digests", "merge"):
        why_not = f"--method {method} was asked for"
    if why_not is not None and method == "changes":
        raise UnsafeOperationError(
            f"sync --method changes: {why_not}. Run it without --method (it compares the "
            "stores instead, and is as correct), or, to use a feed again, copy once more "
            "with --track-changes into an empty target"
        )
    return why_not


def after_pass(
    raw: Store,
    dst: Store,
    tracked: Tracked,
    keep: bool,
    whole: bool,
    retries: _retry.RetryCounter,
) -> bool:
    """After a pass that made the target identical (``whole``: all of it): end the feed, or
    keep it ready for the next pass (every change after the position it was read at is still
    in it; values were read after that position). A pass over some partitions leaves a kept
    feed as it was. Whether kept."""
    if not keep:
        _retry.call(partial(end, raw, tracked.name), retries)
        return False
    if not whole:
        return True
    _retry.call(partial(raw.feed_mark, tracked.name, ready_note(raw, dst)), retries)
    _retry.call(partial(raw.feed_confirm, tracked.name, tracked.batch.position), retries)
    note_feed(tracked.name, ready=True, ready_at=time.time())
    return True


def untrack(source: StoreLike, target: StoreLike) -> UntrackReport:
    """End the change feed that ``copy(track_changes=True)`` from ``source`` to ``target``
    started on the source, without a catch-up pass (a cutover abandoned or postponed), so
    the source server stops keeping its WAL for it. No feed is no error
    (``report.ended`` is false). Both stores must exist and are opened read-only; the same
    store on both sides is SameStoreError."""
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(opened(source, read_only=True))
        dst = stack.enter_context(opened(target, read_only=True))
        refuse_same_store(src, dst, "untrack")
        report = UntrackReport(source=url_of(src), target=url_of(dst))
        report.change_feed = name = feed_name(src, dst)
        if src.feed_exists(name):
            src.feed_drop(name)
            report.ended = True
        forget_feed(name)
        return report
