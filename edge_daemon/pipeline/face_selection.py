"""Which of a camera's tracked faces go forward to the embedder, and when a track's end does.

A track's face is embedded only when it helps: the first good face of a new track, then only a
clearly better one (larger and/or sharper by ``better_face_ratio``), at most ``max_attempts`` times.
A track whose faces the quality gates keep refusing is not silent: after ``uncertain_after``
detections it is reported as seen but unrecognisable (``TrackUnseen``, an ``uncertain`` decision).
When the embedder's queue is full the face is deferred (counted) rather than queued to go stale;
the track tries again on a later frame. When it is half full, only first faces of tracks go in:
a track that has an embedded face already waits (``faces_deferred_busy``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from edge_daemon.config import TrackerConfig
from edge_daemon.counters import StageCounters
from edge_daemon.embedders.alignment import Aligner
from edge_daemon.messages import BBox, Detection, FaceQueue, FaceSample, Frame, TrackEnded, TrackUnseen
from edge_daemon.recognition.images import generous_crop
from edge_daemon.recognition.quality import QualityGate, face_features, face_quality

FACE_IMAGE_SIDE = 192  # the face kept for people (history, review): enough to recognise, and to enrol from


@dataclass
class Offered:
    """What one track has offered the embedder so far."""

    attempts: int = 0  # faces sent
    best_quality: float = 0.0  # of the latest face sent
    refused: int = 0  # detections whose face the quality gates refused
    reported_unseen: bool = False  # a TrackUnseen went forward for it


class FaceSelection:
    """One camera's choice of faces: ``consider`` each (track, detection) pair of a frame,
    ``track_ended`` each track that ends. Counts what it drops and defers in ``counters``."""

    def __init__(
        self,
        camera: str,
        output: FaceQueue,
        gate: QualityGate,
        aligner: Aligner,
        config: TrackerConfig,
        counters: StageCounters,
    ):
        self.camera = camera
        self._output = output
        self._gate = gate
        self._aligner = aligner
        self._config = config
        self._counters = counters
        self._offered: dict[int, Offered] = {}  # per live track id

    def consider(self, frame: Frame, track_id: int, detection: Detection) -> None:
        """Send the track's face forward if it passes the gates, improves on the track's last one
        and the embedder has room for it."""
        offered = self._offered.setdefault(track_id, Offered())
        if offered.attempts >= self._config.max_attempts:
            return
        verdict = self._gate.check(frame.image, detection)
        if not verdict.passed:
            self._refused(frame, track_id, offered, detection, verdict.reason)
            return
        quality = face_quality(face_features(frame.image, detection))
        if self._improves(offered, quality) and self._embedder_has_room(offered):
            self._send(frame, track_id, offered, detection, quality)

    def track_ended(self, track_id: int, bbox: BBox) -> None:
        """Forward the end of a track that had a face sent or was reported unseen: the others made
        no decision, so no 'ended' either."""
        offered = self._offered.pop(track_id, None)
        if offered is not None and (offered.attempts or offered.reported_unseen):
            self._output.put(TrackEnded(self.camera, track_id, bbox))

    def _refused(self, frame: Frame, track_id: int, offered: Offered, detection: Detection, reason: str) -> None:
        """Count a face the gates refused; the ``uncertain_after``-th refusal of a track that has
        sent no face reports it unseen."""
        self._counters.add(f"faces_dropped_{reason}")
        offered.refused += 1
        if not offered.attempts and not offered.reported_unseen and offered.refused == self._config.uncertain_after:
            quality = face_quality(face_features(frame.image, detection))
            self._output.put(TrackUnseen(self.camera, track_id, detection.bbox, quality, reason, frame.captured_at))
            offered.reported_unseen = True
            self._counters.add("tracks_unseen")

    def _improves(self, offered: Offered, quality: float) -> bool:
        """A track's first face, or one better than its last by ``better_face_ratio``."""
        return not offered.attempts or quality >= offered.best_quality * self._config.better_face_ratio

    def _embedder_has_room(self, offered: Offered) -> bool:
        """Back-pressure: whether the embedder's queue takes this track's face now (counted if not)."""
        if self._output.full():
            # The embedder is behind: do not queue a face that would be stale by its turn. The
            # track is not charged an attempt, so a later frame of it is offered again.
            self._counters.add("faces_deferred")
            return False
        if offered.attempts and 2 * self._output.qsize() >= self._output.maxsize:
            # The embedder is busy: a new track's first face must not wait behind a better face of
            # a track that has one already (with many crowded cameras, more faces are asked for
            # than it embeds).
            self._counters.add("faces_deferred_busy")
            return False
        return True

    def _send(self, frame: Frame, track_id: int, offered: Offered, detection: Detection, quality: float) -> None:
        self._output.put(self._sample(frame, track_id, detection, quality))  # filled by the cameras' threads only: rarely waits
        offered.attempts += 1
        offered.best_quality = quality
        self._counters.add("faces_sent")

    def _sample(self, frame: Frame, track_id: int, detection: Detection, quality: float) -> FaceSample:
        """The face aligned for the embedder, and a generous crop of it kept for people."""
        crop = self._aligner.align(frame.image, detection)
        face_image = generous_crop(frame.image, detection, max_side=FACE_IMAGE_SIDE)
        return FaceSample(self.camera, track_id, detection.bbox, quality, crop, face_image, frame.captured_at, time.time())
