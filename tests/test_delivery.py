"""Nothing lost: broker outages and daemon crashes with a real mosquitto and real processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from edge_daemon.comms.mqtt import MqttTransport
from edge_daemon.comms.spool import EventSpool
from edge_daemon.config import MqttConfig
from edge_daemon.messages import Event, utc_iso
from tests.support.paths import HAMILTON_CLIP, ROOT, need
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow
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


def synthetic_event(number: int) -> Event:
    now = utc_iso(time.time())
    return Event(
        type="recognized", box="porch-box", camera="door", track_id=number, identity="ana", score=0.95, bbox=(1, 2, 3, 4),
        ts=now, frame_ts=now, attempts=1, embedder="dlib_resnet", embedder_version="v1", gallery_version="r1",
    )


def test_broker_down_for_10_seconds_loses_nothing_and_keeps_order(persistent_broker, tmp_path):
    persistent_broker.start()
    subscriber = PersistentSubscriber(persistent_broker.port)
    transport = MqttTransport(
        MqttConfig(url=persistent_broker.url, prefix=PREFIX, client_id="daemon-under-test"), "porch-box", EventSpool(tmp_path / "spool.db")
    )
    produced: list[str] = []
    try:
        assert transport.connected.wait(10)

        def produce():
            for number in range(100):  # 20 s at 5 events/s
                event = synthetic_event(number)
                transport.publish(event)
                produced.append(event.event_id)
                time.sleep(0.2)

        producer = threading.Thread(target=produce)
        producer.start()
        time.sleep(5)
        persistent_broker.kill()
        assert wait_until(lambda: not transport.connected.is_set(), 5)
        time.sleep(10)
        persistent_broker.start()
        producer.join()
        assert wait_until(lambda: set(produced) <= set(subscriber.ids()), 60), (
            f"{len(set(produced) - set(subscriber.ids()))} events missing"
        )
        received = subscriber.ids()
        first_seen = list(dict.fromkeys(received))
        assert first_seen == produced  # every event, in the order produced
        assert len(received) - len(first_seen) <= 2  # QoS 1: at most the message in flight at the kill, again
        # The subscriber can hold the last event before its PUBACK reaches the daemon and empties the spool.
        assert wait_until(lambda: transport.spool.depth() == 0, 5)
    finally:
        transport.close()
        subscriber.close()


def spooled_ids(path) -> list[str]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        try:
            rows = db.execute("SELECT payload FROM events ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # the daemon opens the spool first thing: its table may not be there yet
            return []
        return [json.loads(row[0])["event_id"] for row in rows]


def daemon_config(path, broker_port, spool, loop: bool):
    path.write_text(
        f'[[cameras]]\nname = "stage"\nurl = "{need(HAMILTON_CLIP)}"\nloop = {str(loop).lower()}\n\n'
        f'[events]\njsonl = ""\n\n[mqtt]\nurl = "mqtt://127.0.0.1:{broker_port}"\nprefix = "{PREFIX}"\n\n'
        f'[spool]\npath = "{spool}"\n'
    )
    return path


def test_events_spooled_while_broker_down_survive_sigkill(persistent_broker, tmp_path):
    spool = tmp_path / "spool.db"
    config = daemon_config(tmp_path / "run1.toml", persistent_broker.port, spool, loop=True)
    daemon = subprocess.Popen([sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        assert wait_until(lambda: len(spooled_ids(spool)) >= 3, 90), "no events spooled"
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    waiting = spooled_ids(spool)
    assert len(waiting) >= 3

    persistent_broker.start()
    subscriber = PersistentSubscriber(persistent_broker.port)
    try:
        time.sleep(0.5)
        rerun = daemon_config(tmp_path / "run2.toml", persistent_broker.port, spool, loop=False)
        result = subprocess.run([sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(rerun)],
                                capture_output=True, text=True, timeout=240, cwd=ROOT)
        assert result.returncode == 0, result.stderr[-2000:]
        assert wait_until(lambda: set(waiting) <= set(subscriber.ids()), 20)
        assert subscriber.ids()[: len(waiting)] == waiting  # the backlog first, in order
        assert spooled_ids(spool) == []
    finally:
        subscriber.close()


def test_spool_bound_drops_oldest_and_counts(tmp_path):
    spool = EventSpool(tmp_path / "s.db", max_events=5)
    for number in range(8):
        spool.append("door", json.dumps({"n": number}))
    assert spool.depth() == 5 and spool.dropped == 3
    assert [json.loads(item.payload)["n"] for item in spool.oldest(10)] == [3, 4, 5, 6, 7]
    spool.close()
    reopened = EventSpool(tmp_path / "s.db", max_events=5, max_age_s=0.5)
    time.sleep(0.6)
    reopened.append("door", "{}")  # the five old ones are now too old
    assert reopened.depth() == 1 and reopened.dropped == 5
    reopened.close()


def test_corrupt_spool_file_is_a_clear_error(tmp_path):
    (tmp_path / "s.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(OSError, match="cannot open event spool"):
        EventSpool(tmp_path / "s.db")
