"""Face alignment: warp a detected face into the crop an embedder was trained on."""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from edge_daemon.messages import Detection

# Where the five landmarks (right eye, left eye, nose tip, right and left mouth corners, as the
# YuNet detectors order them) sit in the widely used 112x112 face crop (ArcFace/InsightFace layout).
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


# One aligned crop (BGR uint8), or one per member for a fused embedder.
AlignedFace = np.ndarray | tuple[np.ndarray, ...]


class Aligner(Protocol):
    def align(self, image: np.ndarray, detection: Detection) -> AlignedFace:
        """The aligned face crop (BGR uint8) for one detection in ``image``."""
        ...


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation mapping ``source`` points onto ``target``
    (Umeyama 1991). Returns a 2x3 matrix for ``cv2.warpAffine``."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centred, target_centred = source - source_mean, target - target_mean
    covariance = target_centred.T @ source_centred / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    reflection = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        reflection[1, 1] = -1
    rotation = u @ reflection @ vt
    variance = (source_centred**2).sum() / len(source)
    scale = (singular * np.diag(reflection)).sum() / variance if variance > 0 else 1.0
    translation = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, translation[:, None]])


class TemplateAligner:
    """5-point similarity warp onto the 112x112 template scaled to ``size`` (used by the VGG16 embedder)."""

    def __init__(self, size: int):
        self.size = size
        self.template = TEMPLATE_112 * (size / 112.0)

    def align(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        matrix = similarity_transform(detection.landmarks, self.template)
        return cv2.warpAffine(image, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class DlibChipAligner:
    """dlib's own alignment for its ResNet: its 5-point shape predictor inside the detected box,
    then ``get_face_chip`` (150x150, padding 0.25), which is what the network was trained on."""

    size = 150

    def __init__(self, shape_predictor_path: str):
        import dlib

        self._dlib = dlib
        self._predictor = dlib.shape_predictor(shape_predictor_path)

    def align(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        x, y, w, h = detection.bbox
        # dlib reads only around the face: the predictor inside the box, the chip a padded square
        # around the landmarks (at most about 0.6 face widths beyond the box, turned). So only a
        # crop a face width larger on every side is made RGB: converting the whole frame for every
        # face held the GIL for a quarter of the main process's time with 4 crowd cameras.
        margin = max(w, h, 1.0)
        left, top = max(0, int(x - margin)), max(0, int(y - margin))
        right, bottom = min(image.shape[1], int(x + w + margin) + 2), min(image.shape[0], int(y + h + margin) + 2)
        # OpenCV swaps the channels an order of magnitude faster than numpy copying a reversed view.
        rgb = cv2.cvtColor(image[top:bottom, left:right], cv2.COLOR_BGR2RGB)
        rect = self._dlib.rectangle(
            int(round(x)) - left, int(round(y)) - top, int(round(x + w)) - left, int(round(y + h)) - top
        )
        shape = self._predictor(rgb, rect)
        chip_rgb = self._dlib.get_face_chip(rgb, shape, size=self.size, padding=0.25)
        return cv2.cvtColor(chip_rgb, cv2.COLOR_RGB2BGR)


class EachAligner:
    """For a fused embedder: the face aligned once for each member, as that member expects it."""

    def __init__(self, aligners: list[Aligner]):
        self.aligners = aligners

    def align(self, image: np.ndarray, detection: Detection) -> tuple[np.ndarray, ...]:
        return tuple(aligner.align(image, detection) for aligner in self.aligners)


def first_crop(face: AlignedFace) -> np.ndarray:
    """The crop to show a person (the first member's for a fused embedder)."""
    return face[0] if isinstance(face, tuple) else face


def create_aligner(spec: tuple) -> Aligner:
    """An aligner from an embedder's ``aligner_spec``: ("template", size), ("dlib_chip", predictor
    path) or ("each", (member specs...))."""
    kind, value = spec
    if kind == "template":
        return TemplateAligner(int(value))
    if kind == "dlib_chip":
        return DlibChipAligner(str(value))
    if kind == "each":
        return EachAligner([create_aligner(member) for member in value])
    raise ValueError(f"unknown aligner {kind!r}")
