"""Home Assistant MQTT discovery, under one device per box: per camera an ``event`` entity (event
types ``recognized``, ``unknown`` and ``uncertain``) and a "last identity" sensor; per person of the
gallery in use a "last seen" timestamp sensor and a presence binary sensor; and per box a
diagnostic "degraded" problem sensor, on while the daemon runs without a disk it can write (the
reasons are its attributes). Every entity is tied to the daemon's availability, so all of them turn
unavailable when the box goes away (the MQTT will, or a clean stop).

Names: HA accepts only ``[a-zA-Z0-9_-]`` in a discovery topic's node and object ids, while box,
camera and person names may hold dots, spaces or anything else. Each name becomes its sanitised form
plus a short hash of the raw name (``gate.house`` -> ``gate_house_<hash>``), so every name gets a
legal topic and two names that sanitise alike (``gate.house``, ``gate_house``) stay two devices, or
two people. Device identifiers and unique ids carry the ``edge-daemon_`` namespace.

Discovery configs are retained (HA reads them when it starts), published at QoS 1 and subscribed by
HA at QoS 1 (``qos`` in each config), and published again whenever HA announces ``online`` on its
status topic. The topics announced are recorded in a small JSON file in the daemon's state
directory; an announced topic no longer announced (a camera removed or renamed, a person removed)
gets an empty retained payload, which makes HA delete its entity.

People: ``set_people`` gives the identities of the gallery the daemon uses, at start and whenever it
changes (a reload after SIGHUP or the review page, a revision from the fleet), so people's entities
come and go while the daemon runs. Nothing is announced before the people are known: an
announcement without them would delete every person's entities, and what the user customised on
them, until the gallery loads a moment later.

What feeds the entities is not retained (a replayed recognition must not open a door), with one
exception: a person's last seen. It is a state, not an occurrence: replayed, it changes nothing, and
retained it survives HA restarts (HA restores an MQTT sensor only with ``expire_after``). It is
cleared with its person's entities; its templates read that empty payload as "no value", since HA
may still hold the entity when the clearing arrives.

A person is seen at each decision naming them and at the end of their track, which is their latest
sighting. Presence is an ``ON`` published at each, and HA turns it off by itself ``off_delay``
(``mqtt.presence_timeout_s``) after the last ``ON``: every ``ON`` restarts the delay. So the daemon
keeps no timers and publishes nothing while nobody is seen, and the sensor turns off on time even
while the broker is away. A sighting older than the timeout (delivered late from the spool) updates
last seen but claims no presence. The ``ON`` is not retained: a broker or HA restart would replay it
and restart the delay long after the sighting; after HA restarts, presence is unknown until the
person is next seen. A track makes no event between its decision and its end, so while a person's
recognised track is in view (its decision delivered, its end not yet) ``presence_refresh`` says
``ON`` again every half timeout: someone who stays in front of a camera stays present.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from edge_daemon import __version__
from edge_daemon.logs import get_logger

log = get_logger(__name__)

HA_EVENT_TYPES = ["recognized", "unknown", "uncertain"]
NAMESPACE = "edge-daemon"
ORIGIN = {"name": NAMESPACE, "sw_version": __version__}
# An empty payload (a removed person's last seen, cleared) is "no value", not a malformed one.
LAST_SEEN_STATE = "{{ value_json.time if value else None }}"
LAST_SEEN_ATTRIBUTES = "{{ value if value else '{}' }}"


def discovery_id(name: str) -> str:
    """``name`` as a node/object id HA accepts, distinct for distinct names."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9_-]', '_', name)}_{digest}"


def ha_event_type(event: dict) -> str:
    """The event's verdict; events made before verdicts existed carry none, so then the identity decides."""
    return event.get("verdict") or ("recognized" if event["identity"] is not None else "unknown")


def sensor_state(event: dict) -> str:
    """The identity when recognised, else ``unknown_face`` / ``uncertain_face``: HA's own ``unknown``
    means "no value yet", and a face nobody knows must stay distinguishable from that."""
    event_type = ha_event_type(event)
    return event["identity"] if event_type == "recognized" else f"{event_type}_face"


def seconds_since(iso_time: str) -> float:
    return time.time() - datetime.fromisoformat(iso_time).timestamp()


