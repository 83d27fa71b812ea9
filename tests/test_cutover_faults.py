"""A fault test of the cutover: random interleavings of writes to the source, interference
with the target, first passes and catch-ups stopped, failing or killed (``kill -9``), and
targets lost and re-created (a server restarted without its data), on a PostgreSQL source
with a change feed into PostgreSQL, SQLite, DynamoDB and Redis targets.

The invariant: whenever lakekv claims the stores identical (``sync`` returns, ``copy --sync``
returns), ``verify`` finds them identical; any run that cannot prove it fails instead. A
final catch-up either fails or leaves the stores identical: never success with a difference.
"""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _migrate_helpers import FailingWrites, StoreMaker

from lakekv import open_store
from lakekv.errors import LakekvError
from lakekv.kv.registry import driver_class
from lakekv.kv.store import Store
from lakekv.kv.url import StoreURL
from lakekv.migrate import (
    LAKEFS_SCHEMA_VERSION,
    SCHEMA_KEY,
    SCHEMA_PARTITION,
    copy,
    sync,
    untrack,
    verify,
)
from lakekv.migrate._pair import LAKEFS_MARKS
from lakekv.testing.plugin import configured_stores

ROOT = Path(__file__).resolve().parent.parent
TARGET_SCHEMES = ("postgres", "sqlite", "dynamodb", "redis")
SEEDS = range(6)
PARTITIONS = [b"graveler", b"auth", b"repo-a", b"repo-b"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "faults_pair" in metafunc.fixturenames:
        stores = configured_stores(metafunc.config)
        sources = [
            u for u in stores if driver_class(StoreURL.parse(u).scheme).capabilities.change_feed
        ]
        pairs = [
            (s, t)
            for s in sources[:1]
            for t in stores
            if StoreURL.parse(t).scheme in TARGET_SCHEMES
        ]
        ids = [f"{StoreURL.parse(s).scheme}-to-{StoreURL.parse(t).scheme}" for s, t in pairs]
        metafunc.parametrize("faults_pair", pairs, ids=ids)


class _Run:
    """One random cutover: the stores, the random source, the log of what happened."""

    def __init__(self, src: Store, dst_url: str, tmp: Path, seed: int) -> None:
        self.src, self.dst_url, self.tmp = src, dst_url, tmp
        self.rng = random.Random(seed)
        self.dst = open_store(dst_url)
        self.log: list[str] = []
        self.ckpt = tmp / f"first-{seed}.ckpt"

    # --- the world --------------------------------------------------------------------------

    def write_source(self) -> None:
        rng = self.rng
        batch: dict[tuple[bytes, bytes], bytes] = {}
        for _ in range(rng.randrange(1, 40)):
            p = rng.choice(PARTITIONS)
            k = b"k%04d" % rng.randrange(400)
            if rng.random() < 0.3:
                self.src.delete(p, k)
                batch.pop((p, k), None)
            else:
                batch[(p, k)] = b"v%d" % rng.randrange(10**6)
        self.src.write_batch([(p, k, v) for (p, k), v in batch.items()])
        self.log.append(f"source: {len(batch)} writes and some deletes")

    def interfere(self) -> None:
        """Something else writes to the target: lakeFS started on it (its markers
        rewritten, commits), or a stray write."""
        rng = self.rng
        if rng.random() < 0.5:
            self.dst.set(*LAKEFS_MARKS[0], b"dynamodb" if rng.random() < 0.5 else b"postgres")
        self.dst.set(rng.choice(PARTITIONS), b"foreign-%d" % rng.randrange(100), b"x")
        self.log.append("target: written by something else")

    def lose_target(self) -> None:
        """The target server restarted without its data (or the database was re-created)."""
        self.dst.destroy()
        self.dst = open_store(self.dst_url)
        self.log.append("target: lost and re-created empty")

    # --- lakekv -----------------------------------------------------------------------------

    def first_pass(self) -> None:
        rng = self.rng
        how = rng.choice(["plain", "tracked", "tracked", "failing", "killed", "stopped"])
        kwargs: dict[str, object] = {
            "checkpoint": self.ckpt if rng.random() < 0.7 else None,
            "track_changes": how != "plain" and rng.random() < 0.8,
            "batch_entries": 50,
        }
        self.log.append(f"copy ({how}, {kwargs})")
        if how == "killed":
            self._killed_copy(bool(kwargs["track_changes"]))
            return
        target: Store = self.dst
        stop = None
        if how == "failing":
            target = FailingWrites(self.dst, ok_batches=rng.randrange(1, 6))
        if how == "stopped":
            stop = threading.Event()
            stop.set()
        with contextlib.suppress(LakekvError):
            copy(self.src, target, workers=1, stop=stop, **kwargs)  # type: ignore[arg-type]

    def _killed_copy(self, track: bool) -> None:
        cmd = [sys.executable, "-c", "from lakekv.cli.main import main; main()", "copy"]
        cmd += ["--from", str(self.src.url), "--to", self.dst_url, "--checkpoint", str(self.ckpt)]
        cmd += ["--batch-size", "20"] + (["--track-changes"] if track else [])
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(self.rng.uniform(0.3, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)

    def catch_up(self, *, final: bool = False) -> None:
        rng = self.rng
        force = not final and rng.random() < 0.2
        stop = None
        if not final and rng.random() < 0.2:
            stop = threading.Event()
            stop.set()
        self.log.append(f"sync (force={force}, stop={stop is not None}, final={final})")
        try:
            report = sync(self.src, self.dst, force=force, stop=stop, batch_entries=50)
        except LakekvError as exc:
            self.log.append(f"  refused or failed: {type(exc).__name__}: {exc}")
            return
        self.log.append(f"  by {report.method}")
        # Success claims the stores identical: it must be true.
        check = verify(self.src, self.dst)
        assert check.equal, (self.log, check.examples)
        self.log.append("  identical, verified")

    def close(self) -> None:
        with contextlib.suppress(LakekvError):
            untrack(self.src, self.dst)
        with contextlib.suppress(LakekvError):
            self.dst.destroy()


def test_no_cutover_claims_identical_falsely(
    faults_pair: tuple[str, str], maker: StoreMaker, tmp_path: Path
) -> None:
    verified = refused = 0
    for seed in SEEDS:
        src = maker.fresh(faults_pair[0], f"src{seed}")
        src.write_batch(
            [(p, b"k%04d" % i, b"v0") for p in PARTITIONS for i in range(0, 400, 2)]
            + [
                (*LAKEFS_MARKS[0], b"postgres"),
                (SCHEMA_PARTITION, SCHEMA_KEY, LAKEFS_SCHEMA_VERSION),
            ]
        )
        dst_url = str(maker.fresh(faults_pair[1], f"dst{seed}").url)
        run = _Run(src, dst_url, tmp_path, seed)
        try:
            steps = [run.write_source, run.interfere, run.lose_target, run.first_pass, run.catch_up]
            weights = [5, 1, 1, 3, 3]
            for _ in range(16):
                run.rng.choices(steps, weights)[0]()
            run.catch_up(final=True)
        finally:
            run.close()
        verified += sum(1 for line in run.log if line.endswith("identical, verified"))
        refused += sum(1 for line in run.log if "refused or failed" in line)
    # Not vacuous: the runs made claims that were checked, and met refusals.
    assert verified >= len(SEEDS) and refused >= 1, (verified, refused)
