"""``dynamodb://TABLE?region=…&endpoint=…`` — Amazon DynamoDB (boto3), in lakeFS's table layout.

The store, its URL, table and operations live in :mod:`.store`; requests, retries and the
boto3 client in :mod:`.client`; the item layout in :mod:`.items`; the bulk-write path in
:mod:`.bulk`.
"""

from lakekv.kv.drivers.dynamodb.client import error_code, retry_policy
from lakekv.kv.drivers.dynamodb.items import KEY_ATTR, PARTITION_ATTR, VALUE_ATTR
from lakekv.kv.drivers.dynamodb.store import (
    DEFAULT_TABLE,
    MAX_ITEM_BYTES,
    MAX_PAGE_SIZE,
    DynamoDBSettings,
    DynamoDBStore,
)

__all__ = [
    "DEFAULT_TABLE",
    "KEY_ATTR",
    "MAX_ITEM_BYTES",
    "MAX_PAGE_SIZE",
    "PARTITION_ATTR",
    "VALUE_ATTR",
    "DynamoDBSettings",
    "DynamoDBStore",
    "error_code",
    "retry_policy",
]
