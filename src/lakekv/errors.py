"""The lakekv error tree.

Every error lakekv raises derives from :class:`LakekvError`. Errors are arranged by *layer*
(where it happened) and carry a *kind* mixin (what a caller can do about it)::

    LakekvError
    ├── ConfigurationError ................ bad URL, bad option, bad config file   (exit 2)
    │   ├── UnknownDriverError ............ no driver for the URL scheme
    │   ├── DriverNotInstalledError ....... driver known, its extra not installed
    │   ├── StoreNotFoundError [NotFound] . opened without create, and it does not exist
    │   ├── StoreInUseError ............... another program holds the store's lock (stop it)
    │   └── SameStoreError ................ copy/verify given one store as both sides
    ├── InvalidArgumentError .............. bad argument, size over a limit         (exit 2)
    │   ├── MissingPartitionError ......... partition empty or None
    │   ├── MissingKeyError ............... key empty or None
    │   └── MissingValueError ............. value None (b"" is a legal value)
    ├── UnsupportedError .................. a capability the driver does not have   (exit 2)
    ├── StoreError ........................ layer 1: the key-value contract
    │   ├── KeyNotFoundError  [NotFound] .. get of a missing key or partition       (exit 1)
    │   ├── PredicateFailedError [Conflict] set_if condition did not hold           (exit 4)
    │   ├── StoreClosedError .............. use after close() (or closed during the call)
    │   ├── StoreReadOnlyError ............ a write to a store opened read-only       (exit 6)
    │   └── StoreUnavailableError [Retryable] database unreachable, connection lost (exit 3)
    │       └── SlowDownError ............. throttled and retries exhausted
    ├── RecordError ....................... layer 2: protobuf records
    │   └── DecodeError ................... stored bytes are not the expected message
    ├── RefError .......................... layer 3: repositories, branches, ...
    │   (NotFound / AlreadyExists / Conflict subclasses live in ``lakekv.refs.errors``)
    └── MigrationError .................... layer 4: dump / load / copy / verify
        ├── CorruptInputError ............. corrupt, truncated or unsupported dump   (exit 5)
        ├── SchemaVersionMismatchError .... both sides carry different schema versions (exit 2)
        ├── UnsafeOperationError .......... refused: it could destroy data (--force) (exit 2)
        └── InterruptedMigrationError ..... stopped by SIGINT/SIGTERM; resumable  (exit 130/143)

Kinds (mixins, combine with a layer class): :class:`NotFoundError`, :class:`AlreadyExistsError`,
:class:`ConflictError`, :class:`RetryableError`. Catch a kind to act on it regardless of layer,
e.g. ``except RetryableError`` to back off and try again.

Drivers translate their client library's exceptions at the boundary with ``raise ... from exc``;
no psycopg, sqlite3 or botocore exception ever reaches a lakekv caller.
"""

from __future__ import annotations


class LakekvError(Exception):
    """Root of every error raised by lakekv."""


# --- kinds ---------------------------------------------------------------------------------


class NotFoundError(LakekvError):
    """Kind: the thing asked for does not exist."""


class AlreadyExistsError(LakekvError):
    """Kind: a create-only write found the thing already there."""


class ConflictError(LakekvError):
    """Kind: a concurrent or conditional update lost; re-read and decide again."""


class RetryableError(LakekvError):
    """Kind: transient; the same call may succeed later."""


# --- configuration and arguments -------------------------------------------------------------


class ConfigurationError(LakekvError):
    """A store URL, option or configuration file is wrong."""


class UnknownDriverError(ConfigurationError):
    """No driver is registered for the URL's scheme."""


class StoreNotFoundError(ConfigurationError, NotFoundError):
    """The store was opened without permission to create it (``create=False`` or
    ``read_only=True``) and does not exist: no such file, table or named store. The message
    names what is missing. Nothing was created."""


class StoreInUseError(ConfigurationError):
    """The store is locked by another program that must be stopped first (an embedded
    database such as lakeFS's ``local`` Badger directory, which one process opens at a time).
    Nothing was read or written."""


class SameStoreError(ConfigurationError):
    """Two sides of a copy or verify are the same store, however their URLs are spelled."""


class DriverNotInstalledError(ConfigurationError):
    """The driver exists but its optional dependencies are not installed (message has the hint)."""


class InvalidArgumentError(LakekvError, ValueError):
    """An argument is invalid: empty partition or key, ``None`` value, a size over a limit."""


class MissingPartitionError(InvalidArgumentError):
    """The partition is empty or ``None`` (lakeFS ``ErrMissingPartitionKey``)."""


class MissingKeyError(InvalidArgumentError):
    """The key is empty or ``None`` (lakeFS ``ErrMissingKey``)."""


class MissingValueError(InvalidArgumentError):
    """The value is ``None`` (lakeFS ``ErrMissingValue``); an empty value is legal."""


class UnsupportedError(LakekvError):
    """The store does not have the capability the call needs (see ``Store.capabilities``)."""


# --- layer 1: the store ------------------------------------------------------------------------


class StoreError(LakekvError):
    """An error from the key-value layer."""


class KeyNotFoundError(StoreError, NotFoundError):
    """``get`` found no value: the key, or its whole partition, is missing."""


class PredicateFailedError(StoreError, ConflictError):
    """``set_if`` did not write: the stored state did not match the predicate."""


class StoreClosedError(StoreError):
    """The store or iterator was used after ``close()``."""


class StoreReadOnlyError(StoreError):
    """A write (``set``, ``set_if``, ``delete``, ``write_batch``, ``destroy``) on a store
    opened with ``read_only=True``."""


class StoreUnavailableError(StoreError, RetryableError):
    """The database could not be reached or the connection broke; retry later."""


class SlowDownError(StoreUnavailableError):
    """The database throttled the request and lakekv's retry budget ran out; retry later."""


# --- higher layers -------------------------------------------------------------------------


class RecordError(LakekvError):
    """An error from the record (protobuf) layer."""


class DecodeError(RecordError):
    """Stored bytes could not be decoded as the expected message type."""


class RefError(LakekvError):
    """An error from the ref store (repositories, branches, commits, tags, staging)."""


class MigrationError(LakekvError):
    """An error from dump, load, copy or verify."""


class CorruptInputError(MigrationError):
    """A dump file is corrupt, truncated, of an unknown format or an unsupported version."""


class SchemaVersionMismatchError(MigrationError):
    """Source and target hold different lakeFS schema versions; refused unless forced."""


class UnsafeOperationError(MigrationError):
    """Refused because it could destroy or overwrite data the operator may not mean to lose
    (a ``--sync`` from a source without a lakeFS schema version, ``sample`` into a non-empty
    store, more deletions than ``max_delete``). ``force`` overrides where offered."""


class InterruptedMigrationError(MigrationError):
    """A migration stopped on request (SIGINT / SIGTERM or a set stop event) between batches.

    Everything reported as written is written; a checkpoint, if any, is consistent, and running
    the same command again resumes. ``signal`` is the signal number, or ``None``.
    """

    def __init__(self, message: str, signal: int | None = None) -> None:
        super().__init__(message)
        self.signal = signal
