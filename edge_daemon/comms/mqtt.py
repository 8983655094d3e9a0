"""MQTT transport (paho-mqtt 2.x), fed from the disk spool so that nothing is lost.

Topics, for many boxes on one broker: ``<prefix>/events`` (every box's events; each names its
``box``) and ``<prefix>/<box>/<camera>/events`` (QoS 1, never retained: a replayed retained event
must not open a door); ``<prefix>/<box>/availability`` (retained: ``online`` on connect,
``offline`` as Last Will, ``stopped`` on clean shutdown); ``<prefix>/<box>/stats`` when enabled;
and the Home Assistant discovery and entity topics (see ``homeassistant.py``). The client id is
``edge-daemon-<box>`` unless configured.

``publish`` only appends to the spool. A sender thread delivers spooled events oldest first, one
at a time, and deletes each only after the broker acknowledged both of its messages; while the
broker is away events wait on disk and the client reconnects with backoff. After a crash the
next start delivers what was left (possibly once more: QoS 1; consumers dedupe on event_id).
"""

from __future__ import annotations

import json
import ssl
import threading
import time

import paho.mqtt.client as mqtt

from edge_daemon.comms.homeassistant import HomeAssistantDiscovery
from edge_daemon.comms.spool import EventSpool
from edge_daemon.config import MqttConfig
from edge_daemon.events import Event
from edge_daemon.logs import get_logger

log = get_logger(__name__)

ONLINE, OFFLINE, STOPPED = "online", "offline", "stopped"


def new_client(config: MqttConfig, client_id: str, clean_session: bool) -> mqtt.Client:
    """A paho client for the configured broker, with its credentials and TLS; not connected yet."""
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session)
    if config.username:
        client.username_pw_set(config.username, config.secret_password())
    if config.tls:
        client.tls_set_context(ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None))
    return client


class MqttTransport:
    name = "mqtt"

    def __init__(
        self, config: MqttConfig, box: str, spool: EventSpool, discovery: HomeAssistantDiscovery | None = None
    ):
        self._config = config
        self.spool = spool
        self._discovery = discovery
        self._box_topic = f"{config.prefix}/{box}"
        self.availability_topic = f"{self._box_topic}/availability"
        self.connected = threading.Event()
        self.delivered = 0
        self._closing = threading.Event()
        self._client = new_client(config, config.client_id or f"edge-daemon-{box}", clean_session=False)
        self._client.will_set(self.availability_topic, OFFLINE, qos=1, retain=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.connect_async(config.host, config.port, keepalive=config.keepalive_s)
        self._client.loop_start()
        self._sender = threading.Thread(target=self._send_spooled, name="mqtt-sender", daemon=True)
        self._sender.start()

    @property
    def broker(self) -> str:
        return f"{self._config.host}:{self._config.port}"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("mqtt connection refused", broker=self.broker, reason=str(reason_code))
            return
        client.publish(self.availability_topic, ONLINE, qos=1, retain=True)
        if self._discovery is not None:
            client.subscribe(self._discovery.status_topic, qos=1)
            self._announce()
        self.connected.set()
        log.info("mqtt connected", broker=self.broker, spooled=self.spool.depth())

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if not self._closing.is_set():
            log.warning("mqtt disconnected, reconnecting", broker=self.broker, reason=str(reason_code))

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
        self._client.disconnect()
        self._client.loop_stop()
        self.spool.close()
