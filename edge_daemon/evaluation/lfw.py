"""Face verification on LFW-style pairs: pair scores, threshold calibration at a false-accept rate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_daemon.detectors import Detector
from edge_daemon.embedders import Embedder
from edge_daemon.messages import Detection
from edge_daemon.progress import Progress
from edge_daemon.recognition.images import ImageError, embed_faces, face_nearest_centre, find_faces, load_image


@dataclass(frozen=True)
class Pair:
    first: tuple[str, int]
    second: tuple[str, int]
    same: bool


@dataclass(frozen=True)
class PairsFile:
    folds: int
    pairs: list[Pair]  # fold after fold; within a fold the matched pairs come first


def read_pairs(path: Path) -> PairsFile:
    """An LFW pairs file: a header line ``N`` (one set) or ``FOLDS N`` (View 2), then per fold
    N matched lines ``name i j`` and N mismatched lines ``name1 i name2 j``."""
    lines = [line.split() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path}: empty pairs file")
    header = [int(v) for v in lines[0]]
    folds, per_set = (1, header[0]) if len(header) == 1 else (header[0], header[1])
    pairs = []
    for fields in lines[1:]:
        if len(fields) == 3:
            pairs.append(Pair((fields[0], int(fields[1])), (fields[0], int(fields[2])), True))
        elif len(fields) == 4:
            pairs.append(Pair((fields[0], int(fields[1])), (fields[2], int(fields[3])), False))
        else:
            raise ValueError(f"{path}: cannot parse pair line {' '.join(fields)!r}")
    if len(pairs) != folds * per_set * 2:
        raise ValueError(f"{path}: header promises {folds}x2x{per_set} pairs, found {len(pairs)}")
    return PairsFile(folds, pairs)


def lfw_image_path(root: Path, name: str, number: int) -> Path:
    return Path(root) / name / f"{name}_{number:04d}.jpg"


def lfw_subject(images: Path, key: tuple[str, int], detector: Detector) -> tuple[np.ndarray | None, Detection | None]:
    """An LFW image and its subject, the face nearest the centre (None where unreadable or faceless)."""
    try:
        image = load_image(lfw_image_path(images, *key))
    except ImageError:
        return None, None
    return image, face_nearest_centre(find_faces(image, detector), image)


def pair_scores(
    pairs: list[Pair], images: Path, detector: Detector, embedder: Embedder, job: str = "embedding"
) -> tuple[np.ndarray, int]:
    """Cosine score per pair (NaN where a face was not found) and the number of images without a face.
    Each image is embedded once; the face nearest the image centre is the subject. Progress is
    reported as ``job``."""
    embeddings: dict[tuple[str, int], np.ndarray | None] = {}
    keys = list(dict.fromkeys(key for pair in pairs for key in (pair.first, pair.second)))
    progress = Progress(len(keys), job)
    for key in keys:
        image, face = lfw_subject(images, key, detector)
        embeddings[key] = embed_faces(image, [face], embedder)[0] if face is not None else None
        progress()
    scores = np.full(len(pairs), np.nan, dtype=np.float64)
    for i, pair in enumerate(pairs):
        first, second = embeddings[pair.first], embeddings[pair.second]
        if first is not None and second is not None:
            scores[i] = float(np.dot(first, second))
    missing = sum(vector is None for vector in embeddings.values())
    return scores, missing


def threshold_at_far(impostor_scores: np.ndarray, far: float) -> float:
    """The lowest threshold at which at most ``far`` of impostor pairs score at or above it."""
    impostors = np.sort(np.asarray(impostor_scores, dtype=np.float64))[::-1]
    if not len(impostors):
        raise ValueError("no impostor scores")
    allowed = int(np.floor(far * len(impostors)))
    if allowed >= len(impostors):
        return float(impostors[-1])
    # Just above the first impostor score that would exceed the allowance.
    return float(np.nextafter(impostors[allowed], np.inf))


def roc_curve(genuine: np.ndarray, impostor: np.ndarray, points: int = 201) -> dict[str, list[float]]:
    """False-accept and false-reject rates over thresholds spanning both score ranges."""
    genuine, impostor = np.asarray(genuine), np.asarray(impostor)
    low, high = float(min(genuine.min(), impostor.min())), float(max(genuine.max(), impostor.max()))
    thresholds = np.linspace(low, high, points)
    far = [(impostor >= t).mean() for t in thresholds]
    frr = [(genuine < t).mean() for t in thresholds]
    return {"threshold": thresholds.tolist(), "far": [float(v) for v in far], "frr": [float(v) for v in frr]}


@dataclass(frozen=True)
class Calibration:
    threshold: float
    far_target: float
    far: float
    frr: float
    genuine: int
    impostor: int
    source: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def calibrate(genuine: np.ndarray, impostor: np.ndarray, far: float, source: str) -> Calibration:
    """The unknown-threshold for a target false-accept rate, with the rates it achieves."""
    genuine = np.asarray(genuine, dtype=np.float64)
    impostor = np.asarray(impostor, dtype=np.float64)
    threshold = math.ceil(threshold_at_far(impostor, far) * 1e6) / 1e6  # rounded up: never more false accepts
    return Calibration(
        threshold=threshold,
        far_target=far,
        far=float((impostor >= threshold).mean()),
        frr=float((genuine < threshold).mean()) if len(genuine) else float("nan"),
        genuine=len(genuine),
        impostor=len(impostor),
        source=source,
    )


def best_accuracy_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold (midway between neighbouring scores) that classifies the most pairs right."""
    order = np.argsort(scores)
    scores, same = np.asarray(scores)[order], np.asarray(same)[order]
    # Threshold below index i: pairs [0, i) rejected, [i, n) accepted.
    correct_rejects = np.concatenate([[0], np.cumsum(~same)])
    correct_accepts = np.concatenate([np.cumsum(same[::-1])[::-1], [0]])
    best = int(np.argmax(correct_rejects + correct_accepts))
    if best == 0:
        return float(scores[0] - 1e-6)
    if best == len(scores):
        return float(scores[-1] + 1e-6)
    return float((scores[best - 1] + scores[best]) / 2)


