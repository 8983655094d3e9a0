"""The MQTT password never reaches the logs or the printed configuration."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.paths import HAMILTON_CLIP, ROOT, need


@pytest.mark.slow
def test_mqtt_password_never_reaches_logs_or_config_output(tmp_path, broker, hamilton_gallery):
    secret = "s3cret-Value-42"
    config = tmp_path / "c.toml"
    config.write_text(
        f'[[cameras]]\nname = "stage"\nurl = "{need(HAMILTON_CLIP)}"\nrealtime = false\n[gallery]\npath = "{hamilton_gallery}"\n'
        f'[events]\njsonl = ""\n[mqtt]\nurl = "{broker.url}"\nusername = "box"\npassword = "{secret}"\n'
        f'[spool]\npath = "{tmp_path / "spool.db"}"\n[logging]\nlevel = "debug"\n'
    )
    checked = subprocess.run([sys.executable, "-m", "edge_daemon.cli", "config", "check", str(config)],
                             capture_output=True, text=True, cwd=ROOT)
    assert checked.returncode == 0 and secret not in checked.stdout and '"password": "**********"' in checked.stdout
    run = subprocess.run([sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(config)],
                         capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "mqtt connected" in run.stderr
    assert secret not in run.stderr + run.stdout
