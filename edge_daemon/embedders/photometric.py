"""Photometric normalisation of aligned faces, for night vision and flat light (``embedder.normalise``).

An infrared camera at night gives one grey channel, flat washed-out skin, lifted blacks and noise;
the face models were trained on well-lit colour photos. 'auto' stretches the lightness of faces
that are flat or have no colour at all (an IR frame) before they are embedded, and leaves a
well-exposed colour face exactly as it was: galleries and the shipped thresholds, which are tied
to the embedder's version, stay valid. Measured, it does not help -- the models hardly mind global
contrast; night vision takes detail away, which no stretch puts back -- so it is off by default.
Its parameters and what it costs by condition and face width: docs/guide/night.md.

It lives with the embedders, below recognition, because it is applied in one place that the still
path (recognize, gallery build, enrol) and the daemon share: the embedder's ``embed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_daemon.embedders.alignment import AlignedFace

# Chosen on LFW View 1 DevTrain with bench/conditions.py (docs/guide/night.md#how-it-was-chosen).
STRETCHED = (12.0, 242.0)  # where a flat face's 1st and 99th percentiles of lightness are moved
LOW_CONTRAST = 50.0  # a face whose lightness spans fewer levels (5th to 95th percentile) is flat
# Mean |Cr - 128| + |Cb - 128| below which a picture has no colour: a grey stream's JPEG decodes
# within a level or two of neutral, while skin under any visible light is tens of levels off it.
NO_CHROMA = 4.0
CHROMA_SIDE = 64  # pictures are judged on a copy at most this wide: cheap, and noise averages out


def looks_infrared(image_bgr: np.ndarray) -> bool:
    """Whether a frame or photo has (almost) no colour: an infrared camera's night picture, or a grey photo."""
    scale = min(1.0, CHROMA_SIDE / max(image_bgr.shape[:2]))
    small = cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image_bgr
    chroma = cv2.cvtColor(small, cv2.COLOR_BGR2YCrCb)[:, :, 1:].astype(np.float32) - 128.0
    return float(np.abs(chroma).sum(axis=2).mean()) < NO_CHROMA


def _middle(aligned: np.ndarray) -> np.ndarray:
    """The middle of an aligned crop, where the face is whatever the aligner's margins."""
    height, width = aligned.shape[:2]
    return aligned[int(0.25 * height) : int(0.85 * height), int(0.25 * width) : int(0.75 * width)]


def face_contrast(aligned_bgr: np.ndarray) -> float:
    """The spread of lightness (5th to 95th percentile, 0-255) over the middle of an aligned crop."""
    low, high = np.percentile(cv2.cvtColor(_middle(aligned_bgr), cv2.COLOR_BGR2GRAY), [5, 95])
    return float(high - low)


def normalise_face(aligned_bgr: np.ndarray) -> np.ndarray:
    """``aligned_bgr`` with its lightness (L of Lab; colour kept) stretched so that the face's 1st
    to 99th percentiles span ``STRETCHED``: flat faces gain contrast, a well-exposed one hardly changes."""
    lab = cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2LAB)
    lightness = lab[:, :, 0].astype(np.float32)
    low, high = np.percentile(_middle(lightness), [1, 99])
    lightness = (lightness - low) * (STRETCHED[1] - STRETCHED[0]) / max(high - low, 1.0) + STRETCHED[0]
    lab[:, :, 0] = np.clip(lightness, 0, 255).astype(np.uint8)
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


@dataclass(frozen=True)
class Normaliser:
    """What ``embedder.normalise`` does to an aligned face: 'off', or 'auto': faces with a lightness
    spread under ``low_contrast``, or without colour (a ``low_contrast`` above 255 takes every face:
    how the benchmark measures normalising everything)."""

    mode: str
    low_contrast: float = LOW_CONTRAST

    def wanted(self, crop: np.ndarray) -> bool:
        return self.mode == "auto" and (face_contrast(crop) < self.low_contrast or looks_infrared(crop))

    def __call__(self, face: AlignedFace) -> AlignedFace:
        """The face as it is embedded (every member's crop of a fused embedder, decided on the first)."""
        crops = face if isinstance(face, tuple) else (face,)
        if not self.wanted(crops[0]):
            return face
        done = tuple(normalise_face(crop) for crop in crops)
        return done if isinstance(face, tuple) else done[0]


class NormalisedEmbedder:
    """An embedder whose faces pass through a ``Normaliser`` before they are embedded. Everything
    else (name, version, aligner ...) is the wrapped embedder's: 'auto' leaves every well-exposed
    colour face's embedding as it was, so galleries and thresholds keep their version."""

    def __init__(self, embedder, normaliser: Normaliser):
        self._embedder = embedder
        self.normaliser = normaliser

    def __getattr__(self, name: str):
        return getattr(self._embedder, name)

    def embed(self, crops: list[AlignedFace]) -> np.ndarray:
        return self._embedder.embed([self.normaliser(crop) for crop in crops])

    def close(self) -> None:
        self._embedder.close()
