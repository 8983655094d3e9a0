"""Per-camera detection and tracking: frames in, the faces worth embedding (and track ends) out.

A track's face is embedded only when it helps: the first good face of a new track, then only a
clearly better one (larger and/or sharper by ``better_face_ratio``), at most ``max_attempts`` times.
When the embedder's queue is full the face is deferred (counted) rather than queued to go stale;
the track tries again on a later frame.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass

from edge_daemon.alignment import Aligner
from edge_daemon.capture import StreamEnded
from edge_daemon.config import TrackerConfig
from edge_daemon.detectors import Detector
from edge_daemon.images import generous_crop
from edge_daemon.logs import get_logger
from edge_daemon.messages import BBox, Detection, FaceSample, Frame, StageCounters, TrackEnded
from edge_daemon.quality import QualityGate, face_quality

log = get_logger(__name__)

FACE_IMAGE_SIDE = 192  # the face kept for people (history, review): enough to recognise, and to enrol from


def iou(a: BBox, b: BBox) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    width = min(ax + aw, bx + bw) - max(ax, bx)
    height = min(ay + ah, by + bh) - max(ay, by)
    if width <= 0 or height <= 0:
        return 0.0
    overlap = width * height
    return overlap / (aw * ah + bw * bh - overlap)


def buffered(box: BBox, buffer: float) -> BBox:
    """The box grown by ``buffer`` times its size on every side (buffered IoU): at a few detections
    per second a walking face moves more than its own width, and plain IoU would lose it."""
    x, y, w, h = box
    return (x - buffer * w, y - buffer * h, w * (1 + 2 * buffer), h * (1 + 2 * buffer))


@dataclass
class Track:
    track_id: int
    bbox: BBox
    last_seen: float
    attempts: int = 0
    best_quality: float = 0.0


class IouTracker:
    """Greedy (buffered) IoU association of detections to the tracks of one camera."""

    def __init__(self, iou_threshold: float, max_missed_s: float, buffer: float = 0.0):
        self._iou_threshold = iou_threshold
        self._buffer = buffer
        self._max_missed_s = max_missed_s
        self._ids = itertools.count(1)
        self.tracks: list[Track] = []

    def update(self, detections: list[Detection], now: float) -> tuple[list[tuple[Track, Detection]], list[Track]]:
        """Match detections to tracks (new tracks for the rest). Returns (track, detection) pairs and
        the tracks that have now ended (unseen for longer than ``max_missed_s``)."""
        candidates = sorted(
            (
                (iou(buffered(track.bbox, self._buffer), buffered(detection.bbox, self._buffer)), t, d)
                for t, track in enumerate(self.tracks)
                for d, detection in enumerate(detections)
            ),
            reverse=True,
            key=lambda item: item[0],
        )
        used_tracks: set[int] = set()
        used_detections: set[int] = set()
        pairs = []
        for overlap, t, d in candidates:
            if overlap < self._iou_threshold:
                break
            if t in used_tracks or d in used_detections:
                continue
            used_tracks.add(t)
            used_detections.add(d)
            track = self.tracks[t]
            track.bbox, track.last_seen = detections[d].bbox, now
            pairs.append((track, detections[d]))
        for d, detection in enumerate(detections):
            if d not in used_detections:
                track = Track(next(self._ids), detection.bbox, now)
                self.tracks.append(track)
                pairs.append((track, detection))
        ended = [track for track in self.tracks if now - track.last_seen > self._max_missed_s]
        self.tracks = [track for track in self.tracks if now - track.last_seen <= self._max_missed_s]
        return pairs, ended

    def end_all(self) -> list[Track]:
        ended, self.tracks = self.tracks, []
        return ended


class TrackingWorker(threading.Thread):
    """Owns one camera's detector calls and tracker; sends forward what the embedder should see."""

    def __init__(
        self,
        camera: str,
        frames: queue.Queue,
        output: queue.Queue,
        detector: Detector,
        gate: QualityGate,
        aligner: Aligner,
        config: TrackerConfig,
    ):
        super().__init__(name=f"track-{camera}", daemon=True)
        self.camera = camera
        self.counters = StageCounters()
        self.last_frame_at: float | None = None
        self._frames = frames
        self._output = output
        self._detector = detector
        self._gate = gate
        self._aligner = aligner
        self._config = config
        self._tracker = IouTracker(config.iou_threshold, config.max_missed_s, config.iou_buffer)
        self._geometry: tuple[int, int] | None = None

    def run(self) -> None:
        while True:
            message = self._frames.get()
            if isinstance(message, StreamEnded):
                self._end_tracks(self._tracker.end_all())
                return
            try:
                self._process(message)
            except Exception:  # one bad frame must not stop the camera
                self.counters.add("frames_failed")
                log.exception("frame processing failed", camera=self.camera, seq=message.seq)

    def _process(self, frame: Frame) -> None:
        geometry = frame.image.shape[:2]
        if self._geometry is not None and geometry != self._geometry:
            # The camera came back with another resolution: boxes of the old geometry mean nothing now.
            log.info("camera geometry changed: tracks ended", camera=self.camera, was=self._geometry, now=geometry)
            self.counters.add("geometry_changes")
            self._end_tracks(self._tracker.end_all())
        self._geometry = geometry
        detections = self._detector.detect(frame.image)
        self.counters.add("frames_processed")
        self.counters.add("faces_detected", len(detections))
        self.last_frame_at = time.monotonic()
        pairs, ended = self._tracker.update(detections, frame.captured_at)
        for track, detection in pairs:
            self._consider(frame, track, detection)
        self._end_tracks(ended)

    def _consider(self, frame: Frame, track: Track, detection: Detection) -> None:
        if track.attempts >= self._config.max_attempts:
            return
        verdict = self._gate.check(frame.image, detection)
        if not verdict.passed:
            self.counters.add(f"faces_dropped_{verdict.reason}")
            return
        quality = face_quality(detection, verdict.sharpness)
        if track.attempts and quality < track.best_quality * self._config.better_face_ratio:
            return
        if self._output.full():
            # The embedder is behind: do not queue a face that would be stale by its turn. The
            # track is not charged an attempt, so a later frame of it is offered again.
            self.counters.add("faces_deferred")
            return
        crop = self._aligner.align(frame.image, detection)
        face_image = generous_crop(frame.image, detection, max_side=FACE_IMAGE_SIDE)
        sample = FaceSample(
            self.camera, track.track_id, detection.bbox, quality, crop, face_image, frame.captured_at, time.time()
        )
        self._output.put(sample)  # only this thread and the other cameras' fill the queue: rarely waits
        track.attempts += 1
        track.best_quality = quality
        self.counters.add("faces_sent")

    def _end_tracks(self, tracks: list[Track]) -> None:
        for track in tracks:
            if track.attempts:  # tracks never embedded produced no decision, so no 'ended' either
                self._output.put(TrackEnded(self.camera, track.track_id, track.bbox, track.last_seen))
