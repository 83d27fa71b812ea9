"""Library-level migration tests: round trips across every pair of configured stores,
conflict policies, sync, dry run, schema versions, the lakeFS walk, resume, reports."""

from __future__ import annotations

import importlib
import io
import json
from pathlib import Path

import pytest
from _migrate_helpers import (
    BINARY_ENTRIES,
    FailingWrites,
    HiddenPartitions,
    StoreMaker,
    all_entries,
)

from lakekv.errors import LakekvError, SchemaVersionMismatchError
from lakekv.kv.registry import open_store
from lakekv.kv.store import Entry, Store
from lakekv.kv.url import StoreURL
from lakekv.migrate import (
    SCHEMA_KEY,
    SCHEMA_PARTITION,
    Progress,
    copy,
    dump,
    load,
    verify,
)
from lakekv.migrate._pass import Pass
from lakekv.migrate.reports import VerifyReport
from lakekv.migrate.sample import sample

N = 1500


# --- round trips over every pair of stores ---------------------------------------------------


def test_dump_load_round_trip(pair: tuple[str, str], maker: StoreMaker, tmp_path: Path) -> None:
    src = maker.fresh(pair[0], "src")
    dst = maker.fresh(pair[1], "dst")
    sample(src, N, seed=11)
    src.write_batch(BINARY_ENTRIES)
    path = tmp_path / "db.lkv.zst"
    d = dump(src, path)
    assert d.entries == N + len(BINARY_ENTRIES) and d.sha256 is not None
    assert d.lakefs_schema_version == "4"
    loaded = load(dst, path)
    assert loaded.prechecked
    assert loaded.written == d.entries and loaded.conflicts == 0
    assert loaded.partitions == d.partitions
    v = verify(src, dst)
    assert v.equal, v.to_json()
    assert v.entries_a == v.entries_b == d.entries
    assert dst.get(b"bin\x00\xff", b"\x00").value == b""


def test_copy_round_trip_and_rerun(pair: tuple[str, str], maker: StoreMaker) -> None:
    src = maker.fresh(pair[0], "src")
    dst = maker.fresh(pair[1], "dst")
    sample(src, N, seed=12)
    src.write_batch(BINARY_ENTRIES)
    total = N + len(BINARY_ENTRIES)
    first = copy(src, dst, workers=3)
    assert (first.entries, first.written, first.conflicts) == (total, total, 0)
    assert verify(src, dst).equal
    again = copy(src, dst, workers=3)
    assert (again.written, again.unchanged, again.conflicts) == (0, total, 0)
    quick = verify(src, dst, quick=True)
    assert quick.equal and quick.entries_a == total


# --- conflict policies, sync, dry run ------------------------------------------------------------


def _conflict_setup(maker: StoreMaker, base: str) -> tuple[Store, Store]:
    src = maker.fresh(base, "src")
    dst = maker.fresh(base, "dst")
    src.write_batch([Entry(b"p", b"a", b"1"), Entry(b"p", b"b", b"2"), Entry(b"p", b"c", b"3")])
    dst.write_batch([Entry(b"p", b"a", b"1"), Entry(b"p", b"b", b"other")])
    return src, dst


def test_conflict_fail_reports_and_keeps_target(backend_url: str, maker: StoreMaker) -> None:
    src, dst = _conflict_setup(maker, backend_url)
    r = copy(src, dst)
    assert (r.written, r.unchanged, r.skipped, r.conflicts) == (1, 1, 0, 1)
    assert [(e.partition, e.key) for e in r.conflict_examples] == [("p", "b")]
    assert dst.get(b"p", b"b").value == b"other"
    assert dst.get(b"p", b"c").value == b"3"


def test_conflict_skip_and_overwrite(backend_url: str, maker: StoreMaker) -> None:
    src, dst = _conflict_setup(maker, backend_url)
    r = copy(src, dst, on_conflict="skip")
    assert (r.written, r.unchanged, r.skipped, r.conflicts) == (1, 1, 1, 0)
    assert dst.get(b"p", b"b").value == b"other"
    r = copy(src, dst, on_conflict="overwrite")
    assert (r.written, r.unchanged, r.conflicts) == (1, 2, 0)
    assert dst.get(b"p", b"b").value == b"2"
    assert verify(src, dst).equal


