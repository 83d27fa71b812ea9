"""What one fresh test store costs per engine: the test suite's fixture time.

Usage::

    .venv/bin/python tests/servers.py run \\
        --engines postgres,dynamodb,mysql,redis,redis-cluster,etcd \\
        -- .venv/bin/python bench/fresh_store.py [--rounds 10]

Each round opens a store under a name no other uses (``lakekv.testing.plugin.fresh_url``, as
the suite's fixtures do), writes one entry, lists the partitions and destroys the store.
Printed: milliseconds per round, per engine whose server the environment names (the
``LAKEKV_TEST_*`` variables ``tests/servers.py`` sets) and for the embedded engines.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from lakekv import open_store
from lakekv.testing.plugin import fresh_url


def bases(tmp: str) -> dict[str, str]:
    """The engines to measure: the servers the environment names, then the embedded ones."""
    env = os.environ
    found = {
        "postgres": env.get("LAKEKV_TEST_POSTGRES", ""),
        "dynamodb": (
            f"dynamodb://lakekv_test?region=us-east-1&endpoint={env['LAKEKV_TEST_DYNAMODB']}"
            if env.get("LAKEKV_TEST_DYNAMODB")
            else ""
        ),
        "mysql": env.get("LAKEKV_TEST_MYSQL", ""),
        "redis+cluster": env.get("LAKEKV_TEST_REDIS_CLUSTER", ""),
        "redis": env.get("LAKEKV_TEST_REDIS", ""),
        "etcd": env.get("LAKEKV_TEST_ETCD", ""),
        "sqlite": f"sqlite:///{tmp}/fresh.db",
        "lmdb": f"lmdb:///{tmp}/fresh.lmdb",
        "badger": f"badger:///{tmp}/fresh.badger",
    }
    return {name: url for name, url in found.items() if url}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    for var, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        os.environ.setdefault(var, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with tempfile.TemporaryDirectory() as tmp:
        for name, base in bases(tmp).items():
            began = time.perf_counter()
            for _ in range(args.rounds):
                url = fresh_url(base)
                with open_store(url) as store:
                    store.set(b"p", b"k", b"v")
                    list(store.list_partitions())
                with open_store(url) as store:
                    store.destroy()
            per = (time.perf_counter() - began) / args.rounds
            print(f"{name:14} {per * 1000:7.1f} ms per fresh store (open, set, list, destroy)")


if __name__ == "__main__":
    main()
