"""etcd driver tests beyond the shared contract: the key encoding, the stored layout, revision
predicates, limits, errors, and a three-member cluster losing one member (still serving) and
then two (failing with StoreUnavailableError within the deadline instead of hanging).

Run with ``--store etcd://h:p,h:p,h:p`` (or set ``LAKEKV_TEST_ETCD``). Without a reachable
cluster the tests that need one are skipped, unless ``CI`` is set. The fail-over test starts
its own cluster with ``tests/servers.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakekv.errors import (
    ConfigurationError,
    InvalidArgumentError,
    PredicateFailedError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from lakekv.kv.registry import open_store
from lakekv.kv.store import Entry, OnConflict, Store
from lakekv.kv.url import StoreURL
from lakekv.testing import RUN_ID, require_available

pytest.importorskip("grpc")
import grpc
import servers

from lakekv.kv.drivers.etcd import MAX_REQUEST_BYTES, EtcdStore, Revision, _keys
from lakekv.kv.drivers.etcd.proto import rpc_pb2

DEFAULT_URL = "etcd://127.0.0.1:2379"


@pytest.fixture(scope="module")
def etcd_url(pytestconfig: pytest.Config) -> str:
    urls = [u for u in pytestconfig.getoption("--store") if StoreURL.parse(u).scheme == "etcd"]
    url = urls[0] if urls else os.environ.get("LAKEKV_TEST_ETCD", DEFAULT_URL)
    return StoreURL.parse(url).without_params().render()


@pytest.fixture
def store(etcd_url: str) -> Iterator[EtcdStore]:
    require_available(etcd_url)
    s = open_store(f"{etcd_url}?prefix=t{RUN_ID}-{uuid.uuid4().hex[:8]}")
    assert isinstance(s, EtcdStore)
    try:
        yield s
    finally:
        if not s.closed:
            s.destroy()


def raw_range(url: str, key: bytes, end: bytes = b"") -> list[tuple[bytes, bytes]]:
    target = "ipv4:" + ",".join(f"{h}:{p}" for h, p in StoreURL.parse(url).host_list(2379))
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            "/etcdserverpb.KV/Range",
            request_serializer=rpc_pb2.RangeRequest.SerializeToString,
            response_deserializer=rpc_pb2.RangeResponse.FromString,
        )
        response = call(rpc_pb2.RangeRequest(key=key, range_end=end), timeout=5)
    return [(kv.key, kv.value) for kv in response.kvs]


def raw_delete(url: str, key: bytes) -> None:
    target = "ipv4:" + ",".join(f"{h}:{p}" for h, p in StoreURL.parse(url).host_list(2379))
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            "/etcdserverpb.KV/DeleteRange",
            request_serializer=rpc_pb2.DeleteRangeRequest.SerializeToString,
            response_deserializer=rpc_pb2.DeleteRangeResponse.FromString,
        )
        call(rpc_pb2.DeleteRangeRequest(key=key), timeout=5)


# --- the key encoding -------------------------------------------------------------------------

names = st.binary(min_size=1, max_size=12)


@given(a=names, b=names, ka=names, kb=names)
def test_encoding_keeps_order_and_separates_partitions(
    a: bytes, b: bytes, ka: bytes, kb: bytes
) -> None:
    prefix = b"lakekv"
    ha, hb = _keys.partition_head(prefix, a), _keys.partition_head(prefix, b)
    # bytewise order of (partition, key) pairs is kept
    assert ((a, ka) < (b, kb)) == (ha + ka < hb + kb)
    # each partition is the range [head, head_end): b's keys fall in a's range only if a == b
    in_range = ha <= hb + kb < _keys.head_end(ha)
    assert in_range == (a == b)
    assert _keys.split(prefix, ha + ka) == (a, ka)
    start, end = _keys.prefix_range(prefix)
    assert start <= ha + ka < end


def test_prefixes_that_start_one_another_are_disjoint() -> None:
    a, ab = _keys.prefix_range(b"a"), _keys.prefix_range(b"a/b")
    assert a[1] <= ab[0] or ab[1] <= a[0]
    key = _keys.partition_head(b"a/b", b"p") + b"k"
    assert not a[0] <= key < a[1]


prefixes = st.text(alphabet="ab/:._-Z9", min_size=1, max_size=5).map(str.encode)


@given(prefix=prefixes, other=prefixes, partition=names, key=names)
def test_the_marker_is_in_no_partition_and_no_other_prefix(
    prefix: bytes, other: bytes, partition: bytes, key: bytes
) -> None:
    marker = _keys.store_marker(prefix)
    head = _keys.partition_head(prefix, partition)
    assert not head <= marker < _keys.head_end(head)
    start, end = _keys.prefix_range(other)
    assert not start <= marker < end  # not even the prefix's own range
    assert (marker == _keys.store_marker(other)) == (prefix == other)
    other_head = _keys.partition_head(other, partition)
    assert other_head + key != marker


# --- without a server -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "etcd://127.0.0.1:1?bogus=1",
        "etcd://127.0.0.1:1?prefix=",
        "etcd://127.0.0.1:1?prefix=a%00b",
        "etcd://127.0.0.1:1?timeout=x",
        "etcd://user:pw@127.0.0.1:1",
        "etcd://127.0.0.1:1/path",
    ],
)
def test_bad_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)


def test_unreachable_cluster_is_unavailable_within_the_timeout() -> None:
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    began = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        open_store(f"etcd://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}?timeout=1")
    assert time.monotonic() - began < 4


def test_limits_are_declared_from_the_request_size() -> None:
    caps = EtcdStore.capabilities
    assert caps.max_item_size is not None and caps.max_item_size < MAX_REQUEST_BYTES
    assert caps.max_item_size >= 1 << 20  # a 1 MiB value fits
    assert not caps.value_predicates


class _FailedCall(grpc.RpcError, grpc.Call):
    """What a failed unary call raises: an RpcError that is also a Call."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> None:
        return None

    def trailing_metadata(self) -> None:
        return None

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


