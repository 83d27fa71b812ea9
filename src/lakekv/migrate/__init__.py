"""Layer 4: dump, load, copy, sync and verify — complete, streaming, resumable migrations.

Each operation (and ``sample``, which writes a lakeFS-shaped database) is a function returning
a typed report (``lakekv.migrate.reports``) that serialises to JSON with ``report.to_json()``::

    from lakekv.migrate import copy, verify

    report = copy("sqlite:///lakefs.db", "postgres://u@db/lakefs", checkpoint="copy.ckpt")
    assert report.conflicts == 0
    assert verify("sqlite:///lakefs.db", "postgres://u@db/lakefs").equal

Stores are given as :class:`~lakekv.kv.store.Store` objects or URLs (opened and closed by the
call). Every function takes an optional ``progress`` callback (:class:`Progress` snapshots).
Inside ``with observing(Observe(...))`` the stores they open from URLs are measured, traced
or rate-limited (see :mod:`lakekv.migrate._observe`).
The dump file format is documented in ``docs/dump-format.md`` and :mod:`lakekv.migrate.dumpfile`.
"""

from lakekv.migrate._common import BATCH_ENTRIES, StoreLike
from lakekv.migrate._observe import Observe, observing
from lakekv.migrate._progress import Progress, ProgressCallback
from lakekv.migrate.copy import copy
from lakekv.migrate.dump import dump
from lakekv.migrate.feeds import untrack
from lakekv.migrate.lakefs_config import lakefs_store_url
from lakekv.migrate.lakefs_json import UnrepresentableEntryError
from lakekv.migrate.load import PartialLoadError, check_file, load
from lakekv.migrate.partitions import (
    FIXED_PARTITIONS,
    LAKEFS_SCHEMA_VERSION,
    SCHEMA_KEY,
    SCHEMA_PARTITION,
    plan_partitions,
    read_schema_version,
    walk_lakefs,
)
from lakekv.migrate.reports import (
    CopyReport,
    Difference,
    DumpReport,
    EntryRef,
    LoadReport,
    SyncReport,
    UntrackReport,
    VerifyReport,
)
from lakekv.migrate.sample import SampleReport, sample
from lakekv.migrate.sync import sync
from lakekv.migrate.verify import verify

__all__ = [
    "BATCH_ENTRIES",
    "FIXED_PARTITIONS",
    "LAKEFS_SCHEMA_VERSION",
    "SCHEMA_KEY",
    "SCHEMA_PARTITION",
    "CopyReport",
    "Difference",
    "DumpReport",
    "EntryRef",
    "LoadReport",
    "Observe",
    "PartialLoadError",
    "SampleReport",
    "StoreLike",
    "Progress",
    "ProgressCallback",
    "SyncReport",
    "UnrepresentableEntryError",
    "UntrackReport",
    "VerifyReport",
    "check_file",
    "copy",
    "dump",
    "lakefs_store_url",
    "load",
    "observing",
    "plan_partitions",
    "read_schema_version",
    "sample",
    "sync",
    "untrack",
    "verify",
    "walk_lakefs",
]
