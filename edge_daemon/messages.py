"""Typed messages passed forward between pipeline stages through bounded queues.

capture --Frame--> detection+tracking --FaceSample / TrackEnded--> embedding
  --Identification / TrackEnded--> decisions --Event--> sinks
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np

BBox = tuple[float, float, float, float]
"""A box as (x, y, width, height) in frame pixels."""

Verdict = Literal["recognized", "unknown", "uncertain"]
"""recognized: named; unknown: seen well enough to say it is nobody enrolled; uncertain: too poor
a face (or template) to tell a stranger from an enrolled person at the target stranger rate."""


@dataclass(frozen=True)
class Frame:
    camera: str
    seq: int
    image: np.ndarray  # BGR, uint8
    captured_at: float  # wall-clock seconds (time.time()) when the frame was read
    stream_time: float  # seconds of video since the camera first opened, never decreasing: the tracker's clock


@dataclass(frozen=True)
class Detection:
    bbox: BBox
    score: float
    landmarks: np.ndarray  # (5, 2): right eye, left eye, nose tip, right and left mouth corners


@dataclass(frozen=True)
class TrackedFace:
    """Where a live track's face is expected in the next frame, for planning what to detect."""

    face: BBox  # the predicted box itself
    area: BBox  # that box widened by the prediction's uncertainty: the face lies inside it


@dataclass(frozen=True)
class FaceSample:
    """One face of a track that is worth embedding, already aligned for the embedder."""

    camera: str
    track_id: int
    bbox: BBox
    quality: float  # face-quality score, 0 (useless) to 1 (see quality.face_quality)
    crop: np.ndarray | tuple[np.ndarray, ...]  # aligned face as the embedder expects it (alignment.AlignedFace)
    face_image: np.ndarray | None  # the face with room around it, for people (history, review)
    captured_at: float
    enqueued_at: float = 0.0


@dataclass(frozen=True)
class TrackEnded:
    camera: str
    track_id: int
    bbox: BBox


@dataclass(frozen=True)
class TrackUnseen:
    """A track detected several times whose every face the quality gates refused: someone is there,
    seen too poorly to say who (its decision is ``uncertain`` until a face good enough arrives)."""

    camera: str
    track_id: int
    bbox: BBox
    quality: float  # of its latest face
    reason: str  # the gate's reason for that face (too_small, blurry, profile, low_score)
    captured_at: float


@dataclass(frozen=True)
class Identification:
    """The gallery's answer for one embedded face sample."""

    sample: FaceSample
    identity: str | None  # None: below the unknown threshold, or no gallery
    score: float  # cosine similarity to the best gallery match (0 without a gallery)
    gallery_version: str | None
    embedded_at: float
    embedding: np.ndarray | None = None
    verdict: Verdict = "unknown"  # of this face alone


class StageCounters:
    """Counters a stage increments from its own thread while others (stats, /metrics, systemd
    status) read them: the lock keeps a reader from iterating a dict that is gaining a key."""

    def __init__(self) -> None:
        self._values: dict = {}
        self._lock = threading.Lock()

    def add(self, name, amount: int = 1) -> None:
        with self._lock:
            self._values[name] = self._values.get(name, 0) + amount

    def get(self, name) -> int:
        return self._values.get(name, 0)

    @property
    def values(self) -> dict:
        """A copy, safe to iterate."""
        with self._lock:
            return dict(self._values)


class Histogram:
    """Observation counts per bucket (keyed by the bucket's upper bound; inf for the rest)."""

    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = StageCounters()
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts.add(next((b for b in self.buckets if value <= b), float("inf")))
        self.total += value
