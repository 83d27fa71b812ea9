"""The cutover's commands as an operator runs them: wall time of each ``lakekv`` process
(start-up included) on a PostgreSQL → PostgreSQL pair, against the fresh first pass.

Usage::

    .venv/bin/python tests/servers.py run --engines postgres -- \\
        .venv/bin/python bench/cutover_cli.py [--entries 1000000]

Steps: ``lakekv sample`` into a fresh database; ``lakekv copy --track-changes`` into
another (the fresh first pass, timed); 1 % of the entries change (0.4 % updated, 0.3 %
deleted, 0.3 % inserted); a rehearsal ``lakekv sync --keep-tracking``; 1 % change again;
``lakekv sync --keep-tracking`` (the catch-up alone, timed) and ``lakekv verify`` (timed);
1 % change again; ``lakekv cutover`` (catch-up and verify in one process, timed). Between
the first pass and the rest, both tables are vacuumed and analyzed and the source server
checkpoints, as the hours between a first pass and a cutover do (``--cold`` skips it).
Printed:
each time and its fraction of the first pass (targets: catch-up ≤ 0.25, catch-up + verify
≤ 0.5), with the steps the cutover reports, so the process's own start is visible.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import psycopg

from lakekv import open_store

LAKEKV = [sys.executable, "-c", "from lakekv.cli.main import main; main()"]


def timed(*args: str, env: dict[str, str]) -> tuple[float, dict[str, object] | None]:
    started = time.monotonic()
    proc = subprocess.run([*LAKEKV, *args], capture_output=True, text=True, env=env, check=False)
    took = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"lakekv {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    out = proc.stdout.strip()
    return took, (json.loads(out) if out.startswith("{") else None)


def change(url: str, entries: int, seed: int) -> None:
    """1 % of ``entries`` change: updates, deletes and inserts spread over partitions."""
    rng = random.Random(seed)
    n = max(1, entries // 100)
    with open_store(url) as store:
        parts = [p for p in store.list_partitions() if p != b"kv-internal-metadata"]
        keys: list[tuple[bytes, bytes]] = []
        for p in parts:
            with store.scan(p, batch_size=1000) as it:
                for i, e in enumerate(it):
                    if i >= 2000:
                        break
                    keys.append((p, e.key))
        rng.shuffle(keys)
        updates = keys[: n * 4 // 10]
        deletes = keys[n * 4 // 10 : n * 7 // 10]
        written = store.write_batch(
            [(p, k, b"changed-%d" % seed) for p, k in updates], on_conflict="overwrite"
        )
        assert written.written == len(updates), written
        for p, k in deletes:
            store.delete(p, k)
        inserts = [(rng.choice(parts), b"new/%d/%d" % (seed, i), b"x") for i in range(n * 3 // 10)]
        store.write_batch(inserts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument(
        "--cold",
        action="store_true",
        help="skip the VACUUM ANALYZE and CHECKPOINT after the first pass: every later step "
        "then also pays for the first reads of 2M freshly written rows (hint bits), for "
        "autovacuum, and for decoding the first pass's WAL again",
    )
    args = parser.parse_args()
    base = os.environ["LAKEKV_TEST_POSTGRES"].rsplit("/", 1)[0]
    run = f"{int(time.time())}"
    src_db, dst_db = f"bench_cli_src_{run}", f"bench_cli_dst_{run}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        for db in (src_db, dst_db):
            conn.execute(f'CREATE DATABASE "{db}"')
    src, dst = f"{base}/{src_db}", f"{base}/{dst_db}"
    env = {**os.environ, "LAKEKV_STATE_DIR": tempfile.mkdtemp(prefix="lakekv-bench-state-")}
    pair = ("--from", src, "--to", dst)
    try:
        timed("sample", "--to", src, "--entries", str(args.entries), "--seed", "1", env=env)
        t_copy, _ = timed("copy", *pair, "--track-changes", env=env)
        t_vacuum = None
        if not args.cold:
            # What the hours between a first pass and a cutover do: autovacuum reads both
            # tables (their first full read sets every row's hint bits), and the server logs
            # its running transactions (every 15 s while busy, and at each checkpoint), which
            # is what lets the change feed's restart point move past the first pass's WAL
            # when a pass confirms it. Without that record the catch-up decodes the 440 MB
            # the first pass and the vacuum wrote all over again. Not a lakekv step.
            started = time.monotonic()
            for db in (src, dst):
                with psycopg.connect(db, autocommit=True) as conn:
                    conn.execute("VACUUM (ANALYZE) kv")
            with psycopg.connect(src, autocommit=True) as conn:
                conn.execute("CHECKPOINT")
            t_vacuum = time.monotonic() - started
        change(src, args.entries, 1)
        t_rehearsal, _ = timed("sync", *pair, "--keep-tracking", env=env)
        change(src, args.entries, 2)
        t_sync, r_sync = timed("sync", *pair, "--keep-tracking", "--json", env=env)
        t_verify, r_verify = timed("verify", *pair, "--json", env=env)
        assert r_sync is not None and r_verify is not None and r_verify["equal"] is True
        inside_sync, inside_verify = float(r_sync["seconds"]), float(r_verify["seconds"])
        change(src, args.entries, 3)
        t_cut, report = timed("cutover", *pair, "--json", env=env)
        assert report is not None and report["equal"] is True
        steps = ", ".join(
            f"{s['name']} {float(s['seconds']):.2f}"  # type: ignore[index]
            for s in report["steps"]  # type: ignore[union-attr]
        )
        print(f"cutover commands, PostgreSQL -> PostgreSQL, {args.entries:,} entries, 1 % changed")
        print(f"  first pass   lakekv copy --track-changes   {t_copy:6.2f} s")
        if t_vacuum is None:
            print("  (--cold: no VACUUM ANALYZE or CHECKPOINT after the first pass)")
        else:
            print(f"  then         VACUUM ANALYZE, CHECKPOINT    {t_vacuum:6.2f} s  (not lakekv)")
        print(f"  rehearsal    lakekv sync --keep-tracking   {t_rehearsal:6.2f} s")
        ok = "ok" if t_sync / t_copy <= 0.25 else "MISSED"
        print(
            f"  catch-up     lakekv sync                   {t_sync:6.2f} s  "
            f"fraction {t_sync / t_copy:.3f}  target <= 0.25: {ok}"
        )
        print(f"               of which the pass itself {inside_sync:.2f} s ({r_sync['method']})")
        both = t_sync + t_verify
        ok = "ok" if both / t_copy <= 0.5 else "MISSED"
        print(
            f"  verify       lakekv verify                 {t_verify:6.2f} s  "
            f"catch-up + verify fraction {both / t_copy:.3f}  target <= 0.5: {ok}"
        )
        print(
            f"               of which the comparison itself {inside_verify:.2f} s "
            f"(by {r_verify['compared_by']})"
        )
        ok = "ok" if t_cut / t_copy <= 0.5 else "MISSED"
        print(
            f"  cutover      lakekv cutover (both, one process) {t_cut:6.2f} s  "
            f"fraction {t_cut / t_copy:.3f}  target <= 0.5: {ok}"
        )
        print(f"               its steps: {steps}")
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            for slot in conn.execute(
                "SELECT slot_name FROM pg_replication_slots WHERE database = %s", (src_db,)
            ).fetchall():
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot[0],))
            for db in (src_db, dst_db):
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
