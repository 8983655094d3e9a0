"""The faces in photos uploaded to the people page, found and embedded on the box.

A photo is checked before it is decoded: Pillow reads only its header (JPEG, PNG, WebP or BMP, the
formats a phone or a browser gives), and one declaring more than ``MAX_PHOTO_PIXELS`` is refused
unread, so a small file that inflates to gigabytes (a decompression bomb) costs nothing. OpenCV then
decodes it as the rest of the daemon reads images (turned upright by its EXIF orientation). It must
hold exactly one face, as for ``edge-daemon enroll``: with none or several, which one is meant is not
guessed.

The models are made on the first photo and closed with ``close``: a detector of the page's own (the
pipeline's are busy with the cameras and batch their frames), and the daemon's embedder when it runs
in a child process, whose calls are serialised there; an embedder in the daemon's process may not be
safe to call from two threads (dlib's and TFLite's are not), so the page then makes its own.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from edge_daemon.detectors.base import Detector
from edge_daemon.embedders.base import Embedder
from edge_daemon.logs import get_logger
from edge_daemon.recognition.enrolment import one_face
from edge_daemon.recognition.images import embed_faces, generous_crop
from edge_daemon.recognition.quality import face_features, face_quality

log = get_logger(__name__)

# A 48-megapixel phone photo passes; decoded, it takes about 150 MB, once at a time.
MAX_PHOTO_PIXELS = 50_000_000
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")


class PhotoRefused(ValueError):
    """A photo that gives no face to enrol; the message says why."""


@dataclass(frozen=True)
class AcceptedFace:
    embedding: np.ndarray  # (dim,), L2-normalised
    crop: np.ndarray  # the generous crop kept in the gallery (BGR)
    quality: float  # quality.face_quality: 0 useless to 1 a sharp frontal photo
    width: int  # the face's width in the photo, pixels


def decode_photo(data: bytes, max_pixels: int = MAX_PHOTO_PIXELS) -> np.ndarray:
    """The photo as a BGR array, or ``PhotoRefused``: not an image of an accepted format, or more
    than ``max_pixels`` pixels (judged from its header, before anything is decoded)."""
    try:
        with Image.open(io.BytesIO(data), formats=PHOTO_FORMATS) as header:
            width, height = header.size
    except Image.DecompressionBombError:
        raise PhotoRefused(f"it declares far more than {max_pixels:,} pixels (a decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):  # SyntaxError: Pillow's "not a PNG"
        raise PhotoRefused("it is not a JPEG, PNG, WebP or BMP image") from None
    if width * height > max_pixels:
        raise PhotoRefused(f"it is {width}×{height} pixels, more than {max_pixels:,}")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[0] * image.shape[1] > max_pixels:
        raise PhotoRefused("the image cannot be decoded (damaged or truncated?)")
    return image


class PhotoFaces:
    """``find(data)``: the one face in an uploaded photo, embedded. One photo at a time (each may
    decode to a large image)."""

    def __init__(
        self,
        new_detector: Callable[[], Detector],
        shared_embedder: Embedder | None,
        new_embedder: Callable[[], Embedder],
        max_pixels: int = MAX_PHOTO_PIXELS,
    ):
        self._new_detector = new_detector
        self._new_embedder = new_embedder
        self._max_pixels = max_pixels
        self._detector: Detector | None = None
        self._shared_embedder = shared_embedder
        self._embedder = shared_embedder
        self._owned: list = []  # the models made here, closed here
        self._lock = threading.Lock()

    def find(self, data: bytes) -> AcceptedFace:
        with self._lock:
            image = decode_photo(data, self._max_pixels)
            detector, embedder = self._models()
            detection, reason = one_face(image, detector)
            if detection is None:
                raise PhotoRefused(reason)
            return AcceptedFace(
                embedding=embed_faces(image, [detection], embedder)[0],
                crop=generous_crop(image, detection),
                quality=face_quality(face_features(image, detection)),
                width=round(detection.bbox[2]),
            )

    def _models(self) -> tuple[Detector, Embedder]:
        if self._detector is None:
            self._detector = self._new_detector()
            self._owned.append(self._detector)
            log.info("review: a detector for uploaded photos is ready")
        if self._embedder is None:
            self._embedder = self._new_embedder()
            self._owned.append(self._embedder)
        return self._detector, self._embedder

    def close(self) -> None:
        with self._lock:
            for model in self._owned:
                model.close()
            self._owned.clear()
            self._detector, self._embedder = None, self._shared_embedder
