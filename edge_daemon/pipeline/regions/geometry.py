"""Geometry of regions: a region is a crop of a frame, detected at a scale of its own; boxes are
(x, y, width, height) in frame pixels."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_daemon.messages import BBox


@dataclass(frozen=True)
class Region:
    """A crop of a frame: top-left corner and size, in frame pixels, and the scale it is detected at."""

    x: int
    y: int
    width: int
    height: int
    scale: float = 1.0  # (0, 1]: the crop is shrunk by this before detection

    def __post_init__(self) -> None:
        if not 0 < self.scale <= 1:
            raise ValueError(f"a region's scale must be in (0, 1], got {self.scale}")

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def detected_size(self) -> tuple[int, int]:
        """Width and height of the image the detector is given."""
        return max(1, round(self.width * self.scale)), max(1, round(self.height * self.scale))

    def crop(self, frame: np.ndarray) -> np.ndarray:
        """The region's pixels (a view: nothing is copied)."""
        height, width = frame.shape[:2]
        if self.x < 0 or self.y < 0 or self.x + self.width > width or self.y + self.height > height:
            raise ValueError(f"{self} lies outside the {width}x{height} frame")
        return frame[self.y : self.y + self.height, self.x : self.x + self.width]

    def image(self, frame: np.ndarray) -> np.ndarray:
        """What the detector is given: the crop, shrunk to the region's scale."""
        crop = self.crop(frame)
        if self.scale == 1:
            return crop
        return cv2.resize(crop, self.detected_size, interpolation=cv2.INTER_AREA)


def check_frame_size(frame_size: tuple[int, int]) -> None:
    if min(frame_size) <= 0:
        raise ValueError(f"frame_size must be (width, height) with both positive, got {frame_size}")


def intersection(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """The area two (x, y, w, h) boxes share; 0 when they do not overlap."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(width, 0.0) * max(height, 0.0)


def iou(a: BBox, b: BBox) -> float:
    """Intersection over union of two (x, y, w, h) boxes; 0 when they do not overlap."""
    overlap = intersection(a, b)
    return overlap / (a[2] * a[3] + b[2] * b[3] - overlap) if overlap > 0 else 0.0


def union(a: BBox, b: BBox) -> BBox:
    """The smallest box holding both."""
    left, top = min(a[0], b[0]), min(a[1], b[1])
    return (left, top, max(a[0] + a[2], b[0] + b[2]) - left, max(a[1] + a[3], b[1] + b[3]) - top)