def _accuracy(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Share of pairs right; a pair without a score (face not found) counts as wrong."""
    right = np.where(np.isnan(scores), False, (scores >= threshold) == same)
    return float(right.mean())


def verification_accuracy(
    pairs_file: PairsFile,
    scores: np.ndarray,
    threshold_scores: tuple[np.ndarray, np.ndarray] | None = None,
    skip_missing: bool = False,
) -> dict:
    """LFW-protocol accuracy. With several folds, each fold is scored at the threshold that is best
    on the other folds; a single-set file needs ``threshold_scores`` (scores, same) from another file."""
    same = np.array([pair.same for pair in pairs_file.pairs])
    scores = np.asarray(scores, dtype=np.float64)
    folds = np.repeat(np.arange(pairs_file.folds), len(same) // pairs_file.folds)
    keep = ~np.isnan(scores) if skip_missing else np.ones(len(scores), dtype=bool)
    accuracies, thresholds = [], []
    for fold in range(pairs_file.folds):
        test = (folds == fold) & keep
        if pairs_file.folds > 1:
            train = (folds != fold) & ~np.isnan(scores)
            threshold = best_accuracy_threshold(scores[train], same[train])
        elif threshold_scores is not None:
            other_scores, other_same = threshold_scores
            found = ~np.isnan(other_scores)
            threshold = best_accuracy_threshold(other_scores[found], other_same[found])
        else:
            raise ValueError("a single-set pairs file needs a threshold from another pairs file (--threshold-pairs)")
        thresholds.append(threshold)
        accuracies.append(_accuracy(scores[test], same[test], threshold))
    return {
        "accuracy": float(np.mean(accuracies)),
        "std": float(np.std(accuracies)),
        "folds": pairs_file.folds,
        "fold_accuracies": accuracies,
        "threshold": float(np.mean(thresholds)),
        "pairs": int(keep.sum()),
        "missing_pairs": int(np.isnan(scores).sum()),
    }