class HomeAssistantDiscovery:
    def __init__(self, discovery_prefix: str, prefix: str, box: str, cameras: list[str], state_directory: Path,
                 presence_timeout_s: int):
        self.status_topic = f"{discovery_prefix}/status"
        self._discovery_prefix = discovery_prefix
        self._prefix = f"{prefix}/{box}"
        self._people_root = f"{self._prefix}/people/"
        box_id = discovery_id(box)
        self._node_id = f"{NAMESPACE}_{box_id}"
        device = {
            "identifiers": [self._node_id],
            "name": f"{NAMESPACE} {box}",
            "sw_version": __version__,
            "manufacturer": NAMESPACE,
        }
        self._common = {
            "device": device,
            "origin": ORIGIN,
            "qos": 1,
            "availability": [
                {"topic": f"{self._prefix}/availability", "value_template": "{{ 'online' if value == 'online' else 'offline' }}"}
            ],
        }
        self._cameras = cameras
        self._presence_timeout_s = presence_timeout_s
        self._people: frozenset[str] | None = None  # unknown until set_people
        self._in_view: dict[tuple[str, int], str] = {}  # (camera, track id) -> person of a recognised track not ended
        self._presence_said: dict[str, float] = {}  # person -> when ON was last published (time.time())
        self._record = Path(state_directory) / f"ha-discovery-{box_id}.json"
        self._announced = self._recorded_topics()  # the retained topics this box holds on the broker
        self._stale: set[str] = set()  # announced once, no longer: cleared at every announcement

    def decision_topic(self, camera: str) -> str:
        return f"{self._prefix}/{camera}/ha/decision"

    def identity_topic(self, camera: str) -> str:
        return f"{self._prefix}/{camera}/ha/last_identity"

    def last_seen_topic(self, person: str) -> str:
        """Retained ``{"time", "camera", "score", "track_id"}`` of the person's latest recognition."""
        return f"{self._people_root}{discovery_id(person)}/last_seen"

    def presence_topic(self, person: str) -> str:
        return f"{self._people_root}{discovery_id(person)}/presence"

    @property
    def health_topic(self) -> str:
        """Retained ``{"state": "ok" | "degraded", "problems": [...]}``, published by the MQTT transport."""
        return f"{self._prefix}/health"

    def _config(self, component: str, object_id: str, name: str, **fields) -> tuple[str, str]:
        config = {"name": name, "unique_id": f"{self._node_id}_{object_id}", **fields, **self._common}
        return f"{self._discovery_prefix}/{component}/{self._node_id}/{object_id}/config", json.dumps(config)

    def _configs(self) -> list[tuple[str, str]]:
        messages = [self._config(
            "binary_sensor", "degraded", "degraded",
            state_topic=self.health_topic,
            value_template="{{ 'ON' if value_json.state == 'degraded' else 'OFF' }}",
            json_attributes_topic=self.health_topic,
            device_class="problem",
            entity_category="diagnostic",
        )]
        for camera in self._cameras:
            camera_id = discovery_id(camera)
            messages.append(self._config(
                "event", f"{camera_id}_face", f"{camera} face",
                state_topic=self.decision_topic(camera), event_types=HA_EVENT_TYPES,
            ))
            messages.append(self._config(
                "sensor", f"{camera_id}_last_identity", f"{camera} last identity",
                state_topic=self.identity_topic(camera), icon="mdi:face-recognition",
            ))
        for person in sorted(self._people):
            person_id = f"person_{discovery_id(person)}"
            messages.append(self._config(
                "sensor", f"{person_id}_last_seen", f"{person} last seen",
                state_topic=self.last_seen_topic(person), value_template=LAST_SEEN_STATE,
                json_attributes_topic=self.last_seen_topic(person), json_attributes_template=LAST_SEEN_ATTRIBUTES,
                device_class="timestamp", icon="mdi:account-clock",
            ))
            messages.append(self._config(
                "binary_sensor", f"{person_id}_presence", f"{person} present",
                state_topic=self.presence_topic(person), off_delay=self._presence_timeout_s, device_class="presence",
            ))
        return messages

    def discovery_messages(self) -> list[tuple[str, str]]:
        """(topic, retained payload) for every entity: its JSON config, or an empty payload that
        removes an entity this box announced before and no longer has (and clears a removed person's
        last seen). Nothing while the people are unknown."""
        if self._people is None:
            return []
        configs = self._configs()
        owned = [topic for topic, _ in configs] + [self.last_seen_topic(person) for person in sorted(self._people)]
        self._stale = (self._stale | self._announced) - set(owned)
        self._announced = set(owned)
        self._remember(owned)
        return [(topic, "") for topic in sorted(self._stale)] + configs

    def set_people(self, people: Iterable[str]) -> list[tuple[str, str]]:
        """Take ``people`` (the identities of the gallery in use) as this box's. Returns the (topic,
        retained payload) messages that bring HA up to date: all of them the first time, then the
        configs of people added and empty payloads for the topics of people removed."""
        first = self._people is None
        before = self._announced
        self._people = frozenset(people)
        messages = self.discovery_messages()
        gone = before - self._announced
        added, removed = self._last_seen_among(self._announced - before), self._last_seen_among(gone)
        if first or added or removed:
            log.info("home assistant: people announced", people=len(self._people), added=len(added), removed=len(removed))
        if first:
            return messages
        return [(topic, payload) for topic, payload in messages if (topic in gone if payload == "" else topic not in before)]

    def _last_seen_among(self, topics: set[str]) -> set[str]:
        """The people's last-seen topics among ``topics``: one per person."""
        return {topic for topic in topics if topic.startswith(self._people_root)}

    def _recorded_topics(self) -> set[str]:
        try:
            return set(json.loads(self._record.read_text())["topics"])
        except FileNotFoundError:
            return set()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("home assistant discovery record unreadable: entities of removed cameras and people stay in HA",
                        path=str(self._record), error=str(exc))
            return set()

    def _remember(self, topics: list[str]) -> None:
        try:
            self._record.parent.mkdir(parents=True, exist_ok=True)
            partial = self._record.with_suffix(".tmp")
            partial.write_text(json.dumps({"topics": topics}))
            os.replace(partial, self._record)  # a crash mid-write must not lose the previous record
        except OSError as exc:
            log.error("cannot record home assistant discovery: entities of cameras and people removed later will stay in HA",
                      path=str(self._record), error=str(exc))

    def entity_messages(self, event: dict) -> list[tuple[str, str, bool]]:
        """(topic, payload, retained) feeding the entities for one event. A decision feeds its camera's
        entities (``ended`` is none); a recognised person's decision, and the end of their track (the
        latest time they were seen), feed their last seen and, when recent, their presence."""
        messages = [] if event["type"] == "ended" else self._decision_messages(event)
        person = event["identity"]
        named = ha_event_type(event) == "recognized" and person in (self._people or ())
        track = (event["camera"], event["track_id"])
        if named and event["type"] != "ended" and seconds_since(event["ts"]) < self._presence_timeout_s:
            self._in_view[track] = person
        else:
            self._in_view.pop(track, None)
        if named:
            messages += self._sighting_messages(person, event)
        return messages

    def presence_refresh(self, now: float | None = None) -> list[tuple[str, str, bool]]:
        """(topic, payload, retained) of ``ON`` for each person whose recognised track is still in
        view and whose presence was last said half a timeout ago or more."""
        now = time.time() if now is None else now
        due = sorted({
            person for person in self._in_view.values()
            if person in (self._people or ()) and now - self._presence_said.get(person, 0.0) >= self._presence_timeout_s / 2
        })
        for person in due:
            self._presence_said[person] = now
        return [(self.presence_topic(person), "ON", False) for person in due]

    def _decision_messages(self, event: dict) -> list[tuple[str, str, bool]]:
        camera = event["camera"]
        decision = {
            "event_type": ha_event_type(event),
            "identity": event["identity"],
            "score": event["score"],
            "track_id": event["track_id"],
            "event_id": event["event_id"],
        }
        return [
            (self.decision_topic(camera), json.dumps(decision), False),
            (self.identity_topic(camera), sensor_state(event), False),
        ]

    def _sighting_messages(self, person: str, event: dict) -> list[tuple[str, str, bool]]:
        """Seen when the event was made: a decision comes within moments of its face's capture, a
        track's end within ``tracker.max_missed_s`` of its last sighting."""
        seen = {"time": event["ts"], "camera": event["camera"], "score": event["score"], "track_id": event["track_id"]}
        messages = [(self.last_seen_topic(person), json.dumps(seen), True)]
        if seconds_since(event["ts"]) < self._presence_timeout_s:
            messages.append((self.presence_topic(person), "ON", False))
            self._presence_said[person] = time.time()
        return messages
