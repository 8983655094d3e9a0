"""dlib's face ResNet converted to ONNX: byte-identical conversions, the graph's interface, and
dlib's own descriptors on real faces at any batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_daemon.models.onnx import onnx_session
from edge_daemon.models.prepare.converters.dlib_resnet import (
    convert,
)
from tests.support.paths import LFW, need

FACES = 20


@pytest.fixture(scope="module")
def dat_path() -> Path:
    import face_recognition_models

    return Path(face_recognition_models.face_recognition_model_location())


@pytest.fixture(scope="module")
def onnx_path(dat_path, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dlib_onnx") / "dlib_resnet.onnx"
    convert(dat_path, path)
    return path


@pytest.fixture(scope="module")
def session(onnx_path):
    return onnx_session(onnx_path)


@pytest.fixture(scope="module")
def rgb_chips() -> np.ndarray:
    """150x150 RGB chips of real LFW faces, aligned the way the daemon aligns them for dlib."""
    import face_recognition_models

    from edge_daemon.api import find_faces, load_image
    from edge_daemon.config import DetectorConfig
    from edge_daemon.detectors import create_detector
    from edge_daemon.embedders.alignment import DlibChipAligner

    people = sorted(path.name for path in need(LFW).iterdir())
    detector = create_detector(DetectorConfig(), separate_process=False)
    aligner = DlibChipAligner(face_recognition_models.pose_predictor_five_point_model_location())
    chips = []
    for name in people[:: max(1, len(people) // (2 * FACES))]:
        image_path = LFW / name / f"{name}_0001.jpg"
        if not image_path.exists():
            continue
        image = load_image(image_path)
        faces = find_faces(image, detector)
        if faces:
            chips.append(aligner.align(image, faces[0])[:, :, ::-1])  # the aligner hands out BGR
        if len(chips) == FACES:
            break
    return np.ascontiguousarray(np.stack(chips))


@pytest.fixture(scope="module")
def dlib_descriptors(dat_path, rgb_chips) -> np.ndarray:
    import dlib

    net = dlib.face_recognition_model_v1(str(dat_path))
    return np.array([np.array(net.compute_face_descriptor(chip)) for chip in rgb_chips], dtype=np.float32)


def test_conversion_is_byte_identical_run_to_run(dat_path, onnx_path, tmp_path):
    again = tmp_path / "again.onnx"
    convert(dat_path, again)
    assert again.read_bytes() == onnx_path.read_bytes()
    assert [path.name for path in tmp_path.iterdir()] == ["again.onnx"]  # no temporary file left


def test_graph_interface(onnx_path):
    import onnx

    model = onnx.load(str(onnx_path))
    assert model.producer_name == "edge-daemon"
    assert [(opset.domain, opset.version) for opset in model.opset_import] == [("", 17)]
    assert model.ir_version == 8

    def signature(value):
        dims = value.type.tensor_type.shape.dim
        return value.name, value.type.tensor_type.elem_type, [dim.dim_param or dim.dim_value for dim in dims]

    assert [signature(value) for value in model.graph.input] == [("image", onnx.TensorProto.FLOAT, ["N", 150, 150, 3])]
    assert [signature(value) for value in model.graph.output] == [("embedding", onnx.TensorProto.FLOAT, ["N", 128])]


def test_onnx_gives_dlibs_descriptors_on_real_faces(session, rgb_chips, dlib_descriptors):
    assert len(rgb_chips) == FACES
    embeddings = session.run(None, {"image": rgb_chips.astype(np.float32)})[0]

    cosines = np.sum(embeddings * dlib_descriptors, axis=1) / (
        np.linalg.norm(embeddings, axis=1) * np.linalg.norm(dlib_descriptors, axis=1)
    )
    assert cosines.min() >= 0.9999
    assert np.abs(embeddings - dlib_descriptors).max() < 1e-5
    # dlib's descriptor is not unit length, and the graph must not make it so.
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), np.linalg.norm(dlib_descriptors, axis=1), rtol=1e-5)


@pytest.mark.parametrize("batch", [1, 5])
def test_any_batch_size(session, rgb_chips, dlib_descriptors, batch):
    embeddings = session.run(None, {"image": rgb_chips[:batch].astype(np.float32)})[0]
    assert embeddings.shape == (batch, 128)
    np.testing.assert_allclose(embeddings, dlib_descriptors[:batch], atol=1e-5)
