"""YuNet on OpenCV's ``FaceDetectorYN`` from an ONNX file the user provides (``model_path``)."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from edge_daemon.config import DetectorConfig
from edge_daemon.detectors.base import DetectorError, as_bgr, downscale, rows_to_detections
from edge_daemon.messages import Detection


class YuNetOnnxDetector:
    """OpenCV's ``FaceDetectorYN`` on a YuNet ONNX file that the user downloads (docs/guide/models.md)."""

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
        small, scale = downscale(as_bgr(image), self._max_side)
        with self._lock:
            self._net.setInputSize((small.shape[1], small.shape[0]))
            _, faces = self._net.detect(small)
        if faces is None:
            return []
        return rows_to_detections(faces, scale)

    def close(self) -> None:
        pass


def create(config: DetectorConfig) -> YuNetOnnxDetector:
    return YuNetOnnxDetector(config.model_path, config.score_threshold, config.max_side)
