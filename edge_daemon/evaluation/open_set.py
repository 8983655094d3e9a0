"""The faces ``edge-daemon calibrate`` and the benches measure: LFW images degraded as a camera
sees a person further away, embedded as the daemon embeds a face; and the fits made from them, the
open-set threshold table (``edge_daemon.recognition.thresholds``) and the face-quality model
(``edge_daemon.recognition.quality``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_daemon.messages import Detection
from edge_daemon.progress import Progress
from edge_daemon.recognition.images import ImageError, face_nearest_centre, find_faces, load_image
from edge_daemon.recognition.quality import QUALITY_MODEL, FaceFeatures, face_features, face_quality
from edge_daemon.recognition.thresholds import OpenSetTable, template

WIDTHS: tuple[int | None, ...] = (None, 48, 32, 24, 20)  # None: the image as it is
JPEG_QUALITY = 75
BINS_PER_UNIT = 10_000  # score histograms over [-1, 1]: thresholds come out to 1e-4
FAR_GRID = tuple(float(f"{v:.4g}") for v in np.logspace(-1, -5, 17))  # per-comparison false-accept rates
TEMPLATE_SIZES = (1, 2, 3, 5)
QUALITY_BANDS = 5


def width_name(width: int | None) -> str:
    return "native" if width is None else f"{width}px"


def shrink(image: np.ndarray, face_width: float, width: int | None) -> np.ndarray:
    """``image`` as a camera sees the person further away: downscaled so the face is ``width``
    pixels wide and JPEG-compressed at quality 75 (None, or a face already that small: unchanged)."""
    if width is None or face_width <= width:
        return image
    scale = width / face_width
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    encoded, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not encoded:
        raise ValueError("cannot JPEG-encode the degraded image")
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


def degrade(image: np.ndarray, face_width: float, width: int | None) -> np.ndarray:
    """``shrink``, then scaled back up to the image's size (the degraded still of the benches)."""
    small = shrink(image, face_width, width)
    if small is image:
        return image
    return cv2.resize(small, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)


def degraded_subject(image: np.ndarray, subject: Detection, width: int | None, detector) -> tuple[np.ndarray, Detection | None]:
    """The degraded still (``degrade``) and its subject, detected at the degraded size -- where a
    camera's detector meets a face that far away, and 100x cheaper than on the upscaled still --
    and carried over to the still's coordinates."""
    small = shrink(image, subject.bbox[2], width)
    if small is image:
        return image, subject
    found = face_nearest_centre(find_faces(small, detector), small)
    still = cv2.resize(small, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    if found is None:
        return still, None
    scale = image.shape[1] / small.shape[1]
    bbox = tuple(float(v) * scale for v in found.bbox)
    return still, Detection(bbox, found.score, np.asarray(found.landmarks, np.float32) * scale)


@dataclass(frozen=True)
class FaceSet:
    """Embedded subjects of LFW-style images at one width: ``keys[i]`` has ``vectors[i]`` and
    ``features[i]``; ``missing`` lists the images where no face was found."""

    keys: list[tuple[str, int]]
    vectors: np.ndarray
    features: list[FaceFeatures]
    missing: list[tuple[str, int]]

    def row(self) -> dict[tuple[str, int], int]:
        return {key: i for i, key in enumerate(self.keys)}


def embed_lfw(keys, images: Path, detector, embedder, widths=WIDTHS, cache: Path | None = None) -> dict:
    """``{width: FaceSet}`` for the LFW images ``keys`` ((name, number)), each degraded to every
    width in ``widths`` (``degraded_subject``) and embedded. With ``cache`` (a directory) each
    image's result at each width is kept per embedder version, so a rerun only embeds what it has
    not seen (the benches and ``calibrate`` share it)."""
    from edge_daemon.evaluation.lfw import lfw_image_path

    folder = None
    if cache is not None:
        folder = Path(cache) / _safe(f"{embedder.name}-{embedder.version}")
        folder.mkdir(parents=True, exist_ok=True)
    found: dict = {width: ([], [], [], []) for width in widths}
    progress = Progress(len(keys), f"embedding LFW at {len(widths)} width(s)")
    for key in keys:
        for width, result in zip(widths, _embed_one(lfw_image_path(images, *key), detector, embedder, widths, folder, key)):
            keys_, vectors, features, missing = found[width]
            if result is None:
                missing.append(key)
            else:
                keys_.append(key)
                vectors.append(result[0])
                features.append(result[1])
        progress()
    return {
        width: FaceSet(k, np.array(v, np.float32).reshape(len(k), embedder.dim), f, m)
        for width, (k, v, f, m) in found.items()
    }


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]


