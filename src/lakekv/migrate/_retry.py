"""Retrying transient store errors (:class:`~lakekv.errors.RetryableError`) with backoff.

Every store operation a migration performs is idempotent (writes are create-if-absent or
value-preserving upserts, deletes are idempotent, a scan iterator re-asks for the page it
failed to fetch), so retrying after a dropped connection is always safe.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from lakekv.errors import RetryableError
from lakekv.kv.store import Entry, Store

T = TypeVar("T")

ATTEMPTS = 6
"""Tries per operation (the first plus five retries), about 6 s of backoff in total."""
_BASE = 0.1
_CAP = 2.0


class RetryCounter:
    """Counts retries across threads, for the report."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def bump(self) -> None:
        with self._lock:
            self.count += 1


_NULL = RetryCounter()


def _sleep(attempt: int) -> None:
    delay = min(_CAP, _BASE * 2**attempt)
    time.sleep(delay * (0.5 + random.random() / 2))


def _back_off(failures: int, attempts: int, counter: RetryCounter) -> bool:
    """After the ``failures``-th consecutive failure: ``False`` when out of attempts (the
    caller re-raises), else count a retry, sleep and return ``True``."""
    if failures >= attempts:
        return False
    counter.bump()
    _sleep(failures - 1)
    return True


def call(fn: Callable[[], T], counter: RetryCounter = _NULL, attempts: int = ATTEMPTS) -> T:
    """``fn()``, retried on RetryableError; the last error propagates."""
    failures = 0
    while True:
        try:
            return fn()
        except RetryableError:
            failures += 1
            if not _back_off(failures, attempts, counter):
                raise


def retrying(
    it: Iterator[Entry], counter: RetryCounter = _NULL, attempts: int = ATTEMPTS
) -> Iterator[Entry]:
    """Iterate ``it`` (a store scan), retrying a page fetch that fails transiently.

    A scan iterator that raised re-asks for the page it failed to fetch when iterated again,
    so nothing is skipped or repeated. ``attempts`` bounds consecutive failures.
    """
    failures = 0
    while True:
        try:
            for entry in it:
                failures = 0
                yield entry
            return
        except RetryableError:
            failures += 1
            if not _back_off(failures, attempts, counter):
                raise


def retrying_pages(
    store: Store,
    partition: bytes,
    start: bytes = b"",
    page_size: int = 0,
    counter: RetryCounter = _NULL,
    attempts: int = ATTEMPTS,
) -> Iterator[Sequence[tuple[bytes, bytes]]]:
    """``store.scan_pages(partition, start)``, restarted after a transient failure just after
    the last key handed out: nothing is skipped or repeated. ``attempts`` bounds consecutive
    failures."""
    failures = 0
    while True:
        try:
            for page in store.scan_pages(partition, start, page_size):
                failures = 0
                yield page
                start = page[-1][0] + b"\x00"
            return
        except RetryableError:
            failures += 1
            if not _back_off(failures, attempts, counter):
                raise
