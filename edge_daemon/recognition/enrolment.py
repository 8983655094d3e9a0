"""Enrolment: people's photos (a folder per identity, or faces from the history) turned into
gallery rows, each with its source and a generous face crop for later re-embedding."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_daemon.detectors.base import Detector
from edge_daemon.embedders.base import Embedder
from edge_daemon.logs import get_logger
from edge_daemon.messages import Detection
from edge_daemon.progress import Progress
from edge_daemon.recognition.gallery import Gallery, validate_identity
from edge_daemon.recognition.images import (
    IMAGE_SUFFIXES,
    ImageError,
    embed_faces,
    face_nearest_centre,
    find_faces,
    generous_crop,
    load_image,
)

log = get_logger(__name__)

PINS_PREFIX = "pins_"


def identity_from_folder(folder_name: str) -> str:
    """Folder name -> identity: the Pins layout ``pins_<Name>`` maps to ``<Name>``."""
    name = folder_name[len(PINS_PREFIX) :] if folder_name.startswith(PINS_PREFIX) else folder_name
    return validate_identity(name)


def iter_dataset(root: Path) -> list[tuple[str, Path]]:
    """(identity, image path) for every ``<identity>/<image>`` under ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset directory not found: {root}")
    items = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        identity = identity_from_folder(folder.name)
        for image in sorted(folder.iterdir()):
            if image.suffix.lower() in IMAGE_SUFFIXES:
                items.append((identity, image))
    return items


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class Enrolment:
    """Embeddings of enrolment photos, with the source and a generous face crop of each."""

    vectors: list[np.ndarray] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    faces: list[np.ndarray | bytes] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def matrix(self, dim: int) -> np.ndarray:
        return np.array(self.vectors, dtype=np.float32).reshape(-1, dim)


def one_face(image: np.ndarray, detector: Detector) -> tuple[Detection | None, str]:
    detections = find_faces(image, detector)
    if len(detections) == 1:
        return detections[0], ""
    return None, "no face found" if not detections else f"{len(detections)} faces found, expected one"


def enrolment_embeddings(paths: list[Path], detector: Detector, embedder: Embedder, progress=None) -> Enrolment:
    """Embeddings of the one face in each image. Images with no face, several faces or that cannot
    be read are returned as skipped with the reason, never guessed."""
    enrolment = Enrolment()
    for path in paths:
        try:
            image = load_image(path)
        except ImageError as exc:
            enrolment.skipped.append(Skipped(str(path), str(exc)))
        else:
            detection, reason = one_face(image, detector)
            if detection is None:
                enrolment.skipped.append(Skipped(str(path), reason))
            else:
                enrolment.vectors.append(embed_faces(image, [detection], embedder)[0])
                enrolment.sources.append(str(path))
                enrolment.faces.append(generous_crop(image, detection))
        if progress is not None:
            progress()
    return enrolment


def enrolment_from_history(rows) -> Enrolment:
    """Faces of the history (``history.FaceRow``) as an enrolment: their stored embeddings, and
    their crops kept for ``gallery rebuild``; a face whose crop is gone is skipped."""
    enrolment = Enrolment()
    for row in rows:
        try:
            face = row.crop_path.read_bytes()
        except OSError as exc:
            enrolment.skipped.append(Skipped(str(row.crop_path), f"face {row.face_id}: {exc.strerror}"))
            continue
        enrolment.vectors.append(row.embedding)
        enrolment.sources.append(f"history:{row.face_id}")
        enrolment.faces.append(face)
    return enrolment


def build_gallery(
    directory: Path, detector: Detector, embedder: Embedder, threshold: float | None = None
) -> tuple[Gallery, list[Skipped]]:
    """A gallery of every ``<identity>/<image>`` under ``directory`` and the images skipped (with
    the reason). ``ValueError`` if there is no image at all."""
    items = iter_dataset(directory)
    if not items:
        raise ValueError(f"no images found under {directory} (expected <identity>/<image> folders)")
    by_identity: dict[str, list[Path]] = {}
    for identity, path in items:
        by_identity.setdefault(identity, []).append(path)
    gallery = Gallery.for_embedder(embedder, threshold)
    progress = Progress(len(items), "enrolling")
    skipped_all: list[Skipped] = []
    for identity, paths in by_identity.items():
        enrolment = enrolment_embeddings(paths, detector, embedder, progress)
        skipped_all += enrolment.skipped
        if enrolment.vectors:
            gallery.add(identity, enrolment.matrix(embedder.dim), enrolment.sources, enrolment.faces)
        else:
            log.warning("identity not enrolled: no usable image", identity=identity)
    return gallery, skipped_all


def rebuild_gallery(
    old: Gallery, directory: Path, detector: Detector, embedder: Embedder, threshold: float | None = None
) -> tuple[Gallery, list[Skipped]]:
    """The gallery at ``directory`` re-embedded with ``embedder``: each row from its kept face crop
    (the face nearest the crop's centre), or, for galleries made before crops were kept, from its
    source photo if that still holds exactly one face. Rows that cannot be re-embedded are skipped."""
    gallery = Gallery.for_embedder(embedder, threshold)
    gallery.revision = old.revision
    progress = Progress(len(old.labels), "re-embedding")
    skipped: list[Skipped] = []
    for row, (identity, source) in enumerate(zip(old.labels, old.sources)):
        face_path = old.face_path(directory, row)
        path = face_path or Path(source)
        try:
            image = load_image(path)
        except ImageError as exc:
            skipped.append(Skipped(source, f"{identity}: {exc}"))
            progress()
            continue
        if face_path is not None:
            detection, reason = face_nearest_centre(find_faces(image, detector), image), "no face found in the kept crop"
            kept = face_path.read_bytes()
        else:
            detection, reason = one_face(image, detector)
            kept = generous_crop(image, detection) if detection is not None else None
        if detection is None:
            skipped.append(Skipped(str(path), f"{identity}: {reason}"))
        else:
            gallery.add(identity, embed_faces(image, [detection], embedder), [source], [kept], [old.added[row]])
        progress()
    return gallery, skipped
