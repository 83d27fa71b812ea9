"""Bytes and text from a database, shown unambiguously and safe for a terminal.

The command line shows every partition, key and value through these, and loads nothing else
to do so. :mod:`lakekv.migrate.reports` states the same two functions for its reports;
``tests/test_display.py`` keeps the two equal (property test) until reports imports these.
"""

from __future__ import annotations

import re

__all__ = ["show_bytes", "show_text"]

_PLAIN = re.compile(r"[\x20-\x5b\x5d-\x7e]*")


def show_bytes(data: bytes) -> str:
    """``data`` for display, unambiguously and safe for a terminal.

    Printable UTF-8 text is shown as is; a backslash is doubled (``\\\\``); a byte that is
    not valid UTF-8 is ``\\xNN``; a character that is not printable (NUL, tab, newline, ESC
    and every other control or format character) is ``\\xNN``, ``\\uNNNN`` or
    ``\\UNNNNNNNN`` by its code point. So distinct byte strings always show differently and
    nothing from a database reaches a terminal raw.
    """
    if _PLAIN.fullmatch(data.decode("latin-1")):
        return data.decode("ascii")
    return show_text(data.decode("utf-8", errors="surrogateescape"))


def show_text(text: str) -> str:
    """``text`` (from a database or a record) for display, escaped as :func:`show_bytes`
    escapes decoded bytes; lone surrogates ``\\uDCNN`` from undecodable bytes become
    ``\\xNN``."""
    if _PLAIN.fullmatch(text):
        return text
    out: list[str] = []
    for c in text:
        n = ord(c)
        if c == "\\":
            out.append("\\\\")
        elif 0xDC80 <= n <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{n - 0xDC00:02x}")
        elif c.isprintable():
            out.append(c)
        elif n < 0x100:
            out.append(f"\\x{n:02x}")
        elif n < 0x10000:
            out.append(f"\\u{n:04x}")
        else:
            out.append(f"\\U{n:08x}")
    return "".join(out)
