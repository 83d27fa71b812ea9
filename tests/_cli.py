"""Running the command line inside the test process."""

from __future__ import annotations

import pytest

from lakekv.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``lakekv ARGS…`` in this process; its exit code, stdout and stderr.

    The exit code is what the process would exit with: 0 when ``main`` returns or exits with
    ``None``, the integer it exits with, 1 for any other exit value (as Python does).
    """
    try:
        main(list(args))
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    else:
        code = 0
    out, err = capsys.readouterr()
    return code, out, err
