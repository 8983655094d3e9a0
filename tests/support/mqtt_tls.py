"""What the MQTT and TLS tests of several tiers share: a made-up event and counting failed connection attempts."""

from __future__ import annotations

import json
import time

import structlog

from edge_daemon.comms.mqtt import MqttTransport
from edge_daemon.comms.spool import EventSpool
from edge_daemon.config import MqttConfig
from edge_daemon.messages import Event, utc_iso
from tests.support.waiting import wait_until


def event(number: int) -> Event:
    now = utc_iso(time.time())
    return Event(type="recognized", box="tlsbox", camera="door", track_id=number, identity="ana", score=0.95,
                 bbox=(1, 2, 3, 4), ts=now, frame_ts=now, attempts=1, embedder="e", embedder_version="v1", gallery_version="r1")


def failures(logs: list[dict]) -> list[dict]:
    return [entry for entry in logs if entry["event"] == "cannot connect to the mqtt broker"]


def failed_attempts(config: MqttConfig, tmp_path, count: int = 1, timeout_s: float = 5.0, events: int = 0):
    """Runs a transport (with ``events`` published) until ``count`` failed connection attempts were
    logged; their log entries, and the transport, closed."""
    with structlog.testing.capture_logs() as logs:
        transport = MqttTransport(config, "tlsbox", EventSpool(tmp_path / "s.db"))
        try:
            for number in range(events):
                transport.publish(event(number))
            assert wait_until(lambda: len(failures(logs)) >= count, timeout_s), failures(logs)
        finally:
            transport.close(drain_timeout_s=0)
    assert "Wr0ng-pa55" not in json.dumps(logs)  # a password never reaches a log
    return failures(logs), transport
