"""``postgres://user:password@host:5432/db?table=kv`` — PostgreSQL, in exactly lakeFS's layout.

The store, its URL, layout and behaviour live in :mod:`.store`; the connection lender in
:mod:`.pool`; the bulk-write (``COPY``) path in :mod:`.bulk`; snapshots in :mod:`.snapshot`.
"""

from lakekv.kv.drivers.postgres.store import (
    DIGEST_SCHEME,
    MAX_TABLE_NAME_BYTES,
    PARTITIONS,
    PostgresSettings,
    PostgresStore,
    advisory_lock_id,
    partition_table_names,
    view_name,
)

__all__ = [
    "DIGEST_SCHEME",
    "MAX_TABLE_NAME_BYTES",
    "PARTITIONS",
    "PostgresSettings",
    "PostgresStore",
    "advisory_lock_id",
    "partition_table_names",
    "view_name",
]
