"""Home Assistant MQTT discovery: per camera an ``event`` entity (event types ``recognized`` and
``unknown``) and a sensor with the last identity, both tied to the daemon's availability.
The box name is the device and prefixes every unique id and topic, so boxes with cameras of the
same name make distinct entities on one broker.

Discovery configs are retained (HA reads them when it starts) and published again whenever HA
announces ``online`` on its status topic. What feeds the entities is never retained.
"""

from __future__ import annotations

import json

from edge_daemon import __version__

HA_EVENT_TYPES = ["recognized", "unknown"]


class HomeAssistantDiscovery:
    def __init__(self, discovery_prefix: str, prefix: str, box: str, cameras: list[str]):
        self.status_topic = f"{discovery_prefix}/status"
        self._discovery_prefix = discovery_prefix
        self._prefix = f"{prefix}/{box}"
        self._node_id = "".join(c if c.isalnum() or c in "_-" else "_" for c in box)
        self._cameras = cameras

    def decision_topic(self, camera: str) -> str:
        return f"{self._prefix}/{camera}/ha/decision"

    def identity_topic(self, camera: str) -> str:
        return f"{self._prefix}/{camera}/ha/last_identity"

    def discovery_messages(self) -> list[tuple[str, str]]:
        """(topic, retained JSON config) for every entity."""
        device = {"identifiers": [self._node_id], "name": f"edge-daemon {self._node_id}", "sw_version": __version__, "manufacturer": "edge-daemon"}
        availability = {
            "availability": [
                {"topic": f"{self._prefix}/availability", "value_template": "{{ 'online' if value == 'online' else 'offline' }}"}
            ]
        }
        messages = []
        for camera in self._cameras:
            base = f"{self._node_id}_{camera}"
            event = {
                "name": f"{camera} face",
                "unique_id": f"{base}_face",
                "state_topic": self.decision_topic(camera),
                "event_types": HA_EVENT_TYPES,
                "device": device,
                **availability,
            }
            sensor = {
                "name": f"{camera} last identity",
                "unique_id": f"{base}_last_identity",
                "state_topic": self.identity_topic(camera),
                "icon": "mdi:face-recognition",
                "device": device,
                **availability,
            }
            messages.append((f"{self._discovery_prefix}/event/{base}/face/config", json.dumps(event)))
            messages.append((f"{self._discovery_prefix}/sensor/{base}/last_identity/config", json.dumps(sensor)))
        return messages

    def entity_messages(self, event: dict) -> list[tuple[str, str]]:
        """(topic, payload) feeding the entities for one event; ``ended`` feeds nothing."""
        if event["type"] == "ended":
            return []
        camera = event["camera"]
        event_type = "recognized" if event["identity"] is not None else "unknown"
        decision = {
            "event_type": event_type,
            "identity": event["identity"],
            "score": event["score"],
            "track_id": event["track_id"],
            "event_id": event["event_id"],
        }
        return [
            (self.decision_topic(camera), json.dumps(decision)),
            (self.identity_topic(camera), event["identity"] or "unknown"),
        ]
