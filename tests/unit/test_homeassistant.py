"""Home Assistant discovery: what the daemon announces (ids, event types, sensor states, removed
cameras and people, people's last seen and presence), without a broker."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from edge_daemon.comms.homeassistant import HomeAssistantDiscovery, discovery_id, ha_event_type, sensor_state
from edge_daemon.messages import utc_iso

PREFIX = "edgeha"
PRESENCE_TIMEOUT_S = 300


# HA's rule for a discovery topic below its prefix (homeassistant/components/mqtt/discovery.py).
HA_DISCOVERY_TOPIC = re.compile(r"homeassistant/(\w+)/(?:[a-zA-Z0-9_-]+/)?[a-zA-Z0-9_-]+/config")


def event(verdict: str | None, identity: str | None, type_: str = "recognized", seen_ago_s: float = 1.0) -> dict:
    made = utc_iso((datetime.now(timezone.utc) - timedelta(seconds=seen_ago_s)).timestamp())
    fields = {"type": type_, "camera": "lobby.cam-2", "identity": identity, "score": 0.7, "track_id": 3, "event_id": "e1",
              "ts": made}
    return fields if verdict is None else {**fields, "verdict": verdict}


def announcing(box: str, cameras: list[str], state: Path, people: list[str] = ()) -> HomeAssistantDiscovery:
    """Discovery for ``box`` with its people known, as the daemon has it once its gallery is loaded."""
    discovery = HomeAssistantDiscovery("homeassistant", PREFIX, box, cameras, state, PRESENCE_TIMEOUT_S)
    discovery.set_people(people)
    return discovery


def unique_id(box: str, camera: str, entity: str) -> str:
    return f"edge-daemon_{discovery_id(box)}_{discovery_id(camera)}_{entity}"


def verdict(event: dict) -> str:
    """Events made before verdicts existed have none: then a name means recognized."""
    return event.get("verdict", "recognized" if event["identity"] else "unknown")


def test_discovery_ids_are_legal_for_home_assistant_and_distinct(tmp_path):
    ids = [discovery_id(name) for name in ("gate.house", "gate_house", "lobby.cam-2", "lobby_cam-2")]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids) and len(set(ids)) == len(ids)
    north = announcing("gate.house", ["lobby.cam-2"], tmp_path)
    south = announcing("gate_house", ["lobby.cam-2"], tmp_path)
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
    discovery = announcing("box", ["lobby.cam-2"], tmp_path)
    (decision_topic, decision, _), (identity_topic, identity, _) = discovery.entity_messages(event("uncertain", "ada"))
    assert decision_topic == f"{PREFIX}/box/lobby.cam-2/ha/decision" and identity_topic == f"{PREFIX}/box/lobby.cam-2/ha/last_identity"
    assert json.loads(decision) == {"event_type": "uncertain", "identity": "ada", "score": 0.7, "track_id": 3, "event_id": "e1"}
    assert identity == "uncertain_face"
    assert discovery.entity_messages(event(None, None, "ended")) == []


def test_a_removed_camera_gets_empty_retained_configs(tmp_path):
    state = tmp_path / "state"
    before = dict(announcing("box", ["door", "yard.east"], state).discovery_messages())
    after = dict(announcing("box", ["door"], state).discovery_messages())
    yard = {topic for topic in before if discovery_id("yard.east") in topic}
    assert len(yard) == 2 and {after[topic] for topic in yard} == {""}
    assert all(after[topic] == payload for topic, payload in before.items() if topic not in yard)
    # Once cleared, they are no longer this box's: a later start leaves them alone.
    later = announcing("box", ["door"], state).discovery_messages()
    assert {topic for topic, _ in later} == set(after) - yard
    # Another box's record in the same state directory is its own.
    assert "" not in dict(announcing("other", ["gate"], state).discovery_messages()).values()


def test_an_unreadable_record_does_not_stop_discovery(tmp_path):
    announcing("box", ["door"], tmp_path).discovery_messages()
    (record,) = tmp_path.glob("ha-discovery-*.json")
    record.write_text("{not json")
    messages = announcing("box", ["door"], tmp_path).discovery_messages()
    assert len(messages) == 3 and all(payload for _, payload in messages)
    assert json.loads(record.read_text())["topics"] == [topic for topic, _ in messages]  # and it is rewritten


def person_entities(messages: list[tuple[str, str]]) -> dict[str, dict]:
    """The people's entity configs among ``messages``, by topic."""
    return {topic: json.loads(payload) for topic, payload in messages if payload and "/person_" in topic}


def test_each_person_gets_a_last_seen_and_a_presence_entity_with_distinct_ids(tmp_path):
    people = ["Ada Lovelace", "ada.lovelace", "ada_lovelace", "<b>Zoë</b>/+#"]
    discovery = announcing("box", ["door"], tmp_path, people)
    messages = discovery.discovery_messages()
    configs = person_entities(messages)
    assert len(configs) == 2 * len(people)
    assert all(HA_DISCOVERY_TOPIC.fullmatch(topic) for topic in configs), list(configs)
    box_node = f"edge-daemon_{discovery_id('box')}"
    camera_device = json.loads(dict(messages)[f"homeassistant/event/{box_node}/{discovery_id('door')}_face/config"])["device"]
    for person in people:
        node = f"homeassistant/{{}}/{box_node}/person_{discovery_id(person)}"
        last_seen = configs[node.format("sensor") + "_last_seen/config"]
        presence = configs[node.format("binary_sensor") + "_presence/config"]
        assert last_seen["name"] == f"{person} last seen" and presence["name"] == f"{person} present"
        assert last_seen["device_class"] == "timestamp" and presence["device_class"] == "presence"
        assert last_seen["state_topic"] == last_seen["json_attributes_topic"] == discovery.last_seen_topic(person)
        assert presence["state_topic"] == discovery.presence_topic(person) and presence["off_delay"] == PRESENCE_TIMEOUT_S
        assert not {"+", "#"} & set(last_seen["state_topic"] + presence["state_topic"])
    for config in configs.values():
        assert config["device"] == camera_device and config["qos"] == 1 and config["origin"]["name"] == "edge-daemon"
        assert config["availability"][0]["topic"] == f"{PREFIX}/box/availability"
        assert config["unique_id"].startswith(f"edge-daemon_{discovery_id('box')}_person_")
    assert len({config["unique_id"] for config in configs.values()}) == len(configs)
    assert len({config["state_topic"] for config in configs.values()}) == len(configs)


