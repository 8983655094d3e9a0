"""Home Assistant MQTT discovery: per camera an ``event`` entity (event types ``recognized``,
``unknown`` and ``uncertain``) and a "last identity" sensor, both tied to the daemon's
availability, under one device per box; and per box a diagnostic "degraded" problem sensor, on
while the daemon runs without a disk it can write (the reasons are its attributes).

Names: HA accepts only ``[a-zA-Z0-9_-]`` in a discovery topic's node and object ids, while box and
camera names may hold dots. Each name becomes its sanitised form plus a short hash of the raw name
(``gate.house`` -> ``gate_house_<hash>``), so a dotted name gets a legal topic and two names that
sanitise alike (``gate.house``, ``gate_house``) stay two devices. Device identifiers and unique ids
carry the ``edge-daemon_`` namespace.

Discovery configs are retained (HA reads them when it starts), published at QoS 1 and subscribed by
HA at QoS 1 (``qos`` in each config), and published again whenever HA announces ``online`` on its
status topic. The topics announced are recorded in a small JSON file in the daemon's state
directory; an announced topic no longer announced (a camera removed or renamed) gets an empty
retained payload, which makes HA delete its entity. What feeds the entities is never retained.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from edge_daemon import __version__
from edge_daemon.logs import get_logger

log = get_logger(__name__)

HA_EVENT_TYPES = ["recognized", "unknown", "uncertain"]
NAMESPACE = "edge-daemon"
ORIGIN = {"name": NAMESPACE, "sw_version": __version__}


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


class HomeAssistantDiscovery:
    def __init__(self, discovery_prefix: str, prefix: str, box: str, cameras: list[str], state_directory: Path):
        self.status_topic = f"{discovery_prefix}/status"
        self._discovery_prefix = discovery_prefix
        self._prefix = f"{prefix}/{box}"
        box_id = discovery_id(box)
        self._node_id = f"{NAMESPACE}_{box_id}"
        self._device = {
            "identifiers": [self._node_id],
            "name": f"{NAMESPACE} {box}",
            "sw_version": __version__,
            "manufacturer": NAMESPACE,
        }
        self._cameras = cameras
        self._record = Path(state_directory) / f"ha-discovery-{box_id}.json"
        self._stale = sorted(self._recorded_topics() - {topic for topic, _ in self._configs()})

    def decision_topic(self, camera: str) -> str:
        return f"{self._prefix}/{camera}/ha/decision"

    def identity_topic(self, camera: str) -> str:
        return f"{self._prefix}/{camera}/ha/last_identity"

    @property
    def health_topic(self) -> str:
        """Retained ``{"state": "ok" | "degraded", "problems": [...]}``, published by the MQTT transport."""
        return f"{self._prefix}/health"

    def _configs(self) -> list[tuple[str, str]]:
        common = {
            "device": self._device,
            "origin": ORIGIN,
            "qos": 1,
            "availability": [
                {"topic": f"{self._prefix}/availability", "value_template": "{{ 'online' if value == 'online' else 'offline' }}"}
            ],
        }
        degraded = {
            "name": "degraded",
            "unique_id": f"{self._node_id}_degraded",
            "state_topic": self.health_topic,
            "value_template": "{{ 'ON' if value_json.state == 'degraded' else 'OFF' }}",
            "json_attributes_topic": self.health_topic,
            "device_class": "problem",
            "entity_category": "diagnostic",
            **common,
        }
        messages = [(f"{self._discovery_prefix}/binary_sensor/{self._node_id}/degraded/config", json.dumps(degraded))]
        for camera in self._cameras:
            camera_id = discovery_id(camera)
            unique = f"{self._node_id}_{camera_id}"
            event = {
                "name": f"{camera} face",
                "unique_id": f"{unique}_face",
                "state_topic": self.decision_topic(camera),
                "event_types": HA_EVENT_TYPES,
                **common,
            }
            sensor = {
                "name": f"{camera} last identity",
                "unique_id": f"{unique}_last_identity",
                "state_topic": self.identity_topic(camera),
                "icon": "mdi:face-recognition",
                **common,
            }
            base = f"{self._node_id}/{camera_id}"
            messages.append((f"{self._discovery_prefix}/event/{base}_face/config", json.dumps(event)))
            messages.append((f"{self._discovery_prefix}/sensor/{base}_last_identity/config", json.dumps(sensor)))
        return messages

    def discovery_messages(self) -> list[tuple[str, str]]:
        """(topic, retained payload) for every entity: its JSON config, or an empty payload that
        removes an entity this box announced before and no longer has."""
        configs = self._configs()
        self._remember([topic for topic, _ in configs])
        return [(topic, "") for topic in self._stale] + configs

    def _recorded_topics(self) -> set[str]:
        try:
            return set(json.loads(self._record.read_text())["topics"])
        except FileNotFoundError:
            return set()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("home assistant discovery record unreadable: entities of removed cameras stay in HA",
                        path=str(self._record), error=str(exc))
            return set()

    def _remember(self, topics: list[str]) -> None:
        try:
            self._record.parent.mkdir(parents=True, exist_ok=True)
            partial = self._record.with_suffix(".tmp")
            partial.write_text(json.dumps({"topics": topics}))
            os.replace(partial, self._record)  # a crash mid-write must not lose the previous record
        except OSError as exc:
            log.error("cannot record home assistant discovery: entities of cameras removed later will stay in HA",
                      path=str(self._record), error=str(exc))

    def entity_messages(self, event: dict) -> list[tuple[str, str]]:
        """(topic, payload) feeding the entities for one event; ``ended`` feeds nothing."""
        if event["type"] == "ended":
            return []
        camera = event["camera"]
        decision = {
            "event_type": ha_event_type(event),
            "identity": event["identity"],
            "score": event["score"],
            "track_id": event["track_id"],
            "event_id": event["event_id"],
        }
        return [
            (self.decision_topic(camera), json.dumps(decision)),
            (self.identity_topic(camera), sensor_state(event)),
        ]