def test_load_conflict_policies(backend_url: str, maker: StoreMaker, tmp_path: Path) -> None:
    src, dst = _conflict_setup(maker, backend_url)
    dump(src, tmp_path / "d.lkv")
    r = load(dst, tmp_path / "d.lkv")
    assert (r.written, r.unchanged, r.conflicts) == (1, 1, 1)
    r = load(dst, tmp_path / "d.lkv", on_conflict="skip")
    assert (r.written, r.unchanged, r.skipped) == (0, 2, 1)
    r = load(dst, tmp_path / "d.lkv", on_conflict="overwrite")
    assert (r.written, r.unchanged) == (1, 2)
    assert verify(src, dst).equal


def test_sync_makes_an_exact_mirror(backend_url: str, maker: StoreMaker) -> None:
    src = maker.fresh(backend_url, "src")
    dst = maker.fresh(backend_url, "dst")
    sample(src, 400, seed=3)
    copy(src, dst)
    dst.set(b"only-in-target", b"k", b"v")
    dst.set(b"graveler", b"repos/zzz-extra", b"x")
    dst.delete(b"graveler", next(iter(src.scan(b"graveler"))).key)
    dry = copy(src, dst, sync=True, dry_run=True)
    assert (dry.deleted, dry.written) == (2, 1)
    assert not verify(src, dst).equal  # the dry run changed nothing
    r = copy(src, dst, sync=True)
    assert (r.deleted, r.written, r.conflicts) == (2, 1, 0)
    assert verify(src, dst).equal


def test_dry_run_writes_nothing(backend_url: str, maker: StoreMaker, tmp_path: Path) -> None:
    src, dst = _conflict_setup(maker, backend_url)
    before = all_entries(dst)
    r = copy(src, dst, dry_run=True)
    assert (r.written, r.unchanged, r.conflicts, r.dry_run) == (1, 1, 1, True)
    dump(src, tmp_path / "d.lkv")
    lr = load(dst, tmp_path / "d.lkv", dry_run=True, on_conflict="overwrite")
    assert (lr.written, lr.unchanged, lr.conflicts) == (2, 1, 0)
    assert all_entries(dst) == before


# --- schema version ----------------------------------------------------------------------


def test_schema_version_mismatch_is_refused(
    backend_url: str, maker: StoreMaker, tmp_path: Path
) -> None:
    src = maker.fresh(backend_url, "src")
    dst = maker.fresh(backend_url, "dst")
    src.write_batch([Entry(SCHEMA_PARTITION, SCHEMA_KEY, b"4"), Entry(b"graveler", b"k", b"v")])
    dst.set(SCHEMA_PARTITION, SCHEMA_KEY, b"3")
    with pytest.raises(SchemaVersionMismatchError):
        copy(src, dst)
    dump(src, tmp_path / "d.lkv")
    dump(src, tmp_path / "d.json", format="lakefs")
    for name in ("d.lkv", "d.json"):
        with pytest.raises(SchemaVersionMismatchError):
            load(dst, tmp_path / name)
    assert list(dst.scan(b"graveler")) == []
    forced = copy(src, dst, force=True, on_conflict="overwrite")
    assert forced.written == 2
    assert dst.get(SCHEMA_PARTITION, SCHEMA_KEY).value == b"4"


def test_schema_version_is_written_last(backend_url: str, maker: StoreMaker) -> None:
    src = maker.fresh(backend_url, "src")
    dst = FailingWrites(maker.fresh(backend_url, "dst"), ok_batches=1)
    sample(src, 300, seed=5)
    with pytest.raises(LakekvError, match="simulated crash"):
        copy(src, dst, workers=1, batch_entries=50)
    with pytest.raises(LakekvError, match="not found"):
        dst.inner.get(SCHEMA_PARTITION, SCHEMA_KEY)


# --- partitions: the lakeFS walk -----------------------------------------------------------


