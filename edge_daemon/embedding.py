"""Face embedders: aligned face crops in, L2-normalised vectors out."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Protocol

import numpy as np

from edge_daemon.alignment import Aligner, create_aligner
from edge_daemon.config import EmbedderConfig
from edge_daemon.isolation import ChildProcess, IsolationError

# Cosine threshold at 1% false accepts on the LFW View 1 dev training pairs
# (pairsDevTrain.txt, 1100 pairs), measured with `edge-daemon calibrate` (FRR there: 1.8%) -- see README "Unknown threshold".
DLIB_RESNET_THRESHOLD = 0.908984
DLIB_RESNET_THRESHOLD_SOURCE = "LFW View 1 pairsDevTrain.txt, FAR 1%"

VGG16_FORMAT = "edge-daemon-vgg16-embedding"
VGG16_MODEL_FILE = "embedding.keras"
VGG16_META_FILE = "embedder.json"
VGG16_THRESHOLD_FILE = "threshold.json"
# Per-channel means of the VGG16 ImageNet training data, in BGR order (Keras' 'caffe' preprocessing).
VGG16_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)


class EmbedderError(RuntimeError):
    """The embedder cannot be loaded (missing, corrupt or foreign model files)."""


class Embedder(Protocol):
    name: str
    version: str
    dim: int
    default_threshold: float
    threshold_source: str
    aligner_spec: tuple  # how to build the aligner in any process (see alignment.create_aligner)
    aligner: Aligner

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """An (N, dim) float32 array of L2-normalised embeddings for N aligned BGR crops."""
        ...

    def close(self) -> None: ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class DlibResnetEmbedder:
    """dlib's pretrained 128-d face ResNet; weights from the ``face-recognition-models`` wheel (CC0)."""

    name = "dlib_resnet"
    version = "dlib_face_recognition_resnet_model_v1"
    dim = 128
    default_threshold = DLIB_RESNET_THRESHOLD
    threshold_source = DLIB_RESNET_THRESHOLD_SOURCE

    def __init__(self) -> None:
        import dlib
        import face_recognition_models

        self._net = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
        self.aligner_spec = ("dlib_chip", face_recognition_models.pose_predictor_five_point_model_location())
        self.aligner = create_aligner(self.aligner_spec)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.dim), dtype=np.float32)
        # One call per face: dlib holds the GIL for the whole call (capture threads starve for
        # ~100 ms per face), and its batch call is no faster on CPU (measured: 0.78 s for 8 either way).
        vectors = [self._net.compute_face_descriptor(np.ascontiguousarray(crop[:, :, ::-1])) for crop in crops]
        return l2_normalise(np.array(vectors))

    def close(self) -> None:
        pass


def vgg16_preprocess(bgr_crops: np.ndarray) -> np.ndarray:
    """uint8 BGR crops (N, S, S, 3) -> the float input VGG16 expects (mean-subtracted BGR).
    Shared by the trainer and the daemon so both feed the network the same way."""
    return np.asarray(bgr_crops, dtype=np.float32) - VGG16_BGR_MEAN


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EmbedderError(f"{path.name} missing in {path.parent}: not a model directory from 'edge-daemon train'") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EmbedderError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise EmbedderError(f"{path} must hold a JSON object")
    return data