@pytest.mark.parametrize(
    ("code", "details", "kind"),
    [
        (grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader", StoreUnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", StoreUnavailableError),
        # etcd's own request context running out without quorum
        (grpc.StatusCode.UNKNOWN, "context deadline exceeded", StoreUnavailableError),
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            "etcdserver: request is too large",
            InvalidArgumentError,
        ),
        (grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied", StoreError),
    ],
)
def test_grpc_errors_are_translated(
    code: grpc.StatusCode, details: str, kind: type[Exception]
) -> None:
    store = EtcdStore.__new__(EtcdStore)
    store._url = StoreURL.parse("etcd://127.0.0.1:1")
    err = store._translate_error(_FailedCall(code, details))
    assert type(err) is kind
    assert details in str(err)


# --- against a cluster ------------------------------------------------------------------------


def test_stored_layout(store: EtcdStore, etcd_url: str) -> None:
    store.set(b"p\x00q", b"k", b"v")
    head = store.prefix + b"\x00p\x00\xffq\x00\x01"
    assert raw_range(etcd_url, *_keys.prefix_range(store.prefix)) == [(head + b"k", b"v")]


def test_predicate_is_the_mod_revision(store: EtcdStore) -> None:
    store.set(b"p", b"k", b"A")
    got = store.get(b"p", b"k")
    assert isinstance(got.predicate, Revision)
    store.set(b"p", b"k", b"A")  # the same value again: still a new revision
    with pytest.raises(PredicateFailedError):
        store.set_if(b"p", b"k", b"B", got.predicate)
    with pytest.raises(InvalidArgumentError):
        store.set_if(b"p", b"k", b"B", b"A")
    fresh = store.get(b"p", b"k").predicate
    store.set_if(b"p", b"k", b"B", fresh)
    assert store.get(b"p", b"k").value == b"B"


