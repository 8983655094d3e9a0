"""What the delivery tests of several tiers share: a subscriber whose session outlives its connection."""

from __future__ import annotations

import json
import threading

import paho.mqtt.client as mqtt

PREFIX = "delivery"


class PersistentSubscriber:
    """A QoS 1 subscriber with a persistent session: the broker keeps its messages while it is away."""

    def __init__(self, port: int):
        self.payloads: list[dict] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="delivery-subscriber", clean_session=False
        )
        self.client.reconnect_delay_set(1, 2)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda client, *args: client.subscribe(f"{PREFIX}/events", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.payloads.append(json.loads(message.payload))

    def ids(self) -> list[str]:
        with self.lock:
            return [payload["event_id"] for payload in self.payloads]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()
