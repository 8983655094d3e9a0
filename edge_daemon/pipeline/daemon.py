"""The daemon: the pipeline built from the settings, started, and shut down cleanly (every queue
drained, every transport flushed); ``status()`` says how it is doing. The process around it
(signals, the main loop, systemd, the HTTP port) is ``edge_daemon.service.runner``'s.

  Camera (thread per camera) -> TrackingWorker (thread per camera) -> EmbeddingWorker (one thread)
    -> DecisionMaker (one thread) -> EventDispatcher -> transports
  each TrackingWorker <-> DetectionQueue (detector.workers threads and detectors for every camera)
"""

from __future__ import annotations

import threading

from edge_daemon.config import Settings
from edge_daemon.embedders import create_embedder
from edge_daemon.logs import get_logger
from edge_daemon.messages import FaceQueue, IdentificationQueue, Shutdown
from edge_daemon.pipeline.build import (
    build_cameras,
    build_decisions,
    build_detection,
    build_detectors,
    build_embedding,
    build_gallery_sync,
    build_matcher,
    build_mqtt,
    build_trackers,
    build_transports,
    configure_threads,
    open_groups,
    open_history,
    usable_crops_dir,
)
from edge_daemon.pipeline.camera_view import CameraViews
from edge_daemon.pipeline.capture import Camera
from edge_daemon.pipeline.status import (
    CameraStatus,
    DaemonStatus,
    DetectorStatus,
    EmbedderStatus,
    GalleryStatus,
    HistogramStatus,
    HistoryStatus,
    MqttStatus,
    WorkerStatus,
)
from edge_daemon.pipeline.tracking import TrackingWorker

log = get_logger(__name__)

IDENTIFICATION_QUEUE_SIZE = 1024


