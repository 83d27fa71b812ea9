"""Retrying transient store errors (:class:`~lakekv.errors.RetryableError`) with backoff.

Every store operation a migration performs is idempotent (writes are create-if-absent or
value-preserving upserts, deletes are idempotent, a scan iterator re-asks for the page it
failed to fetch), so retrying after a dropped connection is always safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from lakekv.errors import RetryableError
from lakekv.kv.store import Entry, Store
from lakekv.migrate import _observe
from lakekv.retry import Attempts, RetryPolicy

T = TypeVar("T")

ATTEMPTS = 6
"""Tries per operation (the first plus five retries), about 6 s of backoff in total."""


def policy(attempts: int = ATTEMPTS) -> RetryPolicy:
    """The migration policy: ``attempts`` tries, intervals from 0.1 s doubling up to 2 s,
    each sleep in the upper half of its interval."""
    return RetryPolicy(max_tries=attempts, initial_interval=0.1, max_interval=2.0, jitter=0.5)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _attempts(attempts: int) -> Attempts:
    # _sleep is looked up per operation, so tests can replace it.
    return policy(attempts).attempts(_sleep)


class RetryCounter:
    """Counts retries across threads, for the report."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def bump(self) -> None:
        with self._lock:
            self.count += 1
        _observe.retried()


_NULL = RetryCounter()


def _back_off(state: Attempts, counter: RetryCounter) -> bool:
    """After a failure: ``False`` when out of attempts (the caller re-raises), else count a
    retry, sleep and return ``True``."""
    if not state.backoff():
        return False
    counter.bump()
    return True


def call(fn: Callable[[], T], counter: RetryCounter = _NULL, attempts: int = ATTEMPTS) -> T:
    """``fn()``, retried on RetryableError (:meth:`RetryPolicy.call` under the migration
    policy, each retry counted); the last error propagates."""
    return policy(attempts).call(fn, on_retry=lambda _exc: counter.bump(), sleep=_sleep)


def retrying(
    it: Iterator[Entry], counter: RetryCounter = _NULL, attempts: int = ATTEMPTS
) -> Iterator[Entry]:
    """Iterate ``it`` (a store scan), retrying a page fetch that fails transiently.

    A scan iterator that raised re-asks for the page it failed to fetch when iterated again,
    so nothing is skipped or repeated. ``attempts`` bounds consecutive failures.
    """
    state = _attempts(attempts)
    while True:
        progressed = False
        try:
            for entry in it:
                progressed = True
                yield entry
            return
        except RetryableError:
            if progressed:
                state.progress()
            if not _back_off(state, counter):
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
    state = _attempts(attempts)
    while True:
        progressed = False
        try:
            for page in store.scan_pages(partition, start, page_size):
                progressed = True
                yield page
                start = page[-1][0] + b"\x00"
            return
        except RetryableError:
            if progressed:
                state.progress()
            if not _back_off(state, counter):
                raise
