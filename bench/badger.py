"""badger:// benchmark: lakekv reading and writing lakeFS's ``local`` database against plain Go.

Usage::

    .venv/bin/python bench/badger.py [--entries 1000000] [--rounds 1]

Needs Go (the reference is built from ``bench/badger_ref``, on Badger v4.7.0 as lakeFS pins) and
the helper (``make badger-helper``). On ``lakekv sample`` data (lakeFS-shaped entries), each
step printed as a ratio (reference time / lakekv time: 1.0 is as fast as plain Go, higher is
better), each side timed from open to close, best of ``--rounds``:

1. write: ``lakekv copy`` SQLite -> ``badger://`` vs the reference writing the same Badger keys
   and values with Badger's ``WriteBatch`` (read from a flat file); and the driver alone, in
   this process: ``write_batch`` of the entries (held in memory, 20,000 a call, as a copy
   sends them) into a new directory, open to close, vs the same reference;
2. read: ``lakekv copy`` ``badger://`` -> SQLite vs the reference iterating the directory with
   Badger's iterator (values read); and lakekv's read alone (every partition scanned through
   the driver, in this process) vs the same reference; and SQLite's bulk-load limit
   (``executemany`` of the same rows from memory into lakekv's table), which
   bounds any copy into SQLite, with the copy's rate as a share of it;
3. what a pure-Python reader of Badger's format would cost at least: decoding SST block
   entries (Badger's header, key diff, version, value struct; newest version kept) of the
   same data from memory, without snappy, level merging, value log or memtable replay, the
   rate compared with lakekv's scan through the helper (this chose the implementation);
4. peak RSS of a ``badger://`` -> SQLite copy of N entries vs N/10, each in its own process
   (the Python process and, separately, its helper: its anonymous memory, and its whole RSS,
   which also counts the pages of the SST files Badger maps and has read).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

from lakekv.kv.store import Entry

ROOT = Path(__file__).resolve().parent.parent
REF_SRC = ROOT / "bench" / "badger_ref"
REF_BIN = ROOT / ".tools" / "badger" / "badger-ref"


def lakekv_cli(*args: str) -> float:
    """Run the lakekv command line in its own process; its wall time."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lakekv", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def reference(*args: str) -> float:
    out = subprocess.run([str(REF_BIN), *args], check=True, capture_output=True, text=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def build_reference() -> None:
    subprocess.run(["go", "build", "-o", str(REF_BIN), "."], cwd=REF_SRC, check=True)


def export_flat(src: str, path: Path) -> int:
    """The entries of ``src`` as Badger keys and values in the reference's flat format."""
    from lakekv import open_store  # noqa: PLC0415
    from lakekv.kv.drivers.badger import encode_partition  # noqa: PLC0415

    n = 0
    with open_store(src, read_only=True) as store, open(path, "wb") as out:
        for partition in store.list_partitions():
            prefix = encode_partition(partition) + b"/"
            for page in store.scan_pages(partition, page_size=10000):
                for key, value in page:
                    full = prefix + key
                    out.write(len(full).to_bytes(4, "little") + full)
                    out.write(len(value).to_bytes(4, "little") + value)
                    n += 1
    return n


def load_entries(src: str) -> list[Entry]:
    from lakekv import open_store  # noqa: PLC0415

    rows: list[Entry] = []
    with open_store(src, read_only=True) as store:
        for partition in store.list_partitions():
            for page in store.scan_pages(partition, page_size=10000):
                rows.extend(Entry(partition, k, v) for k, v in page)
    return rows


def write_all(url: str, rows: list[Entry]) -> float:
    """Seconds to write ``rows`` into ``url`` with ``write_batch``, open to close."""
    from lakekv import open_store  # noqa: PLC0415

    began = time.perf_counter()
    with open_store(url) as store:
        for i in range(0, len(rows), 20_000):
            store.write_batch(rows[i : i + 20_000])
    return time.perf_counter() - began


def sqlite_bulk_limit(rows: list[Entry], path: Path) -> float:
    """Seconds for the SQLite bulk-load limit: ``bench/migrate.py``'s raw load (the standard
    library's ``executemany`` into lakekv's table, lakekv's pragmas) of ``rows``, already in
    memory and sorted, connect to close."""
    from migrate import raw_sqlite_load  # noqa: PLC0415 (bench/migrate.py, beside this file)

    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    began = time.perf_counter()
    raw_sqlite_load(iter([cast("list[tuple[bytes, bytes, bytes]]", rows)]), path)
    return time.perf_counter() - began


def scan_all(url: str) -> tuple[int, float]:
    """Every entry of ``url`` read through the driver: (entries, seconds), open to close."""
    from lakekv import open_store  # noqa: PLC0415

    began = time.perf_counter()
    n = 0
    with open_store(url, read_only=True) as store:
        for partition in store.list_partitions():
            for page in store.scan_pages(partition, page_size=10000):
                n += len(page)
    return n, time.perf_counter() - began


def _children_memory() -> tuple[int, int]:
    """(VmRSS, RssAnon) in kB summed over this process's children (the helper)."""
    rss = anon = 0
    pid = os.getpid()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            kids = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            try:
                status = Path(f"/proc/{kid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("RssAnon:"):
                    anon += int(line.split()[1])
    return rss, anon


def _own_peak_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_child(src: str, dst: str) -> None:
    """(In a child process) copy ``src`` to ``dst``; print the peak RSS of this process and of
    its helper, sampled every 20 ms: all of it, and its anonymous memory alone (Badger maps
    its SST files: pages of those it has read count in its RSS, but they are the file's
    pages, dropped under memory pressure, not memory the helper holds)."""
    import threading  # noqa: PLC0415

    from lakekv.cli.main import main as cli  # noqa: PLC0415

    peak = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            rss, anon = _children_memory()
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], anon)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        cli(["copy", "--from", src, "--to", dst])
    except SystemExit as exc:
        if exc.code:
            raise
    finally:
        done.set()
        sampler.join()
    print(
        json.dumps(
            {
                # VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec
                "self_kb": _own_peak_kb(),
                "helper_kb": peak[0],
                "helper_anon_kb": peak[1],
            }
        )
    )


