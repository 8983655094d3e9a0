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


def yaw(landmarks: np.ndarray) -> float:
    """How far the face is turned: nose-tip offset from the eye midpoint over the eye distance."""
    right_eye, left_eye, nose = landmarks[0], landmarks[1], landmarks[2]
    eye_distance = max(float(np.linalg.norm(left_eye - right_eye)), 1.0)
    return float(nose[0] - (right_eye[0] + left_eye[0]) / 2) / eye_distance


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


# Fitted by ``edge-daemon calibrate --fit-quality`` on LFW View 1 DevTrain and its degraded copies
# (see ``edge_daemon.evaluation.open_set``): coefficients over ``FaceFeatures.vector()``, the 1st and 99th
# percentiles of each regressor in the fit ("range", where the regressors are clipped), and of the
# fitted expectation ("low", "high": the ends of the 0..1 scale).
QUALITY_MODEL = {"coefficients": [0.224854, 0.054719, 0.581867, -0.01927, 0.0], "range": [[1.0, 1.512586, 0.84, 0.0, 0.0], [1.0, 2.8588, 0.94, 0.435133, 0.150337]], "low": 0.806354, "high": 0.921892}
DETAIL_SIDE = 64  # faces are resampled to this side before measuring detail (see ``detail``)


def detail(image: np.ndarray, bbox: BBox) -> float:
    """log10 of the variance of the Laplacian of the face resampled to ``DETAIL_SIDE`` pixels.

    Unlike ``sharpness`` (which keeps small faces at their own size) this measures every face at one
    scale, so it carries the face's size as well: a 24 px face, or one that was 24 px before a
    camera or a JPEG upscaled it, is smooth at 64 px and scores low."""
    x, y, w, h = (int(round(v)) for v in bbox)
    patch = image[max(0, y) : y + h, max(0, x) : x + w]
    if patch.size == 0:
        return 0.0
    gray = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY) if patch.ndim == 3 else patch
    shrinking = max(gray.shape) > DETAIL_SIDE
    resized = cv2.resize(gray, (DETAIL_SIDE, DETAIL_SIDE), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return float(np.log10(1.0 + cv2.Laplacian(resized, cv2.CV_64F).var()))


def pitch(landmarks: np.ndarray) -> float:
    """How far the face is tilted up or down: where the nose tip sits between the eye line (0) and
    the mouth line (1), less its place in a frontal face (the alignment template's 0.5)."""
    eyes_y = (landmarks[0, 1] + landmarks[1, 1]) / 2
    mouth_y = (landmarks[3, 1] + landmarks[4, 1]) / 2
    return float((landmarks[2, 1] - eyes_y) / max(mouth_y - eyes_y, 1.0)) - FRONTAL_NOSE_PLACE


FRONTAL_NOSE_PLACE = 0.5  # (71.7 - 51.6) / (92.3 - 51.6) in alignment.TEMPLATE_112, rounded


@dataclass(frozen=True)
class FaceFeatures:
    """What can be measured about one detected face before it is embedded."""

    width: float  # pixels
    detail: float  # see ``detail``
    detector_score: float
    yaw: float
    pitch: float

    def vector(self) -> np.ndarray:
        """The regressors of the quality model, in ``QUALITY_MODEL``'s order."""
        return np.array([1.0, self.detail, self.detector_score, abs(self.yaw), abs(self.pitch)])


def face_features(image: np.ndarray, detection: Detection) -> FaceFeatures:
    return FaceFeatures(
        width=float(detection.bbox[2]),
        detail=detail(image, detection.bbox),
        detector_score=float(detection.score),
        yaw=yaw(detection.landmarks),
        pitch=pitch(detection.landmarks),
    )


def face_quality(features: FaceFeatures, model: dict | None = None) -> float:
    """The face-quality score, 0 (useless) to 1 (as good as a sharp frontal photo): the expected
    cosine between this face and a clean photo of the same person, from a linear model fitted by
    ``edge-daemon calibrate --fit-quality`` (``model``, by default ``QUALITY_MODEL``), rescaled so
    that the fit's lowest and highest expectations map to 0 and 1."""
    model = QUALITY_MODEL if model is None else model
    coefficients, low, high = model["coefficients"], model["low"], model["high"]
    # A linear fit is trusted only over the range it was fitted on: a camera's detector scores,
    # say, go lower than LFW's ever do, and extrapolating would call a usable face worthless.
    regressors = np.clip(features.vector(), model["range"][0], model["range"][1])
    expected = float(np.dot(coefficients, regressors))
    return float(np.clip((expected - low) / (high - low), 0.0, 1.0))