def test_walk_finds_every_lakefs_partition(backend_url: str, maker: StoreMaker) -> None:
    inner = maker.fresh(backend_url, "src")
    sample(inner, 2500, seed=4)
    hidden = HiddenPartitions(inner)
    dst = maker.fresh(backend_url, "dst")
    r = copy(hidden, dst)
    assert r.partition_source == "lakefs-walk"
    assert verify(inner, dst).equal
    d = dump(hidden, io.BytesIO())
    assert d.partition_source == "lakefs-walk" and d.entries == 2500
    # A partition nothing points to is invisible to the walk, and verify notices.
    inner.set(b"orphan-staging:0000", b"obj", b"data")
    copy(hidden, dst)
    v = verify(inner, dst)
    assert (v.missing, v.extra) == (1, 0)


# --- resume ----------------------------------------------------------------------------------


def test_checkpoint_resume_after_failure(
    backend_url: str, maker: StoreMaker, tmp_path: Path
) -> None:
    src = maker.fresh(backend_url, "src")
    inner = maker.fresh(backend_url, "dst")
    sample(src, 2000, seed=6)
    ckpt = tmp_path / "copy.ckpt"
    with pytest.raises(LakekvError, match="simulated crash"):
        copy(src, FailingWrites(inner, ok_batches=5), checkpoint=ckpt, batch_entries=100)
    assert 0 < len(all_entries(inner)) < 2000
    # The resumed copy goes through a store with the same URL.
    resumed = copy(src, FailingWrites(inner, ok_batches=10**6), checkpoint=ckpt)
    assert resumed.conflicts == 0
    assert resumed.entries < 2000
    assert resumed.resumed_partitions >= 1
    assert verify(src, inner).equal
    # The pass finished: the next run with the file is a new full pass that writes nothing.
    again = copy(src, FailingWrites(inner, ok_batches=10**6), checkpoint=ckpt)
    assert again.new_pass and again.resumed_partitions == 0
    assert (again.entries, again.written, again.unchanged) == (2000, 0, 2000)


def test_checkpoint_of_another_copy_is_refused(maker: StoreMaker, tmp_path: Path) -> None:
    a = maker.fresh("memory://", "a")
    b = maker.fresh("memory://", "b")
    a.set(b"p", b"k", b"v")
    copy(a, b, checkpoint=tmp_path / "c")
    with pytest.raises(LakekvError, match="another copy"):
        copy(b, a, checkpoint=tmp_path / "c")


# --- verify ----------------------------------------------------------------------------------


def test_verify_reports_each_kind_of_difference(backend_url: str, maker: StoreMaker) -> None:
    a = maker.fresh(backend_url, "a")
    b = maker.fresh(backend_url, "b")
    a.write_batch([Entry(b"p", b"%03d" % i, b"v") for i in range(50)])
    b.write_batch([Entry(b"p", b"%03d" % i, b"v") for i in range(1, 50)])
    b.set(b"p", b"010", b"changed")
    b.set(b"q\xff", b"extra", b"")
    v = verify(a, b, max_diffs=2)
    assert (v.missing, v.extra, v.different, v.equal) == (1, 1, 1, False)
    assert len(v.examples) == 2
    full = verify(a, b)
    kinds = {(d.kind, d.partition, d.key) for d in full.examples}
    assert kinds == {
        ("missing", "p", "000"),
        ("different", "p", "010"),
        ("extra", "q\\xff", "extra"),
    }
    q = verify(a, b, quick=True)
    assert q.different_partitions == 2 and not q.equal


# --- reports, progress, credentials --------------------------------------------------------


def test_reports_are_json_and_never_show_credentials(maker: StoreMaker) -> None:
    inner = maker.fresh("memory://", "src")
    inner.write_batch(BINARY_ENTRIES)
    secret_url = StoreURL.parse("memory://user:hunter2@host/x?aws_secret_key=zzz-secret&table=t")
    src = HiddenPartitions(inner, secret_url)
    out = io.BytesIO()
    seen: list[Progress] = []
    d = dump(src, out, partitions=[b"bin\x00\xff"], progress=seen.append)
    assert seen and seen[-1].entries == 3 and seen[-1].partitions_done == 1
    c = copy(src, maker.fresh("memory://", "dst"), partitions=[b"bin\x00\xff"])
    for text in (
        out.getvalue(),
        json.dumps(d.to_json()).encode(),
        json.dumps(c.to_json()).encode(),
    ):
        assert b"hunter2" not in text and b"zzz-secret" not in text and b"user" not in text
    assert d.to_json()["source"] == "memory://host/x?table=t"
    assert c.to_json()["entries_per_second"] >= 0


