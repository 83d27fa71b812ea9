"""lakekv: lakeFS-compatible metadata storage over any database, and lossless migration.

The public API of the key-value layer is re-exported here::

    from lakekv import open_store, MUST_EXIST

    with open_store("sqlite:///lakekv.db") as store:
        store.set(b"partition", b"key", b"value")
        value, predicate = store.get(b"partition", b"key")
        store.set_if(b"partition", b"key", b"new", predicate)
        for entry in store.scan(b"partition", start=b"k"):
            ...

Higher layers live in ``lakekv.record``, ``lakekv.refs`` and ``lakekv.migrate``.
"""

from lakekv.errors import (
    AlreadyExistsError,
    ConfigurationError,
    ConflictError,
    DriverNotInstalledError,
    InvalidArgumentError,
    KeyNotFoundError,
    LakekvError,
    MissingKeyError,
    MissingPartitionError,
    MissingValueError,
    NotFoundError,
    PredicateFailedError,
    RetryableError,
    SlowDownError,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
    UnknownDriverError,
    UnsupportedError,
)
from lakekv.kv import (
    MUST_EXIST,
    BatchResult,
    Capabilities,
    Entry,
    EntryIterator,
    OnConflict,
    Store,
    StoreURL,
    ValueWithPredicate,
    available_drivers,
    open_store,
    register_driver,
)

__version__ = "0.1.0"

__all__ = [
    "MUST_EXIST",
    "AlreadyExistsError",
    "BatchResult",
    "Capabilities",
    "ConfigurationError",
    "ConflictError",
    "DriverNotInstalledError",
    "Entry",
    "EntryIterator",
    "InvalidArgumentError",
    "KeyNotFoundError",
    "LakekvError",
    "MissingKeyError",
    "MissingPartitionError",
    "MissingValueError",
    "NotFoundError",
    "OnConflict",
    "PredicateFailedError",
    "RetryableError",
    "SlowDownError",
    "Store",
    "StoreClosedError",
    "StoreError",
    "StoreURL",
    "StoreUnavailableError",
    "UnknownDriverError",
    "UnsupportedError",
    "ValueWithPredicate",
    "__version__",
    "available_drivers",
    "open_store",
    "register_driver",
]
