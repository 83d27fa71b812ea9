"""The conformance suite through the metrics, tracing and rate-limiting wrappers stacked:
observing a store changes nothing its callers see."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator

import pytest

from lakekv.kv.registry import open_store
from lakekv.kv.store import Store
from lakekv.kv.wrappers import KVMetrics, RateLimit
from lakekv.testing import StoreContractSuite


def _extras() -> None:
    for module in ("prometheus_client", "opentelemetry.trace"):
        try:
            importlib.import_module(module)
        except ImportError:
            reason = f"{module} is not installed (an optional extra)"
            if os.environ.get("CI"):
                pytest.fail(f"{reason}: required because CI is set", pytrace=False)
            pytest.skip(reason)


@pytest.fixture(scope="module")
def _metrics() -> KVMetrics:
    _extras()
    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    return KVMetrics(CollectorRegistry())


class TestObservedStore(StoreContractSuite):
    @pytest.fixture
    def store(self, store_url: str, _metrics: KVMetrics) -> Iterator[Store]:
        s = open_store(store_url, metrics=_metrics, tracing=True, rate_limit=RateLimit(1e9, 1e12))
        try:
            yield s
        finally:
            s.close()
