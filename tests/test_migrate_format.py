"""Dump files: the lakekv format's checks, the lakeFS JSON format in and out, compression,
corrupt input (nothing written), streamed loads, and lakeFS configuration files."""

from __future__ import annotations

import base64
import gzip
import io
import json
from pathlib import Path

import pytest
from _migrate_helpers import BINARY_ENTRIES, StoreMaker, all_entries

from lakekv.errors import ConfigurationError, CorruptInputError
from lakekv.kv.store import Entry, Store
from lakekv.migrate import (
    PartialLoadError,
    UnrepresentableEntryError,
    check_file,
    dump,
    lakefs_store_url,
    load,
    verify,
)
from lakekv.migrate.dumpfile import DumpReader, DumpWriter, partition_digest
from lakekv.migrate.lakefs_json import read_lakefs_json
from lakekv.migrate.sample import sample


def _entries(n_partitions: int = 4, per: int = 30) -> list[Entry]:
    return [
        Entry(b"part-%d" % p, b"key-%04d" % i, b"v" * (i % 7))
        for p in range(n_partitions)
        for i in range(per)
    ]


def _store_with(maker: StoreMaker, entries: list[Entry], base: str = "memory://") -> Store:
    s = maker.fresh(base, "src")
    s.write_batch(entries)
    return s


# --- the lakekv format -------------------------------------------------------------------


def test_writer_reader_round_trip_and_trailers() -> None:
    out = io.BytesIO()
    w = DumpWriter(out, {"source": "memory://"})
    trailers = []
    for p in (b"a", b"b\xff"):
        w.begin_partition(p)
        w.add_many(Entry(p, b"k%05d" % i, bytes([i % 256]) * (i % 40)) for i in range(3000))
        trailers.append(w.end_partition())
    digest = w.finish()
    seen = []
    r = DumpReader(io.BytesIO(out.getvalue()), "mem", on_partition=seen.append)
    got = list(r)
    assert len(got) == 6000 and seen == trailers
    assert r.final is not None and r.final["sha256"] == digest and r.final["entries"] == 6000
    pairs = [(b"k%05d" % i, bytes([i % 256]) * (i % 40)) for i in range(3000)]
    expected = partition_digest([pairs[:7], pairs[7:2000], pairs[2000:]])
    assert expected == (trailers[0].entries, trailers[0].bytes, trailers[0].sha256)


def test_dump_is_deterministic_apart_from_its_header(maker: StoreMaker) -> None:
    src = _store_with(maker, _entries() + BINARY_ENTRIES)
    a, b = io.BytesIO(), io.BytesIO()
    dump(src, a)
    dump(src, b)
    ra = DumpReader(io.BytesIO(a.getvalue()), "a")
    rb = DumpReader(io.BytesIO(b.getvalue()), "b")
    assert list(ra) == list(rb) == sorted(_entries() + BINARY_ENTRIES)
    assert ra.header["format"] == "lakekv-dump" and ra.header["version"] == 1
    assert ra.header["lakekv_version"]


@pytest.mark.parametrize("suffix", [".lkv", ".lkv.gz", ".lkv.zst"])
def test_compression_by_name_and_detection_by_magic(
    maker: StoreMaker, tmp_path: Path, suffix: str
) -> None:
    src = _store_with(maker, _entries(per=500))
    path = tmp_path / f"d{suffix}"
    report = dump(src, path)
    raw = path.read_bytes()
    assert report.file_bytes == len(raw)
    if suffix == ".lkv.gz":
        assert raw[:2] == b"\x1f\x8b"
    elif suffix == ".lkv.zst":
        assert raw[:4] == b"\x28\xb5\x2f\xfd"
    else:
        assert raw[:4] == b"\x89LKV"
    renamed = tmp_path / "no-extension"
    renamed.write_bytes(raw)
    dst = maker.fresh("memory://", "dst")
    assert load(dst, renamed).written == 2000
    assert verify(src, dst).equal