def test_sample_is_deterministic_and_lakefs_shaped(maker: StoreMaker) -> None:
    a = maker.fresh("memory://", "a")
    b = maker.fresh("memory://", "b")
    ra = sample(a, 3000, seed=9)
    sample(b, 3000, seed=9)
    assert ra.entries == 3000 == len(all_entries(a))
    assert verify(a, b).equal
    assert a.get(SCHEMA_PARTITION, SCHEMA_KEY).value == b"4"
    assert ra.non_utf8_keys >= 1 and ra.empty_values >= 1
    names = list(a.list_partitions())
    assert b"graveler" in names and b"cleanup-tokens" in names and b"auth" in names
    assert any(b":" in p for p in names)  # staging partitions
    c = maker.fresh("memory://", "c")
    sample(c, 3000, seed=10)
    assert not verify(a, c, quick=True).equal
    tiny = maker.fresh("memory://", "tiny")
    assert sample(tiny, 5).entries == 5 == len(all_entries(tiny))
    assert tiny.get(SCHEMA_PARTITION, SCHEMA_KEY).value == b"4"


def test_url_arguments_are_opened_and_closed(tmp_path: Path) -> None:
    a = f"sqlite:///{tmp_path}/a.db"
    b = f"sqlite:///{tmp_path}/b.db"
    sample(a, 200, seed=1)
    assert copy(a, b).written == 200
    assert verify(a, b).equal
    with open_store(b) as s:
        assert len(all_entries(s)) == 200


# --- the one shape of a pass ------------------------------------------------------------------


class _Recorded(Pass[VerifyReport]):
    """A pass that records its steps; ``fail`` names the step that raises."""

    def __init__(self, partitions: list[bytes] | None, fail: str = "") -> None:
        self.partitions, self.fail, self.steps = partitions, fail, []

    def _step(self, name: str) -> None:
        self.steps.append(name)
        if name == self.fail:
            raise RuntimeError(name)

    def open(self) -> None:
        self._step("open")

    def versions(self) -> None:
        self._step("versions")

    def prepare(self) -> None:
        self._step("prepare")

    def snapshot(self) -> None:
        self._step("snapshot")

    def plan(self) -> list[bytes] | None:
        self._step("plan")
        self.report = VerifyReport()
        return self.partitions

    def move(self, partitions: list[bytes]) -> None:
        self._step(f"move {b','.join(partitions).decode()}")

    def abandon(self) -> None:
        self.steps.append("abandon")

    def finish(self) -> None:
        self._step("finish")


def test_a_pass_runs_its_steps_in_one_order_with_the_schema_partition_last() -> None:
    p = _Recorded([b"a", SCHEMA_PARTITION, b"b"])
    report = p.run()
    assert p.steps == [
        "open",
        "versions",
        "prepare",
        "snapshot",
        "plan",
        "move a,b",
        f"move {SCHEMA_PARTITION.decode()}",
        "finish",
    ]
    assert report.seconds > 0
    # no schema partition in the plan: no schema step; a streamed plan moves once
    plain = _Recorded([b"a"])
    plain.run()
    assert plain.steps[5:] == ["move a", "finish"]
    streamed = _Recorded(None)
    streamed.run()
    assert streamed.steps[5:] == ["move ", "finish"]


@pytest.mark.parametrize("fail", ["snapshot", "plan"])
def test_a_pass_abandons_what_it_prepared_when_it_fails_before_moving(fail: str) -> None:
    p = _Recorded([b"a"], fail=fail)
    with pytest.raises(RuntimeError):
        p.run()
    assert p.steps[-2:] == [fail, "abandon"]
    assert not any(s.startswith("move") for s in p.steps)


def test_every_pass_has_the_one_shape() -> None:
    for name, cls in [
        ("copy", "_CopyPass"),
        ("load", "_LoadPass"),
        ("sync", "_SyncPass"),
        ("verify", "_VerifyPass"),
    ]:
        cls_ = getattr(importlib.import_module(f"lakekv.migrate.{name}"), cls)
        assert issubclass(cls_, Pass)
        assert "run" not in vars(cls_), f"{cls} must not reorder the steps"
