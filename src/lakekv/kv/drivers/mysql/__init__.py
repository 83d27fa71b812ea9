"""``mysql://user:password@host:3306/db?table=kv`` — MySQL and MariaDB (also ``mariadb://``).

The client is PyMySQL (pure Python; chosen by measurement, see ``README.md``). The store lives
in :mod:`.store`; the bulk-write path in :mod:`.bulk`.
"""

from lakekv.kv.drivers.mysql.store import (
    MAX_KEY_SIZE,
    MAX_PARTITION_SIZE,
    MAX_VALUE_SIZE,
    MIN_MAX_ALLOWED_PACKET,
    MySQLStore,
)

__all__ = [
    "MAX_KEY_SIZE",
    "MAX_PARTITION_SIZE",
    "MAX_VALUE_SIZE",
    "MIN_MAX_ALLOWED_PACKET",
    "MySQLStore",
]
