"""The box's own faults, made for real: the spool on a small tmpfs that fills up or is remounted
read-only mid-run, a real mosquitto, and a wall clock that steps. What reaches the broker is checked
against the JSON-lines file the same events went to."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import structlog

from edge_daemon.clock import Clock
from edge_daemon.comms.dispatcher import EventDispatcher
from edge_daemon.comms.jsonl import JsonLinesTransport
from edge_daemon.comms.mqtt import MqttTransport
from edge_daemon.comms.spool import EventSpool
from edge_daemon.config import MqttConfig
from edge_daemon.history import FaceHistory
from edge_daemon.messages import Event, utc_iso
from tests.support.broker import BrokerGate, Subscriber
from tests.support.delivery import PREFIX, PersistentSubscriber
from tests.support.disk import failing_card, small_disk  # noqa: F401 - fixtures
from tests.support.waiting import wait_until

YEAR_S = 365 * 24 * 3600.0


def event(number: int) -> Event:
    now = utc_iso(time.time())
    return Event(
        type="recognized", box="box", camera="door", track_id=number, identity="ana", score=0.95, bbox=(1, 2, 3, 4),
        ts=now, frame_ts=now, attempts=1, embedder="e", embedder_version="v1", gallery_version="r1",
    )


class Run:
    """A dispatcher over a JSON-lines file and an MQTT transport whose spool is on ``spool``. The
    transport reaches the broker through a gate that a test closes (the broker away) and opens; the
    subscriber is connected to the broker itself, so it misses nothing."""

    def __init__(self, broker, spool: EventSpool, jsonl, memory_events: int = 1000):
        self.subscriber = PersistentSubscriber(broker.port)
        assert wait_until(self.subscriber.client.is_connected, 5)
        self.gate = BrokerGate(broker.port)
        self.gate.open()
        self.mqtt = MqttTransport(
            MqttConfig(url=self.gate.url, prefix=PREFIX, client_id="daemon-under-test"), "box", spool, memory_events=memory_events
        )
        self.jsonl = jsonl
        self.dispatcher = EventDispatcher([JsonLinesTransport(str(jsonl)), self.mqtt])
        self.number = 0

    def broker_away(self) -> None:
        self.gate.close()
        assert wait_until(lambda: not self.mqtt.connected.is_set(), 5)

    def broker_back(self) -> None:
        self.gate.open()

    def publish(self, count: int) -> None:
        for _ in range(count):
            self.dispatcher.publish(event(self.number))
            self.number += 1

    def written(self) -> list[str]:
        return [json.loads(line)["event_id"] for line in self.jsonl.read_text().splitlines()]

    def all_at_the_broker(self, timeout_s: float = 20) -> bool:
        return wait_until(lambda: set(self.written()) <= set(self.subscriber.ids()), timeout_s)

    def missing(self) -> str:
        written, received = self.written(), set(self.subscriber.ids())
        return (f"{[written.index(i) for i in written if i not in received]} of {len(written)} missing; "
                f"{self.mqtt.status()}, delivered {self.mqtt.delivered}")

    def close(self) -> None:
        self.dispatcher.close()
        self.gate.close()
        self.subscriber.close()


def logged(logs: list[dict], message: str) -> list[dict]:
    return [entry for entry in logs if entry["event"] == message]


def test_a_full_disk_mid_run_still_delivers_every_event_and_the_spool_resumes_after_space_is_freed(
    small_disk, broker, tmp_path  # noqa: F811 - fixtures
):
    with structlog.testing.capture_logs() as logs:
        run = Run(broker, EventSpool(small_disk.path / "spool.db"), tmp_path / "events.jsonl")
        try:
            assert run.mqtt.connected.wait(10)
            # Events wait in the spool while the broker is away; then the disk fills up.
            run.broker_away()
            run.publish(20)
            assert run.mqtt.spool_depth() == 20
            small_disk.fill()
            run.broker_back()
            run.publish(100)  # the spool refuses every one
            assert run.all_at_the_broker(), run.missing()
            assert run.dispatcher.counters.get("unspooled_mqtt") == 100 and run.dispatcher.counters.get("failed_mqtt") == 0
            # The 20 spooled before were delivered too (deleted once it writes again). The subscriber can
            # hold the last one before its PUBACK reaches the daemon.
            assert wait_until(lambda: run.mqtt.spool_depth() == 0, 5)
            assert "cannot be written (database or disk is full)" in run.mqtt.problem
            failures = logged(logs, "event spool cannot be written: events wait in memory for the broker")
            assert [entry["failures_in_a_row"] for entry in failures] == [1, 2, 4, 8, 16, 32, 64, 100]  # not 100 lines
            # Space freed: the next event goes to the spool again, by itself.
            small_disk.free()
            run.publish(10)
            assert run.dispatcher.counters.get("spooled_mqtt") == 30 and run.mqtt.problem is None
            assert logged(logs, "event spool written again")[0]["failures_in_a_row"] == 100
            assert run.all_at_the_broker()
        finally:
            run.close()
    assert len(set(run.written())) == 130 and set(run.written()) <= set(run.subscriber.ids())


def test_broker_down_and_disk_full_keep_events_in_memory_up_to_the_bound_and_count_drops_logged_once(
    small_disk, broker, tmp_path  # noqa: F811 - fixtures
):
    with structlog.testing.capture_logs() as logs:
        run = Run(broker, EventSpool(small_disk.path / "spool.db"), tmp_path / "events.jsonl", memory_events=25)
        try:
            assert run.mqtt.connected.wait(10)
            run.broker_away()
            small_disk.fill()
            run.publish(60)
            assert run.mqtt.memory_depth() == 25 and run.mqtt.memory_dropped == 35
            assert len(logged(logs, "events dropped: the spool cannot be written, the broker is away and the memory "
                                    "buffer is full; the oldest go first, counted in memory_dropped")) == 1
            run.broker_back()
            kept = run.written()[-25:]  # the newest stay
            assert wait_until(lambda: set(kept) <= set(run.subscriber.ids()), 20)
            assert run.mqtt.status()["memory_dropped"] == 35 and run.mqtt.memory_depth() == 0
            assert logged(logs, "memory buffer delivered")[0]["memory_dropped_total"] == 35
        finally:
            run.close()


def test_a_card_the_kernel_remounts_read_only_mid_run_still_delivers_every_event(
    failing_card, broker, tmp_path  # noqa: F811 - fixtures
):
    run = Run(broker, EventSpool(failing_card.path / "spool.db"), tmp_path / "events.jsonl")
    try:
        assert run.mqtt.connected.wait(10)
        run.publish(10)
        assert run.all_at_the_broker()
        failing_card.fail()
        run.publish(30)
        assert run.all_at_the_broker(), run.missing()
        assert run.dispatcher.counters.get("spooled_mqtt") == 10 and run.dispatcher.counters.get("unspooled_mqtt") == 30
        assert run.mqtt.problem.startswith("event spool ") and "(disk I/O error)" in run.mqtt.problem
    finally:
        run.close()


def test_a_read_only_spool_at_start_is_a_clear_error(small_disk):  # noqa: F811 - a fixture
    EventSpool(small_disk.path / "spool.db").close()
    small_disk.remount("ro")
    with pytest.raises(OSError, match="cannot open event spool .*spool.db: .*readonly|cannot open event spool .*spool.db: unable"):
        EventSpool(small_disk.path / "spool.db")


class SteppedClock:
    """A wall clock a test can set (the monotonic clock stays the real one)."""

    def __init__(self):
        self.offset_s = 0.0

    def wall(self) -> float:
        return time.time() + self.offset_s


def test_events_spooled_while_the_clock_is_a_year_behind_are_all_delivered_after_ntp_corrects_it(
    broker, tmp_path
):
    clock = SteppedClock()
    clock.offset_s = -YEAR_S  # booted without a real-time clock: a year behind
    spool = EventSpool(tmp_path / "spool.db", max_age_s=7 * 24 * 3600, clock=Clock(wall=clock.wall))
    with structlog.testing.capture_logs() as logs:
        run = Run(broker, spool, tmp_path / "events.jsonl")
        try:
            assert run.mqtt.connected.wait(10)
            run.broker_away()
            run.publish(20)
            clock.offset_s = 0.0  # NTP steps the clock a year forward: the spooled events look a year old
            run.publish(20)  # appending applies the bounds: nothing may go as "too old"
            clock.offset_s = -YEAR_S / 2  # and a step back again
            run.publish(1)
            assert spool.dropped == 0 and spool.depth() == 41
            run.broker_back()
            assert run.all_at_the_broker(30), run.missing()
        finally:
            run.close()
    steps = logged(logs, "the wall clock stepped: ages inside this run go by the monotonic clock")
    assert [round(entry["step_s"] / YEAR_S, 2) for entry in steps] == [1.0, -0.5]  # each step once


def test_spooled_events_still_age_out_by_the_monotonic_clock(tmp_path):
    clock = SteppedClock()
    spool = EventSpool(tmp_path / "spool.db", max_age_s=0.5, clock=Clock(wall=clock.wall))
    spool.append("door", "{}")
    clock.offset_s = -YEAR_S  # a wall clock going back does not make it younger
    time.sleep(0.6)
    spool.append("door", "{}")
    assert spool.dropped == 1 and spool.depth() == 1
    spool.close()


def test_faces_recorded_while_the_clock_was_a_year_behind_stay_in_the_history_after_it_is_corrected(tmp_path):
    clock = SteppedClock()
    clock.offset_s = -YEAR_S
    history = FaceHistory(tmp_path / "history", max_age_days=30, clock=Clock(wall=clock.wall))
    rng = np.random.default_rng(0)

    def record(track_id: int) -> int | None:
        return history.record(
            ts=clock.wall(), camera="door", box="box", track_id=track_id, event_type="unknown", identity=None, score=0.5,
            embedder="e", embedder_version="v1", gallery_version=None, embedding=rng.normal(size=64).astype(np.float32),
            crop=rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8),
        )

    behind = [record(track_id) for track_id in range(5)]
    clock.offset_s = 0.0  # NTP: the five faces now look a year old
    corrected = record(5)
    assert history.dropped == 0 and [row.face_id for row in history.faces()][::-1] == [*behind, corrected]
    assert all(abs(row.ts - time.time()) < 60 for row in history.faces())  # their stamps moved by the step
    history.close()


def test_without_a_spool_events_go_from_memory_and_the_health_topic_says_degraded_on_connect(broker):
    subscriber = Subscriber(broker.port, f"{PREFIX}/#")
    transport = MqttTransport(MqttConfig(url=broker.url, prefix=PREFIX), "box", None, no_spool_reason="read-only file system")
    try:
        assert wait_until(lambda: subscriber.on(f"{PREFIX}/box/health"), 10)  # before any event
        health = json.loads(subscriber.on(f"{PREFIX}/box/health")[0].payload)
        assert health == {"state": "degraded", "problems": [transport.problem]} and "read-only" in transport.problem
        assert [transport.publish(event(number)) for number in range(3)] == ["unspooled"] * 3
        assert wait_until(lambda: len(subscriber.on(f"{PREFIX}/events")) == 3, 10)
    finally:
        transport.close()
        subscriber.close()