def peak_rss(src: str, dst: str) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", src, dst],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def python_block_decode_rate(src: str, limit: int = 300_000) -> float:
    """Entries/s of a pure-Python decode of Badger SST block entries (a lower bound on the
    cost of a pure-Python reader): the entries of ``src`` encoded as Badger's block builder
    does (key diffs against the block's first key, 64 entries a block, the 8-byte version,
    the value struct), then decoded and de-duplicated by user key."""
    from lakekv import open_store  # noqa: PLC0415
    from lakekv.kv.drivers.badger import encode_partition  # noqa: PLC0415

    rows: list[tuple[bytes, bytes]] = []
    with open_store(src, read_only=True) as store:
        for partition in store.list_partitions():
            prefix = encode_partition(partition) + b"/"
            for page in store.scan_pages(partition, page_size=10000):
                rows.extend((prefix + k, v) for k, v in page)
            if len(rows) >= limit:
                break
    rows = rows[:limit]
    version = struct.pack(">Q", 2**64 - 2)
    buf = bytearray()
    base = b""
    for i, (key, value) in enumerate(rows):
        full = key + version
        if i % 64 == 0:
            base = full
        same = 0
        while same < min(len(base), len(full)) and base[same] == full[same]:
            same += 1
        diff = full[same:]
        val = b"\x00\x00\x00" + value  # meta, user meta, uvarint expiry 0
        buf += struct.pack("<HH", same, len(diff)) + diff + struct.pack("<I", len(val)) + val
    data = bytes(buf)
    head = struct.Struct("<HH").unpack_from
    u32 = struct.Struct("<I").unpack_from
    began = time.perf_counter()
    pos, i, prev = 0, 0, b""
    out = []
    while pos < len(data):
        same, d = head(data, pos)
        pos += 4
        key = data[pos : pos + d] if same == 0 else base[:same] + data[pos : pos + d]
        pos += d
        if i % 64 == 0:
            base = key
        (size,) = u32(data, pos)
        meta = data[pos + 4]
        value = data[pos + 7 : pos + 4 + size]
        pos += 4 + size
        user = key[:-8]
        if user != prev and not meta & 1:  # newest version only; bit 0: deleted
            out.append((user, value))
        prev = user
        i += 1
    return len(rows) / (time.perf_counter() - began)


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.unlink(missing_ok=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument(
        "--reuse", action="store_true", help="keep the sample databases of an earlier run"
    )
    ap.add_argument("--tmp", type=Path, default=ROOT / ".run" / "bench-badger")
    ap.add_argument("--rss-child", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child)
        return
    n, tmp = args.entries, args.tmp
    tmp.mkdir(parents=True, exist_ok=True)
    build_reference()
    sources = {}
    for size in (n, 3 * n // 10, n // 10):
        db = tmp / f"sample-{size}.db"
        if not (args.reuse and db.exists()):
            fresh(db)
            lakekv_cli("sample", "--to", f"sqlite:///{db}", "--entries", str(size), "--seed", "1")
        sources[size] = f"sqlite:///{db}"
    flat = tmp / "entries.bin"
    exported = export_flat(sources[n], flat)
    print(f"{exported:,} lakeFS-shaped entries ({flat.stat().st_size / 1e6:.0f} MB as Badger keys)")

    # 1. write
    best_lakekv = best_ref = float("inf")
    for _ in range(args.rounds):
        target = fresh(tmp / "written.badger")
        best_lakekv = min(
            best_lakekv, lakekv_cli("copy", "--from", sources[n], "--to", f"badger:///{target}")
        )
        ref_dir = fresh(tmp / "ref-written.badger")
        best_ref = min(best_ref, reference("write", str(ref_dir), str(flat)))
    print(
        f"write: lakekv copy sqlite -> badger {exported / best_lakekv:,.0f} entries/s, "
        f"Badger WriteBatch {exported / best_ref:,.0f}/s: ratio {best_ref / best_lakekv:.2f}"
    )

    rows = load_entries(sources[n])
    best_driver = best_ref2 = best_limit = float("inf")
    for _ in range(args.rounds):
        best_driver = min(best_driver, write_all(f"badger:///{fresh(tmp / 'driver.badger')}", rows))
        ref_dir = fresh(tmp / "ref-written.badger")
        best_ref2 = min(best_ref2, reference("write", str(ref_dir), str(flat)))
        best_limit = min(best_limit, sqlite_bulk_limit(rows, tmp / "limit.db"))
    del rows
    print(
        f"write: the driver alone (write_batch, in process) {exported / best_driver:,.0f} "
        f"entries/s, Badger WriteBatch {exported / best_ref2:,.0f}/s: "
        f"ratio {best_ref2 / best_driver:.2f}"
    )

    # 2. read
    source = f"badger:///{tmp / 'written.badger'}"
    best_copy = best_scan = best_ref = float("inf")
    for _ in range(args.rounds):
        out = fresh(tmp / "read.db")
        best_copy = min(best_copy, lakekv_cli("copy", "--from", source, "--to", f"sqlite:///{out}"))
        count, seconds = scan_all(source)
        assert count == exported, (count, exported)
        best_scan = min(best_scan, seconds)
        ref_dir = fresh(tmp / "ref-read.badger")
        shutil.copytree(tmp / "written.badger", ref_dir)
        best_ref = min(best_ref, reference("read", str(ref_dir)))
    print(
        f"read: Badger iterator {exported / best_ref:,.0f} entries/s; "
        f"lakekv scan {exported / best_scan:,.0f}/s: ratio {best_ref / best_scan:.2f}; "
        f"lakekv copy badger -> sqlite {exported / best_copy:,.0f}/s: "
        f"ratio {best_ref / best_copy:.2f}"
    )
    print(
        f"read: SQLite's bulk-load limit (executemany from memory) "
        f"{exported / best_limit:,.0f} entries/s = {best_ref / best_limit:.2f} of Badger's "
        f"iterator, the most any copy into SQLite can reach; lakekv copy badger -> sqlite "
        f"reaches {best_limit / best_copy:.2f} of that limit"
    )

    # 3. the pure-Python floor
    floor = python_block_decode_rate(sources[n])
    print(
        f"pure-Python decode of Badger block entries alone (no snappy, merge, value log or "
        f"memtable replay): {floor:,.0f} entries/s, {floor / (exported / best_scan):.2f}x "
        "lakekv's scan through the helper"
    )

    # 4. memory
    rss = {}
    for size in (n, 3 * n // 10, n // 10):
        src_dir = fresh(tmp / f"rss-{size}.badger")
        lakekv_cli("copy", "--from", sources[size], "--to", f"badger:///{src_dir}")
        rss[size] = peak_rss(f"badger:///{src_dir}", f"sqlite:///{fresh(tmp / f'rss-{size}.db')}")
    big, mid, small = rss[n], rss[3 * n // 10], rss[n // 10]
    print(
        f"peak RSS copying badger -> sqlite, {n:,} vs {n // 10:,} entries: "
        f"lakekv {big['self_kb'] / 1024:.0f} vs {small['self_kb'] / 1024:.0f} MB "
        f"(ratio {big['self_kb'] / small['self_kb']:.2f}); helper anonymous memory "
        f"{big['helper_anon_kb'] / 1024:.0f} vs {small['helper_anon_kb'] / 1024:.0f} MB "
        f"(ratio {big['helper_anon_kb'] / small['helper_anon_kb']:.2f}), its RSS with the "
        f"SST pages it mapped {big['helper_kb'] / 1024:.0f} vs {small['helper_kb'] / 1024:.0f} MB"
    )
    print(
        f"peak RSS, {n:,} vs {3 * n // 10:,} entries: lakekv {big['self_kb'] / 1024:.0f} vs "
        f"{mid['self_kb'] / 1024:.0f} MB (ratio {big['self_kb'] / mid['self_kb']:.2f}); helper "
        f"anonymous memory {big['helper_anon_kb'] / 1024:.0f} vs "
        f"{mid['helper_anon_kb'] / 1024:.0f} MB (ratio "
        f"{big['helper_anon_kb'] / mid['helper_anon_kb']:.2f}): what still grows between the "
        "smaller sizes is bounded buffers (pages up to page_cap, the block cache) filling up"
    )


if __name__ == "__main__":
    os.environ.setdefault("LAKEKV_BADGER_HELPER", str(ROOT / ".tools" / "badger" / "lakekv-badger"))
    main()
