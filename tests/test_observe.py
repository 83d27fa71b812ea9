"""Observability and load control: metrics, traces, rate limits, JSON progress.

The optional extras (prometheus-client, opentelemetry) are skipped when missing locally and
required when ``CI`` is set. Timing tests measure only the operation, with the tolerance the
feature promises (5 s ± 15 % for 10k entries at 2000 entries/s).
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from _cli import run

from lakekv.errors import (
    ConfigurationError,
    KeyNotFoundError,
    PredicateFailedError,
    SlowDownError,
    StoreUnavailableError,
)
from lakekv.kv.registry import open_store
from lakekv.kv.store import Entry, OnConflict, Store
from lakekv.kv.url import StoreURL
from lakekv.kv.wrappers import (
    KVMetrics,
    Limiter,
    MetricsStore,
    RateLimit,
    RateLimitedStore,
    StoreWrapper,
    TracingStore,
)
from lakekv.kv.wrappers.ratelimit import TokenBucket
from lakekv.migrate import _observe, copy
from lakekv.testing import fresh_url, require_available

ROOT = Path(__file__).resolve().parent.parent


def need(module: str) -> Any:
    """Import an optional extra's module: skip without it, fail when ``CI`` is set."""
    try:
        return importlib.import_module(module)
    except ImportError:
        reason = f"{module} is not installed (an optional extra)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: required because CI is set", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def registry() -> Any:
    prometheus = need("prometheus_client")
    return prometheus.CollectorRegistry()


def scrape(registry: Any) -> str:
    prometheus = need("prometheus_client")
    return str(prometheus.generate_latest(registry).decode())


def sample(registry: Any, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)


def fill(store: Store, n: int, partitions: int = 1, size: int = 100) -> None:
    entries = [
        Entry(f"p{i % partitions}".encode(), f"k{i:08d}".encode(), b"v" * size) for i in range(n)
    ]
    store.write_batch(entries)


# --- metrics --------------------------------------------------------------------------------


def test_metrics_have_lakefs_names_and_labels(registry: Any) -> None:
    metrics = KVMetrics(registry)
    with open_store("memory://", metrics=metrics) as store:
        assert isinstance(store, MetricsStore)
        store.set(b"p", b"k", b"value")
        assert store.get(b"p", b"k").value == b"value"
        with pytest.raises(PredicateFailedError):
            store.set_if(b"p", b"k", b"v2", None)
        store.delete(b"p", b"k")
        store.write_batch([Entry(b"p", b"a", b"1"), Entry(b"p", b"b", b"22")])
        assert [e.key for e in store.scan(b"p")] == [b"a", b"b"]
        assert store.get_many(b"p", [b"a", b"zz"]) == {b"a": b"1"}
    labels = {"type": "memory"}
    for op in ("Set", "Get", "Delete", "WriteBatch", "Scan", "GetMany"):
        assert sample(registry, "kv_request_duration_seconds_count", operation=op, **labels) >= 1
    assert sample(registry, "lakekv_kv_entries_total", operation="WriteBatch", **labels) == 2
    assert sample(registry, "lakekv_kv_bytes_total", operation="WriteBatch", **labels) == 5
    assert sample(registry, "lakekv_kv_entries_total", operation="Scan", **labels) == 2
    assert sample(registry, "lakekv_kv_bytes_total", operation="Get", **labels) == 6
    text = scrape(registry)
    assert "# TYPE kv_request_duration_seconds histogram" in text
    assert "# TYPE kv_request_failures_total counter" in text
    # lakeFS's buckets are all there (its dashboards query them)
    for le in ("0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0"):
        assert f'le="{le}",operation="Get",type="memory"' in text


def test_a_failed_call_counts_as_a_failure(registry: Any) -> None:
    from _fakes import FlakyStore  # noqa: PLC0415

    store = MetricsStore(FlakyStore({1}), KVMetrics(registry))
    store.set(b"p", b"a", b"1")
    with pytest.raises(StoreUnavailableError):
        list(store.scan(b"p"))
    assert sample(registry, "kv_request_failures_total", type="memory", operation="Scan") == 1
    assert sample(registry, "kv_request_failures_total", type="memory", operation="Set") == 0
    assert sample(registry, "kv_request_duration_seconds_count", type="memory", operation="Scan")


