"""Home Assistant discovery: what the daemon announces, and then Home Assistant itself (core 2025.4.4
and its MQTT integration, tests/support/ha_core.py) reading it: entities and device, a recognition on
the Hamilton clip from a camera whose name has a dot, availability after a clean stop and a kill -9,
entities back after HA restarts, a removed camera's entities gone, two boxes whose names sanitise
alike kept apart, and no warning in HA's log about any of it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge_daemon.comms.homeassistant import HomeAssistantDiscovery, discovery_id, ha_event_type, sensor_state
from tests.support.ha_core import HomeAssistant, StateChanges
from tests.support.paths import HAMILTON_CLIP, ROOT, need
from tests.support.waiting import free_port, wait_until

PREFIX = "edgeha"
# HA's rule for a discovery topic below its prefix (homeassistant/components/mqtt/discovery.py).
HA_DISCOVERY_TOPIC = re.compile(r"homeassistant/(\w+)/(?:[a-zA-Z0-9_-]+/)?[a-zA-Z0-9_-]+/config")


def event(verdict: str | None, identity: str | None, type_: str = "recognized") -> dict:
    fields = {"type": type_, "camera": "lobby.cam-2", "identity": identity, "score": 0.7, "track_id": 3, "event_id": "e1"}
    return fields if verdict is None else {**fields, "verdict": verdict}


def test_discovery_ids_are_legal_for_home_assistant_and_distinct(tmp_path):
    ids = [discovery_id(name) for name in ("gate.house", "gate_house", "lobby.cam-2", "lobby_cam-2")]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids) and len(set(ids)) == len(ids)
    north = HomeAssistantDiscovery("homeassistant", PREFIX, "gate.house", ["lobby.cam-2"], tmp_path)
    south = HomeAssistantDiscovery("homeassistant", PREFIX, "gate_house", ["lobby.cam-2"], tmp_path)
    configs = {box: [(topic, json.loads(payload)) for topic, payload in discovery.discovery_messages()]
               for box, discovery in (("north", north), ("south", south))}
    for messages in configs.values():
        assert all(HA_DISCOVERY_TOPIC.fullmatch(topic) for topic, _ in messages), messages
        assert [HA_DISCOVERY_TOPIC.fullmatch(topic)[1] for topic, _ in messages] == ["event", "sensor"]
        for _, config in messages:
            assert config["qos"] == 1
            assert config["origin"]["name"] == "edge-daemon" and config["origin"]["sw_version"]
            assert config["device"]["identifiers"][0].startswith("edge-daemon_")
        assert messages[0][1]["event_types"] == ["recognized", "unknown", "uncertain"]
    topics = {box: {topic for topic, _ in messages} for box, messages in configs.items()}
    assert not topics["north"] & topics["south"]
    assert configs["north"][0][1]["device"] != configs["south"][0][1]["device"]
    assert configs["north"][0][1]["unique_id"] != configs["south"][0][1]["unique_id"]


def test_event_types_and_sensor_states():
    # The verdict decides when the event carries one (it may name a candidate and still be uncertain).
    assert ha_event_type(event("uncertain", "ada")) == "uncertain" and sensor_state(event("uncertain", "ada")) == "uncertain_face"
    assert ha_event_type(event("recognized", "ada")) == "recognized" and sensor_state(event("recognized", "ada")) == "ada"
    assert ha_event_type(event("unknown", None)) == "unknown" and sensor_state(event("unknown", None)) == "unknown_face"
    # Events without a verdict: the identity decides.
    assert ha_event_type(event(None, "ada")) == "recognized" and sensor_state(event(None, "ada")) == "ada"
    assert ha_event_type(event(None, None, "unknown")) == "unknown" and sensor_state(event(None, None)) == "unknown_face"


def test_entity_messages_feed_decisions_not_ended(tmp_path):
    discovery = HomeAssistantDiscovery("homeassistant", PREFIX, "box", ["lobby.cam-2"], tmp_path)
    (decision_topic, decision), (identity_topic, identity) = discovery.entity_messages(event("uncertain", "ada"))
    assert decision_topic == f"{PREFIX}/box/lobby.cam-2/ha/decision" and identity_topic == f"{PREFIX}/box/lobby.cam-2/ha/last_identity"
    assert json.loads(decision) == {"event_type": "uncertain", "identity": "ada", "score": 0.7, "track_id": 3, "event_id": "e1"}
    assert identity == "uncertain_face"
    assert discovery.entity_messages(event(None, None, "ended")) == []


def test_a_removed_camera_gets_empty_retained_configs(tmp_path):
    state = tmp_path / "state"
    before = dict(HomeAssistantDiscovery("homeassistant", PREFIX, "box", ["door", "yard.east"], state).discovery_messages())
    after = dict(HomeAssistantDiscovery("homeassistant", PREFIX, "box", ["door"], state).discovery_messages())
    yard = {topic for topic in before if discovery_id("yard.east") in topic}
    assert len(yard) == 2 and {after[topic] for topic in yard} == {""}
    assert all(after[topic] == payload for topic, payload in before.items() if topic not in yard)
    # Once cleared, they are no longer this box's: a later start leaves them alone.
    later = HomeAssistantDiscovery("homeassistant", PREFIX, "box", ["door"], state).discovery_messages()
    assert {topic for topic, _ in later} == set(after) - yard
    # Another box's record in the same state directory is its own.
    assert "" not in dict(HomeAssistantDiscovery("homeassistant", PREFIX, "other", ["gate"], state).discovery_messages()).values()


def test_an_unreadable_record_does_not_stop_discovery(tmp_path):
    HomeAssistantDiscovery("homeassistant", PREFIX, "box", ["door"], tmp_path).discovery_messages()
    (record,) = tmp_path.glob("ha-discovery-*.json")
    record.write_text("{not json")
    messages = HomeAssistantDiscovery("homeassistant", PREFIX, "box", ["door"], tmp_path).discovery_messages()
    assert len(messages) == 2 and all(payload for _, payload in messages)
    assert json.loads(record.read_text())["topics"] == [topic for topic, _ in messages]  # and it is rewritten


# --- against Home Assistant itself -------------------------------------------------------------------------


def unique_id(box: str, camera: str, entity: str) -> str:
    return f"edge-daemon_{discovery_id(box)}_{discovery_id(camera)}_{entity}"


class Daemon:
    """The daemon as a user runs it (the CLI with a config file), one box; its state directory is
    ``directory`` (the spool lives there, and the record of what it announced)."""

    def __init__(self, directory: Path, box: str, cameras: dict[str, str], gallery: Path, broker_url: str,
                 events: Path | None = None):
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / f"{box}.toml"
        self.stderr = directory / f"{box}.stderr"
        cameras_toml = "".join(f'[[cameras]]\nname = "{name}"\nurl = "{url}"\nloop = false\n' for name, url in cameras.items())
        self.config.write_text(
            f'{cameras_toml}[gallery]\npath = "{gallery}"\n[events]\njsonl = "{events or ""}"\n'
            f'[mqtt]\nurl = "{broker_url}"\nprefix = "{PREFIX}"\n[service]\nbox = "{box}"\n'
            f'[spool]\npath = "{directory / "spool.db"}"\n'
        )
        self.process: subprocess.Popen | None = None
        self._log_from = 0

    def log(self) -> str:
        """What this run has logged so far (a restarted box appends to the same file)."""
        return self.stderr.read_bytes()[self._log_from:].decode(errors="replace")

    def start(self) -> Daemon:
        self._log_from = self.stderr.stat().st_size if self.stderr.exists() else 0
        self.process = subprocess.Popen([sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=open(self.stderr, "ab"), cwd=ROOT)
        return self

    def wait(self, timeout: float = 240) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        # It announces itself on the broker before its models load; a SIGTERM before its handlers are in would kill it.
        assert wait_until(lambda: "daemon started" in self.log(), 120), self.log()[-3000:]
        self.process.send_signal(signal.SIGTERM)
        assert self.wait(60) == 0, self.log()[-3000:]

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()  # whatever the test did, no daemon outlives it


def verdict(event: dict) -> str:
    """Events made before verdicts existed have none: then a name means recognized."""
    return event.get("verdict", "recognized" if event["identity"] else "unknown")


def dead_camera() -> str:
    """A camera that never answers: the daemon keeps retrying it, which is all discovery needs."""
    return f"rtsp://127.0.0.1:{free_port()}/none"


def entity_state(ha: HomeAssistant, box: str, camera: str, entity: str) -> dict | None:
    """The entity's state when HA's registry has it and its state comes from discovery, not a restored record."""
    registered = ha.entity_by_unique_id(unique_id(box, camera, entity))
    state = registered and ha.state(registered["entity_id"])
    return state if state and not state["attributes"].get("restored") else None


def available(ha: HomeAssistant, box: str, camera: str) -> bool:
    states = [entity_state(ha, box, camera, entity) for entity in ("face", "last_identity")]
    return all(state and state["state"] != "unavailable" for state in states)


def unavailable(ha: HomeAssistant, box: str, camera: str) -> bool:
    states = [entity_state(ha, box, camera, entity) for entity in ("face", "last_identity")]
    return all(state and state["state"] == "unavailable" for state in states)


@pytest.mark.slow
def test_a_recognition_from_a_dotted_camera_reaches_home_assistant(home_assistant, hamilton_gallery, tmp_path):
    ha, box, camera = home_assistant, "stagebox", "stage.left"
    events_file = tmp_path / "events.jsonl"
    with StateChanges(ha) as changes, \
            Daemon(tmp_path, box, {camera: str(need(HAMILTON_CLIP))}, hamilton_gallery, ha.broker.url, events_file).start() as daemon:
        assert daemon.wait() == 0, daemon.log()[-3000:]
        event_entity = ha.entity_by_unique_id(unique_id(box, camera, "face"))
        sensor_entity = ha.entity_by_unique_id(unique_id(box, camera, "last_identity"))
        assert event_entity and sensor_entity, ha.log_tail()
        assert event_entity["device_id"] == sensor_entity["device_id"]
        device = ha.device(event_entity["device_id"])
        assert device["name"] == f"edge-daemon {box}"
        assert device["identifiers"] == [["mqtt", f"edge-daemon_{discovery_id(box)}"]]

        decisions = [e for e in map(json.loads, events_file.read_text().splitlines()) if e["type"] != "ended"]
        assert any(e["identity"] == "lin_manuel_miranda" for e in decisions)
        # Every decision, in order, as HA's event entity fired it.
        assert wait_until(lambda: len([s for s in changes.of(event_entity["entity_id"]) if "event_id" in s["attributes"]])
                          >= len(decisions), 10)
        fired = [s["attributes"] for s in changes.of(event_entity["entity_id"]) if "event_id" in s["attributes"]]
        assert [f["event_id"] for f in fired] == [e["event_id"] for e in decisions]
        for attributes, decision in zip(fired, decisions):
            assert attributes["event_type"] == verdict(decision)
            assert attributes["identity"] == decision["identity"] and attributes["score"] == decision["score"]
        assert "uncertain" in fired[0]["event_types"]
        # The sensor went through each identity (HA records a state only when it changes).
        expected = [e["identity"] if verdict(e) == "recognized" else f"{verdict(e)}_face" for e in decisions]
        expected = [state for i, state in enumerate(expected) if i == 0 or state != expected[i - 1]]
        shown = [s["state"] for s in changes.of(sensor_entity["entity_id"]) if s["state"] not in ("unknown", "unavailable")]
        assert shown == expected
        # Stopped cleanly: the entities say so.
        assert wait_until(lambda: unavailable(ha, box, camera), 10)
    assert not ha.discovery_warnings()


@pytest.mark.slow
def test_availability_after_kill_and_entities_after_home_assistant_restarts(home_assistant, hamilton_gallery, tmp_path):
    ha, box, camera = home_assistant, "doorbox", "door"
    with Daemon(tmp_path, box, {camera: dead_camera()}, hamilton_gallery, ha.broker.url).start() as daemon:
        assert wait_until(lambda: available(ha, box, camera), 120), daemon.log()[-3000:]
        ha.restart()  # the daemon up: back from the retained configs, and available
        assert wait_until(lambda: available(ha, box, camera), 30), ha.log_tail()
        daemon.kill()  # the broker publishes the Last Will
        assert wait_until(lambda: unavailable(ha, box, camera), 30)
        ha.restart()  # the daemon down: back all the same, unavailable
        assert wait_until(lambda: unavailable(ha, box, camera), 30), ha.log_tail()
    assert not ha.discovery_warnings()


@pytest.mark.slow
def test_a_removed_camera_disappears_from_home_assistant(home_assistant, hamilton_gallery, tmp_path):
    ha, box = home_assistant, "yardbox"
    with Daemon(tmp_path, box, {"door": dead_camera(), "yard.east": dead_camera()}, hamilton_gallery, ha.broker.url).start() as first:
        assert wait_until(lambda: available(ha, box, "door") and available(ha, box, "yard.east"), 120), first.log()[-3000:]
        first.stop()
    with Daemon(tmp_path, box, {"door": dead_camera()}, hamilton_gallery, ha.broker.url).start() as second:
        assert wait_until(lambda: available(ha, box, "door"), 120), second.log()[-3000:]
        gone = [unique_id(box, "yard.east", entity) for entity in ("face", "last_identity")]
        assert wait_until(lambda: not any(ha.entity_by_unique_id(u) for u in gone), 10), ha.log_tail()
        second.stop()
    assert not ha.discovery_warnings()


@pytest.mark.slow
def test_boxes_whose_names_sanitise_alike_are_two_devices(home_assistant, hamilton_gallery, tmp_path):
    ha, boxes = home_assistant, ("gate.house", "gate_house")
    with Daemon(tmp_path / "1", boxes[0], {"gate": dead_camera()}, hamilton_gallery, ha.broker.url).start() as first, \
            Daemon(tmp_path / "2", boxes[1], {"gate": dead_camera()}, hamilton_gallery, ha.broker.url).start() as second:
        assert wait_until(lambda: all(available(ha, box, "gate") for box in boxes), 120), ha.log_tail()
        entities = {box: [ha.entity_by_unique_id(unique_id(box, "gate", e)) for e in ("face", "last_identity")] for box in boxes}
        devices = {box: {entity["device_id"] for entity in entities[box]} for box in boxes}
        assert all(len(ids) == 1 for ids in devices.values()) and devices["gate.house"] != devices["gate_house"]
        assert {ha.device(next(iter(devices[box])))["name"] for box in boxes} == {f"edge-daemon {box}" for box in boxes}
        first.stop()
        second.stop()
        assert wait_until(lambda: all(unavailable(ha, box, "gate") for box in boxes), 10)
    assert not ha.discovery_warnings()
