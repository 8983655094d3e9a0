"""The daemon under systemd as a process: notifications, /metrics and /healthz, Home Assistant
discovery against a real broker, and the unit file."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt
import pytest

from edge_daemon.comms.homeassistant import discovery_id
from tests.support.paths import HAMILTON_CLIP, ROOT, need
from tests.support.systemd import FakeSystemd
from tests.support.waiting import free_port, wait_until


def test_daemon_lifecycle_under_systemd_with_metrics(tmp_path, monkeypatch, hamilton_gallery):
    fake = FakeSystemd(tmp_path / "notify")
    port = free_port()
    config = tmp_path / "c.toml"
    config.write_text(
        f'[[cameras]]\nname = "stage"\nurl = "{need(HAMILTON_CLIP)}"\nloop = true\n'
        f'[[cameras]]\nname = "dead"\nurl = "rtsp://127.0.0.1:{free_port()}/none"\nreconnect_initial_s = 0.2\n'
        f'[gallery]\npath = "{hamilton_gallery}"\n[events]\njsonl = ""\n'
        f'[service]\nmetrics_port = {port}\nstuck_after_s = 5\n'
    )
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "2000000", "PATH": "/usr/bin:/bin"}
    daemon = subprocess.Popen([sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        assert wait_until(lambda: fake.has("READY", "1"), 60)
        assert wait_until(lambda: fake.has("WATCHDOG", "1"), 10)  # healthy: pinged every second
        assert wait_until(lambda: any("stage streaming" in m.get("STATUS", "") for m in fake.messages), 15)
        ready_status = next(m["STATUS"] for m in fake.messages if "READY" in m)
        assert "dead" in ready_status  # the failed camera is named, the daemon is up anyway

        def scrape(path):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                return response.status, response.read().decode()

        assert wait_until(lambda: 'edge_daemon_events_total{type="recognized"}' in scrape("/metrics")[1], 60)
        status, text = scrape("/metrics")
        for needle in ('edge_daemon_frames_processed_total{camera="stage"}', 'edge_daemon_reconnects_total{camera="dead"}',
                       "edge_daemon_embed_batch_size_bucket", "edge_daemon_capture_to_event_seconds_bucket",
                       'edge_daemon_camera_state{camera="stage",state="streaming"} 1.0', "edge_daemon_camera_fps"):
            assert needle in text, needle
        status, body = scrape("/healthz")
        assert status == 200 and json.loads(body)["healthy"] is True
        daemon.terminate()
        daemon.wait(60)
        assert daemon.returncode == 0
        assert wait_until(lambda: fake.has("STOPPING", "1"), 2)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        fake.close()


def test_home_assistant_discovery_and_entities(broker, tmp_path, hamilton_gallery):
    received: list[mqtt.MQTTMessage] = []
    lock = threading.Lock()
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="ha")
    client.on_message = lambda c, u, message: (lock.acquire(), received.append(message), lock.release())
    client.connect("127.0.0.1", broker.port)
    client.subscribe("homeassistant/#", qos=1)
    client.subscribe("edgeha/#", qos=1)
    client.loop_start()
    config = tmp_path / "c.toml"
    config.write_text(
        f'[[cameras]]\nname = "stage"\nurl = "{need(HAMILTON_CLIP)}"\n[gallery]\npath = "{hamilton_gallery}"\n'
        f'[events]\njsonl = ""\n[mqtt]\nurl = "{broker.url}"\nprefix = "edgeha"\n[service]\nbox = "box1"\n'
        f'[spool]\npath = "{tmp_path / "spool.db"}"\n'
    )
    daemon = subprocess.Popen([sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    node = f"homeassistant/{{}}/edge-daemon_{discovery_id('box1')}/{discovery_id('stage')}"
    event_topic, sensor_topic = node.format("event") + "_face/config", node.format("sensor") + "_last_identity/config"
    try:
        def topics():
            with lock:
                return [m.topic for m in received]

        assert wait_until(lambda: event_topic in topics(), 60)
        with lock:
            configs = {m.topic: m for m in received if m.topic.endswith("/config")}
        event_config = json.loads(configs[event_topic].payload)
        assert event_config["event_types"] == ["recognized", "unknown", "uncertain"]
        assert event_config["availability"][0]["topic"] == "edgeha/box1/availability"
        assert sensor_topic in configs
        before = topics().count(event_topic)
        client.publish("homeassistant/status", "online", qos=1)  # HA restarted: announce again
        assert wait_until(lambda: topics().count(event_topic) > before, 10)
        assert daemon.wait(240) == 0
        with lock:
            decisions = [json.loads(m.payload) for m in received if m.topic == "edgeha/box1/stage/ha/decision"]
            identities = [m.payload.decode() for m in received if m.topic == "edgeha/box1/stage/ha/last_identity"]
            entity_retained = [m.retain for m in received if m.topic.startswith("edgeha/box1/stage/ha/")]
        assert {d["event_type"] for d in decisions} <= {"recognized", "unknown", "uncertain"}
        assert any(d["event_type"] == "recognized" and d["identity"] == "lin_manuel_miranda" for d in decisions)
        assert "lin_manuel_miranda" in identities
        assert not any(entity_retained)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        client.loop_stop()
        client.disconnect()

    # A late subscriber gets the retained discovery configs but no retained recognition.
    late: list[mqtt.MQTTMessage] = []
    second = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="late")
    second.on_message = lambda c, u, message: late.append(message)
    second.connect("127.0.0.1", broker.port)
    second.subscribe("#", qos=1)
    second.loop_start()
    try:
        assert wait_until(lambda: any(m.topic.endswith("face/config") for m in late), 5)
        assert not [m.topic for m in late if "/events" in m.topic or "/ha/" in m.topic]
    finally:
        second.loop_stop()
        second.disconnect()


def test_systemd_unit_verifies(tmp_path):
    import shutil

    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not available on this machine")
    unit = (ROOT / "systemd" / "edge-daemon.service").read_text()
    executable = ROOT / ".venv" / "bin" / "edge-daemon"
    if not executable.exists():
        pytest.skip("no .venv/bin/edge-daemon to point ExecStart at")
    local = tmp_path / "edge-daemon.service"
    local.write_text(unit.replace("/opt/edge-daemon/.venv/bin/edge-daemon", str(executable)))
    result = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    for setting in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
                    "ProtectHome=yes", "PrivateTmp=yes", "RestrictAddressFamilies=", "DeviceAllow=char-video4linux",
                    "StateDirectory=edge-daemon", "CacheDirectory=edge-daemon", "User=edge-daemon"):
        assert setting in unit, setting
