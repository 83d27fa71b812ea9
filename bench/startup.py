"""CPU time to start the command line, against ``python -c pass``, in one run on this machine.

Each command runs ``--n`` times in a fresh interpreter; the CPU time (user + system) of each
child is read from ``resource.getrusage(RUSAGE_CHILDREN)`` and the median is kept. Printed:
median CPU seconds per command, the ratio to ``python -c pass``, and whether the target is
met (``lakekv --version`` and ``lakekv get`` ≤ 0.15 s of CPU). Usage::

    python bench/startup.py            # 15 runs of each
    python bench/startup.py --n 30

``lakekv get`` reads one key of a SQLite file made beforehand (a real read, not an error).
Exit status 0 even when a target is missed (a measurement, not a test).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET = 0.15
"""CPU seconds allowed for ``lakekv --version`` and ``lakekv get``."""


def _lakekv() -> list[str]:
    """The console script next to this interpreter, else ``python -m lakekv``."""
    script = Path(sys.executable).with_name("lakekv")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lakekv"]


def cpu_of(argv: list[str], env: dict[str, str]) -> float:
    """CPU seconds (user + system) one run of ``argv`` took."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=15, help="runs of each command (default 15)")
    args = parser.parse_args()
    lakekv = _lakekv()
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/startup.db"
        env = {**os.environ, "LAKEKV_STORE": store}
        subprocess.run([*lakekv, "set", "p", "k", "v"], env=env, check=True)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "lakekv --version": [*lakekv, "--version"],
            "lakekv get": [*lakekv, "get", "p", "k"],
            "lakekv --help": [*lakekv, "--help"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.n):  # interleaved, so drift hits every command alike
            for name, argv in commands.items():
                times[name].append(cpu_of(argv, env))
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<20} {'CPU s (median)':>15} {'x python':>9}  target")
    for name, values in times.items():
        cpu = statistics.median(values)
        target = ""
        if name in ("lakekv --version", "lakekv get"):
            target = f"<= {TARGET} s {'ok' if cpu <= TARGET else 'MISSED'}"
        print(f"{name:<20} {cpu:>15.3f} {cpu / base:>9.1f}  {target}")


if __name__ == "__main__":
    main()
