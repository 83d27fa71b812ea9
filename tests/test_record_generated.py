"""Generated protobuf modules: current, loadable under the pinned runtime, lakeFS wire bytes."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

from google.protobuf import runtime_version

from lakekv.record.proto import (
    actions_pb2,
    auth_pb2,
    catalog_pb2,
    graveler_pb2,
    kv_pb2,
    mc_owner_pb2,
    multipart_pb2,
)

ROOT = Path(__file__).resolve().parent.parent


def test_generated_modules_are_not_stale() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"stale generated protobuf modules:\n{result.stdout}"


def test_generated_modules_import_without_version_warnings() -> None:
    code = (
        "import warnings; warnings.simplefilter('error');"
        "from lakekv.record.proto import graveler_pb2, catalog_pb2, kv_pb2, auth_pb2,"
        " actions_pb2, multipart_pb2, mc_owner_pb2"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_gencode_version_is_not_newer_than_runtime() -> None:
    text = (ROOT / "src/lakekv/record/proto/graveler_pb2.py").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("# Protobuf Python Version:"))
    gencode = tuple(int(x) for x in line.split(":")[1].strip().split("."))
    runtime = (runtime_version.OSS_MAJOR, runtime_version.OSS_MINOR, runtime_version.OSS_PATCH)
    assert gencode[0] == runtime[0]
    assert gencode <= runtime
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runtime_version.ValidateProtobufRuntimeVersion(
            runtime_version.Domain.PUBLIC, *gencode, "", "check"
        )


def test_field_numbers_match_lakefs_wire_bytes() -> None:
    branch = graveler_pb2.BranchData(
        id="main", commit_id="c1", staging_token="t", sealed_tokens=["s"], hidden=True
    )
    # field 1 "main", 2 "c1", 3 "t", 4 "s", 5 true
    assert branch.SerializeToString() == bytes.fromhex("0a046d61696e120263311a017422017328" + "01")
    staged = graveler_pb2.StagedEntryData(key=b"k", identity=b"i", data=b"d")
    assert staged.SerializeToString() == b"\x0a\x01k\x12\x01i\x1a\x01d"
    # lakeFS v1.86.0 pkg/kv/secondary_index.proto: primary_key is field 1, so 0a <len> ...
    assert kv_pb2.SecondaryIndex(primary_key=b"x").SerializeToString() == b"\x0a\x01x"
    entry = catalog_pb2.Entry(address="a", size=3, address_type=catalog_pb2.Entry.FULL)
    assert entry.SerializeToString() == b"\x0a\x01a\x18\x03\x30\x02"
    repo = graveler_pb2.RepositoryData(
        id="r", state=graveler_pb2.IN_DELETION, read_only=True, storage_id="s"
    )
    assert repo.SerializeToString() == b"\x0a\x01r\x28\x01\x38\x01\x42\x01s"
    commit = graveler_pb2.CommitData(version=1, generation=2, parents=["p"])
    assert commit.SerializeToString() == b"\x3a\x01p\x40\x01\x48\x02"
    assert graveler_pb2.ImportStatusData(metarange_id="m").SerializeToString() == b"\x2a\x01m"
    assert graveler_pb2.RepoMetadata().SerializeToString() == b""


def test_lakefs_secondary_index_bytes_decode() -> None:
    # What lakeFS writes for a pull-request index entry: field 1, the bare pull ID.
    index = kv_pb2.SecondaryIndex.FromString(b"\x0a\x03p42")
    assert index.primary_key == b"p42"
    assert index.SerializeToString() == b"\x0a\x03p42"  # nothing kept as an unknown field


def test_catalog_records_match_lakefs_wire_bytes() -> None:
    # lakeFS v1.86.0 pkg/catalog/catalog.proto: Task 6 status_code int32, 7 operation,
    # 8 owner_instance_id; CommitAsyncStatusData.info (2) is a graveler.CommitData.
    task = catalog_pb2.Task(status_code=409, operation="o", owner_instance_id="i")
    assert task.SerializeToString() == b"\x30\x99\x03\x3a\x01o\x42\x01i"
    status = catalog_pb2.CommitAsyncStatusData(info=graveler_pb2.CommitData(id="c"))
    assert status.SerializeToString() == b"\x12\x03\x0a\x01c"
    merge = catalog_pb2.MergeAsyncStatusData(info=catalog_pb2.MergeData(reference="r"))
    assert merge.SerializeToString() == b"\x12\x03\x0a\x01r"
    beat = catalog_pb2.InstanceHeartbeat()
    beat.updated_at.seconds = 1
    assert beat.SerializeToString() == b"\x0a\x02\x08\x01"


def test_auth_actions_multipart_ownership_match_lakefs_wire_bytes() -> None:
    # pkg/auth/model/model.proto, pkg/actions/actions.proto,
    # pkg/gateway/multipart/multipart.proto, pkg/distributed/mc_owner.proto (v1.86.0).
    assert auth_pb2.UserData(username="u", external_id="e").SerializeToString() == (
        b"\x12\x01u\x3a\x01e"
    )
    cred = auth_pb2.CredentialData(
        access_key_id="a", secret_access_key_encrypted_bytes=b"s", user_id=b"users/u"
    )
    assert cred.SerializeToString() == b"\x0a\x01a\x12\x01s\x22\x07users/u"
    assert auth_pb2.GroupData(description="d").SerializeToString() == b"\x1a\x01d"
    policy = auth_pb2.PolicyData(acl=auth_pb2.ACLData(permission="Read"))
    assert policy.SerializeToString() == b"\x22\x06\x0a\x04Read"
    assert actions_pb2.RunResultData(passed=True).SerializeToString() == b"\x40\x01"
    assert actions_pb2.TaskResultData(passed=True).SerializeToString() == b"\x48\x01"
    upload = multipart_pb2.UploadData(upload_id="x", content_type="t")
    assert upload.SerializeToString() == b"\x0a\x01x\x32\x01t"
    own = mc_owner_pb2.MostlyCorrectOwnership(owner="o", comment="c")
    assert own.SerializeToString() == b"\x0a\x01o\x1a\x01c"
    assert own.DESCRIPTOR.full_name == "io.treeverse.lakefs.kv.MostlyCorrectOwnership"
