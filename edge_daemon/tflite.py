"""TFLite inference for the trained VGG16 embedder (float32 or dynamic-range int8, XNNPACK).

A TFLite file is used only after it has been checked against the Keras model on real faces:
every face's embedding must agree with Keras' to cosine >= 0.999. ``export_tflite`` converts
and checks; the result is recorded in ``tflite_check.json`` beside the model, and the embedder
refuses a runtime whose check is missing or failed.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

TFLITE_FILES = {"tflite": "embedding.tflite", "tflite_int8": "embedding_int8.tflite"}
CHECK_FILE = "tflite_check.json"
MIN_COSINE = 0.999


class TfliteRunner:
    """Runs a TFLite embedding model on preprocessed batches."""

    def __init__(self, path: Path, threads: int = 1):
        import tensorflow as tf

        self._interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self._batch != len(batch):
            self._interpreter.resize_tensor_input(self._input, batch.shape)
            self._interpreter.allocate_tensors()
            self._batch = len(batch)
        self._interpreter.set_tensor(self._input, batch.astype(np.float32))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()


def read_checks(model_dir: Path) -> dict:
    path = Path(model_dir) / CHECK_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def export_tflite(model_dir: Path, faces: np.ndarray, runtime: str) -> dict:
    """Convert the model dir's Keras embedding model for ``runtime`` and check it on ``faces``
    (aligned uint8 BGR crops). Returns and records the check."""
    import keras
    import tensorflow as tf

    from edge_daemon.embedders.base import l2_normalise
    from edge_daemon.embedders.vgg16 import VGG16_MODEL_FILE, vgg16_preprocess

    model_dir = Path(model_dir)
    model = keras.saving.load_model(model_dir / VGG16_MODEL_FILE, compile=False, safe_mode=True)
    with tempfile.TemporaryDirectory() as saved_model:
        # Keras 3: export a SavedModel first; converting from concrete functions drops the weights.
        model.export(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        if runtime == "tflite_int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic-range int8 weights
        (model_dir / TFLITE_FILES[runtime]).write_bytes(converter.convert())
    batch = vgg16_preprocess(faces)
    reference = l2_normalise(model(batch, training=False).numpy())
    converted = l2_normalise(TfliteRunner(model_dir / TFLITE_FILES[runtime])(batch))
    cosines = np.sum(reference * converted, axis=1)
    check = {
        "faces": int(len(faces)),
        "min_cosine": float(cosines.min()),
        "mean_cosine": float(cosines.mean()),
        "required": MIN_COSINE,
        "passed": bool(cosines.min() >= MIN_COSINE),
        "file": TFLITE_FILES[runtime],
    }
    checks = read_checks(model_dir)
    checks[runtime] = check
    (model_dir / CHECK_FILE).write_text(json.dumps(checks, indent=2), encoding="utf-8")
    return check
