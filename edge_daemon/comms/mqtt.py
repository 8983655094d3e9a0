"""MQTT transport (paho-mqtt 2.x).

Topics: ``<prefix>/events`` and ``<prefix>/<camera>/events`` (QoS 1, never retained: a replayed
retained event must not open a door), ``<prefix>/availability`` (retained ``online``; ``offline`` as
Last Will and on clean shutdown). While the broker is away paho queues QoS 1 messages and the
client reconnects with backoff.
"""

from __future__ import annotations

import socket
import threading

import paho.mqtt.client as mqtt

from edge_daemon.config import MqttConfig
from edge_daemon.events import Event
from edge_daemon.logs import get_logger

log = get_logger(__name__)

ONLINE, OFFLINE = "online", "offline"


class MqttTransport:
    name = "mqtt"

    def __init__(self, config: MqttConfig):
        self._config = config
        self.availability_topic = f"{config.prefix}/availability"
        self.connected = threading.Event()
        client_id = config.client_id or f"edge-daemon-{socket.gethostname()}"
        self._client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        if config.username:
            password = config.password.get_secret_value() if config.password else None
            self._client.username_pw_set(config.username, password)
        self._client.will_set(self.availability_topic, OFFLINE, qos=1, retain=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._pending: list[mqtt.MQTTMessageInfo] = []
        self._pending_lock = threading.Lock()
        self._client.connect_async(config.host, config.port, keepalive=config.keepalive_s)
        self._client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("mqtt connection refused", broker=f"{self._config.host}:{self._config.port}", reason=str(reason_code))
            return
        self.connected.set()
        client.publish(self.availability_topic, ONLINE, qos=1, retain=True)
        log.info("mqtt connected", broker=f"{self._config.host}:{self._config.port}")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if reason_code != 0:
            log.warning("mqtt disconnected, reconnecting", reason=str(reason_code))

    def publish(self, event: Event) -> None:
        payload = event.to_json()
        infos = [
            self._client.publish(f"{self._config.prefix}/events", payload, qos=1, retain=False),
            self._client.publish(f"{self._config.prefix}/{event.camera}/events", payload, qos=1, retain=False),
        ]
        with self._pending_lock:
            self._pending = [info for info in self._pending if not info.is_published()] + infos

    def close(self, timeout_s: float = 5.0) -> None:
        """Wait (bounded) for queued events, announce ``offline``, disconnect."""
        with self._pending_lock:
            pending = list(self._pending)
        if self.connected.is_set():
            for info in pending:
                try:
                    info.wait_for_publish(timeout=timeout_s)
                except (RuntimeError, ValueError):
                    break
            self._client.publish(self.availability_topic, OFFLINE, qos=1, retain=True).wait_for_publish(timeout=timeout_s)
        unsent = sum(not info.is_published() for info in pending)
        if unsent:
            log.warning("mqtt events not confirmed by the broker at shutdown", events=unsent)
        self._client.disconnect()
        self._client.loop_stop()
