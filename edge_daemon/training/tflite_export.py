"""Converting a trained VGG16 embedding model to TFLite, and the check that lets the embedder use it
(see ``edge_daemon.models.tflite``). Trainer-side: it needs TensorFlow and Keras."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from edge_daemon.embedders.base import l2_normalise
from edge_daemon.embedders.vgg16 import VGG16_MODEL_FILE, vgg16_preprocess
from edge_daemon.models.tflite import CHECK_FILE, MIN_COSINE, TFLITE_FILES, TfliteRunner, read_checks


def export_tflite(model_dir: Path, faces: np.ndarray, runtime: str) -> dict:
    """Convert the model dir's Keras embedding model for ``runtime`` and check it on ``faces``
    (aligned uint8 BGR crops). Returns and records the check."""
    import keras
    import tensorflow as tf

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
