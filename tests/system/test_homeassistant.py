"""Home Assistant discovery read by Home Assistant core itself: entities, availability, removed
cameras, boxes whose names sanitise alike, and each enrolled person's last seen and presence."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from edge_daemon.comms.homeassistant import discovery_id
from edge_daemon.recognition.gallery import Gallery
from tests.support.ha_core import HomeAssistant, StateChanges
from tests.support.paths import HAMILTON_CLIP, ROOT, need
from tests.support.waiting import free_port, wait_until

PREFIX = "edgeha"
PERSON_ENTITIES = ("last_seen", "presence")


def event(verdict: str | None, identity: str | None, type_: str = "recognized") -> dict:
    fields = {"type": type_, "camera": "lobby.cam-2", "identity": identity, "score": 0.7, "track_id": 3, "event_id": "e1"}
    return fields if verdict is None else {**fields, "verdict": verdict}


def unique_id(box: str, camera: str, entity: str) -> str:
    return f"edge-daemon_{discovery_id(box)}_{discovery_id(camera)}_{entity}"


class Daemon:
    """The daemon as a user runs it (the CLI with a config file), one box; its state directory is
    ``directory`` (the spool lives there, and the record of what it announced). ``mqtt_options``:
    more lines of its ``[mqtt]`` table."""

    def __init__(self, directory: Path, box: str, cameras: dict[str, str], gallery: Path, broker_url: str,
                 events: Path | None = None, mqtt_options: str = ""):
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / f"{box}.toml"
        self.stderr = directory / f"{box}.stderr"
        cameras_toml = "".join(f'[[cameras]]\nname = "{name}"\nurl = "{url}"\nloop = false\n' for name, url in cameras.items())
        self.config.write_text(
            f'{cameras_toml}[gallery]\npath = "{gallery}"\n[events]\njsonl = "{events or ""}"\n'
            f'[mqtt]\nurl = "{broker_url}"\nprefix = "{PREFIX}"\n{mqtt_options}'
            f'[service]\nbox = "{box}"\n'
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


def person_entity(ha: HomeAssistant, box: str, person: str, entity: str) -> dict | None:
    """The entity registry's entry of a person's entity (``last_seen`` or ``presence``), or None."""
    return ha.entity_by_unique_id(f"edge-daemon_{discovery_id(box)}_person_{discovery_id(person)}_{entity}")


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


@pytest.mark.slow
def test_each_person_has_a_last_seen_and_a_presence_entity_that_follow_recognitions_and_the_gallery(
        home_assistant, hamilton_gallery, tmp_path):
    ha, box, person, presence_timeout_s = home_assistant, "peoplebox", "lin_manuel_miranda", 3
    gallery = shutil.copytree(hamilton_gallery, tmp_path / "gallery")  # this test removes a person from it
    people = list(Gallery.load(gallery).identities())
    # The door camera never answers: the daemon runs on after the clip, until the person is removed.
    cameras = {"stage": str(need(HAMILTON_CLIP)), "door": dead_camera()}
    options = f"presence_timeout_s = {presence_timeout_s}\n"
    started = time.time()
    with StateChanges(ha) as changes, Daemon(tmp_path, box, cameras, gallery, ha.broker.url, mqtt_options=options).start() as daemon:
        def everyone_announced() -> bool:
            return all(person_entity(ha, box, someone, entity) for someone in people for entity in PERSON_ENTITIES)

        assert wait_until(everyone_announced, 120), daemon.log()[-3000:]
        last_seen, presence = (person_entity(ha, box, person, entity) for entity in PERSON_ENTITIES)
        assert last_seen["device_id"] == presence["device_id"] == ha.entity_by_unique_id(unique_id(box, "stage", "face"))["device_id"]

        # Recognised on the stage: present, and away once the timeout passed without another sighting.
        def presence_changes() -> list[dict]:
            return [s for s in changes.of(presence["entity_id"]) if s["state"] in ("on", "off")]

        assert wait_until(lambda: [s["state"] for s in presence_changes()][:2] == ["on", "off"], 120), daemon.log()[-3000:]
        on, off = (datetime.fromisoformat(s["last_changed"]) for s in presence_changes()[:2])
        assert (off - on).total_seconds() >= presence_timeout_s
        seen = ha.state(last_seen["entity_id"])
        assert started <= datetime.fromisoformat(seen["state"]).timestamp() <= time.time(), seen
        assert seen["attributes"]["camera"] == "stage" and 0 < seen["attributes"]["score"] <= 1, seen
        assert isinstance(seen["attributes"]["track_id"], int)

        # Removed from the gallery, and the running daemon told: the person's entities go, the others stay.
        removed = subprocess.run([sys.executable, "-m", "edge_daemon.cli", "gallery", "remove", "--gallery", str(gallery), person],
                                 capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert removed.returncode == 0, removed.stderr
        daemon.process.send_signal(signal.SIGHUP)
        assert wait_until(lambda: not any(person_entity(ha, box, person, entity) for entity in PERSON_ENTITIES), 30), \
            daemon.log()[-3000:]
        assert ha.state(last_seen["entity_id"]) is None and ha.state(presence["entity_id"]) is None
        assert all(person_entity(ha, box, someone, entity) for someone in people if someone != person for entity in PERSON_ENTITIES)
        daemon.stop()
    assert not ha.discovery_warnings()
