"""Redis key names, hash tags and cluster slots, and the Lua scripts every write runs.

See :mod:`lakekv.kv.drivers.redis` for the layout these implement.
"""

from __future__ import annotations

import itertools
from binascii import crc_hqx
from functools import cache
from typing import Final

SLOTS: Final = 16384

# KEYS: values hash, index zset, partition list. ARGV: key, value, partition.
_SET = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('ZADD', KEYS[2], 0, ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[3], 0, ARGV[3])
end
return 1
"""

# ARGV: key, value, partition, mode (c: create only, e: must exist, v: value equals), expected.
_SET_IF = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local mode = ARGV[4]
if mode == 'c' then
  if cur then return 0 end
elseif not cur or (mode == 'v' and cur ~= ARGV[5]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if not cur then
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
  redis.call('ZADD', KEYS[3], 0, ARGV[3])
end
return 1
"""

# ARGV: key, partition.
_DELETE = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  if redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('ZREM', KEYS[3], ARGV[2])
  end
end
return 1
"""

# KEYS: values hash, index zset. ARGV: ZRANGEBYLEX min, limit. Returns key, value, key, ...
_PAGE = """
local ks = redis.call('ZRANGEBYLEX', KEYS[2], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]))
if #ks == 0 then return ks end
local vs = redis.call('HMGET', KEYS[1], unpack(ks))
local out = {}
for i = 1, #ks do
  out[2 * i - 1] = ks[i]
  out[2 * i] = vs[i]
end
return out
"""

# ARGV: policy (f, s, o), partition, key1, value1, key2, value2, ...
# Returns per entry 0 (written), 1 (unchanged) or 2 (a different value kept).
_BATCH = """
local policy = ARGV[1]
local out = {}
local added = false
for i = 3, #ARGV, 2 do
  local k, v = ARGV[i], ARGV[i + 1]
  local cur = redis.call('HGET', KEYS[1], k)
  if not cur then
    redis.call('HSET', KEYS[1], k, v)
    redis.call('ZADD', KEYS[2], 0, k)
    added = true
    out[#out + 1] = 0
  elseif cur == v then
    out[#out + 1] = 1
  elseif policy == 'o' then
    redis.call('HSET', KEYS[1], k, v)
    out[#out + 1] = 0
  else
    out[#out + 1] = 2
  end
end
if added then redis.call('ZADD', KEYS[3], 0, ARGV[2]) end
return out
"""

SCRIPTS: Final = {
    "set": _SET,
    "set_if": _SET_IF,
    "delete": _DELETE,
    "page": _PAGE,
    "batch": _BATCH,
}


def escape(partition: bytes) -> bytes:
    """The partition as a hash-tag body: no ``}``, and injective."""
    if b"%" in partition or b"}" in partition:
        return partition.replace(b"%", b"%25").replace(b"}", b"%7D")
    return partition


def key_slot(tag: bytes) -> int:
    """The Redis Cluster slot of a key whose hash tag is ``tag`` (CRC16/XMODEM mod 16384)."""
    return crc_hqx(tag, 0) % SLOTS


@cache
def slot_tags() -> tuple[bytes, ...]:
    """For each slot, the shortest hex string whose CRC16 falls in it (computed once, ~50 ms)."""
    tags: list[bytes | None] = [None] * SLOTS
    missing = SLOTS
    for i in itertools.count():
        tag = b"%x" % i
        slot = crc_hqx(tag, 0) % SLOTS
        if tags[slot] is None:
            tags[slot] = tag
            missing -= 1
            if missing == 0:
                break
    return tuple(t for t in tags if t is not None)
