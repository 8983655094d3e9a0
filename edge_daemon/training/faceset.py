"""Training faces: a folder-per-identity dataset turned into aligned face crops, with a disk cache
and a deterministic stratified split.

Faces are found and aligned with the daemon's own detector and alignment code, so the trainer
sees exactly the crops the daemon will embed. Each crop is cached as a PNG named by the image's
content hash and the settings, so a second run skips detection.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge_daemon.config import DetectorConfig
from edge_daemon.detectors import create_detector
from edge_daemon.embedders.alignment import TemplateAligner
from edge_daemon.progress import Progress
from edge_daemon.recognition.enrolment import iter_dataset
from edge_daemon.recognition.images import ImageError, find_faces, load_image

CACHE_VERSION = 1


@dataclass(frozen=True)
class FaceItem:
    identity: str
    source: str  # the original image path
    crop: Path  # the cached aligned crop (BGR PNG)


@dataclass
class FaceSet:
    items: list[FaceItem]
    skipped: list[dict] = field(default_factory=list)  # {"image", "identity", "reason"}
    cache_hits: int = 0

    @property
    def identities(self) -> list[str]:
        return sorted({item.identity for item in self.items})


def dataset_digest(root: Path) -> str:
    """Content hash of a dataset: every image's relative path and bytes."""
    digest = hashlib.sha256()
    for identity, path in iter_dataset(root):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def prepare_faces(root: Path, cache_dir: Path, input_size: int, detector_config: DetectorConfig) -> FaceSet:
    """Detect, align and cache the one face in each image of ``root``. Images that cannot be read,
    or hold no face or several, are skipped and listed with the reason."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    settings_key = json.dumps(
        [CACHE_VERSION, input_size, detector_config.backend, detector_config.score_threshold, detector_config.max_side]
    ).encode()
    aligner = TemplateAligner(input_size)
    detector = None  # created on the first cache miss only
    faces = FaceSet(items=[])
    images = iter_dataset(root)
    progress = Progress(len(images), "finding faces")
    for identity, path in images:
        data = path.read_bytes()
        key = hashlib.sha256(settings_key + data).hexdigest()
        crop_path, skip_path = cache_dir / f"{key}.png", cache_dir / f"{key}.skip.json"
        if crop_path.exists():
            faces.items.append(FaceItem(identity, str(path), crop_path))
            faces.cache_hits += 1
        elif skip_path.exists():
            faces.skipped.append({"image": str(path), "identity": identity, **json.loads(skip_path.read_text())})
            faces.cache_hits += 1
        else:
            if detector is None:
                detector = create_detector(detector_config, separate_process=False)
            reason = _crop_one_face(path, aligner, detector, crop_path)
            if reason is None:
                faces.items.append(FaceItem(identity, str(path), crop_path))
            else:
                _write_atomically(skip_path, lambda temporary: temporary.write_text(json.dumps({"reason": reason})))
                faces.skipped.append({"image": str(path), "identity": identity, "reason": reason})
        progress()
    return faces


def _crop_one_face(path: Path, aligner: TemplateAligner, detector, crop_path: Path) -> str | None:
    try:
        image = load_image(path)
    except ImageError as exc:
        return str(exc)
    detections = find_faces(image, detector)
    if len(detections) != 1:
        return "no face found" if not detections else f"{len(detections)} faces found, expected one"
    crop = aligner.align(image, detections[0])
    _write_atomically(crop_path, lambda temporary: cv2.imwrite(str(temporary), crop))
    return None


def _write_atomically(path: Path, write) -> None:
    """``write(temporary)`` then rename onto ``path``: workers sharing a cache (the trainer under
    tf.distribute) may write the same entry at once; each gets its own temporary, and a reader sees
    the whole file or none. The temporary keeps the suffix: OpenCV picks the format by it."""
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def load_crops(items: list[FaceItem]) -> np.ndarray:
    """The cached crops as one uint8 BGR array (N, S, S, 3)."""
    return np.stack([cv2.imread(str(item.crop), cv2.IMREAD_COLOR) for item in items])


@dataclass
class Split:
    train: list[FaceItem]
    validation: list[FaceItem]
    test: list[FaceItem]
    too_few: dict[str, int]  # identity -> images, left out because they cannot fill every split


def stratified_split(items: list[FaceItem], fractions=(0.70, 0.15, 0.15), seed: int = 1337, min_per_split: int = 1) -> Split:
    """Per identity: shuffle with ``seed`` and cut by ``fractions`` (at least ``min_per_split``
    images in each part). Identities too small for that are reported in ``too_few``."""
    rng = np.random.default_rng(seed)
    by_identity: dict[str, list[FaceItem]] = {}
    for item in sorted(items, key=lambda i: (i.identity, i.source)):
        by_identity.setdefault(item.identity, []).append(item)
    split = Split([], [], [], {})
    needed = 3 * min_per_split
    for identity, group in by_identity.items():
        if len(group) < needed:
            split.too_few[identity] = len(group)
            continue
        order = rng.permutation(len(group))
        group = [group[i] for i in order]
        n_val = max(min_per_split, round(len(group) * fractions[1]))
        n_test = max(min_per_split, round(len(group) * fractions[2]))
        split.validation += group[:n_val]
        split.test += group[n_val : n_val + n_test]
        split.train += group[n_val + n_test :]
    return split
