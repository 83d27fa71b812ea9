"""lakekv's DynamoDB driver vs the same calls made directly with boto3, in one run.

Usage::

    .venv/bin/python bench/dynamodb.py                      # starts/stops dynalite itself
    .venv/bin/python bench/dynamodb.py --endpoint http://127.0.0.1:8000 --points 5000

Measures, against a local DynamoDB-protocol server and the lakeFS table layout:

* point ``set`` (PutItem) and ``get`` (GetItem, consistent), one thread, rounds alternating
  between lakekv and raw boto3 so that drift hits both sides alike;
* a full partition ``scan`` (paged Query, consistent) vs a hand-written ``Query`` loop;
* bulk ``write_batch`` into an empty table vs a hand-written ``BatchWriteItem`` loop (25 items a
  request, ``UnprocessedItems`` re-sent) with the same number of requests in flight; each side
  runs twice (lakekv, raw, raw, lakekv), each time into a fresh table.

Prints ops/s and ratios. Targets: point ops take ≤ 1.15× the raw time; bulk write reaches
≥ 0.9× the raw throughput. Without ``--endpoint`` it runs ``scripts/dynalite.sh start`` and
stops the server afterwards (if it started it). Dummy AWS credentials are used when none are set.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from lakekv.kv.registry import open_store
from lakekv.kv.store import Entry, Store

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "dynalite.sh"
REGION = "us-east-1"


@contextmanager
def server(endpoint: str | None) -> Iterator[str]:
    """The given endpoint, or a dynalite from the project script (stopped if we started it)."""
    if endpoint:
        yield endpoint
        return
    running = subprocess.run(
        ["bash", str(SCRIPT), "url"], capture_output=True, text=True, check=False
    )
    if running.returncode == 0:
        yield running.stdout.strip()
        return
    url = subprocess.run(
        ["bash", str(SCRIPT), "start"], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        yield url
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], check=False)


def raw_client(endpoint: str) -> DynamoDBClient:
    """A boto3 client as a user would write it (default configuration)."""
    return boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- raw boto3 -------------------------------------------------------------------------------


def raw_set(client: DynamoDBClient, table: str, p: bytes, k: bytes, v: bytes) -> None:
    client.put_item(
        TableName=table,
        Item={"PartitionKey": {"B": p}, "ItemKey": {"B": k}, "ItemValue": {"B": v}},
    )


def raw_get(client: DynamoDBClient, table: str, p: bytes, k: bytes) -> bytes:
    out = client.get_item(
        TableName=table,
        Key={"PartitionKey": {"B": p}, "ItemKey": {"B": k}},
        ConsistentRead=True,
    )
    return out["Item"]["ItemValue"]["B"]


def raw_scan(client: DynamoDBClient, table: str, p: bytes) -> int:
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "PartitionKey = :p",
        "ExpressionAttributeValues": {":p": {"B": p}},
        "ConsistentRead": True,
    }
    count = 0
    while True:
        out = client.query(**request)
        for item in out["Items"]:
            _ = (item["ItemKey"]["B"], item["ItemValue"]["B"])
            count += 1
        last = out.get("LastEvaluatedKey")
        if last is None:
            return count
        request["ExclusiveStartKey"] = last


def raw_bulk(client: DynamoDBClient, table: str, entries: Sequence[Entry], workers: int) -> None:
    def put25(chunk: Sequence[Entry]) -> None:
        requests: list[Any] = [
            {
                "PutRequest": {
                    "Item": {
                        "PartitionKey": {"B": e.partition},
                        "ItemKey": {"B": e.key},
                        "ItemValue": {"B": e.value},
                    }
                }
            }
            for e in chunk
        ]
        while requests:
            out = client.batch_write_item(RequestItems={table: requests})
            requests = list(out.get("UnprocessedItems", {}).get(table, []))
            if requests:
                time.sleep(0.01)

    chunks = [entries[i : i + 25] for i in range(0, len(entries), 25)]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put25, chunks))


def create_table(client: DynamoDBClient, table: str) -> None:
    client.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "PartitionKey", "KeyType": "HASH"},
            {"AttributeName": "ItemKey", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "PartitionKey", "AttributeType": "B"},
            {"AttributeName": "ItemKey", "AttributeType": "B"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1})


# --- the run ---------------------------------------------------------------------------------


def line(name: str, n: int, lakekv_s: float, raw_s: float, target: str) -> None:
    print(
        f"{name:<12} {n:>8} {n / lakekv_s:>12,.0f} {n / raw_s:>12,.0f} "
        f"{lakekv_s / raw_s:>10.3f} {raw_s / lakekv_s:>10.3f}   {target}"
    )


def run(endpoint: str, points: int, scan_items: int, bulk_items: int, workers: int) -> None:
    tag = uuid.uuid4().hex[:8]
    base = f"dynamodb://bench_{tag}?region={REGION}&endpoint={endpoint}"
    client = raw_client(endpoint)
    store: Store = open_store(f"{base}&write_concurrency={workers}")
    table = f"bench_{tag}"
    try:
        value = b"v" * 100
        p = b"bench-point"
        for i in range(20):  # warm up both paths (connections, code)
            store.set(p, b"warm%d" % i, value)
            raw_set(client, table, p, b"warm%d" % i, value)
            store.get(p, b"warm%d" % i)
            raw_get(client, table, p, b"warm%d" % i)

        # Alternate sides in many short rounds, in random order, so drift hits both alike.
        rounds = 10
        per = max(1, points // rounds)
        ops: dict[str, Callable[[list[bytes]], object]] = {
            "set lakekv": lambda keys: [store.set(p, k + b"L", value) for k in keys],
            "set raw": lambda keys: [raw_set(client, table, p, k + b"R", value) for k in keys],
            "get lakekv": lambda keys: [store.get(p, k + b"R") for k in keys],
            "get raw": lambda keys: [raw_get(client, table, p, k + b"L") for k in keys],
        }
        spent = dict.fromkeys(ops, 0.0)
        rng = random.Random(1)
        for r in range(rounds):
            keys = [b"k/%d/%06d" % (r, i) for i in range(per)]
            for side in rng.sample(["lakekv", "raw"], 2):
                spent[f"set {side}"] += timed(lambda op=ops[f"set {side}"], ks=keys: op(ks))
            for side in rng.sample(["lakekv", "raw"], 2):
                spent[f"get {side}"] += timed(lambda op=ops[f"get {side}"], ks=keys: op(ks))
        t_set = {"lakekv": spent["set lakekv"], "raw": spent["set raw"]}
        t_get = {"lakekv": spent["get lakekv"], "raw": spent["get raw"]}

        sp = b"bench-scan"
        store.write_batch(Entry(sp, b"s/%08d" % i, value) for i in range(scan_items))
        t_scan = {"lakekv": 0.0, "raw": 0.0}
        for _ in range(3):
            t_scan["lakekv"] += timed(lambda: sum(1 for _ in store.scan(sp)))
            t_scan["raw"] += timed(lambda: raw_scan(client, table, sp))
        assert sum(1 for _ in store.scan(sp)) == raw_scan(client, table, sp) == scan_items

        # Bulk: each side loads the same entries into a fresh, empty table, twice, in the
        # order lakekv, raw, raw, lakekv.
        parts = [b"bulk-%02d" % i for i in range(16)]
        entries = [Entry(parts[i % 16], b"b/%08d" % i, value) for i in range(bulk_items)]
        t_bulk = {"lakekv": 0.0, "raw": 0.0}
        for n, side in enumerate(["lakekv", "raw", "raw", "lakekv"]):
            name = f"bench_{tag}_bulk_{n}"
            if side == "lakekv":
                target = open_store(
                    f"dynamodb://{name}?region={REGION}&endpoint={endpoint}"
                    f"&write_concurrency={workers}"
                )
                try:
                    out: list[Any] = []
                    t_bulk[side] += timed(lambda s=target, o=out: o.append(s.write_batch(entries)))
                    assert out[0].written == bulk_items
                finally:
                    target.destroy()
            else:
                create_table(client, name)
                try:
                    t_bulk[side] += timed(lambda t=name: raw_bulk(client, t, entries, workers))
                finally:
                    client.delete_table(TableName=name)

        print(f"endpoint {endpoint}; {workers} requests in flight for bulk writes; 100-byte values")
        print(
            f"{'operation':<12} {'n':>8} {'lakekv/s':>12} {'boto3/s':>12} "
            f"{'time ratio':>10} {'throughput':>10}   target"
        )
        line("set", per * rounds, t_set["lakekv"], t_set["raw"], "time ratio <= 1.15")
        line("get", per * rounds, t_get["lakekv"], t_get["raw"], "time ratio <= 1.15")
        line("scan (items)", scan_items * 3, t_scan["lakekv"], t_scan["raw"], "-")
        line("bulk write", 2 * bulk_items, t_bulk["lakekv"], t_bulk["raw"], "throughput >= 0.9")
    finally:
        store.destroy()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("LAKEKV_TEST_DYNAMODB"),
        help="DynamoDB endpoint (default: $LAKEKV_TEST_DYNAMODB, else start dynalite)",
    )
    parser.add_argument("--points", type=int, default=3000, help="point sets and gets per side")
    parser.add_argument(
        "--scan-items", type=int, default=20000, help="items in the scanned partition"
    )
    parser.add_argument("--bulk-items", type=int, default=30000, help="items per bulk write")
    parser.add_argument("--concurrency", type=int, default=8, help="bulk requests in flight")
    args = parser.parse_args(argv)
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        os.environ.setdefault(name, value)
    with server(args.endpoint) as endpoint:
        run(endpoint, args.points, args.scan_items, args.bulk_items, args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
