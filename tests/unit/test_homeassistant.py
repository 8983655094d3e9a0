"""Home Assistant discovery: what the daemon announces (ids, event types, sensor states, removed
cameras), without a broker."""

from __future__ import annotations

import json
import re

from edge_daemon.comms.homeassistant import HomeAssistantDiscovery, discovery_id, ha_event_type, sensor_state

PREFIX = "edgeha"


# HA's rule for a discovery topic below its prefix (homeassistant/components/mqtt/discovery.py).
HA_DISCOVERY_TOPIC = re.compile(r"homeassistant/(\w+)/(?:[a-zA-Z0-9_-]+/)?[a-zA-Z0-9_-]+/config")


def event(verdict: str | None, identity: str | None, type_: str = "recognized") -> dict:
    fields = {"type": type_, "camera": "lobby.cam-2", "identity": identity, "score": 0.7, "track_id": 3, "event_id": "e1"}
    return fields if verdict is None else {**fields, "verdict": verdict}


def unique_id(box: str, camera: str, entity: str) -> str:
    return f"edge-daemon_{discovery_id(box)}_{discovery_id(camera)}_{entity}"


def verdict(event: dict) -> str:
    """Events made before verdicts existed have none: then a name means recognized."""
    return event.get("verdict", "recognized" if event["identity"] else "unknown")


def test_discovery_ids_are_legal_for_home_assistant_and_distinct(tmp_path):
    ids = [discovery_id(name) for name in ("gate.house", "gate_house", "lobby.cam-2", "lobby_cam-2")]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids) and len(set(ids)) == len(ids)
    north = HomeAssistantDiscovery("homeassistant", PREFIX, "gate.house", ["lobby.cam-2"], tmp_path)
    south = HomeAssistantDiscovery("homeassistant", PREFIX, "gate_house", ["lobby.cam-2"], tmp_path)
    configs = {box: [(topic, json.loads(payload)) for topic, payload in discovery.discovery_messages()]
               for box, discovery in (("north", north), ("south", south))}
    for messages in configs.values():
        assert all(HA_DISCOVERY_TOPIC.fullmatch(topic) for topic, _ in messages), messages
        assert [HA_DISCOVERY_TOPIC.fullmatch(topic)[1] for topic, _ in messages] == ["binary_sensor", "event", "sensor"]
        for _, config in messages:
            assert config["qos"] == 1
            assert config["origin"]["name"] == "edge-daemon" and config["origin"]["sw_version"]
            assert config["device"]["identifiers"][0].startswith("edge-daemon_")
        assert messages[1][1]["event_types"] == ["recognized", "unknown", "uncertain"]
        degraded = messages[0][1]  # the box's diagnostic entity: on while it runs degraded
        assert degraded["device_class"] == "problem" and degraded["entity_category"] == "diagnostic"
        assert degraded["state_topic"] == degraded["json_attributes_topic"] and degraded["state_topic"].endswith("/health")
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
    assert len(messages) == 3 and all(payload for _, payload in messages)
    assert json.loads(record.read_text())["topics"] == [topic for topic, _ in messages]  # and it is rewritten
