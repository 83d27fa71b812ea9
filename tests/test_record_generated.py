"""Generated protobuf modules: current, loadable under the pinned runtime, lakeFS wire bytes."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

from google.protobuf import runtime_version

from lakekv.record.proto import catalog_pb2, graveler_pb2, kv_pb2

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
        "from lakekv.record.proto import graveler_pb2, catalog_pb2, kv_pb2"
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
    # lakeFS numbers SecondaryIndex.primary_key 99: tag (99 << 3 | 2) = 794 = varint 9a 06.
    assert kv_pb2.SecondaryIndex(primary_key=b"x").SerializeToString() == b"\x9a\x06\x01x"
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
