"""Layer 1: the key-value contract, store URLs and the driver registry."""

from lakekv.kv.registry import (
    DriverInfo,
    available_drivers,
    driver_class,
    open_store,
    register_driver,
    unregister_driver,
)
from lakekv.kv.store import (
    MUST_EXIST,
    BatchResult,
    Capabilities,
    Entry,
    EntryIterator,
    OnConflict,
    Predicate,
    ScanPaging,
    Store,
    ValueWithPredicate,
)
from lakekv.kv.url import StoreURL, redact

__all__ = [
    "MUST_EXIST",
    "BatchResult",
    "Capabilities",
    "DriverInfo",
    "Entry",
    "EntryIterator",
    "OnConflict",
    "Predicate",
    "ScanPaging",
    "Store",
    "StoreURL",
    "ValueWithPredicate",
    "available_drivers",
    "driver_class",
    "open_store",
    "redact",
    "register_driver",
    "unregister_driver",
]