def test_batch_classifies_in_one_transaction_per_chunk(store: EtcdStore) -> None:
    store.set(b"p", b"k005", b"same")
    store.set(b"p", b"k006", b"old")
    entries = [Entry(b"p", b"k%03d" % i, b"same" if i != 6 else b"new") for i in range(300)]
    result = store.write_batch(entries, OnConflict.SKIP)
    assert (result.written, result.unchanged, result.skipped) == (298, 1, 1)
    assert store.get(b"p", b"k006").value == b"old"
    result = store.write_batch(entries, OnConflict.OVERWRITE)
    assert (result.written, result.unchanged) == (1, 299)
    assert store.get(b"p", b"k006").value == b"new"
    big = [Entry(b"q", b"big%d" % i, bytes(700_000)) for i in range(3)]  # one per request
    assert store.write_batch(big).written == 3
    assert [e.key for e in store.scan(b"q")] == [b"big0", b"big1", b"big2"]


def test_the_largest_item_is_accepted_and_a_larger_refused(store: EtcdStore) -> None:
    limit = store.capabilities.max_item_size
    assert limit is not None
    partition, key = b"p" * 4096, b"k" * 4096
    value = bytes(limit - len(partition) - len(key))
    store.set_if(partition, key, value, None)
    got = store.get(partition, key)
    store.set_if(partition, key, value, got.predicate)
    with pytest.raises(InvalidArgumentError):
        store.set(partition, key, value + b"x")


