"""The daemon's parts, built from the settings: one part per function. ``Daemon`` calls them in
pipeline order and keeps what they return."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable

from edge_daemon.comms.dispatcher import EventDispatcher, Transport
from edge_daemon.comms.gallery_sync import GallerySync
from edge_daemon.comms.homeassistant import HomeAssistantDiscovery
from edge_daemon.comms.jsonl import JsonLinesTransport
from edge_daemon.comms.mqtt import MqttTransport
from edge_daemon.comms.spool import EventSpool, default_spool_path
from edge_daemon.config import CameraConfig, MotionConfig, Settings, ThreadsConfig
from edge_daemon.detectors import Detector, create_detector
from edge_daemon.embedders import Embedder
from edge_daemon.history import FaceHistory, HistoryGroups, history_directory
from edge_daemon.history.grouping import grouping_rule
from edge_daemon.logs import get_logger
from edge_daemon.messages import FaceQueue, IdentificationQueue
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

log = get_logger(__name__)


def build_mqtt(settings: Settings) -> MqttTransport | None:
    """The MQTT transport with its spool (and Home Assistant discovery), connecting in the
    background; None without mqtt.url."""
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


def build_cameras(settings: Settings, stopping: threading.Event) -> list[Camera]:
    return [Camera(camera, stopping) for camera in settings.cameras]


def build_detectors(settings: Settings) -> list[Detector]:
    """``detector.workers`` detectors (a process and a set of threads each)."""
    return [create_detector(settings.detector, threads=settings.threads.model_process) for _ in range(settings.detector.workers)]


def build_detection(settings: Settings, detectors: list[Detector]) -> DetectionQueue:
    """One detection queue for every camera, served in turn by the detectors."""
    config = settings.detector
    first, *more = detectors
    return DetectionQueue(
        first, config.queue_max_age_s, config.queue_size, config.max_batch, settings.motion.duplicate_iou, more_detectors=more
    )


def region_settings(motion: MotionConfig) -> RegionSettings:
    return RegionSettings(
        motion.region_min_side, motion.region_box_scale, motion.region_padding_px, motion.region_merge_overlap,
        motion.duplicate_iou, motion.region_face_px,
    )


def motion_settings(motion: MotionConfig, threshold: int) -> MotionSettings:
    return MotionSettings(motion.width, threshold, motion.min_area, motion.dilate_px, motion.learning_rate, motion.light_change)


def camera_detection(
    camera: CameraConfig, settings: Settings, detect_queue: DetectionQueue, scene_observer: Callable[[float, bool], None] | None = None
) -> CameraDetection:
    """A camera's side of detection: gated by its motion, or (motion.enabled = false) every frame whole.
    ``scene_observer`` is told whether each frame's scene was quiet (the capture's ``IdleScene``)."""
    motion = settings.motion
    every_frame = camera.is_file and not camera.realtime
    if not motion.enabled:
        return CameraDetection(camera.name, detect_queue, every_frame=every_frame)
    # Each camera's own phase, the same at every start (a hash of its name, not Python's salted hash);
    # none for a file that must lose nothing: its first frame is detected whole.
    phase = None if every_frame else zlib.crc32(camera.name.encode()) / 2**32
    policy = DetectionPolicy(camera.idle_detect_s, settings.detector.max_side, region_settings(motion), motion.max_region_cost, phase)
    mask = SceneMotion(motion_settings(motion, camera.motion_threshold))
    return CameraDetection(camera.name, detect_queue, policy, mask, every_frame, scene_observer)


def build_trackers(
    settings: Settings, cameras: list[Camera], faces: FaceQueue, detect_queue: DetectionQueue, embedder: Embedder
) -> list[TrackingWorker]:
    """A tracking thread per camera, sending the faces worth embedding to ``faces``."""
    gate = QualityGate(settings.detector)
    return [
        TrackingWorker(
            camera.config.name,
            camera.frames,
            faces,
            camera_detection(camera.config, settings, detect_queue, camera.idle.observe),
            gate,
            embedder.aligner,
            settings.tracker,
        )
        for camera in cameras
    ]


def build_embedding(
    settings: Settings, embedder: Embedder, matcher: Matcher, faces: FaceQueue, identifications: IdentificationQueue
) -> EmbeddingWorker:
    config = settings.embedder
    return EmbeddingWorker(embedder, matcher, faces, identifications, config.batch_size, config.max_wait_ms)


def build_gallery_sync(settings: Settings, embedder: Embedder, matcher: Matcher) -> GallerySync | None:
    """The gallery's revisions from the broker (gallery.sync = "mqtt"), adopted by the matcher; else None."""
    if settings.gallery.sync != "mqtt":
        return None
    return GallerySync(
        settings.mqtt,
        settings.mqtt.prefix,
        f"edge-daemon-{settings.service.box_name}-gallery",
        (embedder.name, embedder.version),
        settings.gallery.path,
        matcher.gallery,
        matcher.adopt,
    )


def build_transports(settings: Settings, mqtt: MqttTransport | None) -> EventDispatcher:
    """The event dispatcher over every configured transport: the JSON-lines file, then MQTT."""
    transports: list[Transport] = [JsonLinesTransport(settings.events.jsonl)] if settings.events.jsonl else []
    return EventDispatcher(transports + ([mqtt] if mqtt else []))


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


def open_groups(history: FaceHistory | None, settings: Settings, embedder: Embedder) -> HistoryGroups | None:
    """The unknown groups over the history (None without one, or when its tracks cannot be read:
    faces are still recorded, tracks are not grouped)."""
    if history is None:
        return None
    try:
        return HistoryGroups(history, embedder.version, grouping_rule(embedder, settings.history, settings.gallery))
    except Exception as exc:  # noqa: BLE001 - grouping is for review; recognition goes on without it
        log.error("unknown groups unavailable: tracks are not grouped", error=f"{type(exc).__name__}: {exc}")
        return None


def build_decisions(
    settings: Settings,
    identifications: IdentificationQueue,
    dispatcher: EventDispatcher,
    embedder: Embedder,
    matcher: Matcher,
    history: FaceHistory | None,
    groups: HistoryGroups | None,
) -> DecisionMaker:
    return DecisionMaker(
        identifications,
        decision_sinks(dispatcher, settings.events.crops_dir, history, groups),
        embedder.name,
        embedder.version,
        settings.service.box_name,
        matcher,
        settings.decisions,
    )