def _embed_one(path: Path, detector, embedder, widths, folder: Path | None, key) -> list:
    """Per width: (embedding, FaceFeatures), or None where no face was found."""
    files = {width: folder / f"{key[0]}_{key[1]:04d}-{width_name(width)}.npz" for width in widths} if folder else {}
    results = {}
    for width, file in files.items():
        if file.exists():
            with np.load(file) as data:
                results[width] = (data["vector"], FaceFeatures(*data["features"].tolist())) if data["found"] else None
    todo = [width for width in widths if width not in results]
    if todo:
        try:
            image = load_image(path)
        except ImageError:
            image = None
        subject = face_nearest_centre(find_faces(image, detector), image) if image is not None else None
        for width in todo:
            face = None
            if subject is not None:
                still, face = degraded_subject(image, subject, width, detector)
            if face is None:
                results[width] = None
            else:
                results[width] = (embedder.embed([embedder.aligner.align(still, face)])[0], face_features(still, face))
            if folder is not None:
                result = results[width]
                arrays = {"found": np.array(result is not None)}
                if result is not None:
                    f = result[1]
                    arrays.update(vector=result[0], features=np.array([f.width, f.detail, f.detector_score, f.yaw, f.pitch]))
                temporary = files[width].with_name(f".{files[width].name}")  # readers never see half a file
                np.savez(temporary, **arrays)
                temporary.replace(files[width])
    return [results[width] for width in widths]


CALIBRATION_PEOPLE = 50
CALIBRATION_MISMATCHED_PAIRS = 1100  # all of pairsDevTrain.txt's


def calibration_keys(
    images: Path, pairs: Path, people: int = CALIBRATION_PEOPLE, mismatched_pairs: int = CALIBRATION_MISMATCHED_PAIRS
) -> tuple[list, list]:
    """The LFW images ``calibrate`` measures, as (probes, gallery). Probes: six images each of the
    first ``people`` people with six or more in the pairs' people file (``pairsDevTrain.txt`` ->
    ``peopleDevTrain.txt``), embedded at every width (genuine pairs, and templates of up to five).
    The gallery, clean: the probes and both images of the first ``mismatched_pairs`` mismatched
    pairs. With the defaults (300 probes, ~2,000 in the gallery) each quality band meets ~600,000
    impostor comparisons -- FARs to 1e-5 -- while embedding the probes at five widths stays a matter
    of minutes (the clean gallery costs one embedding an image)."""
    from edge_daemon.evaluation.lfw import read_pairs

    pairs = Path(pairs)
    probes = []
    for line in (pairs.parent / pairs.name.replace("pairs", "people", 1)).read_text(encoding="utf-8").splitlines()[1:]:
        name, count = line.split()
        if int(count) >= 6 and len(probes) < 6 * people:
            probes += [(name, number) for number in range(1, 7)]
    mismatched = [pair for pair in read_pairs(pairs).pairs if not pair.same]
    gallery = probes + [key for pair in mismatched[:mismatched_pairs] for key in (pair.first, pair.second)]
    return probes, list(dict.fromkeys(gallery))


# --- the table -----------------------------------------------------------------------------

