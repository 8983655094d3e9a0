"""libfacedetection's YuNet with compiled-in weights (the ``yuface`` wheel)."""

from __future__ import annotations

import numpy as np

from edge_daemon.config import DetectorConfig
from edge_daemon.detectors.base import as_bgr, downscale, rows_to_detections
from edge_daemon.messages import Detection


class YuFaceDetector:
    """libfacedetection (``yuface``): YuNet with compiled-in weights, works on a fresh offline box."""

    name = "yuface"

    def __init__(self, score_threshold: float = 0.7, max_side: int = 640):
        import yuface  # imported here: the other backends do not need it

        self._detect = yuface.c_detect
        self._threshold = score_threshold
        self._max_side = max_side

    def detect(self, image: np.ndarray) -> list[Detection]:
        small, scale = downscale(as_bgr(image), self._max_side)
        # Raw rows: score in percent, x, y, w, h, 10 landmark coordinates, padding (int16).
        raw = self._detect(np.ascontiguousarray(small)).astype(np.float32)
        raw = raw[raw[:, 0] >= self._threshold * 100.0]
        rows = np.concatenate([raw[:, 1:15], raw[:, :1] / 100.0], axis=1)
        return rows_to_detections(rows, scale)

    def close(self) -> None:
        pass


def create(config: DetectorConfig) -> YuFaceDetector:
    return YuFaceDetector(config.score_threshold, config.max_side)
