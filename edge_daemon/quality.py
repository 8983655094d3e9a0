"""Face quality: the gate deciding whether a detected face is worth embedding, and the number
that ranks the faces of one track."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_daemon.config import DetectorConfig
from edge_daemon.messages import BBox, Detection


def sharpness(image: np.ndarray, bbox: BBox) -> float:
    """Variance of the Laplacian inside the box: low values mean a blurred face."""
    x, y, w, h = (int(round(v)) for v in bbox)
    x0, y0 = max(0, x), max(0, y)
    patch = image[y0 : y + h, x0 : x + w]
    if patch.size == 0:
        return 0.0
    gray = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY) if patch.ndim == 3 else patch
    if max(gray.shape) > 128:  # comparable across face sizes, and cheap
        gray = cv2.resize(gray, (128, round(128 * gray.shape[0] / gray.shape[1])), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


@dataclass(frozen=True)
class QualityVerdict:
    passed: bool
    reason: str | None  # "too_small", "low_score", "profile" or "blurry" when not passed
    sharpness: float


class QualityGate:
    """Decides whether a detected face is good enough to embed."""

    def __init__(self, config: DetectorConfig):
        self._min_face_px = config.min_face_px
        self._min_score = config.score_threshold
        self._min_sharpness = config.min_sharpness
        self._max_yaw = config.max_yaw

    def check(self, image: np.ndarray, detection: Detection) -> QualityVerdict:
        _, _, w, h = detection.bbox
        if min(w, h) < self._min_face_px:
            return QualityVerdict(False, "too_small", 0.0)
        if detection.score < self._min_score:
            return QualityVerdict(False, "low_score", 0.0)
        if abs(yaw(detection.landmarks)) > self._max_yaw:
            return QualityVerdict(False, "profile", 0.0)
        value = sharpness(image, detection.bbox)
        if value < self._min_sharpness:
            return QualityVerdict(False, "blurry", value)
        return QualityVerdict(True, None, value)


def yaw(landmarks: np.ndarray) -> float:
    """How far the face is turned: nose-tip offset from the eye midpoint over the eye distance."""
    right_eye, left_eye, nose = landmarks[0], landmarks[1], landmarks[2]
    eye_distance = max(float(np.linalg.norm(left_eye - right_eye)), 1.0)
    return float(nose[0] - (right_eye[0] + left_eye[0]) / 2) / eye_distance


def face_quality(detection: Detection, sharpness_value: float) -> float:
    """One number to compare faces of a track: larger and sharper is better."""
    _, _, w, h = detection.bbox
    return float(w * h) * float(np.sqrt(max(sharpness_value, 1e-6)))
