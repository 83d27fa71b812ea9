"""Cutover: a first pass over a source being written, and the catch-up pass that follows."""

from __future__ import annotations

import dataclasses
import json
import random
import threading
from pathlib import Path

import pytest
from _cli import run
from _migrate_helpers import FailingWrites, StoreMaker, all_entries

from lakekv.errors import (
    InvalidArgumentError,
    LakekvError,
    SameStoreError,
    StoreError,
    StoreNotFoundError,
    UnsafeOperationError,
    UnsupportedError,
)
from lakekv.kv.registry import open_store
from lakekv.kv.store import Entry, PartitionDigest, Store
from lakekv.kv.wrappers import StoreWrapper
from lakekv.migrate import (
    LAKEFS_SCHEMA_VERSION,
    SCHEMA_KEY,
    SCHEMA_PARTITION,
    copy,
    dump,
    sync,
    untrack,
    verify,
)

Op = tuple[str, bytes, bytes, bytes]
"""``("set" | "delete", partition, key, value)``, one atomic write."""


PARTITIONS = [b"p%d" % i for i in range(6)]


def _fill(store: Store, per_partition: int) -> dict[tuple[bytes, bytes], bytes]:
    state: dict[tuple[bytes, bytes], bytes] = {}
    batch = []
    for p in PARTITIONS:
        for i in range(per_partition):
            k, v = b"k%05d" % i, b"v0-%d" % i
            batch.append((p, k, v))
            state[(p, k)] = v
    store.write_batch(batch)
    return state


class _Writer(threading.Thread):
    """Writes (updates, deletes, inserts) round the partitions until stopped; logs each."""

    def __init__(self, store: Store, per_partition: int) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.per_partition = per_partition
        self.ops: list[Op] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        rng = random.Random(7)
        i = 0
        try:
            while not self.stop.is_set():
                p = PARTITIONS[i % len(PARTITIONS)]
                k = b"k%05d" % rng.randrange(self.per_partition * 2)
                if i % 3 == 1:
                    self.store.delete(p, k)
                    self.ops.append(("delete", p, k, b""))
                else:
                    v = b"v%d" % (i + 1)
                    self.store.set(p, k, v)
                    self.ops.append(("set", p, k, v))
                i += 1
        except BaseException as exc:
            self.error = exc


def _matching_prefixes(
    initial: dict[tuple[bytes, bytes], bytes],
    ops: list[Op],
    copied: dict[tuple[bytes, bytes], bytes],
) -> set[int]:
    """Every number of ops after which the source held exactly ``copied`` (several when an
    op changed nothing, e.g. deleting an absent key)."""
    state = dict(initial)
    found = {0} if state == copied else set()
    for n, (kind, p, k, v) in enumerate(ops, 1):
        if kind == "set":
            state[(p, k)] = v
        else:
            state.pop((p, k), None)
        if state == copied:
            found.add(n)
    return found


def test_copy_of_a_source_being_written_is_one_point_in_time(
    backend: str, maker: StoreMaker
) -> None:
    """With a snapshot-capable source, the copy equals the source as it was at one point in
    time although writes went on throughout; any other source is flagged in the report."""
    src = maker.fresh(backend, "src")
    dst = maker.fresh("memory://", "dst")
    per_partition = 400
    initial = _fill(src, per_partition)
    writer = _Writer(src, per_partition)
    writer.start()
    try:
        while len(writer.ops) < 20 and writer.is_alive():
            threading.Event().wait(0.001)
        before = len(writer.ops)
        report = copy(src, dst, workers=2, batch_entries=7)
        during = len(writer.ops) - before
    finally:
        writer.stop.set()
        writer.join()
    assert writer.error is None
    assert during > 0, "the writer must have written while the copy ran"
    copied = {(e.partition, e.key): e.value for e in all_entries(dst)}
    if not src.capabilities.snapshot_reads:
        assert not report.snapshot
        assert any("catch-up" in w for w in report.warnings)
        return
    assert report.snapshot
    assert report.warnings == []
    matching = _matching_prefixes(initial, writer.ops, copied)
    assert matching, "the copy is no state the source ever was in"
    # ... and a state of the time the copy ran
    assert any(before <= n <= before + during for n in matching), (before, during, matching)


