"""What each camera sees now, for the review pages' cameras view: its latest frame, the faces found
in it with the tracks they joined, the moving areas the motion gate found, and each track's latest
verdict.

The pipeline pays next to nothing for it when nobody looks. Each tracking thread hands over its
latest frame by reference (no copy, no conversion: a decoder's picture stays as it is) with its
faces and moving areas, one reference swap under a lock; the decisions thread writes each track's
latest verdict, dropped when the track ends. What costs is done in ``snapshot``, on the asking
thread, only when someone looks: a BGR frame (already made for a frame that was detected), and
each face's quality gates and quality score. The gates are the ones face selection applies (a
``QualityGate`` from the same settings, on the same frame and detection), so they say what the
pipeline decided without the pipeline keeping it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge_daemon.config import DetectorConfig
from edge_daemon.messages import BBox, Detection, Frame, Picture
from edge_daemon.pipeline.capture import Camera
from edge_daemon.pipeline.motion_gate import Motion, SceneMotion
from edge_daemon.pipeline.status import CameraView, FaceView, TrackVerdict
from edge_daemon.recognition.quality import QualityGate, face_features, face_quality

# Verdicts kept at most, every camera together: each goes when its track ends, so this bounds only
# what a lost track end would leave behind; far more tracks than any box has live at once.
MAX_TRACK_VERDICTS = 4096


@dataclass(frozen=True)
class _LatestFrame:
    frame: Frame
    faces: tuple[tuple[int, Detection], ...]  # (track id, detection)
    motion: tuple[BBox, ...]


class ObservedSceneMotion(SceneMotion):
    """A camera's motion mask that keeps its latest answer: the moving areas of the frame its
    tracking thread has just had detected, for the camera's view."""

    latest: Motion | None = None

    def update(self, frame: np.ndarray | Picture) -> Motion:
        self.latest = super().update(frame)
        return self.latest


def moving_areas(motion: SceneMotion | None) -> tuple[BBox, ...]:
    """The moving areas of the latest frame a camera's motion mask took; none without one that keeps them."""
    latest = motion.latest if isinstance(motion, ObservedSceneMotion) else None
    return tuple(latest.boxes) if latest is not None else ()


class CameraViews:
    """The latest view of every camera, written by the tracking and decisions threads, read by
    ``snapshot``; thread-safe."""

    def __init__(self, cameras: Sequence[Camera], detector: DetectorConfig, max_verdicts: int = MAX_TRACK_VERDICTS):
        self._cameras = {camera.config.name: camera for camera in cameras}
        self._gate = QualityGate(detector)
        self._max_verdicts = max_verdicts
        self._lock = threading.Lock()
        self._latest: dict[str, _LatestFrame] = {}
        self._verdicts: OrderedDict[tuple[str, int], TrackVerdict] = OrderedDict()  # oldest decided first

    def frame_seen(self, camera: str, frame: Frame, faces: Sequence[tuple[int, Detection]], motion: Sequence[BBox]) -> None:
        """A camera's tracking thread is done with ``frame``: ``faces`` are its detections with the
        ids of the tracks they joined, ``motion`` its moving areas."""
        latest = _LatestFrame(frame, tuple(faces), tuple(motion))
        with self._lock:
            self._latest[camera] = latest

    def track_decided(self, camera: str, track_id: int, verdict: TrackVerdict) -> None:
        with self._lock:
            self._verdicts[(camera, track_id)] = verdict
            self._verdicts.move_to_end((camera, track_id))
            while len(self._verdicts) > self._max_verdicts:
                self._verdicts.popitem(last=False)

    def track_ended(self, camera: str, track_id: int) -> None:
        with self._lock:
            self._verdicts.pop((camera, track_id), None)

    def snapshot(self, camera: str) -> CameraView | None:
        """What ``camera`` sees now; None for a name that is not one of the cameras."""
        source = self._cameras.get(camera)
        if source is None:
            return None
        with self._lock:
            latest = self._latest.get(camera)
            verdicts = {track_id: verdict for (name, track_id), verdict in self._verdicts.items() if name == camera}
        if latest is None:
            return CameraView(camera, source.state, None, None, None, (), ())
        image = latest.frame.image.view()  # converted here only if nothing detected it
        image.flags.writeable = False  # the pipeline's own pixels: a page draws on a scaled copy
        faces = tuple(self._face(image, track_id, detection, verdicts.get(track_id)) for track_id, detection in latest.faces)
        return CameraView(camera, source.state, image, latest.frame.seq, latest.frame.captured_at, faces, latest.motion)

    def _face(self, image: np.ndarray, track_id: int, detection: Detection, verdict: TrackVerdict | None) -> FaceView:
        quality = face_quality(face_features(image, detection))
        refused_by = self._gate.check(image, detection).reason
        return FaceView(track_id, detection.bbox, float(detection.score), quality, refused_by, verdict)
