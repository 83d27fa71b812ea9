"""Commit IDs: lakeFS's identity encoding, checked against vectors computed by hand (§7)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from lakekv.record.proto import catalog_pb2
from lakekv.refs.ident import (
    AddressWriter,
    commit_id,
    commit_identity,
    entry_identity,
    unix_seconds,
)

# Vector 1, written out byte by byte: each line is one encoded value.
#   01 | 02 08 <len 9 as 8 bytes BE> | "commit:v1"       string "commit:v1"
#   01 | 02 08 ...05 | "alice"                          committer
#   01 | 02 08 ...05 | "first"                          message
#   01 | 02 08 ...00                                    meta_range_id "" (no bytes follow)
#   02 08 | 00000000 65937d25                           2024-01-02T03:04:05Z = 1704164645
#   04 | 02 08 ...00                                    empty metadata map
#   05 | 00 | 02 08 ...20 | sha256(03 02 08 ...00)      parents: embedded identity of []
V1_PREIMAGE = bytes.fromhex(
    "".join(
        [
            "01" + "0208" + "0000000000000009" + "636f6d6d69743a7631",
            "01" + "0208" + "0000000000000005" + "616c696365",
            "01" + "0208" + "0000000000000005" + "6669727374",
            "01" + "0208" + "0000000000000000",
            "0208" + "0000000065937d25",
            "04" + "0208" + "0000000000000000",
            "05" + "00" + "0208" + "0000000000000020",
            "c05d0ae027f29a4a5776bafad29a3b776473f1da64ad40219803783b75286a6d",
        ]
    )
)
V1 = "c932ab965e9a6737a816cfc8e6d4dabca0c7d542e18a62d640760643657de74e"
# Vector 2: metadata {"b": "2", "a": "1"} (encoded in sorted key order a, b), parent V1.
V2 = "019402adcd1c232e3fc805a9ac0832059efe361ec35882a6cedb7fb6779607a1"
# Vector 3: a merge with two parents [V2, V1] (order matters).
V3 = "a8fa7c3ed8d8337348d5f5b2423f83a664ae81f16c9f2df5f2c153afc4c896b2"

T1 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_empty_parent_list_identity_is_hash_of_its_encoding() -> None:
    assert (
        hashlib.sha256(bytes.fromhex("0302080000000000000000")).hexdigest()
        == "c05d0ae027f29a4a5776bafad29a3b776473f1da64ad40219803783b75286a6d"
    )


def test_vector_1_preimage_and_id() -> None:
    assert hashlib.sha256(V1_PREIMAGE).hexdigest() == V1
    assert (
        commit_id(
            committer="alice",
            message="first",
            meta_range_id="",
            creation_date=T1,
            metadata={},
            parents=[],
        )
        == V1
    )


def test_vector_2_with_metadata() -> None:
    got = commit_id(
        committer="bob",
        message="second",
        meta_range_id="mr1",
        creation_date=T1 + timedelta(seconds=55),
        metadata={"b": "2", "a": "1"},
        parents=[V1],
    )
    assert got == V2


def _carol_merge(parents: list[str]) -> str:
    return commit_id(
        committer="carol",
        message="merge",
        meta_range_id="mr2",
        creation_date=T1 + timedelta(seconds=155),
        metadata={},
        parents=parents,
    )


def test_vector_3_with_two_parents() -> None:
    assert _carol_merge([V2, V1]) == V3
    assert _carol_merge([V1, V2]) != V3  # parent order is part of the identity


def test_only_whole_seconds_are_hashed_and_zone_does_not_matter() -> None:
    later = T1 + timedelta(microseconds=999_999)
    other_zone = T1.astimezone(timezone(timedelta(hours=5)))
    for when in (later, other_zone, T1.replace(tzinfo=None)):
        got = commit_id(
            committer="alice",
            message="first",
            meta_range_id="",
            creation_date=when,
            metadata={},
            parents=[],
        )
        assert got == V1


def test_identity_is_raw_digest_and_id_its_hex() -> None:
    raw = commit_identity(
        committer="alice",
        message="first",
        meta_range_id="",
        creation_date=T1,
        metadata={},
        parents=[],
    )
    assert len(raw) == 32
    assert raw.hex() == V1


def test_address_writer_primitives() -> None:
    w = AddressWriter().int64(-1)
    assert w.identity() == hashlib.sha256(b"\x02\x08" + b"\xff" * 8).digest()
    w = AddressWriter().bytes_(b"ab")
    assert w.identity() == hashlib.sha256(b"\x00\x02\x08" + (2).to_bytes(8, "big") + b"ab").digest()
    # Non-ASCII strings: the length is the UTF-8 byte count.
    w = AddressWriter().string("é")
    assert (
        w.identity()
        == hashlib.sha256(b"\x01\x02\x08" + (2).to_bytes(8, "big") + "é".encode()).digest()
    )
    # string_opt writes nothing for "".
    assert AddressWriter().string_opt("").identity() == hashlib.sha256(b"").digest()


def test_entry_identity_matches_hand_encoding() -> None:
    entry = catalog_pb2.Entry(address="a", size=3, e_tag="e", metadata={"k": "v"})

    def s(v: str) -> bytes:
        return b"\x01\x02\x08" + len(v).to_bytes(8, "big") + v.encode()

    pre = (
        b"\x02\x08"
        + (3).to_bytes(8, "big")
        + s("e")
        + b"\x04\x02\x08"
        + (1).to_bytes(8, "big")
        + s("k")
        + s("v")
    )
    assert entry_identity(entry) == hashlib.sha256(pre).digest()
    entry.content_type = "text/csv"
    assert entry_identity(entry) == hashlib.sha256(pre + s("text/csv")).digest()


@pytest.mark.parametrize("seconds", [0, 1, -1, 2**31, -(2**31)])
def test_unix_seconds_round_down(seconds: int) -> None:
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=500_000)
    w1 = AddressWriter().int64(seconds).identity()
    assert unix_seconds(when) == seconds
    assert AddressWriter().int64(unix_seconds(when)).identity() == w1
