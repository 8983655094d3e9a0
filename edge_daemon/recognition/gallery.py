"""The enrolled gallery: embeddings + labels in one directory, searched with FAISS (cosine).

Layout of a gallery directory (no pickle anywhere):
  gallery.json    embedder name and version, dimension, unknown-threshold and its source, revision
  labels.json     {"labels": [identity per row], "sources": [image per row], "faces": [face file per row],
                   "added": [UTC time per row, "" for rows from before it was kept],
                   "rejected": [{"identity", "source"} per rejected.npy row]}
  embeddings.npy  float32 (N, dim), L2-normalised, loaded with allow_pickle=False
  rejected.npy    float32 (M, dim): faces someone said are *not* that identity ("not this person")
  faces/          a generous JPEG crop of each enrolled face, so ``edge-daemon gallery rebuild``
                  can re-embed the gallery with another embedder without the original photos

The FAISS index is rebuilt from ``embeddings.npy`` at load (milliseconds for 100k rows), so a
damaged or hostile file can only fail numpy's strict parser, never FAISS's binary reader.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import faiss
import numpy as np

from edge_daemon.messages import Verdict
from edge_daemon.recognition.thresholds import OpenSetTable, OperatingPoint

GALLERY_FORMAT = "edge-daemon-gallery"
META_FILE = "gallery.json"
LABELS_FILE = "labels.json"
EMBEDDINGS_FILE = "embeddings.npy"
REJECTED_FILE = "rejected.npy"
GALLERY_FILES = (EMBEDDINGS_FILE, REJECTED_FILE, LABELS_FILE, META_FILE)  # written in this order: gallery.json last
REJECTED_NEIGHBOURS = 16
FACES_DIR = "faces"
MAX_IDENTITY_LENGTH = 128


class GalleryError(RuntimeError):
    """A gallery cannot be read, written or used with this embedder."""


def validate_identity(name: str) -> str:
    """The identity name as stored, or ``ValueError`` saying why it is refused."""
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        raise ValueError("identity name is empty")
    if len(name) > MAX_IDENTITY_LENGTH:
        raise ValueError(f"identity name is longer than {MAX_IDENTITY_LENGTH} characters")
    if "/" in name or "\\" in name or name in {".", ".."}:
        raise ValueError(f"identity name {name!r} contains a path separator")
    if any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} for char in name):
        raise ValueError(f"identity name {name!r} contains control characters")
    if "<" in name or ">" in name:  # a name travels to pages, dashboards and Home Assistant: never markup
        raise ValueError(f"identity name {name!r} contains markup (< or >)")
    return name


@dataclass(frozen=True)
class Match:
    identity: str | None  # None when the best score is below the threshold
    score: float
    nearest: str | None  # best gallery identity regardless of the threshold
    verdict: Verdict = "unknown"
    threshold: float = float("nan")  # the threshold the score was held against


class Gallery:
    """Embeddings of enrolled people for one embedder, and the threshold for "unknown"."""

    def __init__(
        self,
        embedder: str,
        embedder_version: str,
        dim: int,
        threshold: float,
        threshold_source: str,
        labels: list[str] | None = None,
        sources: list[str] | None = None,
        vectors: np.ndarray | None = None,
        revision: int = 0,
        faces: list[str] | None = None,
        rejected: list[dict] | None = None,
        rejected_vectors: np.ndarray | None = None,
        added: list[str] | None = None,
    ):
        self.embedder = embedder
        self.embedder_version = embedder_version
        self.dim = dim
        self.threshold = threshold
        self.threshold_source = threshold_source
        self.labels = list(labels or [])
        self.sources = list(sources or [])
        self.faces = list(faces) if faces is not None else [""] * len(self.labels)  # "" : no face kept
        self.added = list(added) if added is not None else [""] * len(self.labels)  # "": not known
        self._unsaved_faces: dict[str, bytes] = {}
        self.vectors = np.zeros((0, dim), dtype=np.float32) if vectors is None else np.asarray(vectors, np.float32)
        self.rejected = list(rejected or [])  # {"identity", "source"} per rejected_vectors row
        self.rejected_vectors = (
            np.zeros((0, dim), dtype=np.float32) if rejected_vectors is None else np.asarray(rejected_vectors, np.float32)
        )
        self._rejected_index = self._flat_index(self.rejected_vectors)
        self.revision = revision
        self._open_set: tuple[OpenSetTable, float, float] | None = None
        self.operating_point: OperatingPoint | None = None  # open-set thresholds for this many people
        self.index_kind = "flat"
        self._approximate_from: int | None = None
        self._index = self._build_index()

    @classmethod
    def for_embedder(cls, embedder, threshold: float | None = None) -> Gallery:
        """An empty gallery for ``embedder`` (an ``edge_daemon.embedders.Embedder``) with its calibrated
        threshold, or ``threshold`` (e.g. from ``edge-daemon calibrate``) when given."""
        if threshold is not None:
            return cls(embedder.name, embedder.version, embedder.dim, threshold, "gallery.threshold")
        if embedder.default_threshold is None:
            raise GalleryError(f"no unknown-threshold for this embedder: {embedder.threshold_source}")
        return cls(embedder.name, embedder.version, embedder.dim, embedder.default_threshold, embedder.threshold_source)

    def use_open_set(self, table: OpenSetTable | None, fpir: float, min_useful_tar: float) -> None:
        """Hold at most ``fpir`` of strangers named with ``table``'s thresholds, re-derived for the
        number of people whenever someone is added or removed (None: the single ``threshold``)."""
        self._open_set = None if table is None else (table, fpir, min_useful_tar)
        self._derive_operating_point()

    def _derive_operating_point(self) -> None:
        if self._open_set is None:
            self.operating_point = None
            return
        table, fpir, min_useful_tar = self._open_set
        self.operating_point = table.operating_point(len(set(self.labels)), fpir, min_useful_tar)

    def use_approximate_index(self, from_size: int | None) -> None:
        """Search with HNSW (approximate) once the gallery holds ``from_size`` embeddings or more;
        below that, or with None, the exact ``IndexFlatIP``."""
        self._approximate_from = from_size
        self._index = self._build_index()

    def _build_index(self) -> faiss.Index:
        if self._approximate_from is not None and len(self.vectors) >= self._approximate_from:
            index = faiss.IndexHNSWFlat(self.dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = 64
            self.index_kind = "hnsw"
        else:
            index = faiss.IndexFlatIP(self.dim)
            self.index_kind = "flat"
        if len(self.vectors):
            index.add(np.ascontiguousarray(self.vectors))
        return index

    @staticmethod
    def _flat_index(vectors: np.ndarray) -> faiss.Index:
        index = faiss.IndexFlatIP(vectors.shape[1])
        if len(vectors):
            index.add(np.ascontiguousarray(vectors))
        return index

    @property
    def version(self) -> str:
        """Content hash: changes whenever an embedding, label or the threshold changes."""
        digest = hashlib.sha256()
        digest.update(json.dumps([self.embedder, self.embedder_version, self.threshold, self.labels]).encode())
        digest.update(np.ascontiguousarray(self.vectors).tobytes())
        if self.rejected:
            digest.update(json.dumps(self.rejected).encode())
            digest.update(np.ascontiguousarray(self.rejected_vectors).tobytes())
        return f"r{self.revision}-{digest.hexdigest()[:12]}"

    def identities(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for label in self.labels:
            counts[label] = counts.get(label, 0) + 1
        return dict(sorted(counts.items()))

    def check_embedder(self, embedder) -> None:
        if (self.embedder, self.embedder_version) != (embedder.name, embedder.version):
            raise GalleryError(
                f"gallery was built with embedder {self.embedder} ({self.embedder_version}) but this configuration uses "
                f"{embedder.name} ({embedder.version}): re-embed it with 'edge-daemon gallery rebuild GALLERY' "
                f"(it keeps the old files aside), or configure the embedder it was built with"
            )

    def add(
        self,
        identity: str,
        vectors: np.ndarray,
        sources: list[str],
        faces: list[np.ndarray | bytes] | None = None,
        added: list[str] | None = None,
    ) -> None:
        """Enrol ``vectors`` of one person; ``faces`` (one BGR image, or JPEG bytes, per vector) are
        kept in the gallery for a later rebuild; ``added``: when each was first enrolled (default now)."""
        identity = validate_identity(identity)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if len(vectors) != len(sources) or any(rows is not None and len(rows) != len(sources) for rows in (faces, added)):
            raise ValueError("one source (and face, and time) per vector")
        self.vectors = np.concatenate([self.vectors, vectors])
        self.labels += [identity] * len(vectors)
        self.sources += list(sources)
        self.faces += [self._keep_face(face) for face in faces] if faces is not None else [""] * len(vectors)
        self.added += list(added) if added is not None else [datetime.now(timezone.utc).isoformat(timespec="seconds")] * len(vectors)
        self.revision += 1
        self._index = self._build_index()
        self._derive_operating_point()

    def remove(self, identity: str) -> int:
        """Remove every row of ``identity`` and the faces said not to be them; returns the rows removed."""
        keep = [i for i, label in enumerate(self.labels) if label != identity]
        removed = len(self.labels) - len(keep)
        if removed:
            kept_rejected = [i for i, entry in enumerate(self.rejected) if entry["identity"] != identity]
            self.rejected = [self.rejected[i] for i in kept_rejected]
            self.rejected_vectors = self.rejected_vectors[kept_rejected]
            self._rejected_index = self._flat_index(self.rejected_vectors)
            self._keep_rows(keep)
        return removed

    def remove_row(self, row: int, identity: str) -> None:
        """Remove one photo (row) of ``identity``; ``ValueError`` if that row is not theirs (a page
        showing an older gallery). The last photo of someone removes them altogether, as ``remove``."""
        if not 0 <= row < len(self.labels) or self.labels[row] != identity:
            raise ValueError(f"photo {row} is not one of {identity!r}'s (the gallery changed meanwhile?)")
        if self.labels.count(identity) == 1:
            self.remove(identity)
        else:
            self._keep_rows([i for i in range(len(self.labels)) if i != row])

    def rename(self, old: str, new: str) -> int:
        """Call ``old`` ``new`` from now on, their "not this person" faces included; returns the
        rows renamed. ``ValueError`` if ``old`` is not enrolled or ``new`` already is (or is refused)."""
        new = validate_identity(new)
        if old not in self.labels:
            raise ValueError(f"{old!r} is not enrolled in this gallery")
        if new == old:
            raise ValueError(f"{old!r} is already their name")
        if new in self.labels:
            raise ValueError(f"{new!r} is already enrolled: remove or rename them first")
        self.labels = [new if label == old else label for label in self.labels]
        self.rejected = [{**entry, "identity": new} if entry["identity"] == old else entry for entry in self.rejected]
        self.revision += 1
        return self.labels.count(new)

    def _keep_rows(self, keep: list[int]) -> None:
        """Keep only these rows (every per-row list alike), rebuild the index and the thresholds."""
        self.vectors = self.vectors[keep]
        for name in ("labels", "sources", "faces", "added"):
            values = getattr(self, name)
            setattr(self, name, [values[i] for i in keep])
        self.revision += 1
        self._index = self._build_index()
        self._derive_operating_point()

    def _keep_face(self, face: np.ndarray | bytes) -> str:
        if not isinstance(face, bytes):
            encoded, jpeg = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not encoded:
                raise ValueError("cannot encode the face crop")
            face = jpeg.tobytes()
        data = face
        name = f"{hashlib.sha256(data).hexdigest()[:20]}.jpg"
        self._unsaved_faces[name] = data
        return name

    def face_path(self, directory: Path, row: int) -> Path | None:
        """The kept face crop of ``row`` in the gallery saved at ``directory`` (None if none was kept)."""
        return Path(directory) / FACES_DIR / self.faces[row] if self.faces[row] else None

    def reject(self, identity: str, vector: np.ndarray, source: str) -> None:
        """Remember that the face ``vector`` is not ``identity`` (an enrolled name)."""
        if identity not in self.labels:
            raise ValueError(f"{identity!r} is not enrolled in this gallery")
        self.rejected_vectors = np.concatenate([self.rejected_vectors, np.asarray(vector, np.float32).reshape(1, self.dim)])
        self.rejected.append({"identity": identity, "source": source})
        self.revision += 1
        self._rejected_index = self._flat_index(self.rejected_vectors)

    def match(
        self,
        vectors: np.ndarray,
        threshold: float | None = None,
        top_k: int = 5,
        qualities: list[float] | None = None,
        faces: list[float] | None = None,
    ) -> list[Match]:
        """Best gallery identity, cosine score and verdict for each L2-normalised row of ``vectors``
        (a face, or a track's template of ``faces[i]`` faces; ``qualities[i]`` its quality score,
        1 when not given). ``threshold`` fixes one threshold; without it the operating point's
        threshold for each row's quality and size (``use_open_set``), else the gallery's own.

        A match to NAME is unknown after all when the face is closer to one of NAME's rejected faces
        than to NAME's nearest enrolled one (both found by FAISS): it looks like someone who was
        already mistaken for NAME, more than like NAME."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        thresholds, unsure = self._thresholds(len(vectors), threshold, qualities, faces)
        if not len(self.labels):
            return [Match(None, 0.0, None, "unknown", t) for t in thresholds]
        scores, rows = self._index.search(vectors, min(top_k, len(self.labels)))
        closest_rejected = self._closest_rejected(vectors)
        matches = []
        for score, row, rejected, limit, doubt in zip(scores[:, 0], rows[:, 0], closest_rejected, thresholds, unsure):
            nearest = self.labels[row]
            if score >= limit and rejected.get(nearest, -np.inf) <= score:
                matches.append(Match(nearest, float(score), nearest, "recognized", limit))
            else:  # a rejected look-alike is someone seen well enough: unknown, never uncertain
                doubtful = doubt and score < limit
                matches.append(Match(None, float(score), nearest, "uncertain" if doubtful else "unknown", limit))
        return matches

    def _thresholds(self, rows: int, threshold, qualities, faces) -> tuple[list[float], list[bool]]:
        """Per row: the threshold, and whether a score below it is uncertain rather than unknown."""
        if threshold is not None or self.operating_point is None:
            return [self.threshold if threshold is None else threshold] * rows, [False] * rows
        point = self.operating_point
        qualities = [1.0] * rows if qualities is None else qualities
        faces = [1.0] * rows if faces is None else faces
        pairs = [point.threshold(quality, count) for quality, count in zip(qualities, faces)]
        return [limit for limit, _ in pairs], [tar < point.min_useful_tar for _, tar in pairs]

    def _closest_rejected(self, vectors: np.ndarray) -> list[dict[str, float]]:
        """Per face: identity -> cosine to the closest of its rejected faces among the nearest few."""
        if not self.rejected:
            return [{} for _ in range(len(vectors))]
        scores, rows = self._rejected_index.search(vectors, min(REJECTED_NEIGHBOURS, len(self.rejected)))
        closest = []
        for face_scores, face_rows in zip(scores, rows):
            found: dict[str, float] = {}
            for score, row in zip(face_scores, face_rows):
                if row >= 0:
                    identity = self.rejected[row]["identity"]
                    found[identity] = max(found.get(identity, -np.inf), float(score))
            closest.append(found)
        return closest

    # --- files -------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> Gallery:
        path = Path(path)
        if not (path / META_FILE).is_file():
            raise GalleryError(f"{path} is not a gallery ({META_FILE} missing); create one with 'edge-daemon gallery build'")
        try:
            files = {name: (path / name).read_bytes() for name in GALLERY_FILES}
        except OSError as exc:
            raise GalleryError(f"cannot read gallery {path}: {exc}") from None
        return cls.from_files(files, str(path))

    @classmethod
    def from_files(cls, files: dict[str, bytes], where: str) -> Gallery:
        """The gallery held by the contents of its three files (``GALLERY_FILES``); ``where`` names
        them in errors. Everything is checked: the bytes may come from a disk or a network."""
        try:
            meta = json.loads(files[META_FILE].decode("utf-8"))
            names = json.loads(files[LABELS_FILE].decode("utf-8"))
            vectors = np.load(io.BytesIO(files[EMBEDDINGS_FILE]), allow_pickle=False)
            # Galleries from before "not this person" have no rejected faces.
            rejected_vectors = np.load(io.BytesIO(files[REJECTED_FILE]), allow_pickle=False) if files.get(REJECTED_FILE) else None
        except (KeyError, ValueError, UnicodeDecodeError) as exc:
            raise GalleryError(f"cannot read gallery {where}: {exc}") from None
        try:
            if meta["format"] != GALLERY_FORMAT:
                raise GalleryError(f"{where}: not an edge-daemon gallery")
            gallery = cls(
                embedder=str(meta["embedder"]),
                embedder_version=str(meta["embedder_version"]),
                dim=int(meta["dim"]),
                threshold=float(meta["threshold"]),
                threshold_source=str(meta.get("threshold_source", "")),
                labels=[str(label) for label in names["labels"]],
                sources=[str(source) for source in names["sources"]],
                vectors=vectors,
                revision=int(meta.get("revision", 0)),
                faces=[_face_file_name(face) for face in names["faces"]] if "faces" in names else None,
                rejected=[{"identity": str(r["identity"]), "source": str(r["source"])} for r in names.get("rejected", [])],
                rejected_vectors=rejected_vectors,
                added=[str(when) for when in names["added"]] if "added" in names else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GalleryError(f"gallery {where} is incomplete or damaged: {exc!r}") from None
        if gallery.vectors.ndim != 2 or gallery.vectors.shape != (len(gallery.labels), gallery.dim):
            raise GalleryError(
                f"gallery {where} is damaged: {gallery.vectors.shape} embeddings for {len(gallery.labels)} labels "
                f"of dimension {gallery.dim}"
            )
        if gallery.rejected_vectors.shape != (len(gallery.rejected), gallery.dim) or not np.isfinite(gallery.rejected_vectors).all():
            raise GalleryError(f"gallery {where} is damaged: rejected faces inconsistent")
        if len({len(gallery.sources), len(gallery.faces), len(gallery.added), len(gallery.labels)}) != 1 or not np.isfinite(gallery.vectors).all():
            raise GalleryError(f"gallery {where} is damaged: sources or embeddings inconsistent")
        return gallery

    def files(self) -> dict[str, bytes]:
        """The contents of the gallery's three files, as ``save`` writes them."""
        meta = {
            "format": GALLERY_FORMAT,
            "embedder": self.embedder,
            "embedder_version": self.embedder_version,
            "dim": self.dim,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "revision": self.revision,
            "version": self.version,
            "size": len(self.labels),
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        labels = json.dumps(
            {"labels": self.labels, "sources": self.sources, "faces": self.faces, "added": self.added,
             "rejected": self.rejected},
            ensure_ascii=False, indent=1,
        )
        return {
            EMBEDDINGS_FILE: _npy(self.vectors),
            REJECTED_FILE: _npy(self.rejected_vectors),
            LABELS_FILE: labels.encode(),
            META_FILE: json.dumps(meta, indent=2).encode(),
        }

    def keep_faces(self, faces: dict[str, bytes]) -> None:
        """Face crops (file name -> JPEG) to write with the gallery on the next ``save``; only
        those its rows name are kept."""
        named = set(self.faces)
        self._unsaved_faces.update({name: data for name, data in faces.items() if name in named})

    def save(self, path: Path) -> None:
        """Write the gallery; each file is replaced atomically, ``gallery.json`` last."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        faces_dir = path / FACES_DIR
        faces_dir.mkdir(exist_ok=True)
        for name, data in self._unsaved_faces.items():
            _atomic_write(faces_dir / name, data)
        self._unsaved_faces.clear()
        for name, data in self.files().items():  # gallery.json last: readers see the whole or the old
            _atomic_write(path / name, data)
        for stale in set(p.name for p in faces_dir.glob("*.jpg")) - set(self.faces):  # faces of removed rows
            (faces_dir / stale).unlink(missing_ok=True)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _face_file_name(name: object) -> str:
    """A face file name from labels.json: a plain name inside faces/, never a path."""
    name = str(name)
    if name and (Path(name).name != name or name.startswith(".")):
        raise ValueError(f"face file name {name!r} is not a plain file name")
    return name


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


@contextmanager
def locked(path: Path):
    """Hold an exclusive lock on a gallery directory while changing it (one enrolment at a time)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
