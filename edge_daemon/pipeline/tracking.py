"""Per-camera detection and tracking: frames in, the faces worth embedding (and track ends) out.

The detector itself is shared by every camera (``detection``); this camera's side decides what
of each frame needs detecting, from its motion and from where its live tracks are predicted to be.

Detections join tracks by where each track's face is predicted to be at the frame's time
(``kalman``), so a face that moves more than its own width between detections keeps its track.
Which of a track's faces are worth embedding is ``face_selection``'s choice.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from edge_daemon.config import TrackerConfig
from edge_daemon.counters import StageCounters
from edge_daemon.embedders.alignment import Aligner
from edge_daemon.logs import get_logger
from edge_daemon.messages import BBox, Detection, FaceQueue, Frame, FrameQueue, StreamEnded, TrackedFace
from edge_daemon.pipeline.camera_view import CameraViews, moving_areas
from edge_daemon.pipeline.detection import CameraDetection
from edge_daemon.pipeline.face_selection import FaceSelection
from edge_daemon.pipeline.kalman import FaceMotion, centre_distance, centre_offset, size_ratio
from edge_daemon.recognition.quality import QualityGate

log = get_logger(__name__)

PREDICTION_SD = 2.0  # a live track's region covers its predicted centre +- this many standard deviations


@dataclass
class Track:
    track_id: int
    bbox: BBox  # the last detection's box (what events report), not the filtered one
    last_seen: float
    motion: FaceMotion
    embedding: np.ndarray | None = None  # its latest detection's that came with one
    hits: int = 1  # detections it has had
    missed: int = 0  # frames processed since its last detection


class Tracker:
    """Associates the detections of one camera's frames with its tracks by predicted motion.

    Each track predicts its box to the frame's timestamp (constant velocity, ``motion.FaceMotion``);
    a detection may continue a track when its centre is within ``gate_sd`` standard deviations of
    the prediction and ``max_distance`` face widths of it, its width within ``max_size_ratio`` of
    the predicted one, and, when both have an embedding, when they look alike
    (``min_appearance_similarity``); a track seen only once, only in the very next frame. Among
    those pairs the assignment with the least total distance wins (Hungarian); the other detections
    start tracks.
    """

    def __init__(self, config: TrackerConfig):
        self._config = config
        self._ids = itertools.count(1)
        self.started = 0  # tracks started so far, for the camera's counters
        self.tracks: list[Track] = []

    def update(
        self,
        detections: list[Detection],
        now: float,
        frame_size: tuple[int, int] | None = None,
        embeddings: list[np.ndarray | None] | None = None,
    ) -> tuple[list[tuple[Track, Detection]], list[Track]]:
        """Match detections (made at ``now``, seconds) to tracks, new tracks for the rest. Returns
        the (track, detection) pairs and the tracks that have ended: unseen for longer than
        ``max_missed_s``, or predicted to have left the frame (``frame_size`` = width, height):
        'ended' then follows a walker's leaving at once, and someone walking in where another
        walked out is not taken for the one who left. ``embeddings``, one per detection (unit
        vectors or None), enable the appearance check."""
        ended = [track for track in self.tracks if self._gone(track, now, frame_size)]
        self.tracks = [track for track in self.tracks if track not in ended]
        embeddings = embeddings or [None] * len(detections)
        costs = np.full((len(self.tracks), len(detections)), np.inf)
        for t, track in enumerate(self.tracks):
            expected, covariance = track.motion.expected(now)
            for d, detection in enumerate(detections):
                if self._compatible(track, expected, detection, embeddings[d], frame_size):
                    costs[t, d] = centre_distance(expected, covariance, detection.bbox)
        costs[costs > self._config.gate_sd] = np.inf
        pairs = []
        matched: set[int] = set()
        if np.isfinite(costs).any():
            # The solver needs a finite matrix; a gated pair costs more than any allowed one could
            # add up to, and is dropped again below.
            refused = costs.size * self._config.gate_sd + 1
            rows, cols = linear_sum_assignment(np.where(np.isfinite(costs), costs, refused))
            for t, d in zip(rows, cols):
                if np.isfinite(costs[t, d]):
                    track = self.tracks[t]
                    track.motion.update(detections[d].bbox, now)
                    track.bbox, track.last_seen = detections[d].bbox, now
                    track.hits += 1
                    if embeddings[d] is not None:
                        track.embedding = embeddings[d]
                    pairs.append((track, detections[d]))
                    matched.add(d)
        for track in self.tracks:
            track.missed = 0 if track.last_seen == now else track.missed + 1
        for d, detection in enumerate(detections):
            if d not in matched:
                motion = FaceMotion(detection.bbox, now, self._config.max_speed)
                track = Track(next(self._ids), detection.bbox, now, motion, embeddings[d])
                self.tracks.append(track)
                self.started += 1
                pairs.append((track, detection))
        return pairs, ended

    def predicted_faces(self, now: float, frame_size: tuple[int, int]) -> list[TrackedFace]:
        """Where the live tracks' faces may be at ``now``: each predicted box, and that box widened
        by ``PREDICTION_SD`` standard deviations of its centre on every side, so that a region
        planned around it holds the face even when it moved unlike the prediction. Tracks about to
        end (unseen too long, or predicted out of the frame) have none: nothing is left to look for."""
        faces = []
        for track in self.tracks:
            if self._gone(track, now, frame_size):
                continue
            (cx, cy, w, h), covariance = track.motion.expected(now)
            if w < 1 or h < 1:
                # a face that shrank fast, predicted well past its last detection (a busy box), can come
                # out at no size at all: there is no box to look in, so nothing to plan a region around
                continue
            margin_x, margin_y = PREDICTION_SD * np.sqrt(np.diag(covariance)[:2])
            left, top = float(cx - w / 2), float(cy - h / 2)
            faces.append(TrackedFace(
                (left, top, float(w), float(h)),
                (left - float(margin_x), top - float(margin_y), float(w + 2 * margin_x), float(h + 2 * margin_y)),
            ))
        return faces

    def _gone(self, track: Track, now: float, frame_size: tuple[int, int] | None) -> bool:
        if now - track.last_seen > self._config.max_missed_s:
            return True
        if frame_size is None:
            return False
        expected, _ = track.motion.expected(now)
        margin = expected[2] / 2  # the centre half a face beyond the edge: the face is out of view
        width, height = frame_size
        return not (-margin <= expected[0] <= width + margin and -margin <= expected[1] <= height + margin)

    def _compatible(
        self,
        track: Track,
        expected: np.ndarray,
        detection: Detection,
        embedding: np.ndarray | None,
        frame_size: tuple[int, int] | None,
    ) -> bool:
        frame_width = frame_size[0] if frame_size is not None else None
        if size_ratio(expected, detection.bbox, frame_width) > self._config.max_size_ratio:
            return False
        if track.hits == 1 and track.missed:
            # Seen once, then not found: its velocity is unknown, so after a gap its gate spans
            # several face widths, and in a crowd a passer-by's face lands in it (the crowd clip
            # showed such swaps). A walker's next detection comes in the very next frame.
            return False
        if centre_offset(expected, detection.bbox) > self._config.max_distance:
            return False
        if track.embedding is None or embedding is None:
            return True
        return float(track.embedding @ embedding) >= self._config.min_appearance_similarity

    def end_all(self) -> list[Track]:
        ended, self.tracks = self.tracks, []
        return ended


class TrackingWorker(threading.Thread):
    """Owns one camera's tracker and its side of detection; sends forward what the embedder should
    see, and hands each frame it had looked at to ``views`` (the cameras view), by reference."""

    def __init__(
        self,
        camera: str,
        frames: FrameQueue,
        output: FaceQueue,
        detection: CameraDetection,
        gate: QualityGate,
        aligner: Aligner,
        config: TrackerConfig,
        views: CameraViews | None = None,
    ):
        super().__init__(name=f"track-{camera}", daemon=True)
        self.camera = camera
        self.counters = StageCounters()
        self.last_frame_at: float | None = None
        self._frames = frames
        self.detection = detection
        self._selection = FaceSelection(camera, output, gate, aligner, config, self.counters)
        self._tracker = Tracker(config)
        self._geometry: tuple[int, int] | None = None
        self._views = views

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
        width, height = frame.size  # not frame.image: a frame that nothing detects is never converted
        geometry = (height, width)
        if self._geometry is not None and geometry != self._geometry:
            # The camera came back with another resolution: boxes of the old geometry mean nothing now.
            log.info("camera geometry changed: tracks ended", camera=self.camera, was=self._geometry, now=geometry)
            self.counters.add("geometry_changes")
            self._end_tracks(self._tracker.end_all())
        self._geometry = geometry
        detections = self.detection.detect(frame, self._tracker.predicted_faces(frame.stream_time, (width, height)))
        # Every frame taken counts, looked at or not: the health check takes a camera whose frames stop
        # being processed for stuck, and an idle scene that skips detection is not.
        self.counters.add("frames_processed")
        self.last_frame_at = time.monotonic()
        if detections is None:
            # The detection queue did not look at it (stale, dropped, failed): no evidence that a
            # track's face is gone, so the tracker does not count it as a miss.
            self.counters.add("frames_not_detected")
            return
        self.counters.add("faces_detected", len(detections))
        started = self._tracker.started
        pairs, ended = self._tracker.update(detections, frame.stream_time, (width, height))
        self.counters.add("tracks_started", self._tracker.started - started)
        if self._views is not None:
            faces = [(track.track_id, detection) for track, detection in pairs]
            self._views.frame_seen(self.camera, frame, faces, moving_areas(self.detection.motion))
        for track, detection in pairs:
            self._selection.consider(frame, track.track_id, detection)
        self._end_tracks(ended)

    def _end_tracks(self, tracks: list[Track]) -> None:
        for track in tracks:
            self._selection.track_ended(track.track_id, track.bbox)
