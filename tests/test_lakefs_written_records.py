"""Every entry of a database written by lakeFS v1.86.0 itself decodes with lakekv's schemas.

``data/lakefs-v1.86.0-postgres.json`` holds every entry a lakeFS v1.86.0 server (``lakefs
setup``, then ``lakefs run`` on PostgreSQL with a local blockstore) wrote while it was driven
through its API: a repository with objects, a Lua pre-commit hook (action runs), commits on
``main`` and two branches, a tombstone, a tag, two pull requests (one merged), a merge, branch
protection, repository metadata, a refs-dump task, an S3-gateway multipart upload left open,
a second repository created and deleted, and the usage counter. The entries were dumped with
``lakekv dump --format lakefs``; its bytes for the ``pulls``, ``kv-internal-metadata`` and
repository partitions were checked identical (timestamp aside) to ``lakefs kv dump`` of the same
database.
"""

from __future__ import annotations

from pathlib import Path

from lakekv.migrate.lakefs_json import read_lakefs_json
from lakekv.record import decode_entry, undecodable
from lakekv.record.proto import kv_pb2

DUMP = Path(__file__).parent / "data" / "lakefs-v1.86.0-postgres.json"


def test_every_lakefs_written_entry_decodes() -> None:
    with DUMP.open("rb") as f:
        entries = list(read_lakefs_json(f, DUMP.name))
    assert len(entries) == 53
    assert list(undecodable(entries)) == []
    rules = {decode_entry(*e).rule for e in entries}
    assert {
        "basicAuth-user",
        "basicAuth-credential",
        "pull-request-index",
        "action-run",
        "action-hook-run",
        "action-run-by-branch",
        "action-run-by-commit",
        "dump-refs-task",
        "multipart-upload",
        "staged-entry",
        "commit",
    } <= rules


def test_lakefs_pull_index_holds_the_bare_pull_id() -> None:
    with DUMP.open("rb") as f:
        entries = list(read_lakefs_json(f, DUMP.name))
    keys = {(e.partition, e.key) for e in entries}
    pulls = [decode_entry(*e) for e in entries if e.partition == b"pulls"]
    assert len(pulls) == 2
    for record in pulls:
        assert record.raw.startswith(b"\x0a")  # field 1, not 99
        assert isinstance(record.message, kv_pb2.SecondaryIndex)
        primary = record.message.primary_key
        repo_partition = record.key.split(b"/")[1]
        assert (repo_partition, b"pulls/" + primary) in keys
