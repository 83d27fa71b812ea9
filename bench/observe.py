"""What observing costs, and what a rate limit buys a live writer, in one run on this machine.

``overhead``: point operations (``get``, ``set``, ``set_if``) and a scan through a store with
metrics off (``open_store(url)``, which returns the driver's own store: nothing is wrapped)
and on (``open_store(url, metrics=…)``), alternating in many short rounds, each side keeping
its best; prints operations per second and the ratio of the time per operation (target:
metrics on ≤ 1.15 × off). ``--tracing`` adds a row with OpenTelemetry spans and no tracer
provider (the API's no-op tracer).

``writer``: a live writer does ``set`` at a steady pace on the source store while
``lakekv copy`` runs (a separate process) from that store to another, unlimited and then
with ``--max-rate``; prints the writer's p50 / p99 / max ``set`` latency with no copy, during
the unlimited copy and during the limited copy, and how long each copy took. The source is
SQLite or PostgreSQL (``--pg``)::

    python bench/observe.py overhead --backend sqlite,postgres
    python tests/servers.py run --engines postgres -- \\
        .venv/bin/python bench/observe.py writer --backend postgres --entries 300000

Exit status 0 even when a target is missed (a measurement, not a test).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from lakekv.kv.registry import open_store
from lakekv.kv.store import Entry, Store
from lakekv.kv.wrappers import KVMetrics
from lakekv.testing import fresh_url

VALUE = b"v" * 100


def race(sides: dict[str, Callable[[], int]], rounds: int) -> dict[str, float]:
    """Best rate (operations per second) of each side over ``rounds`` alternating rounds."""
    best = dict.fromkeys(sides, 0.0)
    names = list(sides)
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            start = time.perf_counter()
            count = sides[name]()
            best[name] = max(best[name], count / (time.perf_counter() - start))
    return best


def overhead(url: str, label: str, n: int, rounds: int, tracing: bool) -> None:
    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    metrics = KVMetrics(CollectorRegistry())
    stores: dict[str, Store] = {
        "off": open_store(url),
        "metrics": open_store(url, metrics=metrics),
    }
    if tracing:
        stores["tracing"] = open_store(url, tracing=True)
    keys = [b"k%08d" % i for i in range(n)]
    stores["off"].write_batch([Entry(b"p", k, VALUE) for k in keys])
    stores["off"].write_batch([Entry(b"s", b"%08d" % i, VALUE) for i in range(20 * n)])

    def gets(s: Store) -> Callable[[], int]:
        def run() -> int:
            for k in keys:
                s.get(b"p", k)
            return n

        return run

    def sets(s: Store) -> Callable[[], int]:
        def run() -> int:
            for k in keys:
                s.set(b"p", k, VALUE)
            return n

        return run

    def cas(s: Store) -> Callable[[], int]:
        def run() -> int:
            for k in keys:
                s.set_if(b"p", k, VALUE, s.get(b"p", k).predicate)
            return n

        return run

    def scan(s: Store) -> Callable[[], int]:
        def run() -> int:
            return sum(1 for _ in s.scan(b"s"))

        return run

    for op, make in (("get", gets), ("set", sets), ("set_if", cas), ("scan", scan)):
        rates = race({name: make(s) for name, s in stores.items()}, rounds)
        off = rates["off"]
        for name, rate in rates.items():
            if name == "off":
                continue
            ratio = off / rate  # time per operation, on over off
            ok = "yes" if ratio <= 1.15 or name != "metrics" else "NO"
            print(
                f"{label:<9} {op:<7} {name:<8} off {off:>10,.0f}/s  on {rate:>10,.0f}/s  "
                f"time ×{ratio:.3f}  (target ≤ 1.15: {ok})"
            )
    for s in stores.values():
        s.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def writer_run(
    url: str, seconds: float, pace: float, during: Callable[[], float] | None
) -> tuple[list[float], float]:
    """``set`` latencies of a writer at ``pace`` sets a second for ``seconds`` (or while
    ``during`` runs in another thread), and how long ``during`` took."""
    latencies: list[float] = []
    took = [0.0]
    done = threading.Event()

    def background() -> None:
        if during is not None:
            took[0] = during()
        done.set()

    with open_store(url) as store:
        thread = threading.Thread(target=background)
        thread.start()
        started = time.monotonic()
        i = 0
        while True:
            if during is None and time.monotonic() - started > seconds:
                break
            if during is not None and done.is_set():
                break
            t = time.perf_counter()
            store.set(b"live-writer", b"k%06d" % (i % 1000), VALUE)
            latencies.append(time.perf_counter() - t)
            i += 1
            next_at = started + i / pace
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if during is None:
            done.set()
        thread.join()
    return latencies, took[0]


def writer(src: str, dst_of: Callable[[str], str], entries: int, rate: int, pace: float) -> None:
    with open_store(src) as store:
        batch: list[Entry] = []
        for i in range(entries):
            batch.append(Entry(b"p%02d" % (i % 8), b"k%09d" % i, VALUE))
            if len(batch) == 20000:
                store.write_batch(batch)
                batch = []
        if batch:
            store.write_batch(batch)

    def copy(extra: list[str], name: str) -> Callable[[], float]:
        def run() -> float:
            cmd = [sys.executable, "-m", "lakekv", "copy", "--from", src, "--to", dst_of(name)]
            started = time.monotonic()
            subprocess.run([*cmd, *extra], check=True, capture_output=True)
            return time.monotonic() - started

        return run

    rows = []
    idle, _ = writer_run(src, 5.0, pace, None)
    rows.append(("no copy", idle, 0.0))
    lat, took = writer_run(src, 0, pace, copy([], "unlimited"))
    rows.append(("unlimited copy", lat, took))
    lat, took = writer_run(src, 0, pace, copy(["--max-rate", str(rate)], "limited"))
    rows.append((f"copy --max-rate {rate}", lat, took))
    print(f"{entries:,} entries of {len(VALUE)} bytes; writer: {pace:g} set/s on the source")
    for name, lat, took in rows:
        ms = [x * 1000 for x in lat]
        print(
            f"  {name:<24} sets {len(ms):>6,}  p50 {statistics.median(ms):7.2f} ms  "
            f"p99 {percentile(ms, 0.99):7.2f} ms  max {max(ms):8.2f} ms"
            + (f"  copy took {took:6.1f} s" if took else "")
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("what", choices=["overhead", "writer"])
    parser.add_argument("--backend", default="sqlite", help="comma-separated: sqlite, postgres")
    parser.add_argument(
        "--pg",
        default=os.environ.get("LAKEKV_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--n", type=int, default=500, help="point operations per round (500)")
    parser.add_argument("--rounds", type=int, default=30, help="alternating rounds (30)")
    parser.add_argument("--tracing", action="store_true", help="also measure spans (no-op)")
    parser.add_argument("--entries", type=int, default=300_000, help="writer: source size")
    parser.add_argument("--rate", type=int, default=20_000, help="writer: --max-rate")
    parser.add_argument("--pace", type=float, default=200, help="writer: sets per second")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lakekv-bench-") as tmp:
        for backend in args.backend.split(","):
            if backend == "sqlite":
                url = f"sqlite:///{tmp}/src.db"

                def dst_of(name: str, tmp: str = tmp) -> str:
                    return f"sqlite:///{tmp}/{name}.db"
            elif backend == "postgres":
                url = fresh_url(args.pg, "src")

                def dst_of(name: str) -> str:
                    return fresh_url(args.pg, name)
            else:
                parser.error(f"unknown backend {backend}")
            try:
                if args.what == "overhead":
                    overhead(url, backend, args.n, args.rounds, args.tracing)
                else:
                    writer(url, dst_of, args.entries, args.rate, args.pace)
            finally:
                if backend == "postgres":
                    with open_store(url) as s:
                        s.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