def test_snapshot_reads_are_recorded(tmp_path: Path, registry: Any) -> None:
    metrics = KVMetrics(registry)
    with open_store(f"sqlite:///{tmp_path}/s.db", metrics=metrics) as store:
        fill(store, 30)
        with store.snapshot() as view:
            assert len(list(view.scan(b"p0"))) == 30
    assert sample(registry, "lakekv_kv_entries_total", type="sqlite", operation="Scan") == 30
    assert sample(
        registry, "kv_request_duration_seconds_count", type="sqlite", operation="OpenSnapshot"
    )


def test_labels_never_hold_a_password(registry: Any) -> None:
    inner = StoreWrapper(
        open_store("memory://"), url=StoreURL.parse("postgres://u:sekret@db/x?password=hush")
    )
    store = MetricsStore(inner, KVMetrics(registry))
    store.set(b"p", b"k", b"v")
    text = scrape(registry)
    assert "sekret" not in text and "hush" not in text


def test_missing_extra_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ConfigurationError, match=r"lakekv\[metrics\]"):
        open_store("memory://", metrics=True)
    code, _, err = run(capsys, "dump", "--from", "memory://", "-", "--metrics-addr", ":0")
    assert (code, err) == (
        2,
        "error: metrics need prometheus-client: pip install 'lakekv[metrics]'\n",
    )
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ConfigurationError, match=r"lakekv\[tracing\]"):
        open_store("memory://", tracing=True)


def test_nothing_asked_nothing_wrapped() -> None:
    with open_store("memory://") as store:
        assert type(store).__name__ == "MemoryStore"
    with _observe.observing(_observe.Observe()):
        assert _observe.wrap(open_store("memory://"), read_only=True).scheme == "memory"
        assert type(_observe.wrap(open_store("memory://"), read_only=True)).__name__ == (
            "MemoryStore"
        )


def test_contract_suite_passes_through_the_wrappers(registry: Any) -> None:
    """The wrappers change nothing a caller sees: the same results and errors."""
    metrics = KVMetrics(registry)
    store = open_store("memory://", metrics=metrics, rate_limit=RateLimit(1e9, 1e12))
    store.set(b"p", b"k", b"v")
    pred = store.get(b"p", b"k").predicate
    store.set_if(b"p", b"k", b"w", pred)
    with pytest.raises(PredicateFailedError):
        store.set_if(b"p", b"k", b"x", pred)
    with pytest.raises(KeyNotFoundError):
        store.get(b"p", b"nope")
    assert list(store.list_partitions()) == [b"p"]
    store.close()


# --- migration metrics and the CLI's /metrics ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_addr_serves_store_and_progress_metrics_while_a_copy_runs(
    tmp_path: Path,
) -> None:
    need("prometheus_client")
    src = f"sqlite:///{tmp_path}/a.db"
    with open_store(src) as store:
        fill(store, 3000, partitions=3)
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "lakekv",
        "copy",
        "--from",
        src,
        "--to",
        f"sqlite:///{tmp_path}/b.db",
        "--metrics-addr",
        f"127.0.0.1:{port}",
        "--max-rate",
        "1000",
        "--batch-size",
        "200",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
                if "lakekv_migration_entries{" in text and "kv_request_duration" in text:
                    seen = text
                    break
            except OSError:
                pass
            time.sleep(0.1)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"serving metrics at http://127.0.0.1:{port}/metrics" in err
    assert 'kv_request_duration_seconds_count{operation="Scan",type="sqlite"}' in seen
    assert 'kv_request_duration_seconds_count{operation="WriteBatch",type="sqlite"}' in seen
    for name in (
        "lakekv_migration_entries",
        "lakekv_migration_bytes",
        "lakekv_migration_partitions_done",
        "lakekv_migration_eta_seconds",
        "lakekv_migration_conflicts",
        "lakekv_migration_retries",
    ):
        assert f"{name}{{" in seen, name
    assert 'command="copy"' in seen


def test_migration_gauges_count_conflicts_and_retries(tmp_path: Path, registry: Any) -> None:
    from _fakes import FlakyStore  # noqa: PLC0415

    state = _observe.ProgressState("copy")
    counters = _observe.MigrationCounters()
    gauges = _observe.MigrationMetrics(state, counters, registry)
    dst = f"sqlite:///{tmp_path}/b.db"
    with open_store(dst) as target:
        target.set(b"p0", b"k00000001", b"other")
    flaky = FlakyStore({2})
    fill(flaky, 10)
    observe = _observe.Observe(metrics=KVMetrics(registry), counters=counters)
    with _observe.observing(observe):
        report = copy(flaky, dst, progress=_observe.progress_observer(state, None), batch_entries=5)
    assert report.conflicts == 1 and report.retries == 1
    assert sample(registry, "lakekv_migration_conflicts", command="copy") == 1
    assert sample(registry, "lakekv_migration_retries", command="copy") == 1
    assert sample(registry, "lakekv_migration_entries", command="copy", phase="copy") == 10
    assert sample(registry, "lakekv_migration_eta_seconds", command="copy", phase="copy") == 0
    gauges.unregister()


