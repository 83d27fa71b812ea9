"""The lakekv error tree.

Every error lakekv raises derives from :class:`LakekvError`. Errors are arranged by *layer*
(where it happened) and carry a *kind* mixin (what a caller can do about it)::

    LakekvError
    ├── ConfigurationError ................ bad URL, bad option, bad config file   (exit 2)
    │   ├── UnknownDriverError ............ no driver for the URL scheme
    │   └── DriverNotInstalledError ....... driver known, its extra not installed
    ├── InvalidArgumentError .............. bad argument, size over a limit         (exit 2)
    │   ├── MissingPartitionError ......... partition empty or None
    │   ├── MissingKeyError ............... key empty or None
    │   └── MissingValueError ............. value None (b"" is a legal value)
    ├── UnsupportedError .................. a capability the driver does not have   (exit 2)
    ├── StoreError ........................ layer 1: the key-value contract
    │   ├── KeyNotFoundError  [NotFound] .. get of a missing key or partition       (exit 1)
    │   ├── PredicateFailedError [Conflict] set_if condition did not hold           (exit 4)
    │   ├── StoreClosedError .............. use after close()
    │   └── StoreUnavailableError [Retryable] database unreachable, connection lost (exit 3)
    │       └── SlowDownError ............. throttled and retries exhausted
    ├── RecordError ....................... layer 2: protobuf records
    │   └── DecodeError ................... stored bytes are not the expected message
    ├── RefError .......................... layer 3: repositories, branches, ...
    │   (NotFound / AlreadyExists / Conflict subclasses live in ``lakekv.refs.errors``)
    └── MigrationError .................... layer 4: dump / load / copy / verify
        ├── CorruptInputError ............. corrupt, truncated or unsupported dump   (exit 5)
        └── SchemaVersionMismatchError .... both sides carry different schema versions (exit 2)

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
