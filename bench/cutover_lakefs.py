"""Downtime of a lakeFS cutover as lakeFS sees it: from SIGTERM to the old lakeFS until the
new lakeFS answers its first authenticated API call, with a writer uploading objects until
the stop, the lakekv commands run as an operator runs them (processes, start-up included).

Usage (needs the lakeFS binary: ``make lakefs``)::

    .venv/bin/python tests/servers.py run --engines postgres,dynamodb -- \\
        .venv/bin/python bench/cutover_lakefs.py [--entries 10000] [--targets postgres,dynamodb]

For each target: lakeFS on a fresh PostgreSQL database takes ``--entries`` uncommitted
objects (one KV entry each), a writer keeps uploading; ``lakekv copy --track-changes``, a
rehearsal (``lakekv sync --keep-tracking``) and ``lakekv cutover --plan`` run while it writes;
then lakeFS is stopped (SIGTERM), ``lakekv cutover`` runs, and lakeFS is started on the new
database. Printed: the breakdown, the downtime against its target (PostgreSQL ≤ 3 s,
DynamoDB ≤ 6 s), the plan's estimate against the cutover's measured time (target: within a
factor of 1.5), and whether every acknowledged upload is on the new lakeFS.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import _lakefs_harness as h  # noqa: E402
import _lakefs_scenario as sc  # noqa: E402
import lakefs_sdk  # noqa: E402

LAKEKV = [sys.executable, "-c", "from lakekv.cli.main import main; main()"]
TARGETS = {"postgres": 3.0, "dynamodb": 6.0}
"""Downtime targets, seconds."""


def lakekv(*args: str, env: dict[str, str]) -> tuple[float, dict[str, object]]:
    started = time.monotonic()
    proc = subprocess.run(
        [*LAKEKV, *args, "--json"], capture_output=True, text=True, env=env, check=False
    )
    took = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"lakekv {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return took, json.loads(proc.stdout)


def first_answer(endpoint: str, deadline: float) -> float:
    """Poll an authenticated API call until lakeFS answers it; the monotonic time it did."""
    token = base64.b64encode(f"{h.ACCESS_KEY_ID}:{h.SECRET_ACCESS_KEY}".encode()).decode()
    request = urllib.request.Request(
        endpoint + "/api/v1/repositories", headers={"Authorization": f"Basic {token}"}
    )
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.01)
    raise SystemExit("the new lakeFS did not answer")


def populate(lf: h.LakeFS, entries: int) -> None:
    api = lf.client()
    lakefs_sdk.RepositoriesApi(api).create_repository(
        lakefs_sdk.RepositoryCreation(
            name="bench", storage_namespace=f"local://{lf.blockstore}/bench", default_branch="main"
        )
    )
    s3 = sc.s3_client(lf.client())

    def put(i: int) -> None:
        s3.put_object(Bucket="bench", Key=f"main/staged/{i:06d}", Body=b"x")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(entries)))


def run_one(kind: str, entries: int, binary: Path, root: Path) -> None:
    label = f"{kind}_{int(time.time())}"
    src_db = h.postgres_database(h.postgres_server(), f"bench_cut_src_{label}")
    dst_db = (
        h.postgres_database(h.postgres_server(), f"bench_cut_dst_{label}")
        if kind == "postgres"
        else h.dynamodb_database(h.dynamodb_endpoint(), f"bench_cut_dst_{label}")
    )
    assert src_db.store_url and dst_db.store_url
    blocks = root / f"blocks-{label}"
    old = h.LakeFS(binary, root / f"old-{label}", blocks, src_db)
    new = h.LakeFS(binary, root / f"new-{label}", blocks, dst_db)
    env = {**os.environ, **dst_db.env, "LAKEKV_STATE_DIR": str(root / f"state-{label}")}
    pair = ("--from", src_db.store_url, "--to", dst_db.store_url)
    old.setup()
    old.start()
    try:
        populate(old, entries)
        s3 = sc.s3_client(old.client())
        acknowledged: list[str] = []
        stop = threading.Event()

        def writer() -> None:
            i = 0
            while not stop.is_set():
                key = f"main/live/{i:06d}"
                try:
                    s3.put_object(Bucket="bench", Key=key, Body=b"y")  # type: ignore[attr-defined]
                except Exception:  # lakeFS is stopping: the writer stops
                    return
                acknowledged.append(key)
                i += 1
                time.sleep(0.01)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        t_copy, _ = lakekv("copy", *pair, "--track-changes", env=env)
        t_rehearsal, _ = lakekv("sync", *pair, "--keep-tracking", env=env)
        time.sleep(2.0)  # lakeFS keeps taking writes
        t_plan, planned = lakekv("cutover", *pair, "--plan", env=env)
        estimate = planned["estimate"]
        assert isinstance(estimate, dict)
        time.sleep(1.0)
        # The downtime starts: SIGTERM to lakeFS.
        t0 = time.monotonic()
        assert old._proc is not None
        proc = old._proc
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        old._proc = None
        t_stopped = time.monotonic()
        stop.set()
        thread.join()
        t_cut, report = lakekv("cutover", *pair, env=env)
        assert report["equal"] is True, report
        t_cut_end = time.monotonic()
        new_proc = subprocess.Popen(
            [str(binary), "--config", str(new.config_path), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=new._env(),
            start_new_session=True,
        )
        try:
            t1 = first_answer(new.endpoint, time.monotonic() + 60)
            downtime = t1 - t0
            s3_new = sc.s3_client(new.client())
            missing = (
                [k for k in acknowledged if not _exists(s3_new, "bench", k)] if acknowledged else []
            )
        finally:
            new_proc.send_signal(signal.SIGTERM)
            new_proc.wait(timeout=60)
        steps = {str(s["name"]): float(s["seconds"]) for s in report["steps"]}  # type: ignore[index, union-attr]
        print(f"\n== PostgreSQL -> {kind}, {entries:,} staged objects, writer ~70 uploads/s")
        print(f"  first pass (copy --track-changes, process)   {t_copy:6.2f} s  (lakeFS running)")
        print(
            f"  rehearsal (sync --keep-tracking, process)    {t_rehearsal:6.2f} s  (lakeFS running)"
        )
        print(f"  cutover --plan (process)                     {t_plan:6.2f} s  (lakeFS running)")
        print(f"  lakeFS stop (SIGTERM to exit)                {t_stopped - t0:6.2f} s")
        print(
            f"  lakekv cutover (process, start included)     {t_cut:6.2f} s  = "
            + ", ".join(f"{k} {v:.2f}" for k, v in steps.items())
            + f", process start and exit {t_cut - float(report['downtime_seconds']):.2f}"
        )  # type: ignore[arg-type]
        print(f"  new lakeFS start to first answer             {t1 - t_cut_end:6.2f} s")
        verdict = "ok" if downtime <= TARGETS[kind] else "MISSED"
        print(
            f"  downtime (SIGTERM -> first API answer)       {downtime:6.2f} s  "
            f"target <= {TARGETS[kind]:.0f} s: {verdict}"
        )
        est = float(estimate["total_seconds"])
        ratio = max(est, t_cut) / max(1e-9, min(est, t_cut))
        print(
            f"  plan estimate {est:.2f} s ({estimate['method']}) vs cutover {t_cut:.2f} s: "
            f"factor {ratio:.2f}  target <= 1.5: {'ok' if ratio <= 1.5 else 'MISSED'}"
        )
        print(
            f"  acknowledged uploads {len(acknowledged):,}, "
            f"missing on the new lakeFS: {len(missing)}"
        )
    finally:
        old.stop()
        for db in (src_db, dst_db):
            if db.drop is not None:
                db.drop()


def _exists(s3: object, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
    except Exception:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--targets", default="postgres,dynamodb")
    args = parser.parse_args()
    binary = h.lakefs_binary()
    with tempfile.TemporaryDirectory(prefix="lakekv-bench-cutover-") as tmp:
        for kind in args.targets.split(","):
            run_one(kind, args.entries, binary, Path(tmp))


if __name__ == "__main__":
    main()
