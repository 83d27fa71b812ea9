"""``redis://host:6379/0?namespace=lakekv`` and ``redis+cluster://h1:p1,h2:p2?namespace=lakekv``.

Redis (standalone) and Redis Cluster through redis-py with the hiredis parser.

URL
    ``redis://[user:password@]host[:port][/db]`` (port 6379, database 0 by default) or
    ``redis+cluster://[user:password@]h1:p1[,h2:p2…]`` naming one or more seed nodes of a
    cluster (which has only database 0). Parameters (anything else is a ConfigurationError):

    ``namespace``        prefix of every key this store writes (default ``lakekv``); letters,
                         digits and ``_ . - /`` only. Stores with different namespaces on one
                         server are independent.
    ``socket_timeout``   seconds to wait for a reply before StoreUnavailableError (default 5)
    ``connect_timeout``  seconds to connect (default 5)
    ``max_connections``  connection pool size per server (default 64)
    ``page_size``/``page_cap``  scan pages (default 1000, doubling up to 2000; at most 4000,
                         Lua's argument limit)

Layout (``N`` the namespace, ``P`` the partition with ``%`` → ``%25`` and ``}`` → ``%7D``)
    ``N:v:{P}``   a hash: key → value, the partition's entries;
    ``N:i:{P}``   a sorted set of the same keys, all with score 0, so ``ZRANGEBYLEX`` returns
                  them in bytewise (memcmp) order: the scan index;
    ``N:p``       (standalone) a sorted set of every non-empty partition name, score 0;
    ``N:p:{T}``   (cluster) the same, one per hash slot: ``T`` is a short tag that hashes to
                  the slot of ``{P}``, so it lists the partitions whose keys live in that slot.

    The ``{…}`` hash tag puts all keys of one partition (and its slot's partition list) in one
    cluster slot: every write is one Lua script touching one slot, so the values, the index
    and the partition list change together, atomically, and never disagree. A partition
    therefore lives on one cluster node. Escaping makes the tag injective: two partitions never
    share keys. In standalone mode the tags are harmless.

    ``N.lakekv-store``  the store's marker (a plain string). It has no ``:``, so it is none of
                  the data keys above, of this namespace or any other, and no per-partition
                  script touches it; in a cluster it is one key in one slot.

Opening: what "the store exists" means
    Redis has no tables, so a store is its namespace, and the namespace exists when its marker
    key does. Opening with ``create=True`` (the default) writes the marker if it is missing
    (``SET NX``). With ``create=False`` or ``read_only=True`` nothing is written: the store
    must have its marker, or, for namespaces written before markers existed, at least one
    non-empty partition; otherwise StoreNotFoundError names the server, database and
    namespace. Deleting every entry leaves the marker, so an emptied store still exists;
    ``destroy()`` removes the marker with the data. Redis connections cannot be made
    read-only (``READONLY`` is for cluster replicas): a ``read_only`` store relies on lakekv
    refusing every write, or on a Redis ACL user without write commands.

Identity
    The scheme, the servers of the URL (``localhost``, ``127.0.0.1`` and ``::1`` are one host;
    6379 is the default port; a cluster's seed nodes sorted), the database and the namespace.
    A cluster is named by the seed nodes its URL lists, so two URLs listing different seed
    nodes of one cluster have different identities.

Operations
    ``get`` is ``HGET``. ``set``, ``set_if`` and ``delete`` are Lua scripts (``EVALSHA``,
    loaded again after ``NOSCRIPT``). ``set_if`` compares *values*: with a predicate from
    ``get`` it writes only if the stored value equals the one read (A → B → A passes); with
    ``None`` only if the key is absent; with ``MUST_EXIST`` only if present. A scan page is one
    read-only script (``ZRANGEBYLEX`` then ``HMGET``: one consistent snapshot, one round
    trip). ``list_partitions`` pages through the partition list (in a cluster, through the
    non-empty per-slot lists of all nodes, merged in bytewise order). ``write_batch`` sends
    one script per partition and chunk of up to 500 entries, pipelined.

Errors and retries
    redis-py's automatic retries are off, so a write is never sent twice behind the caller's
    back (a repeated ``set_if`` could report a failure for its own success). A pooled
    connection the server closed while idle is noticed before use and replaced. Connection
    errors, timeouts, a loading server and cluster reconfiguration (``CLUSTERDOWN``,
    ``TRYAGAIN``) raise StoreUnavailableError; other server errors StoreError. In a cluster,
    ``MOVED``/``ASK`` redirections are followed by the client.
    ``close()`` from another thread stops a ``write_batch`` between two pipelines (what was
    sent is written; the call raises StoreClosedError); single commands run to their end.

Durability
    Whatever the server's persistence settings give: with ``appendonly yes`` and
    ``appendfsync always`` a write is on disk when acknowledged; with the defaults
    (``everysec``, or RDB snapshots only, or no persistence) acknowledged writes can be lost
    in a crash. A cluster without replicas loses a node's slots with the node. lakekv does not
    change server settings; ``lakekv drivers`` repeats this.
"""

from lakekv.kv.drivers.redis._layout import key_slot, slot_tags
from lakekv.kv.drivers.redis._store import RedisClusterStore, RedisStore

__all__ = ["RedisClusterStore", "RedisStore", "key_slot", "slot_tags"]
