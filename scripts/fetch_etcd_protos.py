"""Refresh etcd's v3 API ``.proto`` sources in ``src/lakekv/kv/drivers/etcd/proto``.

Usage::

    python scripts/fetch_etcd_protos.py v3.5.17   # then: python scripts/gen_protos.py

Downloads the Go module ``go.etcd.io/etcd/api/v3`` at the given version with ``go mod
download`` (through the Go module proxy) and copies ``etcdserverpb/rpc.proto``,
``mvccpb/kv.proto`` and ``authpb/auth.proto``, stripped of what only Go code generation needs:
the ``gogoproto`` import and options and the ``google.api.http`` gateway annotations (which
change neither messages nor wire format). Imports are rewritten to the package's own path.
Package names (``etcdserverpb``, ``mvccpb``, ``authpb``) are kept: gRPC method names such as
``/etcdserverpb.KV/Range`` derive from them. The copies are committed; ``gen_protos.py``
compiles them like the record layer's protos.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "lakekv" / "kv" / "drivers" / "etcd" / "proto"
MODULE = "go.etcd.io/etcd/api/v3"
FILES = {
    "etcdserverpb/rpc.proto": "rpc.proto",
    "mvccpb/kv.proto": "kv.proto",
    "authpb/auth.proto": "auth.proto",
}
IMPORT_PATH = "lakekv/kv/drivers/etcd/proto"

_GATEWAY_OPTION = re.compile(r"\n[ \t]*option \(google\.api\.http\) = \{")
_GOGO_OPTION = re.compile(r"^option \(gogoproto\.[a-z_]+\) = [a-z]+;\n", re.MULTILINE)
_DROPPED_IMPORTS = re.compile(
    r'^(// for grpc-gateway\n)?import "(gogoproto/gogo|google/api/annotations)\.proto";\n',
    re.MULTILINE,
)
_ETCD_IMPORT = re.compile(r'^import "etcd/api/(?:mvccpb|authpb)/(\w+\.proto)";', re.MULTILINE)


def strip(text: str, version: str, source: str) -> str:
    """The ``.proto`` text without Go-only options, importing its siblings by our path."""
    text = _drop_gateway_options(text)
    text = _GOGO_OPTION.sub("", text)
    text = _DROPPED_IMPORTS.sub("", text)
    text = _ETCD_IMPORT.sub(lambda m: f'import "{IMPORT_PATH}/{m.group(1)}";', text)
    # A service method whose only option was removed keeps an empty body: "{\n  }".
    text = re.sub(r"\{\s*\}", "{}", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    if "gogoproto" in text or "google.api" in text:
        raise RuntimeError(f"{source}: Go-only options left after stripping")
    header = f"// From {MODULE}@{version} {source}, stripped by scripts/fetch_etcd_protos.py.\n"
    return header + text


def _drop_gateway_options(text: str) -> str:
    """Remove every ``option (google.api.http) = {...};`` block (its braces may nest)."""
    while (m := _GATEWAY_OPTION.search(text)) is not None:
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if text[i] != ";":
            raise RuntimeError(f"unexpected gateway option syntax at offset {m.start()}")
        text = text[: m.start()] + text[i + 1 :]
    return text


def download(version: str, gopath: Path) -> Path:
    env = dict(os.environ, GOPATH=str(gopath), GOFLAGS="-modcacherw")
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{MODULE}@{version}"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return Path(json.loads(result.stdout)["Dir"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", help="module version, e.g. v3.5.17")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        module_dir = download(args.version, Path(tmp))
        OUT.mkdir(parents=True, exist_ok=True)
        for source, name in FILES.items():
            text = (module_dir / source).read_text()
            (OUT / name).write_text(strip(text, args.version, source))
            print(f"wrote {(OUT / name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