def test_reports_say_whether_a_snapshot_was_used(
    backend: str, maker: StoreMaker, tmp_path: Path
) -> None:
    src = maker.fresh(backend, "src")
    dst = maker.fresh("memory://", "dst")
    _fill(src, 3)
    can = src.capabilities.snapshot_reads
    copied = copy(src, dst)
    dumped = dump(src, tmp_path / "d.lkv")
    checked = verify(src, dst)
    assert checked.equal
    assert (copied.snapshot, dumped.snapshot, checked.snapshot_a) == (can, can, can)
    assert not checked.snapshot_b  # memory:// has no snapshots
    assert bool(copied.warnings) is not can
    assert bool(dumped.warnings) is not can
    assert len(checked.warnings) == (1 if can else 2)
    assert copied.to_json()["snapshot"] is can


# --- the catch-up pass -----------------------------------------------------------------------


def _change(store: Store, per_partition: int) -> None:
    """Updates, deletes and inserts spread over the partitions, plus a new partition."""
    rng = random.Random(11)
    for i in range(per_partition // 5):
        p = PARTITIONS[i % len(PARTITIONS)]
        k = b"k%05d" % rng.randrange(per_partition)
        if i % 3 == 0:
            store.delete(p, k)
        elif i % 3 == 1:
            store.set(p, k, b"updated-%d" % i)
        else:
            store.set(p, k + b"/new", b"inserted-%d" % i)
    store.set(b"brand-new", b"k", b"")  # an empty value too
    for k in [e.key for e in store.scan(PARTITIONS[-1])]:  # a partition emptied
        store.delete(PARTITIONS[-1], k)


@pytest.mark.parametrize("method", ["auto", "merge"])
def test_sync_makes_the_target_identical(
    pair: tuple[str, str], method: str, maker: StoreMaker
) -> None:
    src = maker.fresh(pair[0], "src")
    dst = maker.fresh(pair[1], "dst")
    per_partition = 300
    _fill(src, per_partition)
    src.set(SCHEMA_PARTITION, SCHEMA_KEY, LAKEFS_SCHEMA_VERSION)  # a lakeFS database
    assert copy(src, dst).written == per_partition * len(PARTITIONS) + 1
    _change(src, per_partition)
    dst.set(b"target-only", b"k", b"v")
    before = verify(src, dst)
    assert not before.equal

    dry = sync(src, dst, method=method, dry_run=True)
    assert dry.dry_run and dry.written > 0 and dry.deleted > 0
    assert verify(src, dst).to_json()["missing"] == before.missing  # nothing written

    report = sync(src, dst, method=method)
    after = verify(src, dst)
    assert after.equal, after.examples
    assert report.entries == after.entries_a
    assert report.written == before.missing + before.different
    assert report.deleted == before.extra
    both_digests = src.capabilities.digests is not None and (
        src.capabilities.digests == dst.capabilities.digests
    )
    assert report.method == ("digests" if method == "auto" and both_digests else "merge")
    if report.method == "digests":
        assert report.inserted == before.missing
        assert report.updated == before.different
    again = sync(src, dst, method=method)
    assert (again.written, again.deleted) == (0, 0)


def test_sync_refuses_what_copy_sync_refuses(maker: StoreMaker, tmp_path: Path) -> None:
    """A mistyped source, the same store twice, a source that is no lakeFS database."""
    dst = maker.fresh("memory://", "dst")
    dst.set(b"p", b"k", b"keep me")
    missing = f"sqlite:///{tmp_path}/typo.db"
    with pytest.raises(StoreNotFoundError):
        sync(missing, dst)
    assert not (tmp_path / "typo.db").exists()
    db = f"sqlite:///{tmp_path}/one.db"
    with open_store(db) as one:
        one.set(SCHEMA_PARTITION, SCHEMA_KEY, LAKEFS_SCHEMA_VERSION)
    with pytest.raises(SameStoreError):
        sync(db, f"sqlite:///{tmp_path}/./one.db")
    not_lakefs = maker.fresh("memory://", "src")
    not_lakefs.set(b"other", b"k", b"v")
    with pytest.raises(UnsafeOperationError):
        sync(not_lakefs, dst)
    assert dst.get(b"p", b"k").value == b"keep me"
    assert sync(not_lakefs, dst, force=True).deleted == 1


def test_sync_by_digests_needs_stores_that_compute_the_same(maker: StoreMaker) -> None:
    src = maker.fresh("memory://", "src")
    dst = maker.fresh("memory://", "dst")
    with pytest.raises(UnsupportedError):
        sync(src, dst, method="digests")


def test_verify_counts_differences_after_a_long_equal_run(
    pair: tuple[str, str], maker: StoreMaker
) -> None:
    """Verify compares equal runs of pages at once; differences after them, across page
    boundaries of different sizes on each side, are still each found and counted."""
    a = maker.fresh(pair[0], "a")
    b = maker.fresh(pair[1], "b")
    rows = [(b"big", b"k%06d" % i, b"v%d" % i) for i in range(12_000)]
    a.write_batch(rows)
    b.write_batch(rows)
    assert verify(a, b).equal
    b.set(b"big", b"k007000", b"changed")  # after the first page
    b.delete(b"big", b"k011999")  # the very last entry
    b.set(b"big", b"k011000x", b"extra")
    first = verify(a, b)  # the first difference is past the first page
    assert (first.missing, first.extra, first.different) == (1, 1, 1)
    assert (first.entries_a, first.entries_b) == (12_000, 12_000)
    a.set(b"big", b"k000000", b"changed first")
    report = verify(a, b)
    assert (report.missing, report.extra, report.different) == (1, 1, 2)
    assert (report.entries_a, report.entries_b) == (12_000, 12_000)
    kinds = sorted((d.kind, d.key) for d in report.examples)
    assert kinds == [
        ("different", "k000000"),
        ("different", "k007000"),
        ("extra", "k011000x"),
        ("missing", "k011999"),
    ]


# --- the command line ------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code, out, _err = run(capsys, *args)
    return code, out


def test_cli_first_pass_hint_then_catch_up_then_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = f"sqlite:///{tmp_path}/old.db", f"sqlite:///{tmp_path}/new.db"
    with open_store(old) as s:
        _fill(s, 20)
        s.set(SCHEMA_PARTITION, SCHEMA_KEY, LAKEFS_SCHEMA_VERSION)  # a lakeFS database
    code, out = _cli(capsys, "copy", "--from", old, "--to", new)
    assert code == 0
    assert "source read at one point in time (snapshot)" in out
    assert f"lakekv cutover --from {old} --to {new}" in out  # the cutover hint
    with open_store(old) as s:
        _change(s, 20)
    code, out = _cli(capsys, "verify", "--from", old, "--to", new)
    assert code == 1
    code, out = _cli(capsys, "sync", "--from", old, "--to", new, "--dry-run")
    assert code == 0 and "dry run: would make" in out
    code, out = _cli(capsys, "sync", "--from", old, "--to", new, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["snapshot"] is True and report["written"] > 0 and report["deleted"] > 0
    code, out = _cli(capsys, "verify", "--from", old, "--to", new)
    assert code == 0 and "identical" in out
    code, out = _cli(capsys, "sync", "--from", old, "--to", new)
    assert code == 0 and "written 0, deleted 0" in out
    assert f"next: lakekv verify --from {old} --to {new}" in out


def test_cli_copy_from_a_store_without_snapshots_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store("memory://no-snapshots") as src:  # a source must exist: keep it open
        src.set(b"p", b"k", b"v")
        code, out = _cli(
            capsys, "copy", "--from", "memory://no-snapshots", "--to", f"sqlite:///{tmp_path}/t.db"
        )
    assert code == 0
    assert "warning: memory://no-snapshots cannot be read at one point in time" in out
    assert "run the catch-up pass" in out


def test_a_resumed_copy_says_it_spans_two_points_in_time(maker: StoreMaker, tmp_path: Path) -> None:
    """One snapshot cannot span several runs: a resumed copy warns and names the catch-up."""
    src = maker.fresh(f"sqlite:///{tmp_path}/src.db")
    inner = maker.fresh("memory://", "dst")
    _fill(src, 300)
    ckpt = tmp_path / "copy.ckpt"
    with pytest.raises(LakekvError, match="simulated crash"):
        copy(src, FailingWrites(inner, ok_batches=3), checkpoint=ckpt, batch_entries=100)
    resumed = copy(src, FailingWrites(inner, ok_batches=10**6), checkpoint=ckpt)
    assert resumed.snapshot
    assert any(w.startswith("resumed from a checkpoint") for w in resumed.warnings)
    fresh = copy(src, maker.fresh("memory://", "other"))
    assert fresh.warnings == []


# --- copy and verify of whole ranges (raw rows, range digests) ---------------------------------


@pytest.mark.parametrize("policy", ["fail", "overwrite"])
def test_copy_into_a_partly_filled_target_counts_every_entry(
    backend: str, policy: str, maker: StoreMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether entries or raw chunks move (two stores of one raw format), a copy into a
    target holding some of the entries, some with other values, writes the missing ones,
    counts the equal ones unchanged and the others as conflicts (or overwrites them)."""
    src = maker.fresh(backend, "src")
    dst = maker.fresh(backend, "dst")
    rows = [Entry(b"big", b"k%05d" % i, b"v%d" % i) for i in range(3000)]
    rows += [Entry(b"small-%d" % i, b"k", b"v") for i in range(5)]
    src.write_batch(rows)
    dst.write_batch([e for e in rows[1000:1100]])  # equal
    dst.write_batch([Entry(e.partition, e.key, b"other") for e in rows[2000:2010]])
    dst.set(b"big", b"k01500x", b"target only")
    raw_writes = []
    original = type(dst).write_raw
    monkeypatch.setattr(
        type(dst), "write_raw", lambda self, chunks: raw_writes.append(1) or original(self, chunks)
    )
    report = copy(src, dst, on_conflict=policy, batch_entries=500, workers=2)
    assert report.unchanged == 100
    assert report.written == len(rows) - 110 + (10 if policy == "overwrite" else 0)
    assert report.conflicts == (10 if policy == "fail" else 0)
    same_raw = src.capabilities.raw_rows is not None and (
        src.capabilities.raw_rows == dst.capabilities.raw_rows
    )
    assert bool(raw_writes) is same_raw
    check = verify(src, dst)
    assert check.extra == 1
    assert check.different == (10 if policy == "fail" else 0)
    assert check.missing == 0
    again = copy(src, dst, on_conflict=policy, batch_entries=500)  # a re-run only compares
    assert again.written == 0
    assert again.unchanged == len(rows) - (10 if policy == "fail" else 0)


def test_verify_by_range_digests_finds_each_difference(backend: str, maker: StoreMaker) -> None:
    """Each difference is found once in a partition of several ranges (compared by digest
    or raw chunk where both engines can), after equal ranges and after differing ones, with
    or without the partition digests first; equal partitions are proven equal by partition
    digests only where both stores compute them."""
    a = maker.fresh(backend, "a")
    b = maker.fresh(backend, "b")
    rows = [Entry(b"big", b"k%06d" % i, b"v%d" % i) for i in range(30_000)]
    same = [Entry(b"same", b"s%04d" % i, b"v%d" % i) for i in range(1000)]
    a.write_batch(rows + same)
    b.write_batch(rows + same)
    b.set(b"big", b"k000500", b"changed")  # in the first range
    b.delete(b"big", b"k025000")  # in the fourth range
    b.set(b"big", b"k029999", b"changed last")
    digests = a.capabilities.digests is not None
    for whole in (True, False):
        report = verify(a, b, partition_digests=whole)
        assert (report.missing, report.extra, report.different) == (1, 0, 2)
        assert (report.entries_a, report.entries_b) == (31_000, 30_999)
        assert report.bytes_a == sum(len(e.key) + len(e.value) for e in rows + same)
        expected = "partition digests" if whole and digests else None
        assert report.compared_by == expected or (
            expected is None and report.compared_by != "partition digests"
        )
        assert [d.key for d in report.examples] == ["k000500", "k025000", "k029999"]


class _NoDigests(StoreWrapper):
    """Digests fail as a statement_timeout would make them: the whole store's, or each
    partition's too (``partitions``). Read directly, not through a snapshot of the inner
    store (which would not fail)."""

    def __init__(self, inner: Store, partitions: bool) -> None:
        caps = dataclasses.replace(inner.capabilities, snapshot_reads=False)
        super().__init__(inner, capabilities=caps)
        self.partitions = partitions

    def _digest_partitions(self) -> dict[bytes, PartitionDigest]:
        raise StoreError("canceling statement due to statement timeout")

    def _digest_partition(self, partition: bytes) -> PartitionDigest:
        if self.partitions:
            raise StoreError("canceling statement due to statement timeout")
        return super()._digest_partition(partition)


def test_verify_falls_back_when_the_servers_cannot_digest(backend: str, maker: StoreMaker) -> None:
    """A digest the server refuses to finish (a statement_timeout) is no failed verify: the
    partitions are compared one by one, then by ranges, with a warning; differences are
    still found and named."""
    a, b = maker.fresh(backend, "a"), maker.fresh(backend, "b")
    if a.capabilities.digests is None:
        pytest.skip(f"{a.scheme}:// declares no digests")
    rows = [Entry(b"p%d" % (i % 3), b"k%05d" % i, b"v%d" % i) for i in range(3000)]
    a.write_batch(rows)
    b.write_batch(rows)
    for each in (False, True):
        report = verify(_NoDigests(a, each), _NoDigests(b, each))
        assert report.equal and report.entries_a == report.entries_b == 3000
        assert any("could not digest the whole store" in w for w in report.warnings)
        assert any("its digests failed" in w for w in report.warnings) is each
    b.set(b"p1", b"k00001", b"changed")
    report = verify(_NoDigests(a, True), _NoDigests(b, True))
    assert report.different == 1 and [d.key for d in report.examples] == ["k00001"]


# --- the catch-up by a change feed --------------------------------------------------------------


def _lakefs_source(maker: StoreMaker, backend: str, per_partition: int = 300) -> Store:
    src = maker.fresh(backend, "src")
    _fill(src, per_partition)
    src.set(SCHEMA_PARTITION, SCHEMA_KEY, LAKEFS_SCHEMA_VERSION)  # a lakeFS database
    return src


def test_catch_up_by_change_feed_visits_only_what_changed(
    backend: str, maker: StoreMaker, tmp_path: Path
) -> None:
    """A tracked first pass over a source being written, then changes: the catch-up visits
    only the keys the feed lists, makes the target identical, counts exactly what a verify
    saw, and ends the feed. A source without change feeds refuses before writing."""
    src = _lakefs_source(maker, backend)
    with pytest.raises(InvalidArgumentError, match="a dry run starts nothing"):
        copy(src, f"sqlite:///{tmp_path}/dry.db", track_changes=True, dry_run=True)
    if not src.capabilities.change_feed:
        target = f"sqlite:///{tmp_path}/never-created.db"
        with pytest.raises(UnsupportedError, match="cannot record changes"):
            copy(src, target, track_changes=True)
        assert not (tmp_path / "never-created.db").exists()  # refused before opening it
        return
    dst = maker.fresh(backend, "dst")
    try:
        writer = _Writer(src, 300)
        writer.start()
        first = copy(src, dst, track_changes=True, batch_entries=200, workers=2)
        writer.stop.set()
        writer.join()
        assert writer.error is None and writer.ops
        assert first.snapshot and first.change_feed is not None and first.change_feed_ready
        assert src.feed_exists(first.change_feed)
        _change(src, 300)
        before = verify(src, dst)
        assert not before.equal and before.extra > 0

        dry = sync(src, dst, dry_run=True)
        assert dry.method == "changes" and dry.written == before.missing + before.different
        assert verify(src, dst).missing == before.missing  # nothing written
        assert src.feed_exists(first.change_feed)  # a dry run leaves the feed as it was

        report = sync(src, dst)
        after = verify(src, dst)
        assert after.equal, after.examples
        assert report.method == "changes" and report.change_feed == first.change_feed
        assert (report.inserted, report.updated, report.deleted) == (
            before.missing,
            before.different,
            before.extra,
        )
        assert report.written == before.missing + before.different
        assert report.entries < after.entries_a  # only the listed keys were visited
        assert report.changes > 0  # (the writes during the pass are in ``after.equal``)
        assert not report.change_feed_kept and not src.feed_exists(first.change_feed)
        again = sync(src, dst)  # no feed any more: the stores are compared, nothing differs
        assert again.method != "changes" and (again.written, again.deleted) == (0, 0)
    finally:
        untrack(src, dst)


def test_a_kept_feed_serves_a_rehearsal_then_the_catch_up(
    feed_backend: str, maker: StoreMaker
) -> None:
    src = _lakefs_source(maker, feed_backend)
    dst = maker.fresh(feed_backend, "dst")
    try:
        copy(src, dst, track_changes=True)
        _change(src, 300)
        rehearsal = sync(src, dst, keep_tracking=True)
        assert rehearsal.method == "changes" and rehearsal.change_feed_kept
        assert verify(src, dst).equal
        src.set(PARTITIONS[0], b"k00001", b"changed after the rehearsal")
        src.delete(PARTITIONS[1], b"k00002")
        final = sync(src, dst)
        assert final.method == "changes" and not final.change_feed_kept
        assert (final.entries, final.updated, final.deleted) == (2, 1, 1)
        assert verify(src, dst).equal
    finally:
        untrack(src, dst)


def test_a_feed_that_cannot_be_trusted_is_not_used(feed_backend: str, maker: StoreMaker) -> None:
    """A first pass that met conflicts records no ready note: the catch-up by the feed alone
    is refused, and ``auto`` compares the stores instead, says why, and ends the feed."""
    src = _lakefs_source(maker, feed_backend)
    dst = maker.fresh(feed_backend, "dst")
    try:
        dst.set(PARTITIONS[0], b"k00007", b"a value of the target's own")
        first = copy(src, dst, track_changes=True)
        assert first.conflicts == 1 and not first.change_feed_ready
        assert any("compare the stores" in w for w in first.warnings)
        src.set(PARTITIONS[2], b"k00003", b"changed")
        with pytest.raises(UnsafeOperationError, match="no record that its first pass finished"):
            sync(src, dst, method="changes")
        report = sync(src, dst)
        assert report.method == "digests" and report.updated == 2
        assert any("no record that its first pass finished" in w for w in report.warnings)
        assert verify(src, dst).equal
        assert first.change_feed is not None and not src.feed_exists(first.change_feed)
        with pytest.raises(UnsupportedError, match="holds no change feed"):
            sync(src, dst, method="changes")
    finally:
        untrack(src, dst)


def test_a_resumed_tracked_copy_keeps_its_feed(
    feed_backend: str, maker: StoreMaker, tmp_path: Path
) -> None:
    """Changes between an interrupted run and its resumption are in the feed the first run
    started; a resumption whose feed is gone is refused."""
    src = _lakefs_source(maker, feed_backend)
    inner = maker.fresh(feed_backend, "dst")
    other = maker.fresh(feed_backend, "other")
    try:
        for target, ckpt in ((inner, tmp_path / "copy.ckpt"), (other, tmp_path / "other.ckpt")):
            with pytest.raises(LakekvError, match="simulated crash"):
                copy(  # 300 entries a partition: 5 batches of 100 finish the first
                    src,
                    FailingWrites(target, ok_batches=5),
                    checkpoint=ckpt,
                    batch_entries=100,
                    workers=1,
                    track_changes=True,
                )
        _change(src, 300)  # partitions already copied change too
        resumed = copy(
            src,
            FailingWrites(inner, ok_batches=10**6),
            checkpoint=tmp_path / "copy.ckpt",
            track_changes=True,
        )
        assert resumed.resumed_partitions > 0 and resumed.change_feed_ready
        assert any("the change feed started by the first run" in w for w in resumed.warnings)
        report = sync(src, inner)
        assert report.method == "changes"
        check = verify(src, inner)
        assert check.equal, check.examples

        assert untrack(src, other).ended
        with pytest.raises(UnsafeOperationError, match="change feed its first run started"):
            copy(src, other, checkpoint=tmp_path / "other.ckpt", track_changes=True)
    finally:
        untrack(src, inner)
        untrack(src, other)


def test_cli_tracked_first_pass_then_catch_up_then_untrack(
    feed_backend: str, maker: StoreMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _lakefs_source(maker, feed_backend, per_partition=20)
    dst = maker.fresh(feed_backend, "dst")
    a = src.url.render(reveal_password=True)
    b = dst.url.render(reveal_password=True)
    try:
        code, out = _cli(capsys, "copy", "--from", a, "--to", b, "--track-changes")
        assert code == 0
        assert "records on the source (target ready)" in out
        assert "run the cutover (its catch-up reads the change feed)" in out
        _change(src, 20)
        code, out = _cli(capsys, "sync", "--from", a, "--to", b, "--keep-tracking", "--json")
        report = json.loads(out)
        assert code == 0 and report["method"] == "changes" and report["change_feed_kept"]
        code, out = _cli(capsys, "untrack", "--from", a, "--to", b)
        assert code == 0 and " ended" in out
        code, out = _cli(capsys, "untrack", "--from", a, "--to", b)
        assert code == 0 and "was not recording" in out
        code, out = _cli(capsys, "sync", "--from", a, "--to", b)
        assert code == 0 and "compared by digests" in out
    finally:
        untrack(src, dst)
