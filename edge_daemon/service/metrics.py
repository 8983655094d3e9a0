"""``/metrics`` (Prometheus text format) and ``/healthz`` on a local port.

Metrics are read from the stages' own counters at scrape time (a custom collector), so no stage
keeps a second set of books.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from edge_daemon.logs import get_logger
from edge_daemon.service.review_pages import Response, ReviewPages

log = get_logger(__name__)

CAMERA_COUNTERS = {
    "frames_read": "Frames read from the source",
    "frames_sent": "Frames handed to detection",
    "frames_dropped": "Frames dropped because detection was behind",
    "reconnects": "Reconnect attempts",
    "stalls": "Times the stream stalled (connection open, no frame within the stall timeout)",
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


def _by_reason(stats: dict, prefix: str, name: str, documentation: str) -> CounterMetricFamily:
    """A per-camera counter family labelled by reason, from the camera counters named ``<prefix><reason>``."""
    family = CounterMetricFamily(name, documentation, labels=["camera", "reason"])
    for camera, values in stats["cameras"].items():
        for key, value in values.items():
            if key.startswith(prefix):
                family.add_metric([camera, key.removeprefix(prefix)], value)
    return family


class DaemonCollector:
    def __init__(self, daemon, monitor):
        self._daemon = daemon
        self._monitor = monitor

    def collect(self):
        stats = self._daemon.stats()
        for key, documentation in CAMERA_COUNTERS.items():
            family = CounterMetricFamily(f"edge_daemon_{key}", documentation, labels=["camera"])
            for camera, values in stats["cameras"].items():
                family.add_metric([camera], values.get(key, 0))
            yield family
        yield _by_reason(stats, "faces_dropped_", "edge_daemon_faces_not_embedded", "Faces failing a quality gate")
        yield _by_reason(
            stats,
            "frames_detected_full_",
            "edge_daemon_frames_detected_full",
            "Frames detected whole, by reason: idle (every idle_detect_s), relearned (light change, new geometry), "
            "cost (regions would cost more than the whole frame)",
        )
        yield CounterMetricFamily(
            "edge_daemon_detector_busy_seconds", "Seconds the shared detector spent detecting", value=stats["detector"]["busy_s"]
        )
        fps = GaugeMetricFamily("edge_daemon_camera_fps", "Frames processed per second (last interval)", labels=["camera"])
        state = GaugeMetricFamily("edge_daemon_camera_state", "1 for the camera's current state", labels=["camera", "state"])
        for camera in self._daemon.cameras:
            fps.add_metric([camera.config.name], self._monitor.fps.get(camera.config.name, 0.0))
            for name in CAMERA_STATES:
                state.add_metric([camera.config.name, name], 1.0 if camera.state == name else 0.0)
        yield fps
        yield state
        embedder = stats["embedder"]
        yield CounterMetricFamily("edge_daemon_faces_embedded", "Faces embedded", value=embedder.get("faces_embedded", 0))
        yield CounterMetricFamily("edge_daemon_faces_embed_failed", "Faces whose embedding failed", value=embedder.get("faces_failed", 0))
        batches = self._daemon.embed_worker.batch_sizes.values
        yield _histogram(
            "edge_daemon_embed_batch_size", "Faces per embedding batch", batches,
            float(sum(size * count for size, count in batches.items())), [1, 2, 4, 8, 16, 32, 64],
        )
        latency = self._daemon.decisions.latency_histogram
        yield _histogram(
            "edge_daemon_capture_to_event_seconds", "Capture to first decision event", latency.counts.values,
            latency.total, list(latency.buckets),
        )
        events = CounterMetricFamily("edge_daemon_events", "Events made", labels=["type"])
        for key, value in stats["events"].items():
            events.add_metric([key.removeprefix("events_")], value)
        yield events
        delivery = CounterMetricFamily(
            "edge_daemon_events_published",
            "Events by transport and result: published (written; for mqtt, acknowledged by the broker), spooled "
            "(on disk waiting for the broker), failed",
            labels=["transport", "result"],
        )
        for key, value in stats["transports"].items():
            result, _, transport = key.partition("_")
            delivery.add_metric([transport, result], value)
        yield delivery
        gallery = dict(stats["gallery"])
        info = GaugeMetricFamily("edge_daemon_gallery_info", "The gallery in use, by version", labels=["version"])
        info.add_metric([gallery.pop("version") or "none"], 1.0)
        yield info
        sync = CounterMetricFamily("edge_daemon_gallery_sync", "Gallery revisions from the broker, by outcome", labels=["outcome"])
        for outcome, value in gallery.items():
            sync.add_metric([outcome], value)
        yield sync
        mqtt = self._daemon.mqtt
        if mqtt is not None:
            yield GaugeMetricFamily("edge_daemon_spool_depth", "Events waiting in the spool for the broker", value=mqtt.spool.depth())
            yield CounterMetricFamily("edge_daemon_spool_dropped", "Events dropped by the spool bound", value=mqtt.spool.dropped)
            yield GaugeMetricFamily("edge_daemon_mqtt_connected", "1 while connected to the broker", value=float(mqtt.connected.is_set()))
            yield GaugeMetricFamily(
                "edge_daemon_mqtt_state_since_seconds", "Unix time since when connected, or disconnected", value=mqtt.link.since
            )
            yield CounterMetricFamily(
                "edge_daemon_mqtt_connect_failures", "Failed connection attempts (the log and /healthz say why)",
                value=mqtt.link.failures,
            )


MAX_FORM_BYTES = 64 * 1024


class MetricsServer:
    def __init__(self, daemon, monitor, host: str, port: int):
        registry = CollectorRegistry()
        registry.register(DaemonCollector(daemon, monitor))
        review = ReviewPages(daemon, daemon.settings.review.token_file) if daemon.settings.review.enabled else None

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                if review is None or not self.path.startswith("/review"):
                    return self._send(Response(404, b"not found\n", "text/plain"))
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    return self._send(Response(400, b"bad Content-Length\n", "text/plain"))
                if not 0 <= length <= MAX_FORM_BYTES:
                    return self._send(Response(413, b"form too large\n", "text/plain"))
                self._send(review.post(self.path, self.headers, self.rfile.read(length)))

            def _send(self, response: Response) -> None:
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for name, value in response.headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(response.body)

            def do_GET(self):  # noqa: N802 - http.server's name
                if review is not None and self.path.startswith("/review"):
                    return self._send(review.get(self.path, self.headers))
                if self.path == "/metrics":
                    body, status, content_type = generate_latest(registry), 200, CONTENT_TYPE_LATEST
                elif self.path == "/healthz":
                    health = monitor.health()
                    body = json.dumps(
                        {"healthy": health.healthy, "problems": health.problems, "cameras": health.cameras, "mqtt": health.mqtt}
                    ).encode()
                    status, content_type = (200 if health.healthy else 503), "application/json"
                else:
                    body, status, content_type = b"not found\n", 404, "text/plain"
                self._send(Response(status, body, content_type))

            def log_message(self, format, *args):  # requests are not worth a log line each
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("metrics listening", url=f"http://{self._server.server_address[0]}:{self.port}/metrics")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
