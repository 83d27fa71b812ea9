"""``etcd://host:2379[,host:2379…]?prefix=lakekv`` — etcd, through its v3 gRPC API.

URL
    One or more members of one cluster (``etcd://127.0.0.1:2379,127.0.0.1:22379``; port 2379
    when omitted). Requests go round-robin to the members that answer; a member that stops is
    left out until it answers again. Plain-text gRPC; TLS and etcd authentication are not
    supported (a user name in the URL is a ConfigurationError). Parameters (anything else is a
    ConfigurationError):

    ``prefix``     every key this store writes starts with it (default ``lakekv``); letters,
                   digits and ``_ . - / :``. Stores with different prefixes are independent.
    ``timeout``    seconds one operation may take, retries included, before
                   StoreUnavailableError (default 5); it is the gRPC deadline of each call
    ``page_size``/``page_cap``  scan pages (default 1000, doubling up to 5000)

Layout
    ``PREFIX 00 | partition with each 00 written 00 FF | 00 01 | key`` (see ``_keys``): each
    partition is one contiguous key range, no partition's range contains another's, and
    bytewise order is kept, so a scan page is one ``Range`` with a ``limit`` and
    ``list_partitions`` is a skip scan (one ``limit 1`` Range per partition).

Operations
    Reads are linearizable (etcd's default): they need a quorum. ``set`` is ``Put``;
    ``delete`` is ``DeleteRange`` of one key. ``set_if`` is a ``Txn`` whose compare is
    ``create_revision == 0`` (``None``: absent), ``create_revision > 0`` (``MUST_EXIST``) or
    ``mod_revision == R`` (a predicate from ``get``, which carries the key's ``mod_revision``
    ``R``). So predicates compare *versions*, not values: any write between the ``get`` and
    the ``set_if`` fails it, even one that restored the same value (A → B → A fails;
    ``capabilities.value_predicates`` is false).

    ``write_batch`` writes up to 128 entries (etcd's ``--max-txn-ops``) in one ``Txn`` whose
    compares expect every key absent (a fresh copy: one round trip per 128 entries); if one
    exists, one read-only ``Txn`` fetches all their current values, entries are classified,
    and the rest is tried again under compares on what was seen. Entries too large to share a
    request go one by one.

Limits (declared in ``capabilities``, checked before any request)
    etcd refuses requests over ``--max-request-bytes`` (1.5 MiB by default): partition and key
    are limited to 4096 bytes each and partition + key + value to 1.5 MiB − 32 KiB, which
    leaves room for the key encoding and the transaction around a ``set_if``.

Failures
    A call that finds the cluster unavailable (gRPC ``UNAVAILABLE``: a member down, no leader,
    a leader change) is sent again, with backoff, until ``timeout`` runs out. A ``set_if``
    that was sent more than once and then fails its compare reads the key back in the same
    transaction: when the stored value is the one it wrote, its earlier attempt was applied
    and it reports success. A cluster without quorum makes every call, reads included, fail
    with StoreUnavailableError after ``timeout`` seconds; it never hangs. As with any timeout,
    a write that failed so may still be applied later, if its proposal reached the leader's
    log before quorum was lost: re-read before deciding it was not.

Client
    etcd's v3 protocol buffers (``rpc.proto``, ``kv.proto``, ``auth.proto`` from
    ``go.etcd.io/etcd/api/v3``, stripped of Go-only options by
    ``scripts/fetch_etcd_protos.py``) compiled by ``scripts/gen_protos.py`` into
    ``lakekv.kv.drivers.etcd.proto``, over ``grpcio``. The ``etcd3`` package on PyPI was not
    used: its generated code no longer loads under protobuf 4 and later.
"""

from lakekv.kv.drivers.etcd._store import MAX_REQUEST_BYTES, EtcdStore, Revision

__all__ = ["MAX_REQUEST_BYTES", "EtcdStore", "Revision"]
