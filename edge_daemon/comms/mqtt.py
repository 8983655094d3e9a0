"""MQTT transport (paho-mqtt 2.x), fed from the disk spool so that nothing is lost.

Topics, for many boxes on one broker: ``<prefix>/events`` (every box's events; each names its
``box``) and ``<prefix>/<box>/<camera>/events`` (QoS 1, never retained: a replayed retained event
must not open a door); ``<prefix>/<box>/availability`` (retained: ``online`` on connect,
``offline`` as Last Will, ``stopped`` on clean shutdown); ``<prefix>/<box>/stats`` when enabled;
and the Home Assistant discovery and entity topics (see ``homeassistant.py``). The client id is
``edge-daemon-<box>`` unless configured.

``publish`` only appends to the spool. A sender thread delivers spooled events oldest first, one
at a time, and deletes each only after the broker acknowledged both of its messages; while the
broker is away events wait on disk and the client reconnects with backoff (``broker.BrokerLink``,
which logs why it cannot connect). After a crash the next start delivers what was left (possibly
once more: QoS 1; consumers dedupe on event_id).
"""

from __future__ import annotations

import json
import threading
import time

from edge_daemon.comms.broker import BrokerLink, new_client
from edge_daemon.comms.homeassistant import HomeAssistantDiscovery
from edge_daemon.comms.spool import EventSpool
from edge_daemon.config import MqttConfig
from edge_daemon.logs import get_logger
from edge_daemon.messages import Event

log = get_logger(__name__)

ONLINE, OFFLINE, STOPPED = "online", "offline", "stopped"


class MqttTransport:
    name = "mqtt"
    # What the dispatcher counts when publish() returns: the event is on disk, not yet at the broker.
    # ``delivered`` counts the events the broker acknowledged (reported as published_mqtt).
    accepted = "spooled"

    def __init__(
        self, config: MqttConfig, box: str, spool: EventSpool, discovery: HomeAssistantDiscovery | None = None
    ):
        self._config = config
        self.spool = spool
        self._discovery = discovery
        self._box_topic = f"{config.prefix}/{box}"
        self.availability_topic = f"{self._box_topic}/availability"
        self.delivered = 0
        self._closing = threading.Event()
        self._client = new_client(config, config.client_id or f"edge-daemon-{box}", clean_session=False)
        self._client.will_set(self.availability_topic, OFFLINE, qos=1, retain=True)
        self._client.on_message = self._on_message
        self.link = BrokerLink(self._client, config, "events", on_ready=self._on_ready)
        self.connected = self.link.connected
        self.link.start()
        self._sender = threading.Thread(target=self._send_spooled, name="mqtt-sender", daemon=True)
        self._sender.start()

    def _on_ready(self, client) -> None:
        client.publish(self.availability_topic, ONLINE, qos=1, retain=True)
        if self._discovery is not None:
            client.subscribe(self._discovery.status_topic, qos=1)
            self._announce()
        waiting = self.spool.depth()
        if waiting:
            log.info("delivering spooled events", events=waiting)

    def status(self) -> dict:
        """The broker state (connected, or since when not and why) and the spool, for the stats and /healthz."""
        return {**self.link.state(), "spool_depth": self.spool.depth(), "spool_dropped": self.spool.dropped}

    def _announce(self) -> None:
        for topic, payload in self._discovery.discovery_messages():
            self._client.publish(topic, payload, qos=1, retain=True)

    def _on_message(self, client, userdata, message) -> None:
        if self._discovery is not None and message.topic == self._discovery.status_topic and message.payload == b"online":
            log.info("home assistant is online: publishing discovery again")
            self._announce()

    def publish_stats(self, stats: dict) -> None:
        """Best effort, not spooled: a stats message is only worth something now."""
        if self.connected.is_set():
            self._client.publish(f"{self._box_topic}/stats", json.dumps(stats), qos=0, retain=False)

    def _messages(self, camera: str, payload: str) -> list[tuple[str, str]]:
        messages = [(f"{self._config.prefix}/events", payload), (f"{self._box_topic}/{camera}/events", payload)]
        if self._discovery is not None:
            messages += self._discovery.entity_messages(json.loads(payload))
        return messages

    def publish(self, event: Event) -> None:
        self.spool.append(event.camera, event.to_json())

    def _send_spooled(self) -> None:
        while not self._closing.is_set():
            if not self.connected.wait(0.2):
                continue
            pending = self.spool.oldest(1)
            if not pending:
                self.spool.wait_for_events(0.2)
                continue
            item = pending[0]
            infos = [
                self._client.publish(topic, payload, qos=1, retain=False)
                for topic, payload in self._messages(item.camera, item.payload)
            ]
            # paho keeps an unacknowledged QoS 1 message across reconnects, so wait rather than resend.
            while not all(info.is_published() for info in infos):
                if self._closing.is_set():
                    return
                time.sleep(0.002)
            self.spool.remove(item.row_id)
            self.delivered += 1

    def close(self, drain_timeout_s: float = 5.0) -> None:
        """Deliver what the broker will take within the timeout (the rest stays spooled for the next
        start), announce ``stopped``, disconnect."""
        deadline = time.monotonic() + drain_timeout_s
        while self.connected.is_set() and self.spool.depth() and time.monotonic() < deadline:
            time.sleep(0.01)
        self._closing.set()
        self._sender.join(timeout=2)
        left = self.spool.depth()
        if left:
            log.warning("events left in the spool for the next start", events=left, spool=str(self.spool.path))
        if self.connected.is_set():
            self._client.publish(self.availability_topic, STOPPED, qos=1, retain=True).wait_for_publish(timeout=2)
        self.link.stop()
        self.spool.close()
