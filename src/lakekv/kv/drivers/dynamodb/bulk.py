"""The bulk path of ``write_batch``: classify by windows, then ``BatchWriteItem``.

See *write_batch* in the store's module docstring for the algorithm and its trade-off.
"""

from __future__ import annotations

import functools
from collections.abc import Generator, Iterable, Sequence
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING

from lakekv.errors import SlowDownError
from lakekv.kv.drivers.dynamodb.client import RequestAttempts
from lakekv.kv.drivers.dynamodb.items import (
    KEY_ATTR,
    PARTITION_ATTR,
    Item,
    item_of,
    item_value,
)
from lakekv.kv.store import BatchResult, Entry, OnConflict

if TYPE_CHECKING:
    from lakekv.kv.drivers.dynamodb.store import DynamoDBStore

BATCH_WRITE_ITEMS = 25
"""DynamoDB's ``BatchWriteItem`` limit."""
BATCH_GET_KEYS = 100
"""DynamoDB's ``BatchGetItem`` limit."""
WRITE_WINDOW = 8192
"""``write_batch`` classifies and writes this many entries at a time."""
RANGE_LOOKUP_MIN = 8
"""A partition with at least this many keys in a window is classified by range ``Query``."""
RANGE_LOOKUP_MAX = 1024
"""Keys per range ``Query``."""


def write_batch(
    store: DynamoDBStore, entries: Sequence[Entry], on_conflict: OnConflict
) -> BatchResult:
    """``store.write_batch``: each window's requests written as the next window is read."""
    result = BatchResult()
    requests = _classified_requests(store, entries, on_conflict, result)
    try:
        for _ in store._parallel(functools.partial(_batch_put, store), requests):
            pass
    finally:
        requests.close()
    return result


def _classified_requests(
    store: DynamoDBStore, entries: Sequence[Entry], on_conflict: OnConflict, result: BatchResult
) -> Generator[Sequence[Entry], None, None]:
    """The ``BatchWriteItem`` requests (≤ 25 entries) that ``entries`` need, window by window.

    Classifies each window (counting into ``result``) from lookups that run in the pool
    while the previous window's requests are being written.
    """
    windows = [entries[i : i + WRITE_WINDOW] for i in range(0, len(entries), WRITE_WINDOW)]
    upcoming = _start_lookups(store, windows[0], inline=len(windows) == 1)
    try:
        for i, window in enumerate(windows):
            stored: dict[tuple[bytes, bytes], bytes] = {}
            for lookup in upcoming:
                stored.update(lookup.result())
            upcoming = _start_lookups(store, windows[i + 1]) if i + 1 < len(windows) else []
            classify = result.classify
            to_write = [
                entry
                for entry in window
                if classify(entry, stored.get((entry.partition, entry.key)), on_conflict)
            ]
            ordered = _interleave(to_write)
            for j in range(0, len(ordered), BATCH_WRITE_ITEMS):
                yield ordered[j : j + BATCH_WRITE_ITEMS]
    finally:
        for lookup in upcoming:  # after a failure: let started lookups end, drop the rest
            lookup.cancel()
        wait(upcoming)


def _start_lookups(
    store: DynamoDBStore, window: Sequence[Entry], *, inline: bool = False
) -> list[Future[dict[tuple[bytes, bytes], bytes]]]:
    """Submit the lookups of ``window`` to the pool (``inline``: run a single one here)."""
    tasks = _lookup_tasks(window)
    if inline and len(tasks) == 1:
        done: Future[dict[tuple[bytes, bytes], bytes]] = Future()
        try:
            done.set_result(_lookup(store, tasks[0]))
        except BaseException as exc:
            done.set_exception(exc)
        return [done]
    pool = store._executor()
    return [pool.submit(_lookup, store, task) for task in tasks]


