"""Typed messages passed forward between pipeline stages through bounded queues.

capture --Frame--> detection+tracking --FaceSample / TrackUnseen / TrackEnded--> embedding
  --Identification / TrackUnseen / TrackEnded--> decisions --Event--> sinks

``FrameQueue``, ``FaceQueue`` and ``IdentificationQueue`` are the queues between them, typed by
what each carries.
"""

from __future__ import annotations

import queue
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

BBox = tuple[float, float, float, float]
"""A box as (x, y, width, height) in frame pixels."""

Verdict = Literal["recognized", "unknown", "uncertain"]
"""recognized: named; unknown: seen well enough to say it is nobody enrolled; uncertain: too poor
a face (or template) to tell a stranger from an enrolled person at the target stranger rate."""


class Picture(Protocol):
    """A decoded frame that is converted only as far as a stage asks: a source's own picture (PyAV's
    YUV frame), so a frame that nothing detects is never made BGR, and the motion mask's small grey
    copy and the detector's shrunk frame are made in one pass from the decoder's planes."""

    @property
    def size(self) -> tuple[int, int]: ...  # width, height

    def bgr(self) -> np.ndarray: ...  # the whole frame, BGR uint8

    def grey(self, size: tuple[int, int]) -> np.ndarray: ...  # shrunk to (width, height) by area averaging

    def bgr_shrunk(self, size: tuple[int, int]) -> np.ndarray: ...  # the same, in BGR


@dataclass(frozen=True, eq=False)
class Frame:
    camera: str
    seq: int
    decoded: np.ndarray | Picture  # a BGR uint8 image, or a picture converted when ``image`` is first read
    captured_at: float  # wall-clock seconds (time.time()) when the frame was read
    stream_time: float  # seconds of video since the camera first opened, never decreasing: the tracker's clock

    @cached_property
    def image(self) -> np.ndarray:
        """The whole frame, BGR uint8 (a picture is converted once, by the first stage that reads it)."""
        return self.decoded if isinstance(self.decoded, np.ndarray) else self.decoded.bgr()

    @property
    def size(self) -> tuple[int, int]:
        """Width and height, without converting anything."""
        if isinstance(self.decoded, np.ndarray):
            return self.decoded.shape[1], self.decoded.shape[0]
        return self.decoded.size

    @property
    def picture(self) -> Picture | None:
        """The decoder's picture, when the source gave one (None for a plain BGR image)."""
        return None if isinstance(self.decoded, np.ndarray) else self.decoded


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


@dataclass(frozen=True)
class StreamEnded:
    """Last message of a camera's frame queue: the capture thread has stopped."""

    camera: str
    reason: str


class Shutdown:
    """Sentinel sent down the pipeline once every producer has stopped."""


FrameQueue = queue.Queue[Frame | StreamEnded]
"""A camera's frames, capture -> tracking; ``StreamEnded`` last."""

FaceQueue = queue.Queue[FaceSample | TrackUnseen | TrackEnded | Shutdown]
"""Every camera's faces worth embedding and its tracks' news, tracking -> embedding."""

IdentificationQueue = queue.Queue[Identification | TrackUnseen | TrackEnded | Shutdown]
"""The gallery's answers, in order with the tracks' news, embedding -> decisions."""


EventType = Literal["recognized", "unknown", "updated", "ended"]


def utc_iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex, description="Unique id; consumers dedupe on it.")
    type: EventType = Field(description="recognized / unknown: first decision for a track; updated: it changed; ended.")
    box: str = Field(description="The box (service.box) whose camera saw the face.")
    camera: str
    track_id: int = Field(description="Per-camera track number; one person walking through keeps one id.")
    identity: str | None = Field(description="Enrolled name, or null when unknown.")
    score: float = Field(allow_inf_nan=False, description="Cosine similarity to the best gallery match behind the decision.")
    verdict: Verdict = Field(
        description="recognized: named; unknown: seen well enough to say it is nobody enrolled; uncertain: the face (or "
        "track) was too poor to tell a stranger from an enrolled person at the target rate of strangers named."
    )
    quality: float | None = Field(
        None, allow_inf_nan=False, description="Face-quality score (0-1) of the face or track template behind the decision."
    )
    bbox: tuple[float, float, float, float] = Field(description="[x, y, w, h] in frame pixels.")
    ts: str = Field(description="When the event was made, ISO 8601 UTC.")
    frame_ts: str = Field(description="When the frame behind the decision was captured, ISO 8601 UTC.")
    attempts: int = Field(description="Faces of this track embedded so far.")
    embedder: str
    embedder_version: str
    gallery_version: str | None
    crop_path: str | None = Field(None, description="JPEG of the face behind the decision, when crops are saved.")

    @model_validator(mode="before")
    @classmethod
    def _verdict_from_identity(cls, data):
        """An event made without a verdict (older code, other producers) has the two-way one."""
        if isinstance(data, dict) and "verdict" not in data:
            data = {**data, "verdict": "recognized" if data.get("identity") is not None else "unknown"}
        return data

    def to_json(self) -> str:
        return self.model_dump_json()
