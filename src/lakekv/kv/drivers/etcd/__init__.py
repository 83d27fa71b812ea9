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
    ``PREFIX 01 lakekv-store`` is the store's marker: it lies outside the range of every
    partition of this store and of every other prefix, so no scan, skip scan or ``destroy()``
    of another store meets it.

Opening: what "the store exists" means
    etcd has no tables, so a store is its prefix, and it exists when its marker key does.
    Opening first reads the marker and the first entry under the prefix in one read-only
    ``Txn`` (linearizable: the cluster must answer and have a quorum). With ``create=True``
    (the default) a missing marker is written (a ``Txn`` that puts it only if it is still
    absent). With ``create=False`` or ``read_only=True`` nothing is written: the store must
    have its marker, or, for prefixes written before markers existed, at least one entry;
    otherwise StoreNotFoundError names the members and the prefix. Deleting every entry
    leaves the marker, so an emptied store still exists; ``destroy()`` removes the marker
    after the entries. etcd has no read-only connections (short of an etcd user without
    write permission, and authentication is not supported yet): a ``read_only`` store relies
    on lakekv refusing every write.

Identity
    The members the URL lists, sorted (``localhost``, ``127.0.0.1`` and ``::1`` are one host;
    2379 is the default port), and the prefix. Two URLs listing different members of one
    cluster therefore have different identities.

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
    ``close()`` from another thread stops a ``write_batch`` between two transactions (those
    sent are applied; the call raises StoreClosedError) and stops retrying calls in flight.

Client
    etcd's v3 protocol buffers (``rpc.proto``, ``kv.proto``, ``auth.proto`` from
    ``go.etcd.io/etcd/api/v3``, stripped of Go-only options by
    ``scripts/fetch_etcd_protos.py``) compiled by ``scripts/gen_protos.py`` into
    ``lakekv.kv.drivers.etcd.proto``, over ``grpcio``. The ``etcd3`` package on PyPI was not
    used: its generated code no longer loads under protobuf 4 and later.
"""

from lakekv.kv.drivers.etcd._store import MAX_REQUEST_BYTES, EtcdStore, Revision

__all__ = ["MAX_REQUEST_BYTES", "EtcdStore", "Revision"]