class Daemon:
    def __init__(self, settings: Settings):
        if not settings.cameras:
            raise ValueError("no cameras configured: add [[cameras]] to the config or pass --camera NAME=URL")
        self.settings = settings
        self.stopping = threading.Event()
        # The broker first: a broker, certificate or network problem is then logged within seconds of
        # start, not after the models have loaded; events made meanwhile wait in the spool.
        self.mqtt = build_mqtt(settings)
        configure_threads(settings.threads)
        self.embedder = create_embedder(settings.embedder, threads=settings.threads.model_process)
        self.matcher = build_matcher(settings, self.embedder, self.mqtt)
        self.cameras = build_cameras(settings, self.stopping)
        self._faces = FaceQueue(maxsize=settings.embedder.queue_size)
        identifications = IdentificationQueue(maxsize=IDENTIFICATION_QUEUE_SIZE)
        self.detectors = build_detectors(settings)
        self.detect_queue = build_detection(settings, self.detectors)
        # What each camera sees now (the review pages' cameras view): ``camera_views.snapshot(name)``.
        self.camera_views = CameraViews(self.cameras, settings.detector)
        self.trackers = build_trackers(settings, self.cameras, self._faces, self.detect_queue, self.embedder, self.camera_views)
        self.embed_worker = build_embedding(settings, self.embedder, self.matcher, self._faces, identifications)
        self.gallery_sync = build_gallery_sync(settings, self.embedder, self.matcher)
        self.dispatcher = build_transports(settings, self.mqtt)
        # What could not be written at start (history, crops): the daemon runs without it, degraded.
        self.state_problems: list[str] = []
        self.history = open_history(settings, self.state_problems)
        self.groups = open_groups(self.history, settings, self.embedder)
        crops_dir = usable_crops_dir(settings, self.state_problems)
        self.decisions = build_decisions(
            settings, identifications, self.dispatcher, self.embedder, self.matcher, self.history, self.groups, crops_dir,
            self.camera_views,
        )
        if self.mqtt is not None:
            self.mqtt.set_other_problems(self._problems_besides_mqtt)

    def start(self) -> None:
        for thread in [self.decisions, self.embed_worker, self.detect_queue, *self.trackers, *self.cameras]:
            thread.start()
        log.info(
            "daemon started",
            cameras=[camera.config.name for camera in self.cameras],
            detector=self.settings.detector.backend,
            embedder=self.embedder.name,
            transports=[transport.name for transport in self.dispatcher.transports],
        )

    def request_stop(self) -> None:
        self.stopping.set()

    def any_camera_running(self) -> bool:
        """False once every camera's thread has ended (every file read, or stopped)."""
        return any(camera.is_alive() for camera in self.cameras)

    def reload_gallery(self) -> None:
        """Read the gallery from disk again; the next batch is matched against it."""
        self.matcher.reload()

    def publish_stats(self) -> None:
        """The stats to the broker (best effort; nothing without one)."""
        if self.mqtt is not None:
            self.mqtt.publish_stats(self.stats())

    def shutdown(self) -> DaemonStatus:
        """Stop capture, then drain each stage in pipeline order so no decided event is lost.
        Returns the final status."""
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
        for model in [*self.detectors, self.embedder]:
            model.close()
        final = self.status()
        log.info("daemon stopped", **final.stats())
        return final

    def stats(self) -> dict:
        return self.status().stats()

    def status(self) -> DaemonStatus:
        """A snapshot of every stage's state and counters."""
        detect_queue, embed_worker, latency = self.detect_queue, self.embed_worker, self.decisions.latency_histogram
        return DaemonStatus(
            cameras=tuple(self._camera_status(camera, tracker) for camera, tracker in zip(self.cameras, self.trackers)),
            workers=tuple(WorkerStatus(thread.name, thread.is_alive()) for thread in (detect_queue, embed_worker, self.decisions)),
            detector=DetectorStatus(round(detect_queue.busy_s, 3), dict(sorted(detect_queue.batch_sizes.values.items()))),
            embedder=EmbedderStatus(
                embed_worker.counters.values, dict(sorted(embed_worker.batch_sizes.values.items())), round(embed_worker.embed_seconds, 3)
            ),
            events=self.decisions.counters.values,
            decisions=self.decisions.drops.values,
            capture_to_event=HistogramStatus(latency.buckets, latency.counts.values, latency.total),
            transports={**self.dispatcher.counters.values, **({"published_mqtt": self.mqtt.delivered} if self.mqtt else {})},
            mqtt=self._mqtt_status(),
            history=HistoryStatus(self.history.dropped, self.history.failures) if self.history else None,
            degraded=self._degraded(),
            gallery=GalleryStatus(
                self.matcher.gallery.version if self.matcher.gallery else None,
                self.gallery_sync.counters.values if self.gallery_sync else {},
            ),
        )

    def _camera_status(self, camera: Camera, tracker: TrackingWorker) -> CameraStatus:
        policy = tracker.detection.policy
        return CameraStatus(
            name=camera.config.name,
            state=camera.state,
            streaming_since=camera.streaming_since,
            last_frame_at=tracker.last_frame_at,
            tracking_alive=tracker.is_alive(),
            capture=camera.counters.values,
            tracking=tracker.counters.values,
            motion_gate=policy.counters.values if policy else None,
            detection=self.detect_queue.counters(camera.config.name).values,
        )

    def _problems_besides_mqtt(self) -> list[str]:
        """What could not be written at start, and a history that cannot record now."""
        history = self.history.problem if self.history else None
        return self.state_problems + ([history] if history else [])

    def _degraded(self) -> tuple[str, ...]:
        """What does not work on this box now: the above, and a spool that cannot be written."""
        spool = self.mqtt.problem if self.mqtt else None
        return tuple(self._problems_besides_mqtt() + ([spool] if spool else []))

    def _mqtt_status(self) -> MqttStatus | None:
        mqtt = self.mqtt
        if mqtt is None:
            return None
        return MqttStatus(
            mqtt.link.state(),
            mqtt.spool_depth(),
            mqtt.spool.dropped if mqtt.spool else 0,
            mqtt.link.since,
            mqtt.link.failures,
            mqtt.memory_depth(),
            mqtt.memory_dropped,
        )
