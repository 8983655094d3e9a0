"""The daemon's vgg16 backend serves a Keras model saved in the trainer's artefact format."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge_daemon.api import embed_faces
from edge_daemon.embedders import EmbedderError
from edge_daemon.embedders.vgg16 import VGG16_META_FILE, VGG16_MODEL_FILE, Vgg16Embedder, save_vgg16_artefact
from tests.support.paths import DATA, need

keras = pytest.importorskip("keras", reason="the vgg16 backend needs TensorFlow (pip install '.[train]')")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small VGG-style network (two conv blocks) standing in for a trained model."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(12)(x)
    outputs = keras.layers.UnitNormalization()(x)
    directory = tmp_path_factory.mktemp("vgg") / "model"
    save_vgg16_artefact(keras.Model(inputs, outputs), directory, {"threshold": 0.8, "source": "test"})
    return directory


def test_embedder_loads_and_embeds_real_faces(model_dir, default_detector):
    embedder = Vgg16Embedder(model_dir)
    assert (embedder.input_size, embedder.dim, embedder.default_threshold) == (32, 12, 0.8)
    assert embedder.version.startswith("vgg16-")
    image = cv2.imread(str(need(DATA / "photos" / "group" / "multiface.jpg")))
    detections = default_detector.detect(image)
    vectors = embed_faces(image, detections, embedder)
    assert vectors.shape == (len(detections), 12)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert len({tuple(np.round(v, 4)) for v in vectors}) == len(detections)  # different faces, different vectors


def test_missing_corrupt_or_mismatched_artefacts_are_clear_errors(model_dir, tmp_path):
    with pytest.raises(EmbedderError, match="embedder.json missing"):
        Vgg16Embedder(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("embedder.json", "threshold.json"):
        (broken / name).write_text((model_dir / name).read_text())
    (broken / VGG16_MODEL_FILE).write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(EmbedderError, match="cannot load Keras model"):
        Vgg16Embedder(broken)
    (broken / VGG16_MODEL_FILE).write_bytes((model_dir / VGG16_MODEL_FILE).read_bytes())
    meta = json.loads((model_dir / VGG16_META_FILE).read_text())
    (broken / VGG16_META_FILE).write_text(json.dumps({**meta, "input_size": 64}))
    with pytest.raises(EmbedderError, match="metadata says 64x64x3"):
        Vgg16Embedder(broken)
