"""--max-capacity-share against a DynamoDB-protocol server: a provisioned table's capacity
sizes the first pass's read limit."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("boto3")

from _cli import run
from test_dynamodb import _dummy_credentials, _raw_client, endpoint  # noqa: F401

from lakekv.kv.drivers.dynamodb.items import KEY_ATTR, PARTITION_ATTR
from lakekv.kv.registry import open_store
from lakekv.kv.store import Entry
from lakekv.kv.wrappers import RateLimit
from lakekv.migrate import _observe
from lakekv.testing.plugin import RUN_ID

READ_UNITS = 50


@pytest.fixture
def provisioned(endpoint: str) -> Iterator[str]:  # noqa: F811
    """A table with provisioned capacity (as lakeFS creates them), deleted afterwards."""
    table = f"lakekv_cap_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    client = _raw_client(endpoint)
    client.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": PARTITION_ATTR, "KeyType": "HASH"},
            {"AttributeName": KEY_ATTR, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": PARTITION_ATTR, "AttributeType": "B"},
            {"AttributeName": KEY_ATTR, "AttributeType": "B"},
        ],
        ProvisionedThroughput={"ReadCapacityUnits": READ_UNITS, "WriteCapacityUnits": 20},
    )
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.1})
    try:
        yield f"dynamodb://{table}?region=us-east-1&endpoint={endpoint}"
    finally:
        client.delete_table(TableName=table)


def test_capacity_share_limits_the_first_pass(
    provisioned: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(provisioned, create=False) as store:
        store.write_batch(Entry(b"p%d" % (i % 2), b"k%06d" % i, b"v" * 100) for i in range(1000))
        limit = _observe.capacity_limit(store, 0.3, read_only=True)
        assert limit == RateLimit(bytes=0.3 * READ_UNITS * 4096)
        assert _observe.capacity_limit(store, 0.3, read_only=False) == RateLimit(
            entries=6, bytes=6 * 1024
        )
    moved = 1000 * (7 + 100)  # key and value bytes read
    started = time.monotonic()
    code, _, err = run(
        capsys,
        "copy",
        "--from",
        provisioned,
        "--to",
        f"sqlite:///{tmp_path}/t.db",
        "--max-capacity-share",
        "0.3",
    )
    elapsed = time.monotonic() - started
    assert code == 0, err
    expected = moved / (0.3 * READ_UNITS * 4096)  # about 1.7 s
    assert expected * 0.85 <= elapsed <= expected * 2 + 2, f"{elapsed:.2f} s"
