"""The ref store against the raw store operations underneath it, in one run on this machine.

Measures, on SQLite and PostgreSQL:

* **branch updates per second under contention** — 1, 4 and 16 threads updating *one* branch,
  and the same thread counts spread over *16* branches, through ``RefStore.update_branch``
  (get → protobuf decode → callback → encode → ``set_if``, exponential backoff on a lost race,
  lakeFS's limit of 10 tries). The baseline is the same compare-and-set loop written directly
  on the store (``get`` / ``set_if`` of a small value, same backoff): what the ref store costs on
  top of the store's own CAS.
* **staged-object writes and reads per second** (one thread) — ``set_staged`` (read the branch,
  write into its staging token, re-read the branch: 2 gets + 1 set) and ``get_staged`` (read
  the branch, then the entry: 2 gets), against a raw ``set`` / ``get`` of the same bytes.

``ratio`` is ref-store rate / raw rate (higher is better; a staged write does three store
operations, so ~0.33 is the floor set by the protocol, not by overhead). ``lost`` counts
updates that gave up with ConcurrentUpdateError. Usage::

    python bench/refs.py                                   # both backends, about 2 minutes
    python bench/refs.py --backend sqlite --seconds 1
    python bench/refs.py --pg postgres://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lakekv.errors import LakekvError, PredicateFailedError
from lakekv.kv.registry import open_store
from lakekv.kv.store import Store
from lakekv.kv.url import StoreURL
from lakekv.record.proto import catalog_pb2
from lakekv.refs import (
    Branch,
    ConcurrentUpdateError,
    RefStore,
    Repository,
    RetryPolicy,
    StagedEntry,
)

THREADS = (1, 4, 16)
BRANCH_LAYOUTS = (1, 16)


@dataclass
class Row:
    backend: str
    workload: str
    threads: int
    branches: int
    refs_rate: float
    raw_rate: float
    lost: int = 0

    @property
    def ratio(self) -> float:
        return self.refs_rate / self.raw_rate if self.raw_rate else float("nan")


def timed_threads(threads: int, seconds: float, work: Callable[[int], int]) -> tuple[float, int]:
    """Run ``work(thread_index)`` repeatedly in ``threads`` threads for ``seconds``; ``work``
    returns 1 for a success, 0 for a give-up. Returns (successes per second, give-ups)."""
    stop = time.perf_counter() + seconds
    done = [0] * threads
    lost = [0] * threads

    def loop(i: int) -> None:
        while time.perf_counter() < stop:
            if work(i):
                done[i] += 1
            else:
                lost[i] += 1

    start = time.perf_counter()
    pool = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    return sum(done) / elapsed, sum(lost)


def branch_shares(names: list[str], threads: int) -> list[list[str]]:
    """The branches each thread cycles over: disjoint shares when there are at least as many
    branches as threads, otherwise threads share branches round-robin."""
    if len(names) >= threads:
        return [[n for j, n in enumerate(names) if j % threads == i] for i in range(threads)]
    return [[names[i % len(names)]] for i in range(threads)]


def raw_cas(store: Store, partition: bytes, key: bytes, policy: RetryPolicy) -> int:
    """One increment of a counter with the store's own CAS loop and the same backoff."""
    delays = policy.delays()
    while True:
        value, predicate = store.get(partition, key)
        try:
            store.set_if(partition, key, str(int(value) + 1).encode(), predicate)
            return 1
        except PredicateFailedError:
            delay = next(delays, None)
            if delay is None:
                return 0
            time.sleep(delay)


def bench_contention(store: Store, backend: str, seconds: float, policy: RetryPolicy) -> list[Row]:
    refs = RefStore(store, retry=policy)
    repo = refs.create_repository(f"bench-{os.getpid()}", "s3://bench")
    names = [f"b{i:02d}" for i in range(max(BRANCH_LAYOUTS))]
    for name in names:
        refs.create_branch(repo, name, "main")
        refs.update_branch(repo, name, lambda b: dataclasses.replace(b, commit_id="0"))
    raw_partition = b"bench-raw-cas"
    for name in names:
        store.set(raw_partition, name.encode(), b"0")

    def increment(b: Branch) -> Branch:
        return dataclasses.replace(b, commit_id=str(int(b.commit_id) + 1))

    rows: list[Row] = []
    for layout in BRANCH_LAYOUTS:
        for threads in THREADS:
            share = branch_shares(names[:layout], threads)

            def pick(i: int, counter: list[int], share: list[list[str]] = share) -> str:
                counter[i] += 1
                own = share[i]
                return own[counter[i] % len(own)]

            ticks = [0] * threads

            def via_refs(i: int, ticks: list[int] = ticks, pick: Callable[..., str] = pick) -> int:
                try:
                    refs.update_branch(repo, pick(i, ticks), increment)
                    return 1
                except ConcurrentUpdateError:
                    return 0

            raw_ticks = [0] * threads

            def via_raw(
                i: int, ticks: list[int] = raw_ticks, pick: Callable[..., str] = pick
            ) -> int:
                return raw_cas(store, raw_partition, pick(i, ticks).encode(), policy)

            raw_rate, _ = timed_threads(threads, seconds, via_raw)
            refs_rate, lost = timed_threads(threads, seconds, via_refs)
            rows.append(Row(backend, "branch update", threads, layout, refs_rate, raw_rate, lost))
            print_row(rows[-1])
    return rows