def _lookup(
    store: DynamoDBStore, task: tuple[bool, Sequence[Entry]]
) -> dict[tuple[bytes, bytes], bytes]:
    """Stored values of a lookup task's keys (absent keys are missing from the result).

    A range task (one partition, keys sorted) is one consistent ``Query`` over the keys'
    range, limited to twice as many items as keys: cheap when the range is empty (a load
    into a new table) or holds mostly these keys (a repeated load). Keys the Query did not
    reach, because the range is crowded with other keys, go to ``BatchGetItem``.
    """
    is_range, block = task
    if not is_range:
        return _batch_get(store, block)
    partition = block[0].partition
    out = store._request(
        store._client.query,
        {
            "TableName": store.table,
            "KeyConditionExpression": f"{PARTITION_ATTR} = :p AND {KEY_ATTR} BETWEEN :a AND :b",
            "ExpressionAttributeValues": {
                ":p": {"B": partition},
                ":a": {"B": block[0].key},
                ":b": {"B": block[-1].key},
            },
            "ConsistentRead": True,
            "Limit": 2 * len(block) + 16,
        },
    )
    found = {(partition, bytes(i[KEY_ATTR]["B"])): item_value(i) for i in out.get("Items", [])}
    last = out.get("LastEvaluatedKey")
    if last is not None:
        reached = bytes(last[KEY_ATTR]["B"])
        rest = [e for e in block if e.key > reached]
        for i in range(0, len(rest), BATCH_GET_KEYS):
            found.update(_batch_get(store, rest[i : i + BATCH_GET_KEYS]))
    return found


def _batch_get(store: DynamoDBStore, chunk: Sequence[Entry]) -> dict[tuple[bytes, bytes], bytes]:
    keys: list[Item] = [{PARTITION_ATTR: {"B": e.partition}, KEY_ATTR: {"B": e.key}} for e in chunk]
    found: dict[tuple[bytes, bytes], bytes] = {}
    attempts = RequestAttempts(store._retry)
    while keys:
        out = store._request(
            store._client.batch_get_item,
            {"RequestItems": {store.table: {"Keys": keys, "ConsistentRead": True}}},
            attempts,
        )
        for item in out.get("Responses", {}).get(store.table, []):
            found[(bytes(item[PARTITION_ATTR]["B"]), bytes(item[KEY_ATTR]["B"]))] = item_value(item)
        left = out.get("UnprocessedKeys", {}).get(store.table)
        remaining: list[Item] = list(left["Keys"]) if left else []
        _after_round(store, attempts, len(keys), len(remaining), "BatchGetItem")
        keys = remaining
    return found


def _batch_put(store: DynamoDBStore, entries: Sequence[Entry]) -> None:
    requests: list[Item] = [{"PutRequest": {"Item": item_of(*e)}} for e in entries]
    attempts = RequestAttempts(store._retry)
    while requests:
        out = store._request(
            store._client.batch_write_item, {"RequestItems": {store.table: requests}}, attempts
        )
        remaining: list[Item] = [
            dict(r) for r in out.get("UnprocessedItems", {}).get(store.table, [])
        ]
        _after_round(store, attempts, len(requests), len(remaining), "BatchWriteItem")
        requests = remaining


def _after_round(
    store: DynamoDBStore, attempts: RequestAttempts, sent: int, left: int, op: str
) -> None:
    """Back off before re-sending ``left`` unprocessed of ``sent``; SlowDownError on stall."""
    if not left:
        return
    if left < sent:
        attempts.progress()
    if not attempts.backoff():
        raise SlowDownError(
            f"dynamodb table {store.table}: {op} left {left} item(s) unprocessed for "
            f"{attempts.retries} round(s) / {attempts.elapsed:.1f} s"
        )


def _group(entries: Iterable[Entry]) -> dict[bytes, list[Entry]]:
    groups: dict[bytes, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.partition, []).append(entry)
    return groups


def _lookup_tasks(window: Sequence[Entry]) -> list[tuple[bool, Sequence[Entry]]]:
    """Range tasks for partitions with many keys in the window, key tasks for the rest."""
    tasks: list[tuple[bool, Sequence[Entry]]] = []
    scattered: list[Entry] = []
    for group in _group(window).values():
        if len(group) < RANGE_LOOKUP_MIN:
            scattered.extend(group)
            continue
        group.sort(key=lambda e: e.key)
        for i in range(0, len(group), RANGE_LOOKUP_MAX):
            tasks.append((True, group[i : i + RANGE_LOOKUP_MAX]))
    for i in range(0, len(scattered), BATCH_GET_KEYS):
        tasks.append((False, scattered[i : i + BATCH_GET_KEYS]))
    return tasks


def _interleave(entries: Sequence[Entry]) -> list[Entry]:
    """Round-robin over partitions, each keeping its order."""
    groups = _group(entries)
    if len(groups) <= 1:
        return list(entries)
    lists = list(groups.values())
    out: list[Entry] = []
    longest = max(len(g) for g in lists)
    for i in range(longest):
        out.extend(g[i] for g in lists if i < len(g))
    return out
