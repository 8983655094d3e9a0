"""``python -m edge_daemon.cli`` is the same command line as ``edge-daemon``, in a process of its
own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import structlog

from edge_daemon.cli import main
from tests.support.paths import ROOT


@pytest.fixture(autouse=True)
def logging_as_it_was():
    """main() points the logs at this test's captured stderr, which is closed after the test."""
    config = structlog.get_config()
    yield
    structlog.configure(**config)


def test_python_dash_m_is_the_same_command_line(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # the same help width in both processes
    with pytest.raises(SystemExit):
        main(["--help"])
    module = subprocess.run([sys.executable, "-m", "edge_daemon.cli", "--help"], capture_output=True, text=True,
                            cwd=ROOT, env=os.environ, timeout=60)
    assert module.returncode == 0, module.stderr
    assert module.stdout == capsys.readouterr().out
