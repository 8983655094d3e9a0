"""``edge-daemon config check`` as a user runs it: the effective configuration, or exit 2 naming the
bad field."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import ROOT


def test_config_check_cli(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[[cameras]]\nname = "door"\nurl = "usb:0"\n')
    ok = subprocess.run([sys.executable, "-m", "edge_daemon.cli", "config", "check", str(config)], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and '"detect_fps": 5.0' in ok.stdout
    config.write_text('[tracker]\nmax_attempts = 0\n')
    bad = subprocess.run([sys.executable, "-m", "edge_daemon.cli", "config", "check", str(config)], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "tracker.max_attempts" in bad.stderr and "Traceback" not in bad.stderr
