"""Protobuf messages over a :class:`~lakekv.kv.store.Store`: get, set, conditional set, iterate.

Values are raw proto3 bytes with no envelope, exactly as lakeFS stores them. Decoding failures
raise :class:`~lakekv.errors.DecodeError` (a ``RecordError``) naming the partition and key; store
errors (not found, predicate failed, unavailable) pass through unchanged, so callers can catch
``KeyNotFoundError`` or ``PredicateFailedError`` as at the store layer.

Iteration
    :func:`scan_messages` walks one partition in bytewise key order restricted to a ``prefix``,
    starting at ``start`` (inclusive) and/or strictly after ``after`` (exclusive), like lakeFS's
    primary iterator. :func:`scan_secondary` walks *index* entries (each value a
    ``SecondaryIndex`` naming a primary key in the same partition) and yields the primary
    records; an index entry whose primary key is gone is skipped, as lakeFS's readers do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf.message import DecodeError as ProtoDecodeError
from google.protobuf.message import Message

from lakekv.errors import DecodeError, KeyNotFoundError
from lakekv.kv.store import Predicate, Store, safe_repr
from lakekv.record.proto import kv_pb2

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class MessageEntry(Generic[M]):
    """One decoded entry: its key, the message, and the exact stored bytes."""

    key: bytes
    message: M
    raw: bytes


@dataclass(frozen=True)
class MessageWithPredicate(Generic[M]):
    """What :func:`get_message` returns: the message and the store's predicate for ``set_if``."""

    message: M
    predicate: Predicate


def decode_message(
    msg_type: type[M], data: bytes, *, where: str = "", at: tuple[bytes, bytes] | None = None
) -> M:
    """Parse ``data`` as ``msg_type``; DecodeError (naming ``where``, or the ``(partition,
    key)`` in ``at``) if it is not one."""
    msg = msg_type()
    try:
        msg.ParseFromString(data)
    except (ProtoDecodeError, ValueError) as exc:
        if at is not None:
            where = _where(*at)
        place = f" at {where}" if where else ""
        raise DecodeError(
            f"value{place} is not a valid {msg_type.DESCRIPTOR.full_name}: {exc}"
        ) from exc
    return msg


def encode_message(msg: Message) -> bytes:
    """The proto3 wire bytes of ``msg`` (no envelope)."""
    return msg.SerializeToString()


def _where(partition: bytes, key: bytes) -> str:
    return f"partition {safe_repr(partition)} key {safe_repr(key)}"


def get_message(
    store: Store, partition: bytes, key: bytes, msg_type: type[M]
) -> MessageWithPredicate[M]:
    """The message stored under ``key`` and its predicate.

    Raises KeyNotFoundError if the key is missing, DecodeError if the bytes are not a
    ``msg_type``.
    """
    value, predicate = store.get(partition, key)
    return MessageWithPredicate(decode_message(msg_type, value, at=(partition, key)), predicate)


def set_message(store: Store, partition: bytes, key: bytes, msg: Message) -> None:
    """Store ``msg`` under ``key`` unconditionally."""
    store.set(partition, key, encode_message(msg))


def set_message_if(
    store: Store, partition: bytes, key: bytes, msg: Message, predicate: Predicate | None
) -> None:
    """Store ``msg`` only if ``predicate`` holds (``None``: create-only; ``MUST_EXIST``; or a
    predicate from :func:`get_message`). Raises PredicateFailedError and writes nothing otherwise.
    """
    store.set_if(partition, key, encode_message(msg), predicate)


def _scan_start(prefix: bytes, start: bytes, after: bytes) -> tuple[bytes, bytes | None]:
    """The inclusive scan start, and a key to skip if it comes first (the ``after`` key)."""
    begin = max(prefix, start)
    if after and after >= begin:
        return after, after
    return begin, None


def scan_raw(
    store: Store,
    partition: bytes,
    *,
    prefix: bytes = b"",
    start: bytes = b"",
    after: bytes = b"",
    batch_size: int = 0,
) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` pairs of ``partition`` with ``prefix``, from ``start`` (inclusive) and
    strictly after ``after``, in bytewise key order. The scan stops at the end of the prefix."""
    begin, skip = _scan_start(prefix, start, after)
    with store.scan(partition, start=begin, batch_size=batch_size) as it:
        for entry in it:
            if not entry.key.startswith(prefix):
                return
            if skip is not None and entry.key == skip:
                continue
            yield entry.key, entry.value


def scan_messages(
    store: Store,
    partition: bytes,
    msg_type: type[M],
    *,
    prefix: bytes = b"",
    start: bytes = b"",
    after: bytes = b"",
    batch_size: int = 0,
) -> Iterator[MessageEntry[M]]:
    """The primary iterator: decoded entries of ``partition`` (see :func:`scan_raw` for the
    bounds). A value that is not a ``msg_type`` raises DecodeError."""
    for key, value in scan_raw(
        store, partition, prefix=prefix, start=start, after=after, batch_size=batch_size
    ):
        yield MessageEntry(key, decode_message(msg_type, value, at=(partition, key)), value)


def scan_secondary(
    store: Store,
    partition: bytes,
    msg_type: type[M],
    *,
    prefix: bytes = b"",
    start: bytes = b"",
    after: bytes = b"",
    batch_size: int = 0,
    primary_partition: bytes | None = None,
    primary_prefix: bytes = b"",
) -> Iterator[MessageEntry[M]]:
    """The secondary-index iterator: for each index entry under ``prefix`` (a
    ``SecondaryIndex``), the primary record it names, decoded as ``msg_type``. The primary
    record lives in the same ``partition`` (lakeFS's rule) unless ``primary_partition`` is
    given, at ``primary_prefix + primary_key`` (lakeFS's ``pulls`` index holds the bare pull
    ID of the record at ``pulls/<id>`` of the repository partition). The yielded ``key`` is
    the primary record's key. Dangling index entries (primary record deleted, or an empty
    primary key) are skipped."""
    target = partition if primary_partition is None else primary_partition
    for key, value in scan_raw(
        store, partition, prefix=prefix, start=start, after=after, batch_size=batch_size
    ):
        index = decode_message(kv_pb2.SecondaryIndex, value, at=(partition, key))
        if not index.primary_key:
            continue
        primary = primary_prefix + index.primary_key
        try:
            data, _ = store.get(target, primary)
        except KeyNotFoundError:
            continue
        yield MessageEntry(primary, decode_message(msg_type, data, at=(target, primary)), data)
