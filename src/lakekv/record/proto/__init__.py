"""Generated protobuf modules for lakeFS's stored values (byte-identical to lakeFS's encoding).

Do not edit the ``*_pb2.py`` / ``*_pb2.pyi`` files: edit the ``.proto`` source next to them and
run ``python scripts/gen_protos.py`` (``--check`` reports stale modules; a test runs it).

``graveler_pb2`` — package ``io.treeverse.lakefs.graveler``
    ``RepositoryData`` (+ enum ``RepositoryState``), ``BranchData``, ``TagData``,
    ``CommitData``, ``StagedEntryData``, ``RepoMetadata``, ``ImportStatusData``,
    ``PullRequestData`` (+ enum ``PullRequestStatus``), ``GarbageCollectionRules``,
    ``GarbageCollectionRunMetadata``, ``BranchProtectionRules``,
    ``BranchProtectionBlockedActions`` (+ enum ``BranchProtectionBlockedAction``),
    ``LinkAddressData``.
``catalog_pb2`` — package ``catalog``
    ``Entry`` (the payload inside ``StagedEntryData.data``; nested enum ``Entry.AddressType``),
    ``Task``, ``TaskMsg`` and the task status records (``RepositoryDumpStatus``,
    ``RepositoryRestoreStatus``, ``GarbageCollectionPrepareStatus``, ``CommitAsyncStatus``,
    ``MergeAsyncStatus`` with their ``*Info`` messages).
``kv_pb2`` — package ``io.treeverse.lakefs.kv``
    ``SecondaryIndex`` (field ``primary_key`` is number 99, as in lakeFS), ``WeakOwnership``.

Example::

    from lakekv.record.proto import graveler_pb2

    data = graveler_pb2.BranchData(id="main", commit_id="…", staging_token="…").SerializeToString()
"""
