"""The key-value commands of the CLI: output, encodings, JSON, errors and exit codes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from _cli import run


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/cli.db"


def test_set_get_scan_delete(capsys: pytest.CaptureFixture[str], db: str) -> None:
    assert run(capsys, "--store", db, "set", "part", "k1", "v1")[0] == 0
    assert run(capsys, "set", "--store", db, "part", "k2", "v2")[0] == 0
    assert run(capsys, "--store", db, "get", "part", "k1") == (0, "v1\n", "")
    code, out, _ = run(capsys, "--store", db, "scan", "part")
    assert (code, out) == (0, "k1\tv1\nk2\tv2\n")
    code, out, _ = run(capsys, "--store", db, "scan", "part", "--json", "--start", "k2")
    assert [json.loads(line) for line in out.splitlines()] == [{"key": "k2", "value": "v2"}]
    code, out, _ = run(capsys, "--store", db, "scan", "part", "--limit", "1", "--keys-only")
    assert out == "k1\n"
    assert run(capsys, "--store", db, "delete", "part", "k1")[0] == 0
    assert run(capsys, "--store", db, "delete", "part", "k1")[0] == 0  # idempotent
    code, _, err = run(capsys, "--store", db, "get", "part", "k1")
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1


def test_prefix_scan_and_partitions(capsys: pytest.CaptureFixture[str], db: str) -> None:
    for key in ("a/1", "b/1", "b/2", "c/1"):
        run(capsys, "--store", db, "set", "p", key, "x")
    run(capsys, "--store", db, "set", "q", "k", "x")
    assert (
        run(capsys, "--store", db, "scan", "p", "--prefix", "b/", "--keys-only")[1] == "b/1\nb/2\n"
    )
    assert run(capsys, "--store", db, "partitions")[1] == "p\nq\n"
    assert json.loads(run(capsys, "--store", db, "partitions", "--json")[1]) == ["p", "q"]


def test_binary_encodings(capsys: pytest.CaptureFixture[str], db: str) -> None:
    assert run(capsys, "--store", db, "set", "-e", "hex", "00ff", "c328", "")[0] == 0
    assert run(capsys, "--store", db, "get", "-e", "hex", "00ff", "c328") == (0, "\n", "")
    value = base64.b64encode(b"\x00\x01\xfe").decode()
    key = base64.b64encode(b"\xff").decode()
    assert run(capsys, "--store", db, "set", "-e", "base64", "AP8=", key, value)[0] == 0
    code, out, _ = run(capsys, "--store", db, "scan", "-e", "base64", "AP8=", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows == [{"key": "wyg=", "value": ""}, {"key": key, "value": value}]
    code, out, _ = run(capsys, "--store", db, "get", "-e", "hex", "00ff", "ff", "--json")
    assert json.loads(out) == {
        "partition": "00ff",
        "key": "ff",
        "value": "0001fe",
        "encoding": "hex",
    }
    # undecodable bytes shown escaped with utf8 output
    assert run(capsys, "--store", db, "scan", "-e", "utf8", "\udcc0", "--keys-only")[0] == 0
    code, _, err = run(capsys, "--store", db, "get", "-e", "hex", "zz", "00")
    assert code == 2
    assert "not valid hex" in err


def test_conditional_set_conflicts_exit_4(capsys: pytest.CaptureFixture[str], db: str) -> None:
    assert run(capsys, "--store", db, "set", "--if-absent", "p", "lock", "a")[0] == 0
    code, _, err = run(capsys, "--store", db, "set", "--if-absent", "p", "lock", "b")
    assert code == 4
    assert "predicate failed" in err
    assert run(capsys, "--store", db, "set", "--if-present", "p", "lock", "c")[0] == 0
    assert run(capsys, "--store", db, "set", "--if-present", "p", "nokey", "c")[0] == 4
    assert run(capsys, "--store", db, "get", "p", "lock")[1] == "c\n"


def test_errors_are_one_line_with_distinct_codes(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    code, out, err = run(capsys, "--store", "nosuch://x", "get", "a", "b")
    assert (code, out) == (2, "")
    assert err.startswith("error: no driver for scheme 'nosuch'")
    assert err.count("\n") == 1
    code, _, err = run(capsys, "--store", "sqlite:///x.db?bogus=1", "get", "a", "b")
    assert code == 2 and "bogus" in err
    code, _, err = run(capsys, "--store", "not a url", "get", "a", "b")
    assert code == 2 and err.count("\n") == 1
    code, _, err = run(capsys, "--store", db, "get", "", "b")
    assert code == 2 and "partition is empty" in err
    code, _, _ = run(capsys, "--store", db, "nosuchcommand")
    assert code == 2


def test_unreachable_sqlite_directory_is_unavailable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "--store", f"sqlite:///{tmp_path}/no/such/dir/x.db", "get", "a", "b")
    assert code == 3
    assert err.startswith("error: ") and err.count("\n") == 1


def test_traceback_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--traceback", "--store", "nosuch://x", "get", "a", "b")
    assert code == 2
    assert "Traceback" in err


def test_default_store_from_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: str
) -> None:
    monkeypatch.setenv("LAKEKV_STORE", db)
    assert run(capsys, "set", "p", "k", "from-env")[0] == 0
    assert run(capsys, "--store", db, "get", "p", "k")[1] == "from-env\n"


def test_drivers_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "drivers", "--json")
    rows = json.loads(out)
    assert code == 0
    assert {r["scheme"] for r in rows} >= {"memory", "sqlite", "postgres", "dynamodb"}
    assert all({"installed", "install_hint"} <= set(r) for r in rows)
    code, out, _ = run(capsys, "drivers")
    assert "sqlite://" in out


def test_console_script_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lakekv", "--store", "nosuch://u:hunter2@h/x", "get", "a", "b"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "hunter2" not in proc.stderr + proc.stdout
    assert proc.stderr.count("\n") == 1


# --- start-up: a command loads only what it needs --------------------------------------------


def test_the_lazy_command_table_names_every_command_of_every_module() -> None:
    from lakekv.cli import kv, lakefs, migrate  # noqa: PLC0415
    from lakekv.cli.main import COMMANDS, cli  # noqa: PLC0415

    modules = {"lakekv.cli.kv": kv.COMMANDS, "lakekv.cli.migrate": migrate.COMMANDS}
    expected = {
        command.name: f"{module}:{command.callback.__name__}"
        for module, commands in modules.items()
        for command in commands
        if command.name is not None and command.callback is not None
    }
    expected["lakefs"] = "lakekv.cli.lakefs:lakefs"
    assert expected == COMMANDS
    ctx = cli.make_context("lakekv", ["drivers"])
    assert cli.get_command(ctx, "lakefs") is lakefs.lakefs
    assert cli.list_commands(ctx) == sorted(expected)


HEAVY = ("lakekv.migrate", "lakekv.record", "lakekv.refs", "rich", "yaml", "google.protobuf")
"""What ``lakekv get`` and ``lakekv --version`` must start without (bench/startup.py times it)."""


@pytest.mark.parametrize("args", [["--version"], ["get", "p", "k"]])
def test_version_and_get_load_no_heavy_module(db: str, args: list[str]) -> None:
    code = (
        "import sys\n"
        "from lakekv.cli.main import main\n"
        "try:\n"
        f"    main({['--store', db, *args]!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[-1] == "[]"
