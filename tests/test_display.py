"""lakekv.display: the one escaping of bytes and text for display (CLI and reports)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lakekv.display import show_bytes, show_text


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_distinct_bytes_show_distinctly_and_printably(a: bytes, b: bytes) -> None:
    shown_a, shown_b = show_bytes(a), show_bytes(b)
    assert shown_a.isprintable() and shown_b.isprintable()
    assert (shown_a == shown_b) == (a == b)


def test_examples() -> None:
    assert show_bytes(b"plain") == "plain"
    assert show_bytes(b"a\\b") == "a\\\\b"
    assert show_bytes(b"\x00\xff\n") == "\\x00\\xff\\x0a"
    assert show_bytes("ünï".encode()) == "ünï"
    assert show_text("\u200b\U0001f600") == "\\u200b\U0001f600"
