"""Layer 2: lakeFS's protobuf records over any :class:`~lakekv.kv.store.Store`.

* :mod:`lakekv.record.proto` — the generated message modules (byte-identical to lakeFS).
* :mod:`lakekv.record.codec` — get / set / conditional set of messages, the primary and the
  secondary-index iterators.
* :mod:`lakekv.record.registry` — which message type each ``(partition, key)`` holds, and
  decoding of any entry of a lakeFS database (to its message, or to raw bytes).
* :mod:`lakekv.record.layout` — partition names, key paths and identifier patterns.

Example::

    from lakekv.record import get_message, decode_entry
    from lakekv.record.proto import graveler_pb2

    repo = get_message(store, b"graveler", b"repos/my-repo", graveler_pb2.RepositoryData).message
    print(decode_entry(b"graveler", b"repos/my-repo", raw_bytes).to_json())
"""

from lakekv.record.codec import (
    MessageEntry,
    MessageWithPredicate,
    decode_message,
    encode_message,
    get_message,
    scan_messages,
    scan_raw,
    scan_secondary,
    set_message,
    set_message_if,
)
from lakekv.record.registry import (
    LAKEFS_TYPES,
    DecodedRecord,
    TypeRegistry,
    TypeRule,
    decode_entry,
    message_to_dict,
    undecodable,
    unknown_field_bytes,
)

__all__ = [
    "LAKEFS_TYPES",
    "DecodedRecord",
    "MessageEntry",
    "MessageWithPredicate",
    "TypeRegistry",
    "TypeRule",
    "decode_entry",
    "decode_message",
    "encode_message",
    "get_message",
    "message_to_dict",
    "scan_messages",
    "scan_raw",
    "scan_secondary",
    "set_message",
    "set_message_if",
    "undecodable",
    "unknown_field_bytes",
]