def _dump_bytes(maker: StoreMaker, entries: list[Entry]) -> bytes:
    out = io.BytesIO()
    dump(_store_with(maker, entries), out)
    return out.getvalue()


def _corruptions(data: bytes) -> dict[str, bytes]:
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    wrong_version = data.replace(b'"version":1', b'"version":7', 1)
    assert wrong_version != data
    return {
        "flipped-byte": bytes(flipped),
        "truncated": data[: len(data) * 2 // 3],
        "no-final-trailer": data[: data.rindex(b"F")],
        "wrong-version": wrong_version,
        "bad-magic": b"\x89LKX" + data[4:],
        "trailing-garbage": data + b"x",
        "empty": b"",
        "truncated-gzip": gzip.compress(data)[:-20],
    }


@pytest.mark.parametrize(
    "kind",
    [
        "flipped-byte",
        "truncated",
        "no-final-trailer",
        "wrong-version",
        "bad-magic",
        "trailing-garbage",
        "empty",
        "truncated-gzip",
    ],
)
def test_corrupt_lakekv_file_writes_nothing(
    backend_url: str, maker: StoreMaker, tmp_path: Path, kind: str
) -> None:
    data = _dump_bytes(maker, _entries(per=200))
    path = tmp_path / "bad.lkv"
    path.write_bytes(_corruptions(data)[kind])
    dst = maker.fresh(backend_url, "dst")
    with pytest.raises(CorruptInputError) as err:
        load(dst, path)
    assert str(path) in str(err.value)
    if kind == "wrong-version":
        assert "unsupported lakekv dump version 7" in str(err.value)
    assert all_entries(dst) == []


def test_streamed_load_stops_at_the_first_corrupt_partition(maker: StoreMaker) -> None:
    data = _dump_bytes(maker, _entries(n_partitions=4, per=50))
    # Damage one value byte in the third partition.
    at = data.index(b"part-2") + 200
    bad = bytearray(data)
    bad[at] ^= 0x01
    dst = maker.fresh("memory://", "dst")
    with pytest.raises(PartialLoadError) as err:
        load(dst, io.BytesIO(bytes(bad)))
    assert "2 partition(s) fully loaded" in str(err.value) and "part-1" in str(err.value)
    assert err.value.report.partitions == 2
    assert sorted({e.partition for e in all_entries(dst)}) == [b"part-0", b"part-1"]
    assert len(all_entries(dst)) == 100
    # A re-run from a good copy is safe and completes the load.
    rerun = load(dst, io.BytesIO(data))
    assert (rerun.written, rerun.unchanged, rerun.conflicts) == (100, 100, 0)


def test_check_file_reports_counts(maker: StoreMaker, tmp_path: Path) -> None:
    src = _store_with(maker, _entries())
    dump(src, tmp_path / "d.lkv.zst")
    info = check_file(tmp_path / "d.lkv.zst")
    assert (info.format, info.partitions, info.entries) == ("lakekv", 4, 120)


# --- the lakeFS "1.0" JSON format ----------------------------------------------------------------


LAKEFS_DOC = {
    "version": "1.0",
    "timestamp": "2024-03-01T10:00:00Z",
    "entries": [
        {"partition": "kv-internal-metadata", "key": "kv/schema/version", "value": "NA=="},
        {
            "partition": "graveler",
            "key": "repos/r1",
            "value": base64.b64encode(b"\x0a\x02r1").decode(),
        },
        {"partition": "r1-abc", "key": "branches/main", "value": ""},
        {"partition": "auth", "key": "users/ünï", "value": "AAEC"},
    ],
}


def test_lakefs_file_loads(backend_url: str, maker: StoreMaker, tmp_path: Path) -> None:
    path = tmp_path / "lakefs.json"
    path.write_text(json.dumps(LAKEFS_DOC, indent=2), encoding="utf-8")
    dst = maker.fresh(backend_url, "dst")
    r = load(dst, path)
    assert (r.format, r.written, r.lakefs_schema_version) == ("lakefs", 4, "4")
    # four partitions, the schema-version one (written last) included
    assert r.partitions == 4 == check_file(path).partitions
    assert dst.get(b"graveler", b"repos/r1").value == b"\x0a\x02r1"
    assert dst.get(b"r1-abc", b"branches/main").value == b""
    assert dst.get(b"auth", "users/ünï".encode()).value == b"\x00\x01\x02"


def test_lakefs_format_round_trip(maker: StoreMaker, tmp_path: Path) -> None:
    entries = [
        *_entries(),
        Entry(b"graveler", "repos/ü".encode(), b""),
        Entry(b"p", b'k"\\\n', b"\xff"),
    ]
    src = _store_with(maker, entries)
    path = tmp_path / "d.json.gz"
    d = dump(src, path, format="lakefs")
    assert d.entries == len(entries)
    doc = json.loads(gzip.decompress(path.read_bytes()))
    assert doc["version"] == "1.0" and len(doc["entries"]) == len(entries)
    dst = maker.fresh("memory://", "dst")
    assert load(dst, path).written == len(entries)
    assert verify(src, dst).equal


def test_empty_lakefs_dump_omits_entries(maker: StoreMaker) -> None:
    out = io.BytesIO()
    dump(maker.fresh("memory://", "empty"), out, format="lakefs")
    doc = json.loads(out.getvalue())
    assert set(doc) == {"version", "timestamp"}
    assert list(read_lakefs_json(io.BytesIO(out.getvalue()), "x")) == []


def test_lakefs_dump_refuses_non_utf8_names(maker: StoreMaker, tmp_path: Path) -> None:
    src = _store_with(maker, [Entry(b"ok", b"a", b"1"), Entry(b"p", b"bad\xffkey", b"v")])
    path = tmp_path / "d.json"
    with pytest.raises(UnrepresentableEntryError, match=r"partition 'p' key 'bad\\xffkey'"):
        dump(src, path, format="lakefs")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def _lakefs_bad(kind: str) -> bytes:
    doc = json.loads(json.dumps(LAKEFS_DOC))
    if kind == "bad-base64":
        doc["entries"][1]["value"] = "not*base64"
        return json.dumps(doc).encode()
    if kind == "wrong-version":
        doc["version"] = "2.0"
        return json.dumps(doc).encode()
    if kind == "truncated":
        return json.dumps(doc).encode()[:-30]
    if kind == "missing-field":
        del doc["entries"][2]["key"]
        return json.dumps(doc).encode()
    if kind == "not-utf8":
        return json.dumps(doc).encode().replace(b"users/", b"users/\xff")
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["bad-base64", "wrong-version", "truncated", "missing-field", "not-utf8"]
)
def test_corrupt_lakefs_file_writes_nothing(
    backend_url: str, maker: StoreMaker, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(_lakefs_bad(kind))
    dst = maker.fresh(backend_url, "dst")
    with pytest.raises(CorruptInputError) as err:
        load(dst, path)
    if kind == "bad-base64":
        assert "entry 1" in str(err.value) and "base64" in str(err.value)
    if kind == "wrong-version":
        assert "unsupported lakeFS dump version '2.0'" in str(err.value)
    assert all_entries(dst) == []


def test_lakefs_parser_streams_large_documents() -> None:
    n = 30000
    body = ",".join(
        json.dumps(
            {
                "partition": "p",
                "key": f"k{i:06d}",
                "value": base64.b64encode(b"x" * (i % 90)).decode(),
            }
        )
        for i in range(n)
    )
    data = ('{"version":"1.0","timestamp":"t","entries":[' + body + "]}").encode()
    count = 0
    for i, e in enumerate(read_lakefs_json(io.BufferedReader(io.BytesIO(data), 4096), "big")):
        assert e.key == b"k%06d" % i
        count += 1
    assert count == n


# --- lakeFS configuration ------------------------------------------------------------------


def test_lakefs_config_postgres(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "database:\n  type: postgres\n  postgres:\n"
        '    connection_string: "postgres://lakefs:s3cret@db:5432/lakefs?sslmode=disable"\n'
        "    max_open_connections: 10\n",
        encoding="utf-8",
    )
    db = lakefs_store_url(cfg, environ={})
    assert db.url == "postgres://lakefs:s3cret@db:5432/lakefs?sslmode=disable&pool_size=10"
    assert "s3cret" not in str(db) and "s3cret" not in repr(db)


def test_lakefs_config_dsn_and_environment_override(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("database:\n  type: local\n  local:\n    path: /tmp/x\n", encoding="utf-8")
    env = {
        "LAKEFS_DATABASE_TYPE": "postgres",
        "LAKEFS_DATABASE_POSTGRES_CONNECTION_STRING": (
            "host=pg port=5433 user=u password='p w' dbname=meta sslmode=require"
        ),
    }
    db = lakefs_store_url(cfg, environ=env)
    assert db.url == "postgres://u:p%20w@pg:5433/meta?sslmode=require"
    assert lakefs_store_url(cfg, environ={}).url == "badger:////tmp/x"
    with pytest.raises(ConfigurationError, match="'cosmosdb' cannot be opened"):
        lakefs_store_url(cfg, environ={"LAKEFS_DATABASE_TYPE": "cosmosdb"})


def test_lakefs_config_dynamodb_mem_and_errors(tmp_path: Path) -> None:
    env = {
        "LAKEFS_DATABASE_TYPE": "dynamodb",
        "LAKEFS_DATABASE_DYNAMODB_TABLE_NAME": "kvstore",
        "LAKEFS_DATABASE_DYNAMODB_ENDPOINT": "http://127.0.0.1:8000",
        "LAKEFS_DATABASE_DYNAMODB_AWS_REGION": "us-east-1",
        "LAKEFS_DATABASE_DYNAMODB_AWS_SECRET_ACCESS_KEY": "abc",
    }
    db = lakefs_store_url(None, environ=env)
    assert (
        db.url
        == "dynamodb://kvstore?table=kvstore&region=us-east-1&endpoint=http%3A%2F%2F127.0.0.1%3A8000"
    )
    assert db.credentials == {"aws_secret_access_key": "abc"} and "abc" not in db.url
    assert lakefs_store_url(None, environ={"LAKEFS_DATABASE_TYPE": "mem"}).url == "memory://"
    with pytest.raises(ConfigurationError, match="cosmosdb"):
        lakefs_store_url(None, environ={"LAKEFS_DATABASE_TYPE": "cosmosdb"})
    with pytest.raises(ConfigurationError, match=r"no database\.type"):
        lakefs_store_url(None, environ={})
    with pytest.raises(ConfigurationError, match="cannot read"):
        lakefs_store_url(tmp_path / "missing.yaml", environ={})


def test_sample_round_trips_through_both_formats(maker: StoreMaker, tmp_path: Path) -> None:
    src = maker.fresh("memory://", "src")
    sample(src, 2500, seed=2)
    with pytest.raises(UnrepresentableEntryError):
        dump(src, tmp_path / "d.json", format="lakefs")  # the sample holds non-UTF-8 keys
    dump(src, tmp_path / "d.lkv")
    dst = maker.fresh("memory://", "dst")
    load(dst, tmp_path / "d.lkv")
    assert verify(src, dst).equal


class _FailingStream(io.BytesIO):
    def write(self, data: object) -> int:  # type: ignore[override]
        raise OSError(28, "No space left on device")


def test_writer_thread_errors_reach_the_caller() -> None:
    with DumpWriter(_FailingStream(), {"source": "memory://"}) as w:
        w.begin_partition(b"p")
        w.add_page([(b"k%06d" % i, b"v" * 300) for i in range(5000)])  # > 1 MiB: a flush
        with pytest.raises(OSError, match="No space left"):
            w.end_partition()