class Vgg16Embedder:
    """The VGG16 embedding model written by ``edge-daemon train`` (Keras 3 ``.keras`` file)."""

    name = "vgg16"

    def __init__(self, model_dir: Path, runtime: str = "keras", threads: int = 1):
        model_dir = Path(model_dir)
        meta = _read_json(model_dir / VGG16_META_FILE)
        if meta.get("format") != VGG16_FORMAT:
            raise EmbedderError(f"{model_dir / VGG16_META_FILE}: format is {meta.get('format')!r}, expected {VGG16_FORMAT!r}")
        threshold = _read_json(model_dir / VGG16_THRESHOLD_FILE)
        model_path = model_dir / VGG16_MODEL_FILE
        if not model_path.is_file():
            raise EmbedderError(f"model file missing: {model_path}")
        try:
            self.input_size = int(meta["input_size"])
            self.dim = int(meta["embedding_dim"])
            self.default_threshold = float(threshold["threshold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbedderError(f"{model_dir}: incomplete model metadata ({exc})") from None
        self.threshold_source = str(threshold.get("source", f"{model_dir / VGG16_THRESHOLD_FILE}"))
        self.version = f"vgg16-{file_digest(model_path)[:16]}"
        self.aligner_spec = ("template", self.input_size)
        self.aligner = create_aligner(self.aligner_spec)
        self.runtime = runtime
        if runtime == "keras":
            model = _load_keras_model(model_path)
            input_shape = tuple(model.input_shape[1:])
            if input_shape != (self.input_size, self.input_size, 3) or model.output_shape[-1] != self.dim:
                raise EmbedderError(
                    f"{model_path}: model takes {input_shape} -> {model.output_shape[-1]}, "
                    f"metadata says {self.input_size}x{self.input_size}x3 -> {self.dim}"
                )
            self._run = lambda batch: model(batch, training=False).numpy()
        else:
            from edge_daemon.tflite import TFLITE_FILES, TfliteRunner, read_checks

            check = read_checks(model_dir).get(runtime)
            if not check or not check.get("passed"):
                raise EmbedderError(
                    f"{model_dir}: runtime {runtime} is not verified against the Keras model "
                    f"({'check failed: min cosine ' + format(check['min_cosine'], '.5f') if check else 'no check'}); "
                    f"run 'edge-daemon export-tflite {model_dir}{' --int8' if runtime == 'tflite_int8' else ''}'"
                )
            # The same network within cosine 0.999: galleries built with Keras stay valid.
            self._run = TfliteRunner(model_dir / TFLITE_FILES[runtime], threads)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(self._run(vgg16_preprocess(np.stack(crops))))

    def close(self) -> None:
        pass


def save_vgg16_artefact(model, model_dir: Path, threshold: dict, extra: dict | None = None) -> None:
    """Write what ``Vgg16Embedder`` loads: the Keras embedding model, its metadata and the
    calibrated threshold (a dict with at least ``threshold`` and ``source``). The trainer calls
    this; so do tests with a small model of their own."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save(model_dir / VGG16_MODEL_FILE)
    meta = {
        "format": VGG16_FORMAT,
        "input_size": int(model.input_shape[1]),
        "embedding_dim": int(model.output_shape[-1]),
        "preprocessing": "BGR minus VGG16 ImageNet channel means (edge_daemon.embedding.vgg16_preprocess)",
        **(extra or {}),
    }
    (model_dir / VGG16_META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    (model_dir / VGG16_THRESHOLD_FILE).write_text(json.dumps(threshold, indent=2), encoding="utf-8")


def _load_keras_model(path: Path):
    try:
        import keras
    except ImportError:
        raise EmbedderError("the 'vgg16' embedder needs TensorFlow: pip install 'edge-daemon[train]'") from None
    try:
        # safe_mode refuses models that would run arbitrary Python code when loaded.
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for corrupt archives
        raise EmbedderError(f"cannot load Keras model {path}: {exc}") from None


def create_local_embedder(config: EmbedderConfig) -> Embedder:
    if config.backend == "vgg16":
        return Vgg16Embedder(config.model_dir, config.runtime, config.runtime_threads)
    return DlibResnetEmbedder()


class ProcessEmbedder:
    """An embedder backend running in a child process (see ``edge_daemon.isolation``); alignment
    stays in the calling process, only the aligned crops cross the pipe."""

    def __init__(self, config: EmbedderConfig, threads: int = 1):
        names = ("name", "version", "dim", "default_threshold", "threshold_source", "aligner_spec")
        try:
            self._child = ChildProcess(
                f"embedder-{config.backend}", create_local_embedder, config, "embed", names, threads=threads
            )
        except IsolationError as exc:
            raise EmbedderError(str(exc)) from None
        for name, value in self._child.attributes.items():
            setattr(self, name, value)
        self.aligner = create_aligner(self.aligner_spec)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._child.call(crops)

    def close(self) -> None:
        self._child.close()


def create_embedder(config: EmbedderConfig, separate_process: bool | None = None, threads: int = 1) -> Embedder:
    """The configured backend; in a child process (with ``threads`` compute threads) when
    ``separate_process`` (default: the config) says so."""
    if config.separate_process if separate_process is None else separate_process:
        return ProcessEmbedder(config, threads)
    return create_local_embedder(config)
