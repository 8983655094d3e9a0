"""What every detector backend is and shares: the protocol, its error, and the downscale to the
detector's working size with the mapping of its rows back to frame coordinates."""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from edge_daemon.messages import Detection


class DetectorError(RuntimeError):
    """The detector cannot be created (missing or unreadable model file)."""


class Detector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a BGR uint8 image, in that image's pixel coordinates."""
        ...

    def close(self) -> None: ...


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The image shrunk so its longer side is at most ``max_side``, and the scale applied."""
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    return image, scale


def as_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def rows_to_detections(rows: np.ndarray, scale: float) -> list[Detection]:
    """Rows of (x, y, w, h, 10 landmark coordinates, score) at detection scale -> frame detections."""
    found = []
    for row in rows:
        x, y, w, h = (float(v) / scale for v in row[:4])
        landmarks = np.asarray(row[4:14], dtype=np.float32).reshape(5, 2) / scale
        found.append(Detection(bbox=(x, y, w, h), score=float(row[14]), landmarks=landmarks))
    return found
