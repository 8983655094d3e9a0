"""The checks a converted model must pass before it is used, made on real faces when it is
converted and recorded beside it (``<model>.check.json``, which ``models.files`` reads):

  - an embedder: cosine to its reference (the original runtime, or a numpy execution of the
    original graph) for every face, and jittered copies of one person closer than any two people;
  - the detector: the same faces, boxes, landmarks and scores as libfacedetection's own code
    (yuface) where that runs, else a face found in every photo (its sha256, already the manifest's,
    ties it to the file verified against yuface).

The faces are the demo's: real photos that ship in registry packages (matplotlib's and
scikit-image's sample data, the ``demo`` extra), jittered. Nothing is downloaded.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import numpy as np

from edge_daemon.demo import SamplePhotosUnavailable, demo_people
from edge_daemon.embedders.base import EmbedderError, l2_normalise
from edge_daemon.logs import get_logger
from edge_daemon.models.files import file_sha256
from edge_daemon.models.onnx import onnx_session
from edge_daemon.models.prepare.convert import graph_json

log = get_logger(__name__)

MIN_PARITY_COSINE = 0.9999
# Jittered copies of one person must stay closer than any two different people by this much: a
# model that maps every face to one vector (as MobileFaceNet does as shipped) cannot pass.
MIN_SEPARATION = 0.05


class VerificationContext(Protocol):
    """What a check needs from the model store: the detector that finds the faces to compare."""

    def verification_detector(self): ...


def onnx_embeddings(model: Path | bytes, rgb_batch: np.ndarray) -> np.ndarray:
    """What a converted model (a file, or its bytes) outputs for RGB NHWC pixels."""
    return onnx_session(model).run(["embedding"], {"image": rgb_batch.astype(np.float32)})[0]


def parity_check(
    converted: np.ndarray, reference: np.ndarray, people: np.ndarray, min_cosine: float = MIN_PARITY_COSINE
) -> dict:
    """Converted vs reference embeddings of the same faces (one row each), and whether the converted
    model keeps different people apart (``people``: a person id per row)."""
    converted, reference = l2_normalise(converted), l2_normalise(reference)
    cosines = (converted * reference).sum(axis=1)
    similarity = converted @ converted.T
    same = people[:, None] == people[None, :]
    off_diagonal = ~np.eye(len(people), dtype=bool)
    min_same = float(similarity[same & off_diagonal].min())
    max_different = float(similarity[~same].max())
    separation = min_same - max_different
    return {
        "faces": int(len(people)),
        "people": int(len(set(people.tolist()))),
        "min_cosine": float(cosines.min()),
        "min_same_person": round(min_same, 4),
        "max_different_people": round(max_different, 4),
        "separation": round(separation, 4),
        "passed": bool(cosines.min() >= min_cosine and separation >= MIN_SEPARATION),
        "rule": f"cosine to the reference >= {min_cosine} for every face, and jittered copies of one person "
        f"closer than any two people by >= {MIN_SEPARATION}",
    }


# Both truncate coordinates to whole pixels and scores to hundredths, so one step is allowed.
MAX_DETECTION_PX = 1.0 + 1e-3
MAX_DETECTION_SCORE = 0.01 + 1e-4
VERIFY_DETECTION_SCORE = 0.5  # below the daemon's 0.7, so that more boxes are compared


def sample_people():
    """The demo's people, whose photos every check uses; one error naming the extra to install
    (or the way around it) where their packages are missing."""
    try:
        return demo_people()
    except SamplePhotosUnavailable:
        raise EmbedderError(
            "'edge-daemon models prepare' checks every model it converts on sample photos from matplotlib and "
            "scikit-image, which are not installed: pip install 'edge-daemon[demo]' (or copy models prepared on "
            "another box with 'edge-daemon models prepare --from DIR')"
        ) from None


# (dx, dy, scale, gain): small shifts, zooms and exposure changes of each photo.
JITTERS = [(0, 0, 1.0, 1.0), (6, -4, 1.0, 1.0), (-5, 3, 1.08, 0.85), (3, 5, 0.93, 1.15)]


def jittered_photos() -> list[tuple[int, np.ndarray]]:
    """Real photos that ship in registry packages (the demo's people), each jittered a few ways,
    with a person id each. Nothing is downloaded."""
    import cv2

    jittered = []
    for person_id, person in enumerate(sample_people()):
        height, width = person.image.shape[:2]
        for dx, dy, scale, gain in JITTERS:
            matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0, scale)
            matrix[:, 2] += (dx, dy)
            jittered.append((person_id, cv2.convertScaleAbs(cv2.warpAffine(person.image, matrix, (width, height)), alpha=gain)))
    return jittered


def verification_images() -> list[np.ndarray]:
    """``jittered_photos`` and mosaics of the people at a quarter and an eighth of their size, for
    small faces."""
    import cv2

    images = [image for _, image in jittered_photos()]
    photos = [person.image for person in sample_people()]
    for factor in (4, 8):
        tiles = [cv2.resize(photo, (photo.shape[1] // factor, photo.shape[0] // factor), interpolation=cv2.INTER_AREA) for photo in photos]
        canvas = np.full((max(t.shape[0] for t in tiles) + 40, sum(t.shape[1] for t in tiles) + 40 * len(tiles), 3), 96, np.uint8)
        x = 20
        for tile in tiles:
            canvas[20:20 + tile.shape[0], x:x + tile.shape[1]] = tile
            x += tile.shape[1] + 40
        images.append(canvas)
    return images


def verification_faces(aligner, detector=None) -> tuple[list[np.ndarray], np.ndarray]:
    """Aligned crops of the faces in ``jittered_photos`` and a person id per crop, found by
    ``detector`` (default: the default detector, on the models prepared already)."""
    from edge_daemon.recognition.images import find_faces

    if detector is None:
        from edge_daemon.config import DetectorConfig
        from edge_daemon.detectors import create_detector

        detector = create_detector(DetectorConfig(), separate_process=False)
    crops, people = [], []
    for person_id, image in jittered_photos():
        faces = find_faces(image, detector)
        if faces:
            crops.append(aligner.align(image, faces[0]))
            people.append(person_id)
    if len(set(people)) < 2:
        raise EmbedderError("cannot verify a converted model: the registry photos gave too few faces")
    return crops, np.array(people)


def _verify_yunet(sources: dict[str, Path], target: Path, store: VerificationContext) -> dict:
    """The converted YuNet against yuface (libfacedetection's own code on the same weights) on the
    registry photos at the daemon's 640 px; where yuface cannot run (it exists for x86_64 CPython
    3.10-3.11 only), the file's sha256, already checked to be the manifest's, is what ties it to the
    file that was verified against yuface, and the demo's faces must still be found."""
    from edge_daemon.detectors.base import downscale
    from edge_daemon.detectors.yunet import YuNetDetector

    detector = YuNetDetector(target, score_threshold=VERIFY_DETECTION_SCORE)
    images = [np.ascontiguousarray(downscale(image, 640)[0]) for image in verification_images()]
    try:
        import yuface
    except ImportError:
        found = [len(detector.rows(image)) for image in images]
        return {
            "images": len(images),
            "faces": int(sum(found)),
            "passed": all(count >= 1 for count in found),
            "reference": "none here (yuface has no wheel for this machine): the file's sha256 is the manifest's, "
            "which was recorded from a file verified against yuface; every registry photo still gives a face",
        }
    faces, worst_px, worst_score, same_count = 0, 0.0, 0.0, True
    for image in images:
        raw = yuface.c_detect(image).astype(np.float32)
        expected = raw[raw[:, 0] >= VERIFY_DETECTION_SCORE * 100]
        found = detector.rows(image)
        if len(found) != len(expected):
            same_count = False
            continue
        faces += len(found)
        if len(found):
            worst_px = max(worst_px, float(np.abs(found[:, :14] - expected[:, 1:15]).max()))
            worst_score = max(worst_score, float(np.abs(found[:, 14] - expected[:, 0] / 100).max()))
    return {
        "images": len(images),
        "faces": faces,
        "same_count": same_count,
        "max_px": round(worst_px, 4),
        "max_score": round(worst_score, 4),
        "passed": bool(same_count and faces >= len(images) and worst_px <= MAX_DETECTION_PX and worst_score <= MAX_DETECTION_SCORE),
        "reference": "yuface c_detect (libfacedetection's compiled code), score >= 0.5",
        "rule": f"same faces as yuface on every image, boxes and landmarks within {MAX_DETECTION_PX:g} px and "
        f"scores within {MAX_DETECTION_SCORE:g} (both truncate; a float summed in another order may cross a boundary)",
    }


def embedder_aligner(model: str):
    """How the embedder of ``model`` aligns a face for it."""
    from edge_daemon.embedders.alignment import TemplateAligner, create_aligner
    from edge_daemon.embedders.dlib_bin import dlib_chip_aligner_spec

    if model == "dlib_resnet":
        return create_aligner(dlib_chip_aligner_spec())
    if model == "mobilefacenet":
        return TemplateAligner(112)
    raise EmbedderError(f"{model} is not an embedder's model")


def _verify_dlib(sources: dict[str, Path], target: Path, store: VerificationContext) -> dict:
    from edge_daemon.embedders.dlib_bin import DlibBinEmbedder

    reference = DlibBinEmbedder()
    chips, people = verification_faces(embedder_aligner("dlib_resnet"), store.verification_detector())
    rgb = np.stack(chips)[:, :, :, ::-1]
    check = parity_check(onnx_embeddings(target, rgb), reference.descriptors(rgb), people)
    return {**check, "reference": "dlib-bin compute_face_descriptor"}


def _verify_mobilefacenet(sources: dict[str, Path], target: Path, store: VerificationContext) -> dict:
    from edge_daemon.models.prepare.converters.tfjs_graph import read_tfjs_graph, repair_mobilefacenet, run_numpy

    crops, people = verification_faces(embedder_aligner("mobilefacenet"), store.verification_detector())
    rgb = np.stack(crops)[:, :, :, ::-1].astype(np.float32)
    graph = repair_mobilefacenet(read_tfjs_graph(graph_json(sources)))
    check = parity_check(onnx_embeddings(target, rgb), run_numpy(graph, rgb), people)
    return {**check, "reference": "numpy execution of the repaired TensorFlow.js graph"}


VERIFIERS = {"yunet": _verify_yunet, "dlib_resnet": _verify_dlib, "mobilefacenet": _verify_mobilefacenet}


def record_check(model: str, sources: dict[str, Path], target: Path, store: VerificationContext) -> dict:
    """Check the converted ``target`` of ``model`` and record the result beside it, bound to the
    file's sha256; a failed check is recorded too, and is an error."""
    check = VERIFIERS[model](sources, target, store)
    check.update(model=model, sha256=file_sha256(target), checked=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    target.with_suffix(".check.json").write_text(json.dumps(check, indent=2), encoding="utf-8")
    if not check["passed"]:
        raise EmbedderError(f"the converted {model} model failed its check on real faces: {check}")
    log.info("model converted and verified", model=model, file=str(target), **_summary(check))
    return check


def record_int8_check(model: str, entry: dict, float_model: Path, target: Path, store: VerificationContext) -> dict:
    """Check the int8 copy ``target`` against its float model on the registry faces and record the
    result beside it, bound to its sha256, the float model's and the ranges'; a failed check is
    recorded too, and is an error."""
    from edge_daemon.models.files import int8_ranges_file

    crops, people = verification_faces(embedder_aligner(model), store.verification_detector())
    rgb = np.stack(crops)[:, :, :, ::-1].astype(np.float32)
    check = parity_check(onnx_embeddings(target, rgb), onnx_embeddings(float_model, rgb), people, entry["int8"]["min_cosine"])
    check.update(
        model=model, precision="int8", reference="the float32 model", sha256=file_sha256(target),
        float_sha256=file_sha256(float_model), ranges_sha256=file_sha256(int8_ranges_file(entry)),
        checked=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    target.with_suffix(".check.json").write_text(json.dumps(check, indent=2), encoding="utf-8")
    if not check["passed"]:
        raise EmbedderError(f"the int8 {model} model failed its check on real faces: {check}")
    log.info("int8 model made and verified", model=model, file=str(target), **_summary(check))
    return check


def _summary(check: dict) -> dict:
    return {key: check[key] for key in ("faces", "min_cosine", "separation", "max_px", "reference") if key in check}
