"""The service layer on a hand-made status snapshot, no daemon: the stats, the health check, the
systemd status line and notifications, and /metrics."""

from __future__ import annotations

import dataclasses
import time

from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry

from edge_daemon.pipeline import status
from edge_daemon.service.health import ServiceMonitor
from edge_daemon.service.metrics import DaemonCollector

DOWN = {"connected": False, "since": "2026-01-01T00:00:00.000Z", "reason": "connection refused", "failed_attempts": 4}


def snapshot(door_state: str = "streaming") -> status.DaemonStatus:
    """Two cameras: the door streaming (motion-gated) with no frame taken for a minute, the yard stalled;
    the embedder's thread dead, the broker down."""
    door = status.CameraStatus(
        "door", door_state, streaming_since=time.monotonic() - 60, last_frame_at=None, tracking_alive=True,
        capture={"frames_read": 50, "frames_sent": 40}, tracking={"frames_processed": 40, "faces_dropped_blurry": 3},
        motion_gate={"frames_skipped_no_motion": 10, "frames_detected_full_idle": 2}, detection={"detect_submitted": 30},
    )
    yard = status.CameraStatus("yard", "stalled", None, None, True, {"stalls": 1}, {}, None, {})
    return status.DaemonStatus(
        cameras=(door, yard),
        workers=(status.WorkerStatus("detect-queue", True), status.WorkerStatus("embedder", False), status.WorkerStatus("decisions", True)),
        detector=status.DetectorStatus(1.5, {1: 30}),
        embedder=status.EmbedderStatus({"faces_embedded": 4}, {1: 2, 2: 1}, 0.25),
        events={"events_recognized": 2, "events_ended": 1},
        decisions={"faces_dropped_useless": 1},
        capture_to_event=status.HistogramStatus((0.5, 1.0), {0.5: 1, float("inf"): 1}, 2.25),
        transports={"spooled_mqtt": 3, "published_mqtt": 2},
        mqtt=status.MqttStatus(DOWN, spool_depth=1, spool_dropped=0, state_since=1767225600.0, connect_failures=4),
        history=None,
        gallery=status.GalleryStatus("r1-abc", {"adopted": 1}),
    )


class RecordingNotifier:
    watchdog_interval_s = 0.0  # a ping due at every tick

    def __init__(self):
        self.messages: list[dict[str, str]] = []

    def notify(self, **fields: str) -> None:
        self.messages.append(fields)


def test_the_stats_are_the_snapshot_as_plain_data():
    assert snapshot().stats() == {
        "cameras": {
            "door": {"state": "streaming", "frames_read": 50, "frames_sent": 40, "frames_processed": 40, "faces_dropped_blurry": 3,
                     "frames_skipped_no_motion": 10, "frames_detected_full_idle": 2, "detect_submitted": 30},
            "yard": {"state": "stalled", "stalls": 1},
        },
        "detector": {"busy_s": 1.5, "batches": {1: 30}},
        "embedder": {"faces_embedded": 4, "batches": {1: 2, 2: 1}, "embed_seconds": 0.25},
        "events": {"events_recognized": 2, "events_ended": 1},
        "decisions": {"faces_dropped_useless": 1},
        "transports": {"spooled_mqtt": 3, "published_mqtt": 2},
        "mqtt": {**DOWN, "spool_depth": 1, "spool_dropped": 0, "memory_depth": 0, "memory_dropped": 0},
        "history": {},
        "gallery": {"version": "r1-abc", "adopted": 1},
        "degraded": [],
    }


def test_health_and_the_status_line_come_from_the_snapshot():
    monitor = ServiceMonitor(snapshot, RecordingNotifier(), stuck_after_s=5, ready_timeout_s=30)
    health = monitor.health()
    assert not health.healthy
    assert health.problems == ["embedder thread is not running", "door: no frame processed for 5 s"]
    assert health.cameras == {"door": "streaming", "yard": "stalled"}  # a stalled camera is reported, not unhealthy
    assert health.mqtt == {**DOWN, "spool_depth": 1, "spool_dropped": 0, "memory_depth": 0, "memory_dropped": 0}
    assert monitor.status_line() == (
        "door streaming 0.0 fps (25% skipped: no motion), yard stalled 0.0 fps; 3 events; "
        "mqtt down since 2026-01-01T00:00:00.000Z: connection refused"
    )


def test_a_degraded_daemon_says_why_in_health_stats_and_status_line_without_being_unhealthy():
    problem = "face history cannot be written at /state/history: read-only file system"
    degraded = lambda: dataclasses.replace(snapshot(), degraded=(problem,), workers=())  # noqa: E731
    monitor = ServiceMonitor(degraded, RecordingNotifier(), stuck_after_s=600, ready_timeout_s=30)
    health = monitor.health()
    assert health.healthy and health.degraded == (problem,)
    assert monitor.status_line().startswith(f"degraded: {problem}. door streaming")
    assert degraded().stats()["degraded"] == [problem]
    registry = CollectorRegistry()
    registry.register(DaemonCollector(degraded, lambda: {}))
    text = generate_latest(registry).decode()
    assert "edge_daemon_degraded 1.0" in text and "edge_daemon_memory_dropped_total 0.0" in text


def test_ready_once_no_camera_is_starting_and_no_watchdog_ping_while_unhealthy():
    door = {"state": "starting"}
    notifier = RecordingNotifier()
    monitor = ServiceMonitor(lambda: snapshot(door["state"]), notifier, stuck_after_s=5, ready_timeout_s=30)
    monitor.tick()
    assert not monitor.ready and notifier.messages == []
    door["state"] = "streaming"
    monitor.tick()
    assert monitor.ready
    assert [sorted(message) for message in notifier.messages] == [["READY", "STATUS"], ["STATUS"]]  # no WATCHDOG
    monitor.stopping()
    assert notifier.messages[-1] == {"STOPPING": "1", "STATUS": "stopping: draining queues"}


def test_metrics_come_from_the_snapshot_and_the_monitors_rates():
    registry = CollectorRegistry()
    registry.register(DaemonCollector(snapshot, lambda: {"door": 2.5}))
    text = generate_latest(registry).decode()
    for line in (
        'edge_daemon_frames_read_total{camera="door"} 50.0',
        'edge_daemon_frames_read_total{camera="yard"} 0.0',
        'edge_daemon_faces_not_embedded_total{camera="door",reason="blurry"} 3.0',
        'edge_daemon_frames_detected_full_total{camera="door",reason="idle"} 2.0',
        "edge_daemon_detector_busy_seconds_total 1.5",
        "edge_daemon_embedder_busy_seconds_total 0.25",
        'edge_daemon_camera_fps{camera="door"} 2.5',
        'edge_daemon_camera_state{camera="yard",state="stalled"} 1.0',
        'edge_daemon_embed_batch_size_bucket{le="1"} 2.0',
        'edge_daemon_capture_to_event_seconds_bucket{le="1.0"} 1.0',
        "edge_daemon_capture_to_event_seconds_sum 2.25",
        'edge_daemon_events_total{type="recognized"} 2.0',
        'edge_daemon_events_published_total{result="published",transport="mqtt"} 2.0',
        'edge_daemon_gallery_info{version="r1-abc"} 1.0',
        'edge_daemon_gallery_sync_total{outcome="adopted"} 1.0',
        "edge_daemon_spool_depth 1.0",
        "edge_daemon_mqtt_connected 0.0",
        "edge_daemon_mqtt_connect_failures_total 4.0",
    ):
        assert line in text, line