def test_destroy_deletes_in_slices(
    store: EtcdStore, etcd_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lakekv.kv.drivers.etcd._store._DELETE_SLICE", 7)
    store.write_batch([Entry(b"p%d" % (i % 3), b"k%02d" % i, b"v") for i in range(30)])
    with open_store(f"{etcd_url}?prefix={store.prefix.decode()}-kept") as other:
        other.set(b"p0", b"k", b"v")  # a prefix that starts with this one: untouched
        store.destroy()
        assert raw_range(etcd_url, *_keys.prefix_range(other.prefix)) != []
        other.destroy()
    assert raw_range(etcd_url, *_keys.prefix_range(store.prefix)) == []


def test_opening_creates_the_marker_only_when_allowed(etcd_url: str) -> None:
    require_available(etcd_url)
    prefix = f"t{RUN_ID}-{uuid.uuid4().hex[:8]}"
    url = f"{etcd_url}?prefix={prefix}"
    marker = _keys.store_marker(prefix.encode())
    with pytest.raises(StoreNotFoundError, match=prefix):
        open_store(url, create=False)
    assert raw_range(etcd_url, marker) == []
    with open_store(url) as s:
        assert [k for k, _ in raw_range(etcd_url, marker)] == [marker]
        s.set(b"p", b"k", b"v")
        s.delete(b"p", b"k")  # an emptied store still exists
        assert list(s.list_partitions()) == []
    with open_store(url, read_only=True) as s:
        assert list(s.scan(b"p")) == []
    with open_store(url) as s:
        s.destroy()
    assert raw_range(etcd_url, marker) == []
    with pytest.raises(StoreNotFoundError):
        open_store(url, create=False)


def test_a_prefix_written_before_markers_opens_without_create(etcd_url: str) -> None:
    require_available(etcd_url)
    prefix = f"t{RUN_ID}-{uuid.uuid4().hex[:8]}"
    url = f"{etcd_url}?prefix={prefix}"
    with open_store(url) as s:
        s.set(b"p", b"k", b"v")
    raw_delete(etcd_url, _keys.store_marker(prefix.encode()))
    with open_store(url, read_only=True) as s:
        assert s.get(b"p", b"k").value == b"v"
    with open_store(url) as s:  # opening with create adds the marker
        assert raw_range(etcd_url, _keys.store_marker(prefix.encode())) != []
        s.destroy()


def test_identity_ignores_member_order_and_local_spellings(store: EtcdStore, etcd_url: str) -> None:
    members = StoreURL.parse(etcd_url).host_list(2379)
    respelled = ",".join(f"localhost:{p}" for _, p in reversed(members))
    prefix = store.prefix.decode()
    with open_store(f"etcd://{respelled}?prefix={prefix}&timeout=3", create=False) as same:
        assert same.identity() == store.identity()
    with open_store(f"{etcd_url}?prefix={prefix}-other") as other:
        assert other.identity() != store.identity()
        other.destroy()


# --- fail-over --------------------------------------------------------------------------------


def _leader(url: str) -> int:
    """Index (in the URL's order) of the member that is the raft leader."""
    for i, (host, port) in enumerate(StoreURL.parse(url).host_list(2379)):
        with grpc.insecure_channel(f"ipv4:{host}:{port}") as channel:
            status = channel.unary_unary(
                "/etcdserverpb.Maintenance/Status",
                request_serializer=rpc_pb2.StatusRequest.SerializeToString,
                response_deserializer=rpc_pb2.StatusResponse.FromString,
            )(rpc_pb2.StatusRequest(), timeout=5)
        if status.leader == status.header.member_id:
            return i
    raise AssertionError("no leader")


def _exercise(store: Store, round_: int) -> None:
    p = b"failover"
    store.set(p, b"r%d" % round_, b"v%d" % round_)
    store.set_if(p, b"c%d" % round_, b"x", None)
    got = store.get(p, b"c%d" % round_)
    store.set_if(p, b"c%d" % round_, b"y", got.predicate)
    assert store.get(p, b"c%d" % round_).value == b"y"
    store.write_batch([Entry(p, b"b%d" % round_, b"z")])
    store.delete(p, b"r%d" % round_)
    keys = [e.key for e in store.scan(p)]
    assert keys == sorted(keys) and b"b%d" % round_ in keys and b"r%d" % round_ not in keys


def test_three_members_survive_one_loss_and_fail_cleanly_without_quorum(tmp_path: Path) -> None:
    timeout = 3.0
    with servers.EtcdCluster(tmp_path / "etcd", size=3) as cluster:
        url = cluster.url
        with open_store(f"{url}?timeout={timeout}&prefix=failover") as store:
            _exercise(store, 0)

            leader = _leader(url)
            cluster.stop_member(leader)  # the hardest member to lose: forces an election
            for round_ in range(1, 4):
                _exercise(store, round_)

            cluster.stop_member((leader + 1) % 3)  # one of three left: no quorum
            for attempt in (
                lambda: store.set(b"failover", b"lost", b"v"),
                lambda: store.set_if(b"failover", b"lost", b"v", None),
                lambda: store.write_batch([Entry(b"failover", b"lost", b"v")]),
                lambda: store.get(b"failover", b"b0"),  # linearizable reads need quorum too
            ):
                began = time.monotonic()
                with pytest.raises(StoreUnavailableError):
                    attempt()
                assert time.monotonic() - began < timeout + 2

            cluster.start_member(leader)  # quorum again: the store recovers by itself
            deadline = time.monotonic() + 30
            while True:
                try:
                    _exercise(store, 9)
                    break
                except StoreUnavailableError:
                    assert time.monotonic() < deadline


# --- the generated protocol modules -----------------------------------------------------------


def test_etcd_protos_are_etcds_own_stripped_of_go_only_options() -> None:
    proto_dir = Path(__file__).resolve().parent.parent / "src/lakekv/kv/drivers/etcd/proto"
    for name in ("rpc.proto", "kv.proto", "auth.proto"):
        text = (proto_dir / name).read_text()
        assert text.startswith("// From go.etcd.io/etcd/api/v3@v3.5.")
        assert "gogoproto" not in text and "google.api" not in text
    # the wire names etcd serves (staleness of the generated modules: test_record_generated)
    assert rpc_pb2.DESCRIPTOR.package == "etcdserverpb"
    assert rpc_pb2.DESCRIPTOR.services_by_name["KV"].methods_by_name["Txn"].full_name == (
        "etcdserverpb.KV.Txn"
    )


def test_etcd_protos_import_without_version_warnings() -> None:
    code = (
        "import warnings; warnings.simplefilter('error');"
        "from lakekv.kv.drivers.etcd.proto import rpc_pb2, kv_pb2, auth_pb2"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
