"""The daemon: builds the pipeline from the settings, runs it, reloads the gallery on SIGHUP and
shuts down cleanly (every queue drained, every transport flushed) on SIGINT/SIGTERM or when all
file cameras have ended.

  Camera (thread per camera) -> TrackingWorker (thread per camera) -> EmbeddingWorker (one thread)
    -> DecisionMaker (one thread) -> EventDispatcher -> transports
  each TrackingWorker <-> DetectionQueue (detector.workers threads and detectors for every camera)
"""

from __future__ import annotations

import queue
import signal
import threading
import time
import zlib

from edge_daemon.comms.dispatcher import EventDispatcher, Transport
from edge_daemon.comms.gallery_sync import GallerySync
from edge_daemon.comms.homeassistant import HomeAssistantDiscovery
from edge_daemon.comms.jsonl import JsonLinesTransport
from edge_daemon.comms.mqtt import MqttTransport
from edge_daemon.comms.spool import EventSpool, default_spool_path
from edge_daemon.config import CameraConfig, MotionConfig, Settings, ThreadsConfig
from edge_daemon.detectors import create_detector
from edge_daemon.embedders import create_embedder
from edge_daemon.history import FaceHistory, HistoryGroups, history_directory
from edge_daemon.history.grouping import grouping_rule
from edge_daemon.logs import get_logger
from edge_daemon.messages import Shutdown
from edge_daemon.pipeline.capture import Camera
from edge_daemon.pipeline.decisions import DecisionMaker
from edge_daemon.pipeline.detection import CameraDetection, DetectionQueue
from edge_daemon.pipeline.embedding import EmbeddingWorker
from edge_daemon.pipeline.motion_gate import DetectionPolicy, MotionSettings, SceneMotion
from edge_daemon.pipeline.regions import RegionSettings
from edge_daemon.pipeline.sinks import decision_sinks
from edge_daemon.pipeline.tracking import TrackingWorker
from edge_daemon.recognition.matcher import Matcher
from edge_daemon.recognition.quality import QualityGate
from edge_daemon.service.metrics import MetricsServer
from edge_daemon.service.monitor import ServiceMonitor, SystemdNotifier

log = get_logger(__name__)

IDENTIFICATION_QUEUE_SIZE = 1024


def create_mqtt(settings: Settings) -> MqttTransport | None:
    if not settings.mqtt.url:
        return None
    spool = EventSpool(settings.spool.path or default_spool_path(), settings.spool.max_events, settings.spool.max_age_s)
    discovery = None
    if settings.mqtt.homeassistant:
        discovery = HomeAssistantDiscovery(
            settings.mqtt.discovery_prefix,
            settings.mqtt.prefix,
            settings.service.box_name,
            [camera.name for camera in settings.cameras],
            spool.path.parent,  # the daemon's state directory: where it records what it announced
        )
    return MqttTransport(settings.mqtt, settings.service.box_name, spool, discovery)


def configure_threads(config: ThreadsConfig) -> None:
    """Thread pools of this process; model processes get theirs from ``threads.model_process``."""
    import cv2
    import faiss

    if config.opencv:
        cv2.setNumThreads(config.opencv)
    if config.faiss:
        faiss.omp_set_num_threads(config.faiss)


def open_history(settings: Settings) -> FaceHistory | None:
    """The face history, or None when it is off or cannot be opened: recognition never waits on it."""
    if not settings.history.enabled:
        return None
    path = history_directory(settings.history)
    try:
        return FaceHistory(path, settings.history.max_faces, settings.history.max_age_days)
    except Exception as exc:  # noqa: BLE001 - a broken disk or directory must not stop recognition
        log.error("face history unavailable: recognising without it", path=str(path), error=str(exc))
        return None


def open_groups(history: FaceHistory | None, settings: Settings, embedder) -> HistoryGroups | None:
    """The unknown groups over the history (None without one, or when its tracks cannot be read:
    faces are still recorded, tracks are not grouped)."""
    if history is None:
        return None
    try:
        return HistoryGroups(history, embedder.version, grouping_rule(embedder, settings.history, settings.gallery))
    except Exception as exc:  # noqa: BLE001 - grouping is for review; recognition goes on without it
        log.error("unknown groups unavailable: tracks are not grouped", error=f"{type(exc).__name__}: {exc}")
        return None


def region_settings(motion: MotionConfig) -> RegionSettings:
    return RegionSettings(
        motion.region_min_side, motion.region_box_scale, motion.region_padding_px, motion.region_merge_overlap,
        motion.duplicate_iou, motion.region_face_px,
    )


