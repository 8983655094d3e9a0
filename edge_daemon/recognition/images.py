"""Still images and the faces in them: reading image files, finding and embedding faces, and the
generous face crop kept for later re-embedding. Used by the pipeline, the model store and the
enrolment code alike, so it sits low: it knows detectors and embedders only by their protocols."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from edge_daemon.detectors.base import Detector
from edge_daemon.embedders.base import Embedder
from edge_daemon.messages import Detection

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class ImageError(ValueError):
    """An image file cannot be read or decoded."""


def load_image(path: str | Path) -> np.ndarray:
    """The image at ``path`` as a BGR uint8 array, or ``ImageError`` saying why not."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ImageError(f"{path} is not a readable image")
    return image


def find_faces(image: np.ndarray, detector: Detector) -> list[Detection]:
    """Every face the detector finds, largest first."""
    return sorted(detector.detect(image), key=lambda d: d.bbox[2] * d.bbox[3], reverse=True)


def face_nearest_centre(detections: list[Detection], image: np.ndarray) -> Detection | None:
    """The face whose centre is nearest the image centre (LFW-style crops centre their subject)."""
    if not detections:
        return None
    height, width = image.shape[:2]

    def distance(detection: Detection) -> float:
        x, y, w, h = detection.bbox
        return (x + w / 2 - width / 2) ** 2 + (y + h / 2 - height / 2) ** 2

    return min(detections, key=distance)


def embed_faces(image: np.ndarray, detections: list[Detection], embedder: Embedder) -> np.ndarray:
    """(N, dim) L2-normalised embeddings, one row per detection."""
    crops = [embedder.aligner.align(image, detection) for detection in detections]
    return embedder.embed(crops)


def generous_crop(image: np.ndarray, detection: Detection, margin: float = 0.6, max_side: int = 480) -> np.ndarray:
    """The face with ``margin`` times its size around it on each side (room for any embedder's
    alignment, and for the detector to find it again), at most ``max_side`` pixels."""
    x, y, w, h = detection.bbox
    height, width = image.shape[:2]
    left, top = max(0, int(x - margin * w)), max(0, int(y - margin * h))
    right, bottom = min(width, int(x + w + margin * w)), min(height, int(y + h + margin * h))
    crop = image[top:bottom, left:right]
    scale = max_side / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)


def one_face_crops(paths: Iterable[Path], detector: Detector, aligner) -> Iterator[np.ndarray]:
    """The aligned face of each photo that holds exactly one face, in order; unreadable photos and
    photos with none or several faces are passed over (reference faces for checks and calibration)."""
    for path in paths:
        try:
            image = load_image(path)
        except ImageError:
            continue
        faces = find_faces(image, detector)
        if len(faces) == 1:
            yield aligner.align(image, faces[0])
