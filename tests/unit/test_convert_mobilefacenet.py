"""The TFJS MobileFaceNet reader and repair: weights read and dequantised as stored, and every
malformed, truncated or hostile model refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_daemon.models.prepare.converters import ConversionError
from edge_daemon.models.prepare.converters.tfjs_graph import (
    build_onnx,
    collapse_prelus,
    read_tfjs_graph,
    repair_mobilefacenet,
    run_numpy,
)
from tests.support.convert_mobilefacenet import SOURCES


@pytest.fixture
def source_copy(shipped, tmp_path) -> Path:
    for name in ("mobilefacenet.json", "mobilefacenet.bin"):
        shutil.copyfile(SOURCES / name, tmp_path / name)
    return tmp_path / "mobilefacenet.json"


def test_repair_counts_and_leaves_input_alone(shipped, repaired):
    assert repaired.repairs == {"unfused_depthwise_relus": 16, "sign_fixed_prelu_constants": 33}
    fused_relu = [node for node in shipped.nodes if node.attrs.get("fused_ops") == ["BiasAdd", "Relu"]]
    assert len(fused_relu) == 16
    assert not [node for node in repaired.nodes if node.attrs.get("fused_ops") == ["BiasAdd", "Relu"]]
    name = "MobileFaceNet/MobileFaceNet/Conv2d_0/mul"
    np.testing.assert_array_equal(repaired.weights[name], -shipped.weights[name])
    assert shipped.node(fused_relu[0].name).attrs["fused_ops"] == ["BiasAdd", "Relu"]
    assert not shipped.repairs


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


def test_collapsed_prelus_compute_the_same_and_leave_no_elementwise_formula(repaired):
    """Each PReLU becomes one node (numpy: the same outputs) and, in ONNX, only ops that ONNX Runtime's
    blocked layout keeps: convolutions, Relu and Add, no Abs, Sub or per-channel Mul."""
    collapsed = collapse_prelus(repaired)
    pixels = np.random.default_rng(3).uniform(0, 255, (2, 112, 112, 3)).astype(np.float32)
    np.testing.assert_allclose(run_numpy(collapsed, pixels), run_numpy(repaired, pixels), atol=1e-6)
    assert sum(node.op == "Prelu" for node in collapsed.nodes) == repaired.repairs["sign_fixed_prelu_constants"]
    ops = [node.op_type for node in build_onnx(collapsed).graph.node]
    assert "Abs" not in ops
    assert ops.count("Sub") == 1 and ops.count("Mul") == 3  # pixel centring and the final L2 normalisation only


def test_prelus_collapse_only_in_a_repaired_graph(shipped):
    with pytest.raises(ConversionError, match="repaired graph only"):
        collapse_prelus(shipped)
