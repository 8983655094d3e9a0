"""MQTT with a real mosquitto: payloads, QoS, availability and the Last Will of a killed daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import paho.mqtt.client as mqtt
import pytest

from conftest import HAMILTON_CLIP, ROOT, need, wait_until

pytestmark = pytest.mark.slow
PREFIX = "edgetest"


class Subscriber:
    def __init__(self, port: int):
        self.messages: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="test-subscriber")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{PREFIX}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append(message)

    def on(self, topic: str) -> list[mqtt.MQTTMessage]:
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def write_config(path, clip, gallery, port, loop: bool):
    path.write_text(
        f"""
[[cameras]]
name = "stage"
url = "{clip}"
loop = {str(loop).lower()}

[gallery]
path = "{gallery}"

[events]
jsonl = ""

[mqtt]
url = "mqtt://127.0.0.1:{port}"
prefix = "{PREFIX}"
client_id = "edge-daemon-test"

[spool]
path = "{path.parent / 'spool.db'}"
"""
    )


def test_events_availability_and_qos(broker, hamilton_gallery, tmp_path):
    clip = need(HAMILTON_CLIP)
    config = tmp_path / "config.toml"
    write_config(config, clip, hamilton_gallery, broker.port, loop=False)
    subscriber = Subscriber(broker.port)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(config)],
            capture_output=True, text=True, timeout=240, cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert wait_until(lambda: subscriber.on(f"{PREFIX}/availability"), 5)
        everything = subscriber.on(f"{PREFIX}/events")
        per_camera = subscriber.on(f"{PREFIX}/stage/events")
        assert everything and len(everything) == len(per_camera)
        events = [json.loads(m.payload) for m in everything]
        assert {e["identity"] for e in events if e["identity"]} == {"lin_manuel_miranda"}
        assert [json.loads(m.payload)["event_id"] for m in per_camera] == [e["event_id"] for e in events]
        assert all(m.qos == 1 and not m.retain for m in everything)
        availability = [m.payload.decode() for m in subscriber.on(f"{PREFIX}/availability")]
        assert availability[0] == "online" and availability[-1] == "stopped"
    finally:
        subscriber.close()

    # A late subscriber sees the retained availability, never a retained event.
    late = Subscriber(broker.port)
    try:
        assert wait_until(lambda: late.on(f"{PREFIX}/availability"), 5)
        assert late.on(f"{PREFIX}/availability")[0].retain
        assert late.on(f"{PREFIX}/availability")[0].payload == b"stopped"
        assert not late.on(f"{PREFIX}/events")
    finally:
        late.close()


def test_last_will_is_offline_when_the_daemon_is_killed(broker, hamilton_gallery, tmp_path):
    config = tmp_path / "config.toml"
    write_config(config, need(HAMILTON_CLIP), hamilton_gallery, broker.port, loop=True)
    subscriber = Subscriber(broker.port)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )
    try:
        assert wait_until(lambda: [m for m in subscriber.on(f"{PREFIX}/availability") if m.payload == b"online"], 60)
        assert wait_until(lambda: subscriber.on(f"{PREFIX}/events"), 60)  # it is really working
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
        assert wait_until(lambda: subscriber.on(f"{PREFIX}/availability")[-1].payload == b"offline", 10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        subscriber.close()
