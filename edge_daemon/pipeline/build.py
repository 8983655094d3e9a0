"""The daemon's parts, built from the settings: one part per function. ``Daemon`` calls them in
pipeline order and keeps what they return."""

from __future__ import annotations

import os
import tempfile
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

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
from edge_daemon.pipeline.camera_view import CameraViews, ObservedSceneMotion
from edge_daemon.pipeline.capture import Camera
from edge_daemon.pipeline.decisions import DecisionMaker
from edge_daemon.pipeline.detection import CameraDetection, DetectionQueue
from edge_daemon.pipeline.embedding import EmbeddingWorker
from edge_daemon.pipeline.motion_gate import DetectionPolicy, MotionSettings
from edge_daemon.pipeline.regions import RegionSettings
from edge_daemon.pipeline.sinks import decision_sinks
from edge_daemon.pipeline.tracking import TrackingWorker
from edge_daemon.recognition.gallery import Gallery
from edge_daemon.recognition.matcher import Matcher
from edge_daemon.recognition.quality import QualityGate

log = get_logger(__name__)


def state_unusable(settings: Settings, part: str, path: Path, error: Exception, without: str) -> str:
    """A part of the daemon's state (spool, history, crops) cannot be written at start: with
    ``service.strict_state`` a ValueError (the daemon refuses to start), else one clear error line,
    and the problem to report; the daemon starts degraded, ``without`` that part."""
    if settings.service.strict_state:
        raise ValueError(f"{part} cannot be written at {path}: {error} (service.strict_state is set: not starting)")
    log.error(f"{part} cannot be written: starting degraded, {without}", path=str(path), error=str(error))
    return f"{part} cannot be written at {path}: {error}"


def build_mqtt(settings: Settings) -> MqttTransport | None:
    """The MQTT transport with its spool (and Home Assistant discovery), connecting in the
    background; None without mqtt.url. A spool that cannot be opened and written leaves the events
    waiting in memory (``state_unusable``)."""
    if not settings.mqtt.url:
        return None
    path = settings.spool.path or default_spool_path()
    spool, no_spool_reason = None, ""
    try:
        spool = EventSpool(path, settings.spool.max_events, settings.spool.max_age_s)
    except OSError as exc:
        no_spool_reason = state_unusable(settings, "event spool", path, exc, "events wait in memory for the broker")
    discovery = None
    if settings.mqtt.homeassistant:
        discovery = HomeAssistantDiscovery(
            settings.mqtt.discovery_prefix,
            settings.mqtt.prefix,
            settings.service.box_name,
            [camera.name for camera in settings.cameras],
            path.parent,  # the daemon's state directory: where it records what it announced
            settings.mqtt.presence_timeout_s,
        )
    return MqttTransport(
        settings.mqtt, settings.service.box_name, spool, discovery, settings.spool.memory_events, no_spool_reason
    )


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
    mask = ObservedSceneMotion(motion_settings(motion, camera.motion_threshold))  # its moving areas for the camera's view
    return CameraDetection(camera.name, detect_queue, policy, mask, every_frame, scene_observer)


def build_trackers(
    settings: Settings,
    cameras: list[Camera],
    faces: FaceQueue,
    detect_queue: DetectionQueue,
    embedder: Embedder,
    views: CameraViews | None = None,
) -> list[TrackingWorker]:
    """A tracking thread per camera, sending the faces worth embedding to ``faces`` and its latest
    frame to ``views``."""
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
            views,
        )
        for camera in cameras
    ]


def build_matcher(settings: Settings, embedder: Embedder, mqtt: MqttTransport | None) -> Matcher:
    """The matcher over the configured gallery; the people of each gallery it takes into use (the
    first, a reload, a revision from the fleet) are announced to Home Assistant through ``mqtt``."""

    def announce(gallery: Gallery | None) -> None:
        mqtt.announce_people(gallery.identities() if gallery else [])

    return Matcher(settings.gallery, embedder, announce if mqtt else None)


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


def open_history(settings: Settings, problems: list[str]) -> FaceHistory | None:
    """The face history, or None when it is off or cannot be opened: recognition never waits on it
    (``state_unusable``: a problem in ``problems``, or a refusal in strict mode)."""
    if not settings.history.enabled:
        return None
    path = history_directory(settings.history)
    try:
        return FaceHistory(path, settings.history.max_faces, settings.history.max_age_days)
    except Exception as exc:  # noqa: BLE001 - a broken disk or directory must not stop recognition
        problems.append(state_unusable(settings, "face history", path, exc, "recognising without it"))
        return None


def usable_crops_dir(settings: Settings, problems: list[str]) -> Path | None:
    """``events.crops_dir`` when a file can be written there now, else None (``state_unusable``)."""
    crops_dir = settings.events.crops_dir
    if crops_dir is None:
        return None
    try:
        crops_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=crops_dir) as probe:  # a full disk takes an empty file, not data
            probe.write(bytes(4096))
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        problems.append(state_unusable(settings, "face crops directory", crops_dir, exc, "events go without crops"))
        return None
    return crops_dir


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
    crops_dir: Path | None,
    views: CameraViews | None = None,
) -> DecisionMaker:
    return DecisionMaker(
        identifications,
        decision_sinks(dispatcher, crops_dir, history, groups),
        embedder.name,
        embedder.version,
        settings.service.box_name,
        matcher,
        settings.decisions,
        views,
    )