# --- traces ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spans() -> Iterator[Any]:
    """The SDK's in-memory exporter behind the global tracer provider."""
    need("opentelemetry.trace")
    sdk = need("opentelemetry.sdk.trace")
    export = need("opentelemetry.sdk.trace.export")
    memory = need("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    from opentelemetry import trace  # noqa: PLC0415

    exporter = memory.InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        pytest.skip("another tracer provider is installed in this process")
    yield exporter


def test_store_operations_are_spans_with_the_url_without_credentials(spans: Any) -> None:
    spans.clear()
    inner = StoreWrapper(
        open_store("memory://"), url=StoreURL.parse("postgres://u:sekret@db:5432/x?table=kv")
    )
    store = TracingStore(inner)
    store.set(b"p", b"k", b"value")
    store.get(b"p", b"k")
    list(store.scan(b"p"))
    finished = spans.get_finished_spans()
    names = [s.name for s in finished]
    assert names == ["kv.Set", "kv.Get", "kv.Scan"]
    get = finished[1]
    assert get.attributes["lakekv.store.url"] == "postgres://db:5432/x?table=kv"
    assert get.attributes["db.system.name"] == "memory"
    assert get.attributes["db.operation.name"] == "Get"
    assert get.attributes["lakekv.entries"] == 1
    assert get.attributes["lakekv.bytes"] == 6
    for s in finished:
        assert "sekret" not in json.dumps(dict(s.attributes or {}))


def test_a_failed_operation_is_an_error_span(spans: Any) -> None:
    from _fakes import FlakyStore  # noqa: PLC0415

    spans.clear()
    store = TracingStore(FlakyStore({1}))
    store.set(b"p", b"a", b"1")
    with pytest.raises(StoreUnavailableError):
        list(store.scan(b"p"))
    failed = spans.get_finished_spans()[-1]
    assert failed.name == "kv.Scan"
    assert failed.status.status_code.name == "ERROR"
    assert failed.events and failed.events[0].name == "exception"


def test_a_traced_copy_is_one_pass_span_over_store_spans(
    spans: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spans.clear()
    src = f"sqlite:///{tmp_path}/a.db"
    with open_store(src) as store:
        fill(store, 50, partitions=2)
    code, _, err = run(
        capsys, "copy", "--from", src, "--to", f"sqlite:///{tmp_path}/b.db", "--trace"
    )
    assert code == 0, err
    finished = spans.get_finished_spans()
    (pass_span,) = [s for s in finished if s.name == "lakekv.copy"]
    assert pass_span.attributes["lakekv.from"] == src
    children = [s for s in finished if s.parent and s.parent.span_id == pass_span.context.span_id]
    assert {"kv.Scan", "kv.WriteBatch"} <= {s.name for s in children}


# --- rate limits ----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_debt_and_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100, burst=10, clock=clock, sleep=clock.sleep)
    assert bucket.take(10) == pytest.approx(0.1)  # it starts empty
    assert bucket.take(50) == pytest.approx(0.5)  # a debt is waited for
    clock.now += 10  # long idle: at most the burst is saved
    assert bucket.take(10) == 0
    assert bucket.take(1) == pytest.approx(0.01)


def test_token_bucket_is_shared_by_threads() -> None:
    bucket = TokenBucket(2000, burst=20)
    started = time.monotonic()

    def work() -> None:
        for _ in range(100):
            bucket.take(5)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert 0.85 <= elapsed <= 1.5  # 2000 tokens at 2000/s


def test_reads_are_sliced_and_batches_split() -> None:
    clock = FakeClock()
    limiter = Limiter(RateLimit(100), clock=clock, sleep=clock.sleep)
    store = RateLimitedStore(open_store("memory://"), limiter)
    fill(store, 95)
    assert clock.now == pytest.approx(0.95)  # 95 entries at 100/s (batches of 10)
    pages = list(store.scan_pages(b"p0", page_size=1000))
    assert [len(p) for p in pages] == [10] * 9 + [5]  # a tenth of a second's worth each
    assert clock.now == pytest.approx(1.9)


class Throttled(StoreWrapper):
    """Throttles its first ``n`` writes with SlowDownError."""

    def __init__(self, inner: Store, n: int) -> None:
        super().__init__(inner)
        self.n = n

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> Any:
        if self.n:
            self.n -= 1
            raise SlowDownError("throttled (ProvisionedThroughputExceededException)")
        return super()._write_batch(entries, on_conflict)


def test_throttling_slows_down_instead_of_failing() -> None:
    clock = FakeClock()
    limiter = Limiter(RateLimit(1000), clock=clock, sleep=clock.sleep)
    store = RateLimitedStore(Throttled(open_store("memory://"), 3), writes=limiter)
    store.write_batch([Entry(b"p", b"k", b"v")])
    assert limiter.slowdowns == 3
    assert limiter.entries is not None and limiter.entries.rate == pytest.approx(125)
    clock.now += 5
    store.write_batch([Entry(b"p", b"k2", b"v")])
    assert limiter.entries.rate == pytest.approx(137.5)  # climbing back
    hopeless = RateLimitedStore(
        Throttled(open_store("memory://"), 100), writes=limiter, max_slowdowns=2
    )
    with pytest.raises(SlowDownError):
        hopeless.write_batch([Entry(b"p", b"k", b"v")])


class CountsThrottles(StoreWrapper):
    """Like the DynamoDB driver: retries throttling answers itself and counts them."""

    throttled = 0

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> Any:
        if entries[0].key == b"throttled":
            self.throttled += 1  # answered after a retry inside the driver
        return super()._write_batch(entries, on_conflict)


def test_throttling_retried_inside_the_driver_slows_down_at_once() -> None:
    clock = FakeClock()
    limiter = Limiter(RateLimit(1000), clock=clock, sleep=clock.sleep)
    store = RateLimitedStore(StoreWrapper(CountsThrottles(open_store("memory://"))), writes=limiter)
    store.write_batch([Entry(b"p", b"k", b"v")])
    assert limiter.slowdowns == 0
    store.write_batch([Entry(b"p", b"throttled", b"v")])
    assert limiter.slowdowns == 1
    assert limiter.entries is not None and limiter.entries.rate == pytest.approx(500)


def test_capacity_share_of_a_provisioned_table() -> None:
    class Client:
        def describe_table(self, TableName: str) -> dict[str, Any]:  # noqa: N803
            assert TableName == "kvstore"
            units = {"ReadCapacityUnits": 100, "WriteCapacityUnits": 50}
            return {"Table": {"ProvisionedThroughput": units}}

    class Dynamo(StoreWrapper):
        scheme = "dynamodb"

    fake = Dynamo(open_store("memory://"), scheme="dynamodb")
    fake._client = Client()  # type: ignore[attr-defined]
    fake.table = "kvstore"  # type: ignore[attr-defined]
    assert _observe.capacity_limit(fake, 0.3, read_only=True) == RateLimit(bytes=30 * 4096)
    assert _observe.capacity_limit(fake, 0.3, read_only=False) == RateLimit(
        entries=15, bytes=15 * 1024
    )
    assert _observe.capacity_limit(open_store("memory://"), 0.3, read_only=True) is None


def _timed_copy(src: str, dst: str, capsys: pytest.CaptureFixture[str]) -> float:
    """Seconds ``lakekv copy --max-rate 2000`` takes, its modules imported beforehand (a
    first command imports the command line's modules: not the copy's time)."""
    assert run(capsys, "copy", "--help")[0] == 0
    started = time.monotonic()
    code, _, err = run(capsys, "copy", "--from", src, "--to", dst, "--max-rate", "2000")
    elapsed = time.monotonic() - started
    assert code == 0, err
    return elapsed


def _check_rate(make: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src_url = make.format(name="src")
    dst_url = make.format(name="dst")
    with open_store(src_url) as src:
        fill(src, 10_000, partitions=4)
    try:
        elapsed = _timed_copy(src_url, dst_url, capsys)
        assert 5 * 0.85 <= elapsed <= 5 * 1.15, f"{elapsed:.2f} s"
        with open_store(dst_url) as dst:
            assert sum(1 for p in dst.list_partitions() for _ in dst.scan(p)) == 10_000
    finally:
        for url in (src_url, dst_url):
            with open_store(url) as s:
                s.destroy()


def test_copy_of_10k_entries_at_2000_per_second_takes_5_seconds_sqlite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _check_rate(f"sqlite:///{tmp_path}/{{name}}.db", tmp_path, capsys)


@pytest.fixture(scope="module")
def pg_url(pytestconfig: pytest.Config) -> str:
    urls = [
        u
        for u in pytestconfig.getoption("--store")
        if StoreURL.parse(u).scheme in ("postgres", "postgresql")
    ]
    url = urls[0] if urls else os.environ.get("LAKEKV_TEST_POSTGRES", "")
    if not url:
        reason = "no PostgreSQL server: pass --store postgres://… or set LAKEKV_TEST_POSTGRES"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (required because CI is set)", pytrace=False)
        pytest.skip(reason)
    require_available(url)
    return url


def test_copy_of_10k_entries_at_2000_per_second_takes_5_seconds_postgres(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = fresh_url(pg_url, "rate")
    _check_rate(
        base.replace("table=", "table={name}_") if "table=" in base else base, tmp_path, capsys
    )


# --- JSON progress --------------------------------------------------------------------------


def test_progress_json_prints_a_line_a_second(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = f"sqlite:///{tmp_path}/a.db"
    with open_store(src) as store:
        fill(store, 5000, partitions=5)
    code, out, err = run(
        capsys,
        "copy",
        "--from",
        src,
        "--to",
        f"sqlite:///{tmp_path}/b.db",
        "--max-rate",
        "2000",
        "--batch-size",
        "500",
        "--progress",
        "json",
    )
    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert 2 <= len(lines) <= 4, err  # about 2.5 s: two a second, and the last one
    last = lines[-1]
    assert last["command"] == "copy" and last["phase"] == "copy"
    assert last["entries"] == 5000 and last["done"] == last["total"] == 5
    assert last["unit"] == "partitions" and last["eta_seconds"] == 0
    assert last["rate"] > 0
    assert {"done", "total", "rate", "eta_seconds"} <= set(lines[0])
    assert "copied 5,000 entries" in out


def test_progress_none_and_the_default_in_a_pipe_print_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = f"sqlite:///{tmp_path}/a.db"
    with open_store(src) as store:
        fill(store, 10)
    for extra in ((), ("--progress", "none")):
        code, _, err = run(capsys, "dump", "--from", src, f"{tmp_path}/d{len(extra)}.lkv", *extra)
        assert code == 0 and err == ""


# --- off means off --------------------------------------------------------------------------


def test_a_command_without_the_options_loads_no_observability_module(tmp_path: Path) -> None:
    src = f"sqlite:///{tmp_path}/a.db"
    with open_store(src) as store:
        fill(store, 10)
    code = (
        "import sys\n"
        "from lakekv.cli.main import main\n"
        "try:\n"
        f"    main(['copy', '--from', {src!r}, '--to', 'sqlite:///{tmp_path}/b.db'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('prometheus_client', "
        "'opentelemetry'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[-1] == "[]"


def test_metrics_addr_and_sizes_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    from lakekv.cli._observe import parse_addr, parse_bytes  # noqa: PLC0415

    assert parse_addr("127.0.0.1:9400") == ("127.0.0.1", 9400)
    assert parse_addr(":9400") == ("0.0.0.0", 9400)
    assert parse_addr("[::1]:9400") == ("::1", 9400)
    assert parse_bytes("20MB") == 20e6 and parse_bytes("1KiB") == 1024
    assert parse_bytes("512") == 512
    code, _, err = run(capsys, "dump", "--from", "memory://", "-", "--metrics-addr", "nowhere")
    assert code == 2 and "HOST:PORT" in err


@pytest.mark.parametrize("command", ["dump", "load", "verify", "sync"])
def test_every_long_command_prints_json_progress_and_takes_the_options(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = f"sqlite:///{tmp_path}/a.db"
    other = f"sqlite:///{tmp_path}/b.db"
    with open_store(src) as store:
        fill(store, 300, partitions=3)
    dumped = str(tmp_path / "d.lkv")
    assert run(capsys, "dump", "--from", src, dumped)[0] == 0
    assert run(capsys, "load", "--to", other, dumped)[0] == 0
    args = {
        "dump": ["dump", "--from", src, str(tmp_path / "e.lkv")],
        "load": ["load", "--to", f"sqlite:///{tmp_path}/c.db", dumped],
        "verify": ["verify", "--from", src, "--to", other],
        "sync": ["sync", "--from", src, "--to", other, "--force", "--max-write-rate", "1000"],
    }[command]
    started = time.monotonic()
    code, _, err = run(capsys, *args, "--progress", "json", "--max-rate", "200")
    elapsed = time.monotonic() - started
    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines and lines[-1]["command"] == command
    assert {"done", "total", "rate", "eta_seconds"} <= set(lines[-1])
    assert elapsed >= 300 / 200 * 0.85  # the limit held: 300 entries at 200/s
