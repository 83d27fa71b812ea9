"""``badger:///path/to/metadata`` — lakeFS's ``local`` database: a Badger v4 directory.

URL: ``badger:///relative/dir`` or ``badger:////absolute/dir`` (as ``sqlite://``), the
directory lakeFS's ``database.local.path`` names (``~/lakefs/metadata`` by default).
Parameters: ``tmpdir`` (where a read-only open of a crashed directory makes its private copy;
default ``$TMPDIR``), ``page_size``/``page_cap`` (default 1000/10000).

Layout: lakeFS's exactly (``pkg/kv/local/store.go`` at v1.86.0, ``composeKey``): one Badger
key per entry, the partition, ``/``, then the key; the value is the entry's value. lakeFS's
partitions never contain ``/``; a partition that does (or that starts with NUL or
``!badger!``, which Badger reserves) is stored escaped (:func:`encode_partition`), so any
partition works and no two collide. ``list_partitions`` walks the distinct prefixes before
the first ``/`` (one seek per partition), in bytewise order of the names. ``set_if`` reads and
writes in one Badger read-write transaction, as lakeFS does (``store.go:106-130``); a
transaction conflict counts as a failed predicate. ``write_batch`` is one request: read-write
transactions of as many entries as Badger's transaction size allows. Keys are limited by
Badger's 65000 bytes (partition, ``/`` and key together: declared as partition ≤ 1024, key ≤
62950); values up to 512 MiB (values of 1 MiB or more go to Badger's value log, as lakeFS's
do). The identity is the resolved directory.

Implementation: a small helper program, ``lakekv-badger``, built from Badger's own Go module at
the version lakeFS v1.86.0 pins (``github.com/dgraph-io/badger/v4`` v4.7.0; source in
``helper/``), serves the directory over a pipe (one request, one response, length-prefixed
binary frames; see ``helper/main.go``). It opens the directory with
``badger.DefaultOptions``, as lakeFS does, so what lakekv writes lakeFS reads and the reverse,
including every internal Badger behaviour (SST blocks compressed with snappy, values in the
value log behind pointers, the manifest, memtable logs replayed, versions, deletes and
expiry). Chosen by measurement on a 2-core machine (1M lakeFS-shaped entries, see
``bench/badger.py``) over a pure-Python reader and writer of Badger's format: see the
*Measurements* paragraph below. The helper is found as ``$LAKEKV_BADGER_HELPER``, else
``.tools/badger/lakekv-badger`` of a lakekv checkout (``make badger-helper``; ``make install``
and ``make test`` build it when Go is installed), else ``lakekv-badger`` on ``PATH``; without
it, opening a ``badger://`` store fails with one line saying how to build it
(``go build -C <package>/helper -o DIR/lakekv-badger .``). One helper serves a directory for
the whole Python process and every store opened on it (reference counted); requests are
serialised, so ``capabilities.concurrent_writes`` is false.

Opening. Read-write (a copy or load target): the directory is created when missing (its
parent must exist) unless ``create=False``, which refuses a missing or empty directory, and a
directory holding files but no Badger ``MANIFEST`` is refused either way (StoreNotFoundError;
nothing is created). lakeFS holds ``flock(LOCK_EX)`` on the directory while it runs (the
``LOCK`` file is only a PID file, left behind by a crash): a locked directory is refused with
StoreInUseError, "stop lakeFS first" (exit 2).

Read-only (a migration source, both sides of ``verify``) never writes the directory: the
helper takes ``flock(LOCK_SH)`` on it for as long as the store is open (so lakeFS cannot start
meanwhile, and a running lakeFS is refused) and never lets Badger open it. Badger's own
read-only open refuses a directory whose memtable log (``*.mem``) holds writes — after
``kill -9`` the writes lakeFS acknowledged may live only there ("Log truncate required") —
and even on a cleanly closed directory it opens the value logs for writing and deletes the
empty ones (``value.go``, ``valueLog.open``); its read-write open would rewrite the directory.
So the helper copies the directory into a private directory under ``tmpdir`` (every file
copied, with its holes: a 128 MiB memtable log holding 2 MiB costs 2 MiB; never hard-linked,
because Badger empties a table file before removing it when it compacts, which through a
shared inode would empty the source's) and opens the copy read-write (no compaction), which
replays the memtable logs as lakeFS's next start would; the copy is deleted when the store
closes (``opened_as`` says what it cost). A helper
killed outright cannot delete its copy; each copy holds an owner file its helper keeps locked
(``flock``, dropped by the kernel when the helper dies), and the next read-only open removes
the copies under its ``tmpdir`` whose lock is free.

Measurements (``bench/badger.py --entries 1000000 --rounds 3 --reuse``: 1M ``lakekv sample``
entries, 329 MB as Badger keys and values, on a shared 2-core machine, best of three
alternating rounds; absolute rates vary by ±30 % between runs, the ratios less). Reading:
Badger's own iterator in a plain Go program read 951 k entries/s, lakekv's scan through the
helper 681 k/s (ratio 0.72; 0.53–0.77 over six runs), a ``lakekv copy`` into SQLite 145 k/s
(0.15), which is 0.71 of SQLite's own bulk-load limit measured in the same run (204 k/s,
the standard library's ``executemany`` from memory: 0.21 of Badger's iterator, the bound of
any copy into SQLite). A pure-Python decode of Badger's SST block entries
alone (header, key diff, version, value struct, newest version kept; the data already in
memory and not snappy-compressed) ran at 1.1 M/s, and a ``heapq`` merge of seven levels
costs another 0.4 µs an entry: a pure-Python reader could at best about match the helper on
reads, after re-implementing everything that floor leaves out (snappy, which needs a C
extension, the flatbuffers table index, checksums, the merge of levels and memtables,
value-log pointers, the replay of memtable logs with their transaction markers, deletes,
expiry, Badger's banned-namespace keys). Writing has no such floor: the result must be SST
files, a manifest and value logs that Badger and lakeFS accept, and through the helper
Badger writes them itself, so lakeFS reads what lakekv writes by construction (tested with
lakeFS v1.86.0 both ways). Hence the helper. Writing: the driver's ``write_batch`` (20,000
entries a call, in process) ran at 264 k entries/s against 344 k/s for Badger's
``WriteBatch`` in plain Go (ratio 0.77), a whole ``lakekv copy`` from SQLite at 186 k/s
(0.64; 0.52–0.79 over six runs). Memory stays flat: a 1M-entry copy out of ``badger://``
peaked at 74 MB in Python and 129 MB of the helper's own memory, against 65 MB and 110 MB
for 100k entries (1.14× and 1.18×) and 73 MB and 127 MB for 300k (Badger's block cache is
16 MiB instead of 256 MiB, which changes nothing on disk; a read-only helper runs no
compaction and its garbage collector at GOGC=75; its RSS also counts the pages of the SST
files Badger maps: 313 vs 138 MB). The private copy of a read-only open cost about 0.1 s for
the 1M-entry directory (185 MB copied by the kernel, from the page cache).
"""

from lakekv.kv.drivers.badger._helper import HELPER_ENV, HELPER_NAME, HELPER_SOURCE, find_helper
from lakekv.kv.drivers.badger.store import (
    MAX_KEY_SIZE,
    MAX_PARTITION_SIZE,
    MAX_VALUE_SIZE,
    BadgerSettings,
    BadgerStore,
    decode_partition,
    encode_partition,
)

__all__ = [
    "HELPER_ENV",
    "HELPER_NAME",
    "HELPER_SOURCE",
    "MAX_KEY_SIZE",
    "MAX_PARTITION_SIZE",
    "MAX_VALUE_SIZE",
    "BadgerSettings",
    "BadgerStore",
    "decode_partition",
    "encode_partition",
    "find_helper",
]
