"""Redis and Redis Cluster driver tests beyond the shared contract: the key layout, hash tags
and slots, partition lists, escaping, script reloading, errors and index consistency.

Run with ``--store redis://127.0.0.1:6379/0`` and/or ``--store redis+cluster://h:p,h:p,h:p``
(or set ``LAKEKV_TEST_REDIS`` / ``LAKEKV_TEST_REDIS_CLUSTER``). Without a reachable server the
tests are skipped, unless ``CI`` is set. Each test works in its own namespace, removed after.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from lakekv.errors import ConfigurationError, StoreNotFoundError, StoreUnavailableError
from lakekv.kv.registry import available_drivers, open_store
from lakekv.kv.store import Entry, OnConflict
from lakekv.kv.url import StoreURL
from lakekv.testing import RUN_ID, require_available

pytest.importorskip("redis")
import redis
from redis.cluster import ClusterNode, RedisCluster

from lakekv.kv.drivers.redis import RedisClusterStore, RedisStore, key_slot, slot_tags

DEFAULTS = {
    "redis": ("LAKEKV_TEST_REDIS", "redis://127.0.0.1:6379/0"),
    "redis+cluster": (
        "LAKEKV_TEST_REDIS_CLUSTER",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002",
    ),
}


def _server_url(config: pytest.Config, scheme: str) -> str:
    urls = [u for u in config.getoption("--store") if StoreURL.parse(u).scheme == scheme]
    env, default = DEFAULTS[scheme]
    url = urls[0] if urls else os.environ.get(env, default)
    return StoreURL.parse(url).without_params().render(reveal_password=True)


@pytest.fixture(params=["redis", "redis+cluster"])
def base_url(request: pytest.FixtureRequest) -> str:
    url = _server_url(request.config, str(request.param))
    require_available(url)
    return url


@pytest.fixture
def namespace(base_url: str) -> Iterator[str]:
    """A namespace of this test alone; every key in it is removed afterwards."""
    ns = f"t{RUN_ID}-{uuid.uuid4().hex[:8]}"
    yield ns
    with open_store(f"{base_url}?namespace={ns}") as s:
        s.destroy()


def raw_client(url: str) -> Any:
    parsed = StoreURL.parse(url)
    if parsed.scheme == "redis+cluster":
        nodes = [ClusterNode(h, p) for h, p in parsed.host_list(6379)]  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=nodes)
    host, port = parsed.host_list(6379)[0]
    return redis.Redis(host=host, port=port, db=int(parsed.path.strip("/") or 0))


def namespace_keys(client: Any, ns: str) -> set[bytes]:
    return set(client.scan_iter(match=f"{ns}:*", count=1000))


# --- without a server -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:1/0?bogus=1",
        "redis://127.0.0.1:1/0?namespace=a:b",
        "redis://127.0.0.1:1/0?namespace=a{b}",
        "redis://127.0.0.1:1/0?namespace=",
        "redis://127.0.0.1:1/x",
        "redis://127.0.0.1:1,127.0.0.1:2/0",
        "redis://127.0.0.1:1/0?page_cap=5000",
        "redis+cluster://127.0.0.1:1,127.0.0.1:2/3",
    ],
)
def test_bad_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)


def test_unreachable_server_is_unavailable_quickly() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    began = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        open_store(f"redis://127.0.0.1:{port}/0?connect_timeout=1")
    with pytest.raises(StoreUnavailableError):
        open_store(f"redis+cluster://127.0.0.1:{port}?connect_timeout=1")
    assert time.monotonic() - began < 10


def test_slot_tags_cover_every_slot() -> None:
    tags = slot_tags()
    assert len(tags) == 16384
    assert [key_slot(t) for t in tags] == list(range(16384))
    # Redis's own CRC16 reference value ("123456789" → 0x31C3)
    assert key_slot(b"123456789") == 0x31C3 % 16384


def test_drivers_say_durability_is_the_servers() -> None:
    infos = {d.scheme: d for d in available_drivers()}
    for scheme in ("redis", "redis+cluster"):
        note = infos[scheme].note
        assert note is not None and "persistence" in note
    assert infos["redis"].target.endswith(RedisStore.__name__)
    assert infos["redis+cluster"].target.endswith(RedisClusterStore.__name__)


# --- against a server -------------------------------------------------------------------------


def test_layout_is_a_hash_and_a_sorted_set_per_partition(base_url: str, namespace: str) -> None:
    raw = raw_client(base_url)
    with open_store(f"{base_url}?namespace={namespace}") as s:
        s.set(b"part", b"k2", b"v2")
        s.set(b"part", b"k1", b"v1")
        assert raw.hgetall(f"{namespace}:v:{{part}}") == {b"k1": b"v1", b"k2": b"v2"}
        index = raw.zrange(f"{namespace}:i:{{part}}", 0, -1, withscores=True)
        assert index == [(b"k1", 0.0), (b"k2", 0.0)]
        plist = [k for k in namespace_keys(raw, namespace) if b":p" in k]
        assert len(plist) == 1
        assert raw.zrange(plist[0], 0, -1) == [b"part"]
        if s.scheme == "redis+cluster":  # the list lives in the partition's slot
            assert raw.keyslot(plist[0]) == raw.keyslot(f"{namespace}:v:{{part}}")
        s.delete(b"part", b"k1")
        s.delete(b"part", b"k2")
        assert namespace_keys(raw, namespace) == set()
        assert list(s.list_partitions()) == []


def test_partition_names_are_escaped_injectively(base_url: str, namespace: str) -> None:
    names = [b"a}b", b"a%7Db", b"a%b", b"a%25b", b"{x}", b"}", b"%"]
    with open_store(f"{base_url}?namespace={namespace}") as s:
        for i, name in enumerate(names):
            s.set(name, b"k", b"%d" % i)
        for i, name in enumerate(names):
            assert list(s.scan(name)) == [Entry(name, b"k", b"%d" % i)]
        assert list(s.list_partitions()) == sorted(names)


@pytest.mark.parametrize("base_url", ["redis+cluster"], indirect=True)
def test_cluster_spreads_partitions_and_lists_them_in_order(namespace: str, base_url: str) -> None:
    raw = raw_client(base_url)
    names = sorted({bytes(random.randbytes(random.randint(1, 6))) for _ in range(60)})
    with open_store(f"{base_url}?namespace={namespace}") as s:
        s.write_batch([Entry(p, b"k%d" % i, b"v") for i, p in enumerate(names)])
        assert list(s.list_partitions()) == names
        ns = namespace.encode()
        nodes = set()
        for p in names:
            tag = p.replace(b"%", b"%25").replace(b"}", b"%7D")
            values, index = b"%s:v:{%s}" % (ns, tag), b"%s:i:{%s}" % (ns, tag)
            assert raw.hexists(values, b"k%d" % names.index(p))
            assert raw.keyslot(values) == raw.keyslot(index)
            nodes.add(raw.get_node_from_key(values).name)
        assert len(nodes) == 3  # 60 random partitions land on every master
        # Which node serves which slot is found once; a node that is no longer there (the
        # cluster changed) makes it found again, not a partition missed.
        assert isinstance(s, RedisClusterStore) and s._slot_lists is not None
        first_names = s._slot_lists[0][1]
        s._slot_lists = [("127.0.0.1:1", first_names), *s._slot_lists[1:]]
        assert list(s.list_partitions()) == names
        assert s._slot_lists is not None and s._slot_lists[0][0] != "127.0.0.1:1"


def test_scripts_are_reloaded_after_a_flush(base_url: str, namespace: str) -> None:
    raw = raw_client(base_url)
    with open_store(f"{base_url}?namespace={namespace}") as s:
        s.set(b"p", b"a", b"1")
        raw.script_flush()  # on every node of a cluster
        s.set(b"p", b"b", b"2")
        s.set_if(b"p", b"c", b"3", None)
        assert s.write_batch([Entry(b"p", b"d", b"4")]).written == 1
        assert [e.key for e in s.scan(b"p")] == [b"a", b"b", b"c", b"d"]


def test_namespaces_are_independent(base_url: str, namespace: str) -> None:
    other = namespace + "-other"
    with (
        open_store(f"{base_url}?namespace={namespace}") as a,
        open_store(f"{base_url}?namespace={other}") as b,
    ):
        a.set(b"p", b"k", b"a")
        b.set(b"p", b"k", b"b")
        b.destroy()
        assert a.get(b"p", b"k").value == b"a"
    with open_store(f"{base_url}?namespace={other}") as b:
        assert list(b.list_partitions()) == []


def test_opening_creates_the_marker_only_when_allowed(base_url: str, namespace: str) -> None:
    raw = raw_client(base_url)
    url = f"{base_url}?namespace={namespace}"
    marker = f"{namespace}.lakekv-store"
    with pytest.raises(StoreNotFoundError, match=namespace):
        open_store(url, create=False)
    with pytest.raises(StoreNotFoundError):
        open_store(url, read_only=True)
    assert not raw.exists(marker)
    with open_store(url) as s:
        assert raw.exists(marker)
        assert marker.encode() not in namespace_keys(raw, namespace)  # no data key
        s.set(b"p", b"k", b"v")
        s.delete(b"p", b"k")  # an emptied store still exists
    with open_store(url, read_only=True) as s:
        assert list(s.list_partitions()) == []
    with open_store(url) as s:
        s.destroy()
    assert not raw.exists(marker)
    with pytest.raises(StoreNotFoundError):
        open_store(url, create=False)


def test_a_namespace_written_before_markers_opens_without_create(
    base_url: str, namespace: str
) -> None:
    raw = raw_client(base_url)
    url = f"{base_url}?namespace={namespace}"
    with open_store(url) as s:
        s.set(b"p", b"k", b"v")
    raw.delete(f"{namespace}.lakekv-store")
    with open_store(url, read_only=True) as s:
        assert s.get(b"p", b"k").value == b"v"
    with open_store(url):  # opening with create adds the marker
        assert raw.exists(f"{namespace}.lakekv-store")


def test_identity_ignores_seed_order_and_local_spellings(base_url: str, namespace: str) -> None:
    parsed = StoreURL.parse(base_url)
    servers = ",".join(f"localhost:{p}" for _, p in reversed(parsed.host_list(6379)))
    respelled = f"{parsed.scheme}://{servers}?namespace={namespace}"  # database 0 implied
    with (
        open_store(f"{base_url}?namespace={namespace}") as s,
        open_store(respelled, create=False) as same,
        open_store(f"{base_url}?namespace={namespace}-other") as other,
    ):
        identity = s.identity()
        assert same.identity() == identity
        assert other.identity() != identity
        other.destroy()
    if parsed.scheme == "redis":
        with open_store(f"redis://{servers}/1?namespace={namespace}") as db1:
            assert db1.identity() != identity
            db1.destroy()


def test_concurrent_writers_keep_index_and_values_in_agreement(
    base_url: str, namespace: str
) -> None:
    raw = raw_client(base_url)
    keys = [b"k%02d" % i for i in range(20)]
    with open_store(f"{base_url}?namespace={namespace}") as s:

        def churn(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(300):
                key = rng.choice(keys)
                action = rng.randrange(4)
                if action == 0:
                    s.delete(b"p", key)
                elif action == 1:
                    s.write_batch([Entry(b"p", key, b"b")], OnConflict.OVERWRITE)
                else:
                    try:
                        s.set_if(b"p", key, b"c", None)
                    except Exception:
                        s.set(b"p", key, b"s")

        threads = [threading.Thread(target=churn, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        values = raw.hkeys(f"{namespace}:v:{{p}}")
        index = raw.zrange(f"{namespace}:i:{{p}}", 0, -1)
        assert sorted(values) == index
        assert [e.key for e in s.scan(b"p")] == index
        assert (list(s.list_partitions()) == [b"p"]) == bool(index)
