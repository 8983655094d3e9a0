"""MQTT with a real mosquitto: payloads, QoS, availability, the Last Will of a killed daemon, and two
boxes sharing one broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.support.broker import Subscriber
from tests.support.paths import HAMILTON_CLIP, ROOT, need
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow
PREFIX = "edgetest"
BOX = "stagebox"


def write_config(path, clip, gallery, port, loop: bool, box: str = BOX):
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

[service]
box = "{box}"

[spool]
path = "{path.with_suffix('.spool.db')}"
"""
    )


def test_events_availability_and_qos(broker, hamilton_gallery, tmp_path):
    clip = need(HAMILTON_CLIP)
    config = tmp_path / "config.toml"
    write_config(config, clip, hamilton_gallery, broker.port, loop=False)
    subscriber = Subscriber(broker.port, f"{PREFIX}/#")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(config)],
            capture_output=True, text=True, timeout=240, cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert wait_until(lambda: subscriber.on(f"{PREFIX}/{BOX}/availability"), 5)
        everything = subscriber.on(f"{PREFIX}/events")
        per_camera = subscriber.on(f"{PREFIX}/{BOX}/stage/events")
        assert everything and len(everything) == len(per_camera)
        events = [json.loads(m.payload) for m in everything]
        assert {e["identity"] for e in events if e["identity"]} == {"lin_manuel_miranda"}
        assert [json.loads(m.payload)["event_id"] for m in per_camera] == [e["event_id"] for e in events]
        assert all(m.qos == 1 and not m.retain for m in everything)
        availability = [m.payload.decode() for m in subscriber.on(f"{PREFIX}/{BOX}/availability")]
        assert availability[0] == "online" and availability[-1] == "stopped"
    finally:
        subscriber.close()

    # A late subscriber sees the retained availability, never a retained event.
    late = Subscriber(broker.port, f"{PREFIX}/#")
    try:
        assert wait_until(lambda: late.on(f"{PREFIX}/{BOX}/availability"), 5)
        assert late.on(f"{PREFIX}/{BOX}/availability")[0].retain
        assert late.on(f"{PREFIX}/{BOX}/availability")[0].payload == b"stopped"
        assert not late.on(f"{PREFIX}/events")
    finally:
        late.close()


def test_last_will_is_offline_when_the_daemon_is_killed(broker, hamilton_gallery, tmp_path):
    config = tmp_path / "config.toml"
    write_config(config, need(HAMILTON_CLIP), hamilton_gallery, broker.port, loop=True)
    subscriber = Subscriber(broker.port, f"{PREFIX}/#")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )
    try:
        assert wait_until(lambda: [m for m in subscriber.on(f"{PREFIX}/{BOX}/availability") if m.payload == b"online"], 60)
        assert wait_until(lambda: subscriber.on(f"{PREFIX}/events"), 60)  # it is really working
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
        assert wait_until(lambda: subscriber.on(f"{PREFIX}/{BOX}/availability")[-1].payload == b"offline", 10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        subscriber.close()


def test_two_boxes_on_one_broker_with_cameras_of_the_same_name_stay_apart(broker, hamilton_gallery, tmp_path):
    clip = need(HAMILTON_CLIP)
    subscriber = Subscriber(broker.port, "#")
    daemons = []
    try:
        for box in ("north", "south"):
            config = tmp_path / f"{box}.toml"
            write_config(config, clip, hamilton_gallery, broker.port, loop=False, box=box)
            daemons.append(subprocess.Popen([sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(config)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT))
        for daemon in daemons:
            assert daemon.wait(240) == 0, daemon.stderr.read()[-2000:]
        assert wait_until(lambda: all(subscriber.on(f"{PREFIX}/{box}/availability") for box in ("north", "south")), 5)
        events = [json.loads(m.payload) for m in subscriber.on(f"{PREFIX}/events")]
        by_box = {box: [e for e in events if e["box"] == box] for box in ("north", "south")}
        assert all(by_box.values()) and len(events) == sum(map(len, by_box.values()))
        for box, own in by_box.items():  # each box's camera topic carries its own events only
            per_camera = [json.loads(m.payload)["event_id"] for m in subscriber.on(f"{PREFIX}/{box}/stage/events")]
            assert sorted(per_camera) == sorted(e["event_id"] for e in own)
            assert subscriber.on(f"{PREFIX}/{box}/availability")[-1].payload == b"stopped"
        with subscriber.lock:
            event_configs = [json.loads(m.payload) for m in subscriber.messages if m.topic.startswith("homeassistant/event/")]
        configs = {box: next(c for c in event_configs if c["availability"][0]["topic"] == f"{PREFIX}/{box}/availability")
                   for box in ("north", "south")}
        assert configs["north"]["unique_id"] != configs["south"]["unique_id"]
        assert configs["north"]["device"]["identifiers"] != configs["south"]["device"]["identifiers"]
        assert configs["north"]["state_topic"] != configs["south"]["state_topic"]
    finally:
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.kill()
        subscriber.close()
