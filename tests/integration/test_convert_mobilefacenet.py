"""The MobileFaceNet converter on the real npm sources: the repaired graph separates people where
the shipped one collapses, and the ONNX file computes what the numpy reference does."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from edge_daemon.models.onnx import onnx_session
from edge_daemon.models.prepare.converters.tfjs_graph import (
    convert_mobilefacenet,
    run_numpy,
)
from tests.support.convert_mobilefacenet import MODEL_JSON
from tests.support.paths import LFW

PEOPLE = 6


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return a @ b.T


@pytest.fixture(scope="module")
def onnx_path(shipped, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mobilefacenet") / "mobilefacenet.onnx"
    convert_mobilefacenet(MODEL_JSON, path)
    return path


@pytest.fixture(scope="module")
def session(onnx_path):
    return onnx_session(onnx_path)


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, np.ndarray]:
    """Two aligned RGB crops each of the first people in LFW with two images: (crops, person labels)."""
    if not LFW.exists():
        pytest.skip(f"LFW not found at {LFW} (expected ../shared beside the repository)")
    from edge_daemon.api import face_nearest_centre, find_faces, load_image
    from edge_daemon.config import DetectorConfig
    from edge_daemon.detectors import create_detector
    from edge_daemon.embedders.alignment import TemplateAligner

    detector = create_detector(DetectorConfig(), separate_process=False)
    aligner = TemplateAligner(112)
    crops, labels = [], []
    for person in sorted(path.name for path in LFW.iterdir() if (path / f"{path.name}_0002.jpg").exists()):
        images = [load_image(LFW / person / f"{person}_{k:04d}.jpg") for k in (1, 2)]
        detections = [face_nearest_centre(find_faces(image, detector), image) for image in images]
        if None in detections:
            continue
        for image, detection in zip(images, detections):
            crops.append(cv2.cvtColor(aligner.align(image, detection), cv2.COLOR_BGR2RGB))
            labels.append(person)
        if len(labels) == 2 * PEOPLE:
            break
    return np.array(crops, dtype=np.float32), np.array(labels)


@pytest.fixture(scope="module")
def repaired_reference(repaired, faces) -> np.ndarray:
    return run_numpy(repaired, faces[0])


def dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]


def same_and_different(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    similarity = cosines(embeddings, embeddings)
    same = labels[:, None] == labels[None, :]
    not_self = ~np.eye(len(labels), dtype=bool)
    return similarity[same & not_self], similarity[~same]


def test_onnx_matches_numpy_reference(session, faces, repaired_reference):
    embeddings = session.run(None, {"image": faces[0]})[0]
    assert embeddings.shape == (len(faces[0]), 192)
    scale = np.abs(repaired_reference).max()
    assert np.abs(embeddings - repaired_reference).max() < 1e-4 * scale
    assert np.diag(cosines(embeddings, repaired_reference)).min() > 0.99999


def test_shipped_graph_collapses_and_repaired_separates(shipped, faces, repaired_reference):
    crops, labels = faces
    _, shipped_different = same_and_different(run_numpy(shipped, crops), labels)
    assert shipped_different.min() >= 0.99  # every face gets (almost) the same embedding
    same, different = same_and_different(repaired_reference, labels)
    assert same.mean() > 0.5
    assert different.mean() < 0.2


def test_conversion_is_deterministic(onnx_path, tmp_path):
    again = tmp_path / "again.onnx"
    convert_mobilefacenet(MODEL_JSON, again)
    assert again.read_bytes() == onnx_path.read_bytes()
    assert [path.name for path in tmp_path.iterdir()] == ["again.onnx"]  # no temporary file left behind


def test_onnx_model_interface(onnx_path):
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model, full_check=True)
    assert model.producer_name == "edge-daemon"
    assert model.ir_version == 8
    assert [(opset.domain, opset.version) for opset in model.opset_import] == [("", 17)]
    (image,), (embedding,) = model.graph.input, model.graph.output
    assert (image.name, dims(image)) == ("image", ["N", 112, 112, 3])
    assert (embedding.name, dims(embedding)) == ("embedding", ["N", 192])


@pytest.mark.parametrize("batch", [1, 4])
def test_dynamic_batch(session, faces, repaired_reference, batch):
    embeddings = session.run(None, {"image": faces[0][:batch]})[0]
    assert embeddings.shape == (batch, 192)
    np.testing.assert_allclose(embeddings, repaired_reference[:batch], atol=1e-4 * np.abs(repaired_reference).max())
