"""The Prometheus collector: ``/metrics`` read from a snapshot of the daemon's status at scrape
time, so no stage keeps a second set of books. ``edge_daemon.service.http`` serves it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from edge_daemon.pipeline.status import DaemonStatus

CAMERA_COUNTERS = {
    "frames_read": "Frames read from the source",
    "frames_sent": "Frames handed to detection",
    "frames_dropped": "Frames dropped because detection was behind",
    "reconnects": "Reconnect attempts",
    "stalls": "Times the stream stalled (connection open, no frame within the stall timeout)",
    "frames_keyframe_only": "Frames decoded while the camera was idle and decoded only keyframes",
    "keyframe_only_periods": "Times the camera went idle and began decoding only keyframes",
    "keyframe_only_ms": "Milliseconds the camera spent decoding only keyframes",
    "frames_processed": "Frames taken by detection and tracking (detected, skipped for no motion, or not detected)",
    "frames_skipped_no_motion": "Frames not detected: nothing moved and nothing was tracked",
    "frames_detected_regions": "Frames detected in regions around what moves and what is tracked",
    "regions_detected": "Regions detected (several per frame when things move apart)",
    "detect_stale": "Frames the detection queue skipped: too old by their turn",
    "detect_dropped": "Frames pushed out of the camera's full detection queue",
    "detect_failed": "Frames whose detection failed",
    "frames_not_detected": "Frames the detection queue did not look at (stale, dropped or failed)",
    "geometry_changes": "Times the stream came back with another resolution (its tracks ended)",
    "faces_detected": "Faces detected",
    "tracks_started": "Tracks started (a face no live track could continue)",
    "faces_sent": "Faces sent to the embedder",
}
CAMERA_STATES = ("starting", "streaming", "reconnecting", "stalled", "failed", "ended", "stopped")


def _histogram(name: str, documentation: str, counts: dict[float, int], total: float, buckets: list[float]):
    """A Prometheus histogram from exact observation counts."""
    cumulative, bucket_values = 0, []
    for bound in buckets:
        cumulative = sum(count for value, count in counts.items() if value <= bound)
        bucket_values.append((str(bound), cumulative))
    bucket_values.append(("+Inf", sum(counts.values())))
    return HistogramMetricFamily(name, documentation, buckets=bucket_values, sum_value=total)


def _by_reason(status: DaemonStatus, prefix: str, name: str, documentation: str) -> CounterMetricFamily:
    """A per-camera counter family labelled by reason, from the camera counters named ``<prefix><reason>``."""
    family = CounterMetricFamily(name, documentation, labels=["camera", "reason"])
    for camera in status.cameras:
        for key, value in camera.counters.items():
            if key.startswith(prefix):
                family.add_metric([camera.name, key.removeprefix(prefix)], value)
    return family


class DaemonCollector:
    """``status`` takes a snapshot of the daemon (``Daemon.status``); ``fps`` gives each camera's frame
    rate over the last interval (``ServiceMonitor.fps``)."""

    def __init__(self, status: Callable[[], DaemonStatus], fps: Callable[[], Mapping[str, float]]):
        self._status = status
        self._fps = fps

    def collect(self):
        status = self._status()
        for key, documentation in CAMERA_COUNTERS.items():
            family = CounterMetricFamily(f"edge_daemon_{key}", documentation, labels=["camera"])
            for camera in status.cameras:
                family.add_metric([camera.name], camera.counters.get(key, 0))
            yield family
        yield _by_reason(status, "faces_dropped_", "edge_daemon_faces_not_embedded", "Faces failing a quality gate")
        yield _by_reason(
            status,
            "frames_detected_full_",
            "edge_daemon_frames_detected_full",
            "Frames detected whole, by reason: idle (every idle_detect_s), relearned (light change, new geometry), "
            "cost (regions would cost more than the whole frame)",
        )
        yield CounterMetricFamily(
            "edge_daemon_detector_busy_seconds", "Seconds the shared detector spent detecting", value=status.detector.busy_s
        )
        fps = GaugeMetricFamily("edge_daemon_camera_fps", "Frames processed per second (last interval)", labels=["camera"])
        state = GaugeMetricFamily("edge_daemon_camera_state", "1 for the camera's current state", labels=["camera", "state"])
        rates = self._fps()
        for camera in status.cameras:
            fps.add_metric([camera.name], rates.get(camera.name, 0.0))
            for name in CAMERA_STATES:
                state.add_metric([camera.name, name], 1.0 if camera.state == name else 0.0)
        yield fps
        yield state
        embedder = status.embedder
        yield CounterMetricFamily(
            "edge_daemon_embedder_busy_seconds", "Seconds the embedder spent embedding", value=embedder.embed_seconds
        )
        yield CounterMetricFamily("edge_daemon_faces_embedded", "Faces embedded", value=embedder.counters.get("faces_embedded", 0))
        yield CounterMetricFamily(
            "edge_daemon_faces_embed_failed", "Faces whose embedding failed", value=embedder.counters.get("faces_failed", 0)
        )
        batches = embedder.batch_sizes
        yield _histogram(
            "edge_daemon_embed_batch_size", "Faces per embedding batch", batches,
            float(sum(size * count for size, count in batches.items())), [1, 2, 4, 8, 16, 32, 64],
        )
        latency = status.capture_to_event
        yield _histogram(
            "edge_daemon_capture_to_event_seconds", "Capture to first decision event", latency.counts,
            latency.total, list(latency.buckets),
        )
        events = CounterMetricFamily("edge_daemon_events", "Events made", labels=["type"])
        for key, value in status.events.items():
            events.add_metric([key.removeprefix("events_")], value)
        yield events
        delivery = CounterMetricFamily(
            "edge_daemon_events_published",
            "Events by transport and result: published (written; for mqtt, acknowledged by the broker), spooled "
            "(on disk waiting for the broker), unspooled (the spool could not take it: in memory waiting for the broker), "
            "failed",
            labels=["transport", "result"],
        )
        for key, value in status.transports.items():
            result, _, transport = key.partition("_")
            delivery.add_metric([transport, result], value)
        yield delivery
        info = GaugeMetricFamily("edge_daemon_gallery_info", "The gallery in use, by version", labels=["version"])
        info.add_metric([status.gallery.version or "none"], 1.0)
        yield info
        sync = CounterMetricFamily("edge_daemon_gallery_sync", "Gallery revisions from the broker, by outcome", labels=["outcome"])
        for outcome, value in status.gallery.sync.items():
            sync.add_metric([outcome], value)
        yield sync
        yield GaugeMetricFamily(
            "edge_daemon_degraded", "1 while a disk cannot be written (no spool, history or crops; /healthz says why)",
            value=float(bool(status.degraded)),
        )
        mqtt = status.mqtt
        if mqtt is not None:
            yield GaugeMetricFamily("edge_daemon_spool_depth", "Events waiting in the spool for the broker", value=mqtt.spool_depth)
            yield CounterMetricFamily("edge_daemon_spool_dropped", "Events dropped by the spool bound", value=mqtt.spool_dropped)
            yield GaugeMetricFamily(
                "edge_daemon_memory_depth", "Events waiting in memory: the spool could not take them", value=mqtt.memory_depth
            )
            yield CounterMetricFamily(
                "edge_daemon_memory_dropped", "Events dropped from memory (spool and broker failing, spool.memory_events full)",
                value=mqtt.memory_dropped,
            )
            yield GaugeMetricFamily("edge_daemon_mqtt_connected", "1 while connected to the broker", value=float(mqtt.connected))
            yield GaugeMetricFamily(
                "edge_daemon_mqtt_state_since_seconds", "Unix time since when connected, or disconnected", value=mqtt.state_since
            )
            yield CounterMetricFamily(
                "edge_daemon_mqtt_connect_failures", "Failed connection attempts (the log and /healthz say why)",
                value=mqtt.connect_failures,
            )
