"""The TFJS MobileFaceNet converter: repairs the shipped graph, and the ONNX file computes what the graph does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from edge_daemon.models.onnx import onnx_session
from edge_daemon.models.prepare.converters import ConversionError
from edge_daemon.models.prepare.converters.tfjs_graph import (
    build_onnx,
    convert_mobilefacenet,
    read_tfjs_graph,
    repair_mobilefacenet,
    run_numpy,
)

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "models" / "sources" / "mobilefacenet"
MODEL_JSON = SOURCES / "mobilefacenet.json"
LFW = ROOT.parent / "shared" / "data" / "eval" / "lfw"
PEOPLE = 6


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return a @ b.T


@pytest.fixture(scope="module")
def shipped():
    if not MODEL_JSON.exists():
        pytest.skip(f"MobileFaceNet sources not found in {SOURCES} (the setup script puts them there)")
    return read_tfjs_graph(MODEL_JSON)


@pytest.fixture(scope="module")
def repaired(shipped):
    return repair_mobilefacenet(shipped)


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


def test_repair_counts_and_leaves_input_alone(shipped, repaired):
    assert repaired.repairs == {"unfused_depthwise_relus": 16, "sign_fixed_prelu_constants": 33}
    fused_relu = [node for node in shipped.nodes if node.attrs.get("fused_ops") == ["BiasAdd", "Relu"]]
    assert len(fused_relu) == 16
    assert not [node for node in repaired.nodes if node.attrs.get("fused_ops") == ["BiasAdd", "Relu"]]
    name = "MobileFaceNet/MobileFaceNet/Conv2d_0/mul"
    np.testing.assert_array_equal(repaired.weights[name], -shipped.weights[name])
    assert shipped.node(fused_relu[0].name).attrs["fused_ops"] == ["BiasAdd", "Relu"]
    assert not shipped.repairs


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


# ------------------------------------------------------------------ refusing what it cannot convert


@pytest.fixture
def source_copy(shipped, tmp_path) -> Path:
    for name in ("mobilefacenet.json", "mobilefacenet.bin"):
        shutil.copyfile(SOURCES / name, tmp_path / name)
    return tmp_path / "mobilefacenet.json"


def test_truncated_weights_are_refused(source_copy):
    shard = source_copy.with_suffix(".bin")
    shard.write_bytes(shard.read_bytes()[:-1000])
    with pytest.raises(ConversionError, match=r"mobilefacenet\.bin.*too short"):
        read_tfjs_graph(source_copy)


def test_missing_weights_are_refused(source_copy):
    source_copy.with_suffix(".bin").unlink()
    with pytest.raises(ConversionError, match=r"cannot read weight shard .*mobilefacenet\.bin"):
        read_tfjs_graph(source_copy)


def test_shard_paths_outside_the_model_directory_are_refused(source_copy):
    document = json.loads(source_copy.read_text())
    document["weightsManifest"][0]["paths"] = ["../mobilefacenet.bin"]
    source_copy.write_text(json.dumps(document))
    with pytest.raises(ConversionError, match=r"refusing weight shard path '\.\./mobilefacenet\.bin'"):
        read_tfjs_graph(source_copy)


@pytest.mark.parametrize(
    "content",
    ['{"format": "layers-model", "modelTopology": {}, "weightsManifest": []}', "[1, 2, 3]", "{not json"],
    ids=["layers-model", "not-an-object", "not-json"],
)
def test_files_that_are_not_tfjs_graph_models_are_refused(tmp_path, content):
    path = tmp_path / "model.json"
    path.write_text(content)
    with pytest.raises(ConversionError, match=r"model\.json"):
        read_tfjs_graph(path)


def test_unsupported_weight_dtype_is_refused(source_copy):
    document = json.loads(source_copy.read_text())
    document["weightsManifest"][0]["weights"][0]["dtype"] = "complex64"
    source_copy.write_text(json.dumps(document))
    with pytest.raises(ConversionError, match="unsupported dtype 'complex64'"):
        read_tfjs_graph(source_copy)


@pytest.mark.parametrize("stored_as", ["float16", "uint8"])
def test_quantized_weights_are_dequantized(shipped, source_copy, stored_as):
    """Re-store the first weight the way tfjs-converter's --quantize options do and read it back."""
    document = json.loads(source_copy.read_text())
    spec = document["weightsManifest"][0]["weights"][0]
    original = shipped.weights[spec["name"]]
    if stored_as == "float16":
        spec["quantization"] = {"dtype": "float16"}
        stored, tolerance = original.astype(np.float16), 1e-3 * np.abs(original).max()
    else:
        scale = float(original.max() - original.min()) / 255
        spec["quantization"] = {"dtype": "uint8", "scale": scale, "min": float(original.min())}
        stored, tolerance = np.round((original - original.min()) / scale).astype(np.uint8), scale
    shard = source_copy.with_suffix(".bin")
    shard.write_bytes(stored.tobytes() + shard.read_bytes()[original.nbytes :])
    source_copy.write_text(json.dumps(document))
    weights = read_tfjs_graph(source_copy).weights
    assert weights[spec["name"]].dtype == np.float32
    np.testing.assert_allclose(weights[spec["name"]], original, atol=tolerance)
    last = document["weightsManifest"][0]["weights"][-1]["name"]
    np.testing.assert_array_equal(weights[last], shipped.weights[last])


def test_graph_without_the_defect_is_refused(repaired):
    with pytest.raises(ConversionError, match="different or already repaired"):
        repair_mobilefacenet(repaired)


def test_the_unrepaired_graph_still_converts(shipped):
    """build_onnx translates fused ReLUs too (the repaired graph has none left to exercise that)."""
    model = build_onnx(shipped)
    assert sum(node.op_type == "Relu" for node in model.graph.node) == 17 + 16