def bench_staging(
    store: Store, repo: Repository, refs: RefStore, backend: str, seconds: float
) -> list[Row]:
    entry = catalog_pb2.Entry(address="s3://bench/data/object", size=1234, e_tag="0" * 32)
    keys = [f"data/part-{i:06d}.parquet".encode() for i in range(5000)]
    staged = [StagedEntry.from_catalog(k, entry) for k in keys]
    raw_values = [s.to_proto().SerializeToString() for s in staged]
    raw_partition = b"bench-raw-staging"
    rows: list[Row] = []

    counter = [0]

    def write_refs(_i: int) -> int:
        counter[0] += 1
        refs.set_staged(repo, "main", staged[counter[0] % len(staged)])
        return 1

    raw_counter = [0]

    def write_raw(_i: int) -> int:
        raw_counter[0] += 1
        n = raw_counter[0] % len(keys)
        store.set(raw_partition, keys[n], raw_values[n])
        return 1

    raw_rate, _ = timed_threads(1, seconds, write_raw)
    refs_rate, _ = timed_threads(1, seconds, write_refs)
    rows.append(Row(backend, "staged write", 1, 1, refs_rate, raw_rate))
    print_row(rows[-1])
    written = min(counter[0], raw_counter[0], len(keys) - 1)

    def read_refs(_i: int) -> int:
        counter[0] += 1
        refs.get_staged(repo, "main", keys[counter[0] % written + 1])
        return 1

    def read_raw(_i: int) -> int:
        raw_counter[0] += 1
        store.get(raw_partition, keys[raw_counter[0] % written + 1])
        return 1

    raw_rate, _ = timed_threads(1, seconds, read_raw)
    refs_rate, _ = timed_threads(1, seconds, read_refs)
    rows.append(Row(backend, "staged read", 1, 1, refs_rate, raw_rate))
    print_row(rows[-1])
    return rows


HEADER = (
    f"{'backend':<9} {'workload':<14} {'threads':>7} {'branches':>8} "
    f"{'refs ops/s':>11} {'raw ops/s':>10} {'ratio':>6} {'lost':>5}"
)


def print_row(r: Row) -> None:
    print(
        f"{r.backend:<9} {r.workload:<14} {r.threads:>7} {r.branches:>8} "
        f"{r.refs_rate:>11.0f} {r.raw_rate:>10.0f} {r.ratio:>6.2f} {r.lost:>5}",
        flush=True,
    )


def run_backend(name: str, url: str, seconds: float, policy: RetryPolicy) -> list[Row]:
    with open_store(url) as store:
        try:
            rows = bench_contention(store, name, seconds, policy)
            refs = RefStore(store, retry=policy)
            repo = refs.create_repository(f"staging-{os.getpid()}", "s3://bench")
            rows += bench_staging(store, repo, refs, name, seconds)
            return rows
        finally:
            try:
                store.destroy()
            except LakekvError as exc:
                print(f"note: could not drop the bench table: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement (default 1.5)")
    parser.add_argument(
        "--pg",
        default=os.environ.get("LAKEKV_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL URL",
    )
    parser.add_argument("--max-tries", type=int, default=10, help="retry limit (lakeFS: 10)")
    args = parser.parse_args(argv)
    policy = RetryPolicy(max_tries=args.max_tries)
    print(HEADER, flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend in ("sqlite", "all"):
            rows += run_backend(
                "sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.seconds, policy
            )
        if args.backend in ("postgres", "all"):
            table = f"bench_refs_{os.getpid()}"
            url = StoreURL.parse(args.pg).with_params(table=table).render(reveal_password=True)
            try:
                rows += run_backend("postgres", url, args.seconds, policy)
            except LakekvError as exc:
                print(f"postgres skipped: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
