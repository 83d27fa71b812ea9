"""Properties, checked on generated inputs: dump round trips, the batch conflict rules, store
URLs and redaction."""

from __future__ import annotations

import io
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakekv.errors import CorruptInputError
from lakekv.kv import _fallbacks
from lakekv.kv.drivers.memory import MemoryStore
from lakekv.kv.store import BatchResult, Entry, OnConflict
from lakekv.kv.url import SECRET_PARAM, StoreURL, redact
from lakekv.migrate.dumpfile import DumpReader, DumpWriter, partition_digest

# --- dump round trips ------------------------------------------------------------------------

_NAMES = st.binary(min_size=1, max_size=12)
_PARTITIONS = st.dictionaries(
    _NAMES, st.dictionaries(_NAMES, st.binary(max_size=40), max_size=12), max_size=5
)


def _write_dump(data: dict[bytes, dict[bytes, bytes]], split: int) -> tuple[bytes, list[Entry]]:
    out = io.BytesIO()
    entries: list[Entry] = []
    with DumpWriter(out, {"source": "memory://", "lakefs_schema_version": None}) as w:
        for p in sorted(data):
            w.begin_partition(p)
            pairs = sorted(data[p].items())
            for i in range(0, len(pairs), split):  # pages of any size
                w.add_page(pairs[i : i + split])
            trailer = w.end_partition()
            assert (trailer.entries, trailer.bytes, trailer.sha256) == partition_digest(
                [pairs[:split], pairs[split:]]
            )
            entries += [Entry(p, k, v) for k, v in pairs]
        w.finish()
    return out.getvalue(), entries


@settings(max_examples=60, deadline=None)
@given(_PARTITIONS, st.integers(1, 5))
def test_a_dump_reads_back_exactly_what_was_written(
    data: dict[bytes, dict[bytes, bytes]], split: int
) -> None:
    blob, entries = _write_dump(data, split)
    reader = DumpReader(io.BytesIO(blob), "dump")
    assert list(reader) == entries
    assert reader.final is not None and reader.final["entries"] == len(entries)
    assert reader.final["partitions"] == len(data)


@settings(max_examples=60, deadline=None)
@given(_PARTITIONS, st.data())
def test_a_truncated_or_altered_dump_is_corrupt(
    data: dict[bytes, dict[bytes, bytes]], draw: st.DataObject
) -> None:
    blob, _ = _write_dump(data, 3)
    cut = draw.draw(st.integers(0, len(blob) - 1), label="cut")
    with pytest.raises(CorruptInputError):
        list(DumpReader(io.BytesIO(blob[:cut]), "dump"))
    at = draw.draw(st.integers(0, len(blob) - 1), label="at")
    flip = draw.draw(st.integers(1, 255), label="flip")
    altered = blob[:at] + bytes([blob[at] ^ flip]) + blob[at + 1 :]
    with pytest.raises(CorruptInputError):
        list(DumpReader(io.BytesIO(altered), "dump"))


# --- classify: the one statement of the batch conflict rules -----------------------------------


_VALUES = st.binary(max_size=3)
_POLICIES = st.sampled_from(list(OnConflict))


@given(_VALUES, st.none() | _VALUES, _POLICIES)
def test_classify_counts_each_entry_once_by_the_rules(
    value: bytes, current: bytes | None, policy: OnConflict
) -> None:
    result = BatchResult()
    entry = Entry(b"p", b"k", value)
    write = result.classify(entry, current, policy)
    counts = (result.written, result.unchanged, result.skipped, len(result.conflicts))
    assert sum(counts) == 1
    assert write == (result.written == 1)
    if current is None:
        assert write  # absent: always written
    elif current == value:
        assert result.unchanged == 1  # the same value: never a conflict, never written
    elif policy is OnConflict.OVERWRITE:
        assert write
    elif policy is OnConflict.SKIP:
        assert result.skipped == 1
    else:
        assert result.conflicts == [entry]


_BATCH = st.dictionaries(st.sampled_from([b"a", b"b", b"c", b"d"]), _VALUES, max_size=4)


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(_BATCH, _BATCH, _POLICIES)
def test_a_native_batch_path_and_the_fallback_agree(
    before: dict[bytes, bytes], batch: dict[bytes, bytes], policy: OnConflict
) -> None:
    """The memory driver's bulk path and the per-entry fallback: same counts, same state."""
    entries = [Entry(b"p", k, v) for k, v in sorted(batch.items())]
    results, states = [], []
    for bulk in (True, False):
        store = MemoryStore.from_url(StoreURL.parse("memory://"))
        for k, v in before.items():
            store.set(b"p", k, v)
        if bulk:
            result = store._write_batch(entries, policy)
        else:
            result = _fallbacks.write_batch(store, entries, policy)
        results.append(result)
        states.append({e.key: e.value for e in store.scan(b"p")})
    assert results[0] == results[1]
    assert states[0] == states[1]
    expected = dict(before)
    for e in entries:
        if e.key not in before or (policy is OnConflict.OVERWRITE and before[e.key] != e.value):
            expected[e.key] = e.value
    assert states[0] == expected


# --- store URLs --------------------------------------------------------------------------------

_SECRET_PREFIX = "Hq7-secret-"
"""Generated secrets start with this, so that masking them hides nothing else in this process."""
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_SECRETS = _TEXT.map(lambda s: _SECRET_PREFIX + s)
_HOST = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,8}){0,2}", fullmatch=True)
_PARAM_NAME = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: not SECRET_PARAM.search(n)
)


@st.composite
def _urls(draw: st.DrawFn) -> StoreURL:
    scheme = draw(st.from_regex(r"[a-z][a-z0-9+.-]{0,8}", fullmatch=True))
    host = draw(st.none() | _HOST)
    username = password = None
    port = None
    if host is not None:
        username = draw(st.none() | _TEXT.filter(bool))
        if username is not None:
            password = draw(st.none() | _SECRETS)
        port = draw(st.none() | st.integers(1, 65535))
    path = draw(st.just("") | _TEXT.map(lambda s: "/" + s))
    query = draw(st.lists(st.tuples(_PARAM_NAME, _TEXT), max_size=3))
    return StoreURL(scheme, username, password, host, port, path, tuple(query))


@given(_urls())
def test_a_url_parses_back_from_its_rendering(url: StoreURL) -> None:
    assert StoreURL.parse(url.render(reveal_password=True)) == url
    shown = str(url)
    if url.password:
        assert url.password not in shown and "***" in shown
    assert StoreURL.parse(shown).without_params().host == url.host


# --- redaction -------------------------------------------------------------------------------

_TOKEN = st.text(string.ascii_letters + string.digits + "!#$%*+-./<>?[]^_{|}~", min_size=1)
_URL_SECRETS = _TOKEN.map(lambda s: _SECRET_PREFIX + s)


@given(_TEXT, _TEXT, _URL_SECRETS, st.sampled_from(["password", "token", "aws_secret", "PWD"]))
def test_redaction_hides_secrets_in_every_documented_form(
    before: str, after: str, secret: str, name: str
) -> None:
    for text in (
        f"{before} postgres://user:{secret}@db.example/x {after}",
        f"{before} {name}={secret} {after}",
        f"{before} {name} = '{secret}' {after}",
    ):
        masked = redact(text)
        assert secret not in masked
        assert redact(masked) == masked
    assert secret not in redact(f"{before}{secret}{after}", [secret])
