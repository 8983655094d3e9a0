"""A few plain functions for still images: find faces, embed them, recognise them, enrol people.

The public facade for the CLI, the benches and users; nothing inside the package imports it. The
daemon uses the same detector, aligner and embedder objects in its threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_daemon.detectors import Detector
from edge_daemon.embedders import Embedder
from edge_daemon.messages import BBox, Verdict
from edge_daemon.recognition.enrolment import (
    Enrolment,
    Skipped,
    build_gallery,
    enrolment_embeddings,
    enrolment_from_history,
    identity_from_folder,
    iter_dataset,
    rebuild_gallery,
)
from edge_daemon.recognition.gallery import Gallery
from edge_daemon.recognition.images import (
    IMAGE_SUFFIXES,
    ImageError,
    embed_faces,
    face_nearest_centre,
    find_faces,
    generous_crop,
    load_image,
)
from edge_daemon.recognition.quality import face_features, face_quality

__all__ = [
    "IMAGE_SUFFIXES",
    "Enrolment",
    "ImageError",
    "RecognizedFace",
    "Skipped",
    "build_gallery",
    "embed_faces",
    "enrolment_embeddings",
    "enrolment_from_history",
    "face_nearest_centre",
    "find_faces",
    "generous_crop",
    "identity_from_folder",
    "iter_dataset",
    "load_image",
    "rebuild_gallery",
    "recognize",
]


@dataclass(frozen=True)
class RecognizedFace:
    bbox: BBox
    identity: str | None
    score: float
    detection_score: float
    verdict: Verdict
    quality: float

    def as_dict(self) -> dict:
        return {
            "bbox": [round(v, 1) for v in self.bbox],
            "identity": self.identity,
            "score": round(self.score, 4),
            "verdict": self.verdict,
            "quality": round(self.quality, 4),
        }


def recognize(
    image: np.ndarray,
    detector: Detector,
    embedder: Embedder,
    gallery: Gallery | None,
    threshold: float | None = None,
) -> list[RecognizedFace]:
    """Every face in ``image`` with its gallery identity (None: not named), cosine score, verdict
    and quality. The gallery's open-set thresholds apply (``matcher.use_thresholds``) unless a
    fixed ``threshold`` is given."""
    detections = find_faces(image, detector)
    if not detections:
        return []
    qualities = [face_quality(face_features(image, detection)) for detection in detections]
    vectors = embed_faces(image, detections, embedder)
    if gallery is None:
        return [RecognizedFace(d.bbox, None, 0.0, d.score, "unknown", q) for d, q in zip(detections, qualities)]
    matches = gallery.match(vectors, threshold, qualities=qualities)
    return [
        RecognizedFace(d.bbox, m.identity, m.score, d.score, m.verdict, q) for d, m, q in zip(detections, matches, qualities)
    ]
