"""Generate the protobuf modules of ``lakekv.record.proto`` and of the etcd driver
(``lakekv.kv.drivers.etcd.proto``, sources refreshed by ``fetch_etcd_protos.py``) from their
``.proto`` sources.

Usage::

    python scripts/gen_protos.py          # regenerate *_pb2.py and *_pb2.pyi in place
    python scripts/gen_protos.py --check  # exit 1 if the committed modules are stale

Uses the ``protoc`` bundled with ``grpcio-tools`` and the ``protoc-gen-mypy`` plugin from
``mypy-protobuf`` (both pinned in the dev dependency group, matched to the ``protobuf`` runtime
pin). Sources are compiled with ``src`` as the include root, so each generated module registers
its file as ``lakekv/record/proto/<name>.proto`` (or ``lakekv/kv/drivers/etcd/proto/...``) and
imports siblings by their full module path.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PROTO_DIR = SRC / "lakekv" / "record" / "proto"
PROTO_DIRS = (PROTO_DIR, SRC / "lakekv" / "kv" / "drivers" / "etcd" / "proto")
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi")


def proto_sources() -> list[Path]:
    """The ``.proto`` files to compile, sorted."""
    return sorted(p for d in PROTO_DIRS for p in d.glob("*.proto"))


def generate(out_root: Path) -> list[Path]:
    """Compile every source into ``out_root`` (a ``src``-like root); return the files written.

    Raises RuntimeError if protoc fails.
    """
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    plugin = Path(sys.executable).parent / "protoc-gen-mypy"
    if not plugin.exists():
        found = shutil.which("protoc-gen-mypy")
        if found is None:
            raise RuntimeError("protoc-gen-mypy not found: install the dev dependencies")
        plugin = Path(found)
    out_root.mkdir(parents=True, exist_ok=True)
    sources = [str(p.relative_to(SRC)) for p in proto_sources()]
    args = [
        "grpc_tools.protoc",
        f"-I{SRC}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={plugin}",
        f"--python_out={out_root}",
        f"--mypy_out={out_root}",
        *sources,
    ]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code}")
    return sorted(
        p
        for d in PROTO_DIRS
        for p in (out_root / d.relative_to(SRC)).iterdir()
        if p.name.endswith(GENERATED_SUFFIXES)
    )


def stale_files() -> list[str]:
    """Names of generated modules that differ from a fresh generation (or are missing/extra)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {str(p.relative_to(tmp)): p.read_bytes() for p in generate(Path(tmp))}
    committed = {
        str(p.relative_to(SRC)): p.read_bytes()
        for d in PROTO_DIRS
        for p in d.iterdir()
        if p.name.endswith(GENERATED_SUFFIXES)
    }
    names = sorted(set(fresh) | set(committed))
    return [n for n in names if fresh.get(n) != committed.get(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only report stale modules (exit 1 if any)"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"stale: src/{name}")
        if stale:
            print("run: python scripts/gen_protos.py", file=sys.stderr)
            return 1
        return 0
    for path in generate(SRC):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
