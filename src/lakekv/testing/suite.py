"""The store conformance suite: every driver must pass every test here, at every page size."""

from __future__ import annotations

import pytest

from lakekv.errors import KeyNotFoundError
from lakekv.kv.store import Store


class StoreContractSuite:
    """Subclass (or import under a ``Test*`` name) to run the suite with ``--store URL``."""

    def test_set_get(self, store: Store, partition: bytes) -> None:
        store.set(partition, b"key", b"value")
        assert store.get(partition, b"key").value == b"value"

    def test_get_missing_key(self, store: Store, partition: bytes) -> None:
        with pytest.raises(KeyNotFoundError):
            store.get(partition, b"missing")
