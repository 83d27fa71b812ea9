"""Generated protobuf modules for lakeFS's stored values (byte-identical to lakeFS's encoding).

Do not edit the ``*_pb2.py`` / ``*_pb2.pyi`` files: edit the ``.proto`` source next to them and
run ``python scripts/gen_protos.py`` (``--check`` reports stale modules; a test runs it).

Each module mirrors one file of lakeFS v1.86.0 (same package, message names, field numbers):

``graveler_pb2`` — ``pkg/graveler/graveler.proto``, package ``io.treeverse.lakefs.graveler``
    ``RepositoryData`` (+ enum ``RepositoryState``), ``BranchData``, ``TagData``,
    ``CommitData``, ``StagedEntryData``, ``RepoMetadata``, ``ImportStatusData``,
    ``PullRequestData`` (+ enum ``PullRequestStatus``), ``GarbageCollectionRules``,
    ``BranchProtectionRules``, ``BranchProtectionBlockedActions`` (+ enum
    ``BranchProtectionBlockedAction``), ``LinkAddressData``.
``catalog_pb2`` — ``pkg/catalog/catalog.proto``, package ``catalog``
    ``Entry`` (the payload inside ``StagedEntryData.data``; nested enum ``Entry.AddressType``),
    ``Task``, ``TaskMsg``, ``InstanceHeartbeat`` and the task status records
    (``RepositoryDumpStatus``, ``RepositoryRestoreStatus``, ``GarbageCollectionPrepareStatus``,
    ``CommitAsyncStatusData`` with a ``graveler.CommitData``, ``MergeAsyncStatusData`` with
    ``MergeData``).
``kv_pb2`` — ``pkg/kv/secondary_index.proto``, package ``io.treeverse.lakefs.kv``
    ``SecondaryIndex`` (``primary_key`` is field 1: an entry starts ``0a <len>``).
``mc_owner_pb2`` — ``pkg/distributed/mc_owner.proto``, package ``io.treeverse.lakefs.kv``
    ``MostlyCorrectOwnership``.
``auth_pb2`` — ``pkg/auth/model/model.proto``, package ``io.treeverse.lakefs.auth.model``
    ``UserData``, ``GroupData``, ``PolicyData`` (``StatementData``, ``ConditionOperator``,
    ``StringList``, ``ACLData``), ``CredentialData``, ``TokenData``, ``RepositoriesData``,
    ``UIData``.
``actions_pb2`` — ``pkg/actions/actions.proto``, package ``io.treeverse.lakefs.actions``
    ``RunResultData``, ``TaskResultData``.
``multipart_pb2`` — ``pkg/gateway/multipart/multipart.proto``, package
    ``io.treeverse.lakefs.multipart``: ``UploadData``.

Example::

    from lakekv.record.proto import graveler_pb2

    data = graveler_pb2.BranchData(id="main", commit_id="…", staging_token="…").SerializeToString()
"""