def test_people_come_and_go_with_the_gallery(tmp_path):
    discovery = announcing("box", ["door"], tmp_path, ["ada", "bob"])
    bob = {topic for topic in person_entities(discovery.discovery_messages()) if discovery_id("bob") in topic}
    bob.add(discovery.last_seen_topic("bob"))  # retained: the broker must forget it too
    assert len(bob) == 3
    # Removed: an empty retained payload on each of bob's topics, and nothing else.
    assert sorted(discovery.set_people(["ada"])) == sorted((topic, "") for topic in bob)
    # Added: the new person's two configs only; unchanged: nothing.
    added = discovery.set_people(["ada", "cy"])
    assert len(added) == 2 and all(discovery_id("cy") in topic and payload for topic, payload in added)
    assert discovery.set_people(["cy", "ada"]) == []
    # A person removed while the daemon was down is cleared at the next start.
    restarted = HomeAssistantDiscovery("homeassistant", PREFIX, "box", ["door"], tmp_path, PRESENCE_TIMEOUT_S)
    cleared = {topic for topic, payload in restarted.set_people(["ada"]) if not payload}
    assert len(cleared) == 3 and all(discovery_id("cy") in topic for topic in cleared)


def test_nothing_is_announced_before_the_people_are_known(tmp_path):
    announcing("box", ["door"], tmp_path, ["ada"])
    restarted = HomeAssistantDiscovery("homeassistant", PREFIX, "box", ["door"], tmp_path, PRESENCE_TIMEOUT_S)
    assert restarted.discovery_messages() == []  # announcing now would delete ada's entities
    assert restarted.entity_messages(event("recognized", "ada"))[2:] == []
    first = restarted.set_people(["ada"])
    assert first == restarted.discovery_messages() and all(payload for _, payload in first)


def test_a_recognition_feeds_that_persons_last_seen_and_presence(tmp_path):
    discovery = announcing("box", ["lobby.cam-2"], tmp_path, ["ada", "bob"])
    recognized = event("recognized", "ada")
    _, _, (seen_topic, seen, retained), (presence_topic, presence, presence_retained) = discovery.entity_messages(recognized)
    assert seen_topic == discovery.last_seen_topic("ada") and retained  # a state kept across HA restarts
    assert json.loads(seen) == {"time": recognized["ts"], "camera": "lobby.cam-2", "score": 0.7, "track_id": 3}
    assert (presence_topic, presence, presence_retained) == (discovery.presence_topic("ada"), "ON", False)
    # The end of ada's track: the latest time she was seen (and no camera decision).
    ended = discovery.entity_messages(event("recognized", "ada", "ended"))
    assert [topic for topic, _, _ in ended] == [discovery.last_seen_topic("ada"), discovery.presence_topic("ada")]
    # Late from the spool: last seen, but no presence claimed.
    late = discovery.entity_messages(event("recognized", "ada", seen_ago_s=PRESENCE_TIMEOUT_S + 1))
    assert [topic for topic, _, _ in late[2:]] == [discovery.last_seen_topic("ada")]
    # An unknown face, an uncertain candidate, someone no longer in the gallery: no person fed.
    for other in (event("unknown", None), event("uncertain", "ada"), event("recognized", "eve"), event(None, None, "unknown")):
        assert [retained for _, _, retained in discovery.entity_messages(other)] == [False, False]
    assert discovery.entity_messages(event("unknown", None, "ended")) == []


def test_a_person_who_stays_in_view_stays_present(tmp_path):
    """A track publishes its decision once: while it is in view (not ended) its person's presence is
    said again every half timeout, and no more once it ended or turned into someone unknown."""
    discovery = announcing("box", ["lobby.cam-2"], tmp_path, ["ada", "bob"])
    discovery.entity_messages(event("recognized", "ada"))
    now = time.time()
    assert discovery.presence_refresh(now) == []  # just said with the decision
    later = now + PRESENCE_TIMEOUT_S / 2
    assert discovery.presence_refresh(later) == [(discovery.presence_topic("ada"), "ON", False)]
    assert discovery.presence_refresh(later + 1) == []  # not again before another half timeout
    discovery.entity_messages(event("recognized", "ada", "ended"))
    assert discovery.presence_refresh(later + PRESENCE_TIMEOUT_S) == []  # gone: HA turns it off by itself
    discovery.entity_messages(event("recognized", "bob"))
    discovery.entity_messages(event("unknown", None))  # the same track, no longer bob
    assert discovery.presence_refresh(now + 10 * PRESENCE_TIMEOUT_S) == []
    discovery.entity_messages(event("recognized", "ada", seen_ago_s=PRESENCE_TIMEOUT_S + 1))  # late from the spool
    assert discovery.presence_refresh(now + 20 * PRESENCE_TIMEOUT_S) == []
