"""Test doubles shared by several test modules."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from lakekv.errors import StoreError, StoreUnavailableError
from lakekv.kv.drivers.memory import MemoryStore
from lakekv.kv.store import DEFAULT_OPEN, ScanPaging
from lakekv.kv.url import StoreURL


class FlakyStore(MemoryStore):
    """A memory store whose page fetches numbered in ``fail_on`` (1-based) fail transiently,
    with a driver exception (``sqlite3.OperationalError``) that the base class translates."""

    driver_errors = (sqlite3.OperationalError,)

    def __init__(self, fail_on: set[int], page: int = 2) -> None:
        super().__init__(StoreURL.parse("memory://"), ScanPaging(page, page), DEFAULT_OPEN, "")
        self.fail_on = fail_on
        self.calls = 0

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        self.calls += 1
        if self.calls in self.fail_on:
            raise sqlite3.OperationalError("database is locked")
        return super()._scan_page(partition, start, inclusive, limit)

    def _translate_error(self, exc: BaseException) -> StoreError:
        if isinstance(exc, sqlite3.OperationalError):
            return StoreUnavailableError(f"flaky: {exc}")
        return StoreError(f"flaky: {exc}")
