"""lakekv's protobuf schemas against lakeFS's own ``.proto`` files (release v1.86.0).

Every message lakeFS stores in its KV database must have, in lakekv, the same full name and the
same fields: name, number, type, label, message/enum type and proto3 ``optional``. The
comparison compiles lakeFS's sources with the ``protoc`` of ``grpcio-tools``; it needs a lakeFS
source tree (``LAKEKV_LAKEFS_SOURCE``, else the Go module cache's
``github.com/treeverse/lakefs@v1.86.0``, which building lakeFS from its module fills) and is
skipped without one (it fails under ``CI``). ``test_record_generated.py`` holds the same facts
as wire bytes, without the source tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import grpc_tools
import pytest
from _lakefs_harness import lakefs_version
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor
from grpc_tools import protoc

from lakekv.record.proto import (
    actions_pb2,
    auth_pb2,
    catalog_pb2,
    graveler_pb2,
    kv_pb2,
    mc_owner_pb2,
    multipart_pb2,
)

LAKEFS_RELEASE = lakefs_version()
"""The lakeFS release the Makefile pins (``LAKEFS_VERSION``)."""
LAKEFS_PROTOS = {
    "graveler/graveler.proto": graveler_pb2,
    "catalog/catalog.proto": catalog_pb2,
    "kv/secondary_index.proto": kv_pb2,
    "distributed/mc_owner.proto": mc_owner_pb2,
    "auth/model/model.proto": auth_pb2,
    "actions/actions.proto": actions_pb2,
    "gateway/multipart/multipart.proto": multipart_pb2,
}


def _go_module_caches() -> list[Path]:
    caches = [Path(os.environ["GOMODCACHE"])] if os.environ.get("GOMODCACHE") else []
    go = shutil.which("go")
    if go is not None:
        try:
            out = subprocess.run(
                [go, "env", "GOMODCACHE"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            caches.append(Path(out))
    caches.append(Path.home() / "go" / "pkg" / "mod")
    return caches


def _lakefs_source() -> Path | None:
    env = os.environ.get("LAKEKV_LAKEFS_SOURCE")
    if env:
        return Path(env)  # named explicitly: must be a lakeFS tree (the test fails otherwise)
    for cache in _go_module_caches():
        path = cache / "github.com" / "treeverse" / f"lakefs@{LAKEFS_RELEASE}"
        if (path / "pkg" / "graveler" / "graveler.proto").is_file():
            return path
    return None


def _compile_lakefs(source: Path) -> descriptor_pb2.FileDescriptorSet:
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        code = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{source / 'pkg'}",
                f"-I{well_known}",
                "--include_imports",
                f"--descriptor_set_out={out}",
                *LAKEFS_PROTOS,
            ]
        )
        assert code == 0, "protoc failed on lakeFS's sources"
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _proto_fields(
    package: str, msgs: list[descriptor_pb2.DescriptorProto], prefix: str = ""
) -> dict[str, list[tuple[object, ...]]]:
    out: dict[str, list[tuple[object, ...]]] = {}
    for msg in msgs:
        name = f"{prefix or package}.{msg.name}"
        out[name] = sorted(
            (
                f.name,
                f.number,
                f.type,
                f.label,
                f.type_name.lstrip("."),
                f.proto3_optional,
            )
            for f in msg.field
        )
        for enum in msg.enum_type:
            out[f"{name}.{enum.name}"] = [(v.name, v.number) for v in enum.value]
        out.update(_proto_fields(package, list(msg.nested_type), name))
    return out


def _file_proto(module: object) -> descriptor_pb2.FileDescriptorProto:
    descriptor: FileDescriptor = module.DESCRIPTOR  # type: ignore[attr-defined]
    proto = descriptor_pb2.FileDescriptorProto()
    descriptor.CopyToProto(proto)
    return proto


def test_schemas_match_lakefs_sources() -> None:
    source = _lakefs_source()
    if source is None:
        if os.environ.get("CI"):
            pytest.fail("lakeFS source tree not found (set LAKEKV_LAKEFS_SOURCE)")
        pytest.skip(f"lakeFS {LAKEFS_RELEASE} source tree not found")
    theirs = {f.name: f for f in _compile_lakefs(source).file}
    for path, module in LAKEFS_PROTOS.items():
        lakefs_file = theirs[path]
        ours = _file_proto(module)
        assert ours.package == lakefs_file.package, path
        want = _proto_fields(lakefs_file.package, list(lakefs_file.message_type))
        got = _proto_fields(ours.package, list(ours.message_type))
        missing = sorted(set(want) - set(got))
        assert not missing, f"{path}: messages missing in lakekv: {missing}"
        extra = sorted(set(got) - set(want))
        assert not extra, f"{path}: messages lakeFS does not have: {extra}"
        for name, fields in want.items():
            assert got[name] == fields, f"{path}: {name} differs from lakeFS"
        want_enums = {e.name: [(v.name, v.number) for v in e.value] for e in lakefs_file.enum_type}
        got_enums = {e.name: [(v.name, v.number) for v in e.value] for e in ours.enum_type}
        assert got_enums == want_enums, path
