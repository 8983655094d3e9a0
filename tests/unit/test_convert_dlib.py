"""dlib's face ResNet reader: it accounts for the whole file, and a damaged or foreign file is a
conversion error naming it."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from edge_daemon.models.prepare.converters import ConversionError
from edge_daemon.models.prepare.converters.dlib_resnet import (
    AddPrev,
    Affine,
    Conv,
    FullyConnected,
    Pool,
    Relu,
    Skip,
    Tag,
    read_dlib_resnet,
)


@pytest.fixture(scope="module")
def dat_path() -> Path:
    import face_recognition_models

    return Path(face_recognition_models.face_recognition_model_location())


def test_reader_accounts_for_every_layer_and_parameter(dat_path):
    net = read_dlib_resnet(dat_path)

    kinds = Counter(
        f"{layer.kind}_pool {layer.size}" if isinstance(layer, Pool) else type(layer).__name__ for layer in net.layers
    )
    assert kinds == {
        "Conv": 29, "Affine": 29, "Relu": 29, "AddPrev": 14, "Tag": 18, "Skip": 4,
        "avg_pool (2, 2)": 4, "max_pool (3, 3)": 1, "avg_pool (0, 0)": 1, "FullyConnected": 1,
    }  # fmt: skip
    assert len(net.layers) == 130
    assert net.parameter_count == 5_614_592
    assert net.input_size == (150, 150)
    np.testing.assert_allclose(net.input_means, [122.782, 117.001, 104.298], atol=1e-4)
    assert net.distance_threshold == pytest.approx(0.6)
    first_conv = net.layers[0]
    assert isinstance(first_conv, Conv) and first_conv.weights.shape == (32, 3, 7, 7)
    assert (first_conv.stride, first_conv.padding) == ((2, 2), (0, 0))
    assert isinstance(net.layers[-1], FullyConnected) and net.layers[-1].weights.shape == (256, 128)
    assert isinstance(net.layers[1], Affine) and isinstance(net.layers[2], Relu)
    assert {type(layer) for layer in net.layers if isinstance(layer, (Tag, Skip, AddPrev))} == {Tag, Skip, AddPrev}


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:1_000_000], id="first-megabyte"),
        pytest.param(lambda data: data[:-1], id="last-byte-cut"),
        pytest.param(lambda data: data + b"\0", id="trailing-byte"),
        pytest.param(lambda data: b"\xff\xd8\xff\xe0" + data[4:], id="foreign-header"),
    ],
)
def test_damaged_file_is_a_conversion_error_naming_it(dat_path, tmp_path, damage):
    damaged = tmp_path / "damaged.dat"
    damaged.write_bytes(damage(dat_path.read_bytes()))
    with pytest.raises(ConversionError, match=re.escape(str(damaged))):
        read_dlib_resnet(damaged)


@pytest.mark.parametrize("other_model", ["mmod_human_face_detector.dat", "shape_predictor_5_face_landmarks.dat"])
def test_other_dlib_models_are_refused(dat_path, other_model):
    with pytest.raises(ConversionError, match=re.escape(other_model)):
        read_dlib_resnet(dat_path.parent / other_model)