def motion_settings(motion: MotionConfig, threshold: int) -> MotionSettings:
    return MotionSettings(motion.width, threshold, motion.min_area, motion.dilate_px, motion.learning_rate, motion.light_change)


def camera_detection(camera: CameraConfig, settings: Settings, detect_queue: DetectionQueue) -> CameraDetection:
    """A camera's side of detection: gated by its motion, or (motion.enabled = false) every frame whole."""
    motion = settings.motion
    every_frame = camera.is_file and not camera.realtime
    if not motion.enabled:
        return CameraDetection(camera.name, detect_queue, every_frame=every_frame)
    # Each camera's own phase, the same at every start (a hash of its name, not Python's salted hash);
    # none for a file that must lose nothing: its first frame is detected whole.
    phase = None if every_frame else zlib.crc32(camera.name.encode()) / 2**32
    policy = DetectionPolicy(camera.idle_detect_s, settings.detector.max_side, region_settings(motion), motion.max_region_cost, phase)
    mask = SceneMotion(motion_settings(motion, camera.motion_threshold))
    return CameraDetection(camera.name, detect_queue, policy, mask, every_frame)


class Daemon:
    def __init__(self, settings: Settings):
        if not settings.cameras:
            raise ValueError("no cameras configured: add [[cameras]] to the config or pass --camera NAME=URL")
        self.settings = settings
        self.stopping = threading.Event()
        self._stop_signal: str | None = None  # the signal that asked to stop, logged by the main loop
        self._reload_requested = threading.Event()
        # The broker first: a broker, certificate or network problem is then logged within seconds of
        # start, not after the models have loaded; events made meanwhile wait in the spool.
        self.mqtt = create_mqtt(settings)
        configure_threads(settings.threads)
        threads = settings.threads.model_process
        self.embedder = create_embedder(settings.embedder, threads=threads)
        self.matcher = Matcher(settings.gallery, self.embedder)
        gate = QualityGate(settings.detector)
        self.cameras = [Camera(camera, self.stopping) for camera in settings.cameras]
        faces: queue.Queue = queue.Queue(maxsize=settings.embedder.queue_size)
        identifications: queue.Queue = queue.Queue(maxsize=IDENTIFICATION_QUEUE_SIZE)
        self._faces = faces
        # One detection queue for every camera, served in turn by detector.workers detectors (a
        # process and a set of threads each).
        self.detector = create_detector(settings.detector, threads=threads)
        self.more_detectors = [create_detector(settings.detector, threads=threads) for _ in range(settings.detector.workers - 1)]
        queue_config = settings.detector
        self.detect_queue = DetectionQueue(
            self.detector,
            queue_config.queue_max_age_s,
            queue_config.queue_size,
            queue_config.max_batch,
            settings.motion.duplicate_iou,
            more_detectors=self.more_detectors,
        )
        self.trackers = [
            TrackingWorker(
                camera.config.name,
                camera.frames,
                faces,
                camera_detection(camera.config, settings, self.detect_queue),
                gate,
                self.embedder.aligner,
                settings.tracker,
            )
            for camera in self.cameras
        ]
        self.embed_worker = EmbeddingWorker(
            self.embedder,
            self.matcher,
            faces,
            identifications,
            settings.embedder.batch_size,
            settings.embedder.max_wait_ms,
        )
        self.gallery_sync = None
        if settings.gallery.sync == "mqtt":
            self.gallery_sync = GallerySync(
                settings.mqtt,
                settings.mqtt.prefix,
                f"edge-daemon-{settings.service.box_name}-gallery",
                (self.embedder.name, self.embedder.version),
                settings.gallery.path,
                self.matcher.gallery,
                self.matcher.adopt,
            )
        transports: list[Transport] = [JsonLinesTransport(settings.events.jsonl)] if settings.events.jsonl else []
        self.dispatcher = EventDispatcher(transports + ([self.mqtt] if self.mqtt else []))
        self.history = open_history(settings)
        self.groups = open_groups(self.history, settings, self.embedder)
        self.decisions = DecisionMaker(
            identifications,
            decision_sinks(self.dispatcher, settings.events.crops_dir, self.history, self.groups),
            self.embedder.name,
            self.embedder.version,
            settings.service.box_name,
            self.matcher,
            settings.decisions,
        )
        self.monitor = ServiceMonitor(
            self, SystemdNotifier(), settings.service.stuck_after_s, settings.service.ready_timeout_s
        )
        self.metrics = None
        if settings.service.metrics_port:
            self.metrics = MetricsServer(self, self.monitor, settings.service.metrics_host, settings.service.metrics_port)

    def start(self) -> None:
        for thread in [self.decisions, self.embed_worker, self.detect_queue, *self.trackers, *self.cameras]:
            thread.start()
        if self.metrics is not None:
            self.metrics.start()
        log.info(
            "daemon started",
            cameras=[camera.config.name for camera in self.cameras],
            detector=self.settings.detector.backend,
            embedder=self.embedder.name,
            transports=[transport.name for transport in self.dispatcher.transports],
        )

    def request_stop(self) -> None:
        self.stopping.set()

    def request_reload(self) -> None:
        self._reload_requested.set()

    def run(self) -> int:
        """Run until stopped or until every camera has finished. Returns the exit code."""
        self._install_signal_handlers()
        self.start()
        stats_interval = self.settings.mqtt.stats_interval_s
        last_stats = time.monotonic()
        try:
            while not self.stopping.is_set():
                if self._reload_requested.wait(0.2):
                    self._reload_requested.clear()
                    self.matcher.reload()
                self.monitor.tick()
                if self.mqtt is not None and stats_interval and time.monotonic() - last_stats >= stats_interval:
                    last_stats = time.monotonic()
                    self.mqtt.publish_stats(self.stats())
                if not any(camera.is_alive() for camera in self.cameras):
                    break
            if self._stop_signal is not None:
                log.info("stop requested", signal=self._stop_signal)
        finally:
            self.shutdown()
        failed = [camera.config.name for camera in self.cameras if camera.state == "failed"]
        if failed and len(failed) == len(self.cameras):
            log.error("no camera could be read", cameras=failed)
            return 1
        return 0

    def shutdown(self) -> None:
        """Stop capture, then drain each stage in pipeline order so no decided event is lost."""
        self.monitor.stopping()
        self.stopping.set()
        for thread in [*self.cameras, *self.trackers]:
            thread.join()
        self.detect_queue.close()  # the trackers have their answers: nothing is waiting on it
        self._faces.put(Shutdown())
        self.embed_worker.join()
        self.decisions.join()
        self.dispatcher.close()
        if self.history is not None:
            self.history.close()
        if self.gallery_sync is not None:
            self.gallery_sync.close()
        for model in [self.detector, *self.more_detectors, self.embedder]:
            model.close()
        if self.metrics is not None:
            self.metrics.close()
        log.info("daemon stopped", **self.stats())

    def stats(self) -> dict:
        cameras = {
            camera.config.name: {
                "state": camera.state,
                **camera.counters.values,
                **tracker.counters.values,
                **(tracker.detection.policy.counters.values if tracker.detection.policy else {}),
                **self.detect_queue.counters(camera.config.name).values,
            }
            for camera, tracker in zip(self.cameras, self.trackers)
        }
        return {
            "cameras": cameras,
            "detector": {
                "busy_s": round(self.detect_queue.busy_s, 3),
                "batches": dict(sorted(self.detect_queue.batch_sizes.values.items())),
            },
            "embedder": {
                **self.embed_worker.counters.values,
                "batches": dict(sorted(self.embed_worker.batch_sizes.values.items())),
                "embed_seconds": round(self.embed_worker.embed_seconds, 3),
            },
            "events": self.decisions.counters.values,
            "decisions": self.decisions.drops.values,
            # published_mqtt: acknowledged by the broker; spooled_mqtt: handed to the spool.
            "transports": {**self.dispatcher.counters.values, **({"published_mqtt": self.mqtt.delivered} if self.mqtt else {})},
            "mqtt": self.mqtt.status() if self.mqtt else {},
            "history": {"dropped": self.history.dropped, "failures": self.history.failures} if self.history else {},
            "gallery": {
                "version": self.matcher.gallery.version if self.matcher.gallery else None,
                **(self.gallery_sync.counters.values if self.gallery_sync else {}),
            },
        }

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # tests and benchmarks drive the daemon from other threads

        def on_stop(signum, frame):
            # No logging here: the handler runs in the main thread between two of its bytecodes, maybe
            # while that thread holds the log's write lock, and would wait for it forever.
            self._stop_signal = signal.Signals(signum).name
            self.request_stop()

        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGHUP, lambda signum, frame: self.request_reload())

