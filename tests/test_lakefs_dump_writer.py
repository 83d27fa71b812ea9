"""lakeFS-format dumps are written byte for byte as lakeFS's ``kv dump`` writes them.

The expected bytes were produced by Go 1.26's ``encoding/json`` ``Encoder.Encode`` on lakeFS
v1.86.0's ``DumpFormat`` / ``RawEntry`` structs (``pkg/kv/dump.go``; ``cmd/lakefs/cmd/kv.go``
encodes without indentation and with Go's default HTML escaping).
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from lakekv.kv.registry import open_store
from lakekv.kv.store import Entry
from lakekv.migrate import dump
from lakekv.migrate.lakefs_json import (
    LakeFSJSONWriter,
    UnrepresentableEntryError,
    go_json_string,
    lakefs_timestamp,
    read_lakefs_json,
)

KEYS = [
    'repos/<script>&amp;"quoted"\\back',
    "ctl\x00\x01\x08\x09\x0a\x0b\x0c\x0d\x1f\x7f end",
    "unicode \u00fc \u20ac \U0001f600 \u2028 \u2029 \u0085 \ufeff",
    "/slash'apos`tick",
]
ENTRIES = [
    Entry(f"part<{chr(ord('a') + i)}>".encode(), k.encode(), k.encode()[:i])
    for i, k in enumerate(KEYS)
]
GO_OUTPUT = (
    b'{"version":"1.0","timestamp":"2026-11-30T20:45:07Z","entries":[{"parti'
    b'tion":"part\\u003ca\\u003e","key":"repos/\\u003cscript\\u003e\\u0026amp;\\"q'
    b'uoted\\"\\\\back","value":""},{"partition":"part\\u003cb\\u003e","key":"ctl'
    b'\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f\x7f end","value":"Yw=="},{"partition":'
    b'"part\\u003cc\\u003e","key":"unicode \xc3\xbc \xe2\x82\xac \xf0\x9f\x98\x80 '
    b'\\u2028 \\u2029 \xc2\x85 \xef\xbb\xbf","'
    b'value":"dW4="},{"partition":"part\\u003cd\\u003e","key":"/slash\'apos`tic'
    b'k","value":"L3Ns"}]}\n'
)
"""Go's output for ``DumpFormat{"1.0", "2026-11-30T20:45:07Z", ENTRIES}``."""
GO_EMPTY = b'{"version":"1.0","timestamp":"2026-11-30T20:45:07Z"}\n'
"""Go's output with no entries (``entries`` is ``omitempty``)."""


def _write(entries: list[Entry]) -> bytes:
    out = io.BytesIO()
    writer = LakeFSJSONWriter(out, "2026-11-30T20:45:07Z")
    writer.add_many(entries)
    writer.finish()
    return out.getvalue()


def test_writer_output_is_byte_identical_to_lakefs() -> None:
    assert _write(ENTRIES) == GO_OUTPUT
    assert _write([]) == GO_EMPTY


def test_written_dump_reads_back() -> None:
    got = list(read_lakefs_json(io.BytesIO(GO_OUTPUT), "go"))
    assert got == ENTRIES


def test_go_string_escaping() -> None:
    assert go_json_string("<a & b>") == '"\\u003ca \\u0026 b\\u003e"'
    assert go_json_string("\u2028\u2029") == '"\\u2028\\u2029"'
    assert go_json_string("\x1f\x7f\u00e9") == '"\\u001f\x7f\u00e9"'
    assert go_json_string('"\\') == '"\\"\\\\"'


def test_timestamp_is_rfc3339_whole_seconds_utc() -> None:
    when = datetime(2026, 11, 30, 22, 45, 7, 999_999, tzinfo=timezone(timedelta(hours=2)))
    assert lakefs_timestamp(when) == "2026-11-30T20:45:07Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lakefs_timestamp())
    now = datetime.now(UTC).replace(microsecond=0)
    stamped = datetime.strptime(lakefs_timestamp(), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(stamped - now) <= timedelta(seconds=2)


def test_dump_in_lakefs_format_is_one_lakefs_line(tmp_path: Path) -> None:
    with open_store("memory://") as store:
        store.write_batch(ENTRIES)
        path = tmp_path / "d.json"
        dump(store, path, format="lakefs")
    data = path.read_bytes()
    stamp = re.match(rb'\{"version":"1\.0","timestamp":"([0-9T:Z-]+)",', data)
    assert stamp is not None
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp.group(1))
    fixed = data.replace(stamp.group(1), b"2026-11-30T20:45:07Z", 1)
    # the store scans partitions in bytewise order, as ENTRIES already are
    assert fixed == GO_OUTPUT


def test_non_utf8_names_stay_refused() -> None:
    with pytest.raises(UnrepresentableEntryError):
        _write([Entry(b"p", b"\xff", b"")])
