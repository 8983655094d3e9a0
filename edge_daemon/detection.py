"""Face detection: pluggable backends returning boxes, scores and 5 landmarks, plus quality gates."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edge_daemon.config import DetectorConfig
from edge_daemon.isolation import ChildProcess, IsolationError
from edge_daemon.messages import BBox, Detection


class DetectorError(RuntimeError):
    """The detector cannot be created (missing or unreadable model file)."""


class Detector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a BGR uint8 image, in that image's pixel coordinates."""
        ...

    def close(self) -> None: ...


def _downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    return image, scale


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _detections(rows: np.ndarray, scale: float) -> list[Detection]:
    """Rows of (x, y, w, h, 10 landmark coordinates, score) at detection scale -> frame detections."""
    found = []
    for row in rows:
        x, y, w, h = (float(v) / scale for v in row[:4])
        landmarks = np.asarray(row[4:14], dtype=np.float32).reshape(5, 2) / scale
        found.append(Detection(bbox=(x, y, w, h), score=float(row[14]), landmarks=landmarks))
    return found


class YuNetOnnxDetector:
    """OpenCV's ``FaceDetectorYN`` on a YuNet ONNX file (about 20 ms per 640x480 frame on 2 cores)."""

    name = "yunet_onnx"

    def __init__(self, model_path: Path, score_threshold: float = 0.7, max_side: int = 640):
        if not Path(model_path).is_file():
            raise DetectorError(f"YuNet model file not found: {model_path}")
        try:
            self._net = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), score_threshold)
        except cv2.error as exc:
            raise DetectorError(f"cannot load YuNet model {model_path}: {exc.msg.strip()}") from None
        self._max_side = max_side
        self._lock = threading.Lock()  # one network, input size is per call

    def detect(self, image: np.ndarray) -> list[Detection]:
        small, scale = _downscale(_as_bgr(image), self._max_side)
        with self._lock:
            self._net.setInputSize((small.shape[1], small.shape[0]))
            _, faces = self._net.detect(small)
        if faces is None:
            return []
        return _detections(faces, scale)

    def close(self) -> None:
        pass


class YuFaceDetector:
    """libfacedetection (``yuface``): YuNet with compiled-in weights, works on a fresh offline box."""

    name = "yuface"

    def __init__(self, score_threshold: float = 0.7, max_side: int = 640):
        import yuface  # imported here: the ONNX backend does not need it

        self._detect = yuface.c_detect
        self._threshold = score_threshold
        self._max_side = max_side

    def detect(self, image: np.ndarray) -> list[Detection]:
        small, scale = _downscale(_as_bgr(image), self._max_side)
        # Raw rows: score in percent, x, y, w, h, 10 landmark coordinates, padding (int16).
        raw = self._detect(np.ascontiguousarray(small)).astype(np.float32)
        raw = raw[raw[:, 0] >= self._threshold * 100.0]
        rows = np.concatenate([raw[:, 1:15], raw[:, :1] / 100.0], axis=1)
        return _detections(rows, scale)

    def close(self) -> None:
        pass


def create_local_detector(config: DetectorConfig) -> Detector:
    if config.backend == "yunet_onnx":
        return YuNetOnnxDetector(config.model_path, config.score_threshold, config.max_side)
    return YuFaceDetector(config.score_threshold, config.max_side)


class ProcessDetector:
    """A detector backend in a child process (see ``edge_daemon.isolation``). Frames are
    downscaled here first, so only the small image crosses the pipe."""

    def __init__(self, config: DetectorConfig, threads: int = 1):
        try:
            self._child = ChildProcess(
                f"detector-{config.backend}",
                create_local_detector,
                config,
                "detect",
                ("name",),
                recycle_after=config.recycle_after if config.backend == "yuface" else 0,
                threads=threads,
            )
        except IsolationError as exc:
            raise DetectorError(str(exc)) from None
        self.name = self._child.attributes["name"]
        self._max_side = config.max_side

    def detect(self, image: np.ndarray) -> list[Detection]:
        small, scale = _downscale(_as_bgr(image), self._max_side)
        found = self._child.call(small)
        if scale == 1.0:
            return found
        return [
            Detection(tuple(v / scale for v in d.bbox), d.score, d.landmarks / scale) for d in found
        ]

    def close(self) -> None:
        self._child.close()


def create_detector(config: DetectorConfig, separate_process: bool | None = None, threads: int = 1) -> Detector:
    """The configured backend; in a child process (with ``threads`` compute threads) when
    ``separate_process`` (default: the config) says so."""
    if config.separate_process if separate_process is None else separate_process:
        return ProcessDetector(config, threads)
    return create_local_detector(config)


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
