"""The VGG16 embedding model written by ``edge-daemon train`` (Keras 3 ``.keras`` file, or its
TFLite conversions once verified against it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edge_daemon.config import EmbedderConfig
from edge_daemon.embedders.alignment import create_aligner
from edge_daemon.embedders.base import EmbedderError, fold_mirrors, l2_normalise, with_mirrors
from edge_daemon.models.files import file_sha256

VGG16_FORMAT = "edge-daemon-vgg16-embedding"
VGG16_MODEL_FILE = "embedding.keras"
VGG16_META_FILE = "embedder.json"
VGG16_THRESHOLD_FILE = "threshold.json"
# Per-channel means of the VGG16 ImageNet training data, in BGR order (Keras' 'caffe' preprocessing).
VGG16_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def vgg16_preprocess(bgr_crops: np.ndarray) -> np.ndarray:
    """uint8 BGR crops (N, S, S, 3) -> the float input VGG16 expects (mean-subtracted BGR).
    Shared by the trainer and the daemon so both feed the network the same way."""
    return np.asarray(bgr_crops, dtype=np.float32) - VGG16_BGR_MEAN


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

    def __init__(self, model_dir: Path, runtime: str = "keras", threads: int = 1, flip: bool = False):
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
        self.flip = flip
        self.version = f"vgg16-{file_sha256(model_path)[:16]}{'+flip' if flip else ''}"
        if flip:  # the trainer calibrated the threshold on single crops
            self.default_threshold, self.threshold_source = None, "not calibrated with flip averaging: set gallery.threshold"
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
            from edge_daemon.models.tflite import TFLITE_FILES, TfliteRunner, read_checks

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
        batch = vgg16_preprocess(np.stack(crops))
        if self.flip:
            return fold_mirrors(self._run(with_mirrors(batch)))
        return l2_normalise(self._run(batch))

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
        "preprocessing": "BGR minus VGG16 ImageNet channel means (edge_daemon.embedders.vgg16.vgg16_preprocess)",
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


def create(config: EmbedderConfig, threads: int) -> Vgg16Embedder:
    return Vgg16Embedder(config.model_dir, config.runtime, config.runtime_threads, config.flip_for("vgg16"))
