"""TFLite inference for the trained VGG16 embedder (float32 or dynamic-range int8, XNNPACK).

A TFLite file is used only after it has been checked against the Keras model on real faces:
every face's embedding must agree with Keras' to cosine >= 0.999. ``tflite_export`` converts
and checks; the result is recorded in ``tflite_check.json`` beside the model, and the embedder
refuses a runtime whose check is missing or failed.
"""

from __future__ import annotations

import json
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