# --- calibration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """A face, or a template of several, of ``identity``: compared with every clean gallery image
    except ``excluded`` (the images it was made from)."""

    vector: np.ndarray
    quality: float
    size: int  # index into TEMPLATE_SIZES
    identity: str
    excluded: tuple[tuple[str, int], ...]


def calibration_probes(sets: dict, quality_of, sizes=TEMPLATE_SIZES) -> list[Probe]:
    """Every face at every width as a probe of one, and for people with more images than the
    largest size, templates of each size: for each of their images left out in turn (it stays
    in the gallery), the next ``k`` images at that width, combined as the daemon combines a track."""
    probes = []
    for faceset in sets.values():
        qualities = [quality_of(features) for features in faceset.features]
        people: dict[str, list[int]] = {}
        for i, key in enumerate(faceset.keys):
            probes.append(Probe(faceset.vectors[i], qualities[i], 0, key[0], (key,)))
            people.setdefault(key[0], []).append(i)
        for rows in people.values():
            if len(rows) <= max(sizes):
                continue
            for left_out in range(len(rows)):
                others = rows[left_out + 1 :] + rows[:left_out]
                for s, k in enumerate(sizes):
                    if k > 1:
                        members = others[:k]
                        vector, quality, _ = template(faceset.vectors[members], [qualities[m] for m in members])
                        keys = tuple(faceset.keys[m] for m in members)
                        probes.append(Probe(vector, quality, s, keys[0][0], keys))
    return probes


def _histogram(scores: np.ndarray) -> np.ndarray:
    bins = np.clip(((scores.astype(np.float64) + 1.0) * BINS_PER_UNIT).astype(np.int64), 0, 2 * BINS_PER_UNIT)
    return np.bincount(bins, minlength=2 * BINS_PER_UNIT + 1)


def score_histograms(probes: list[Probe], gallery: FaceSet, bands: np.ndarray, shape: tuple[int, int], batch: int = 512):
    """Impostor and genuine score histograms per (quality band, template size) of ``probes``
    against every image of ``gallery``."""
    impostor = np.zeros((*shape, 2 * BINS_PER_UNIT + 1), np.int64)
    genuine = np.zeros_like(impostor)
    names = np.array([key[0] for key in gallery.keys])
    column = gallery.row()
    cells: dict[tuple[int, int], list[int]] = {}
    for i, probe in enumerate(probes):
        cells.setdefault((int(bands[i]), probe.size), []).append(i)
    for (band, size), members in cells.items():
        for start in range(0, len(members), batch):
            chunk = [probes[i] for i in members[start : start + batch]]
            scores = np.stack([probe.vector for probe in chunk]) @ gallery.vectors.T
            same = np.array([probe.identity for probe in chunk])[:, None] == names[None, :]
            excluded = np.zeros_like(same)
            for row, probe in enumerate(chunk):
                excluded[row, [column[key] for key in probe.excluded if key in column]] = True
            impostor[band, size] += _histogram(scores[~same])
            genuine[band, size] += _histogram(scores[same & ~excluded])
    return impostor, genuine


def _at_least(histogram: np.ndarray) -> np.ndarray:
    """Per bin: the share of scores in it or above."""
    total = max(int(histogram.sum()), 1)
    return histogram[::-1].cumsum()[::-1] / total


def fit_table(sets: dict, gallery: FaceSet, quality_of, source: str, sizes=TEMPLATE_SIZES, far=FAR_GRID) -> OpenSetTable:
    """The open-set table from probes ``sets`` ({width: FaceSet}) against the clean ``gallery``,
    qualities from ``quality_of`` (FaceFeatures -> quality)."""
    probes = calibration_probes(sets, quality_of, sizes)
    singles = np.array([probe.quality for probe in probes if probe.size == 0])
    edges = np.quantile(singles, np.linspace(0, 1, QUALITY_BANDS + 1)[1:-1])
    bands = np.searchsorted(edges, [probe.quality for probe in probes], side="right")
    impostor, genuine = score_histograms(probes, gallery, bands, (QUALITY_BANDS, len(sizes)))
    bins = np.arange(2 * BINS_PER_UNIT + 1)
    thresholds = np.full((QUALITY_BANDS, len(sizes), len(far)), -1.0)
    for band in range(QUALITY_BANDS):
        for size in range(len(sizes)):
            if impostor[band, size].sum():
                share = _at_least(impostor[band, size])
                for f, rate in enumerate(far):
                    first = bins[share <= rate][0]  # the lowest bin edge with at most ``rate`` at or above it
                    thresholds[band, size, f] = -1.0 + first / BINS_PER_UNIT
    # Never lower for a larger template or a poorer face: an empty or thin cell takes its
    # neighbour's threshold rather than a noisy one below it.
    thresholds = np.maximum.accumulate(thresholds, axis=1)
    thresholds = np.maximum.accumulate(thresholds[::-1], axis=0)[::-1]
    tar = np.zeros_like(thresholds)
    for band in range(QUALITY_BANDS):
        for size in range(len(sizes)):
            share = _at_least(genuine[band, size])
            first = np.round((thresholds[band, size] + 1.0) * BINS_PER_UNIT).astype(np.int64)
            tar[band, size] = share[np.clip(first, 0, len(share) - 1)]
    return OpenSetTable(
        quality_edges=tuple(round(float(v), 6) for v in edges),
        template_sizes=tuple(sizes),
        far=tuple(far),
        thresholds=tuple(tuple(tuple(round(float(v), 4) for v in row) for row in band) for band in thresholds),
        tar=tuple(tuple(tuple(round(float(v), 4) for v in row) for row in band) for band in tar),
        source=source,
    )


POSE_REGRESSORS = (3, 4)  # |yaw| and |pitch| in FaceFeatures.vector()


def fit_quality_model(sets: dict, clean: FaceSet) -> dict:
    """Least-squares fit of each face's mean cosine to ``clean`` photos of the same person (its
    other images) on its ``FaceFeatures.vector()``, over every width of ``sets``: the form of
    ``quality.QUALITY_MODEL``."""
    names = np.array([key[0] for key in clean.keys])
    column = clean.row()
    rows, targets = [], []
    for faceset in sets.values():
        scores = faceset.vectors @ clean.vectors.T
        for i, key in enumerate(faceset.keys):
            same = names == key[0]
            if key in column:
                same[column[key]] = False  # not the same photo
            if same.any():
                rows.append(faceset.features[i].vector())
                targets.append(float(scores[i, same].mean()))
    design, targets = np.array(rows), np.array(targets)
    # A turned face is never better than a frontal one: a pose regressor (|yaw|, |pitch|) that fits
    # with a positive sign stands for something else (small faces' landmarks crowd towards the
    # middle) and is left out, and the rest refitted.
    used = list(range(design.shape[1]))
    while True:
        coefficients = np.zeros(design.shape[1])
        coefficients[used] = np.linalg.lstsq(design[:, used], targets, rcond=None)[0]
        wrong = [i for i in POSE_REGRESSORS if i in used and coefficients[i] > 0]
        if not wrong:
            break
        used.remove(wrong[0])
    fitted = design @ coefficients
    low, high = np.percentile(fitted, [1, 99])
    bounds = np.percentile(design, [1, 99], axis=0)

    def rounded(values) -> list[float]:
        return [round(float(v), 6) for v in values]

    return {
        "coefficients": rounded(coefficients),
        "range": [rounded(bounds[0]), rounded(bounds[1])],
        "low": round(float(low), 6),
        "high": round(float(high), 6),
    }


def calibrate_open_set(
    images: Path, pairs: Path, detector, embedder, widths=WIDTHS, people: int = CALIBRATION_PEOPLE,
    mismatched_pairs: int = CALIBRATION_MISMATCHED_PAIRS, cache: Path | None = None, fit_quality: bool = False,
) -> tuple[OpenSetTable, dict]:
    """What ``edge-daemon calibrate --open-set`` measures: the open-set table of ``embedder`` on the
    ``calibration_keys`` of ``pairs`` at ``widths``, and the quality model its bands were cut with
    (refitted on the same faces with ``fit_quality``, else the shipped ``QUALITY_MODEL``)."""
    probes, gallery = calibration_keys(images, pairs, people, mismatched_pairs)
    sets = embed_lfw(probes, images, detector, embedder, widths, cache)
    clean = embed_lfw(gallery, images, detector, embedder, (None,), cache)[None]
    model = fit_quality_model(sets, clean) if fit_quality else QUALITY_MODEL

    def quality_of(features: FaceFeatures) -> float:
        return face_quality(features, model)

    names = ",".join(width_name(width) for width in widths)
    source = f"{Path(pairs).name}: {len(probes)} faces at {names} against {len(clean.keys)} clean (edge-daemon calibrate)"
    return fit_table(sets, clean, quality_of, source), model
