"""lakeFS's DynamoDB item layout: the attribute names and the wire form of one entry."""

from __future__ import annotations

from typing import Any

from lakekv.errors import StoreError
from lakekv.kv.store import safe_repr

Item = dict[str, Any]
"""A DynamoDB item in the low-level client's wire form (attribute name → typed value)."""


PARTITION_ATTR = "PartitionKey"
KEY_ATTR = "ItemKey"
VALUE_ATTR = "ItemValue"


def item_of(partition: bytes, key: bytes, value: bytes) -> Item:
    return {
        PARTITION_ATTR: {"B": partition},
        KEY_ATTR: {"B": key},
        VALUE_ATTR: {"B": value},
    }


def item_value(item: dict[str, Any]) -> bytes:
    """``ItemValue`` as bytes; lakeFS's legacy ``NULL`` empty value reads as ``b""``."""
    attr = item.get(VALUE_ATTR)
    if attr is not None:
        data = attr.get("B")
        if data is not None:
            return bytes(data)
        if attr.get("NULL"):
            return b""
    raise StoreError(
        f"dynamodb item {safe_repr(bytes(item[KEY_ATTR]['B']))} has no binary {VALUE_ATTR} "
        f"(found {sorted(attr) if attr else 'nothing'}): not a lakeFS table?"
    )
