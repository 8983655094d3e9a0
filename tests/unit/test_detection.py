"""Detection without a model: a missing model file is a clear error, the quality gate counts its
reasons, the similarity transform is exact."""

from __future__ import annotations

import numpy as np
import pytest

from edge_daemon.config import DetectorConfig
from edge_daemon.detectors import DetectorError
from edge_daemon.detectors.yunet_onnx import YuNetOnnxDetector
from edge_daemon.embedders.alignment import TEMPLATE_112, similarity_transform
from edge_daemon.messages import Detection
from edge_daemon.recognition.quality import QualityGate


def test_missing_onnx_model_is_a_clear_error(tmp_path):
    with pytest.raises(DetectorError, match="not found"):
        YuNetOnnxDetector(tmp_path / "nope.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(DetectorError, match="cannot load YuNet model"):
        YuNetOnnxDetector(garbage)


def test_quality_gate_counts_reasons():
    gate = QualityGate(DetectorConfig(min_face_px=40, min_sharpness=20.0, score_threshold=0.7))
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)
    flat = np.full((200, 200, 3), 128, dtype=np.uint8)
    landmarks = np.zeros((5, 2), np.float32)
    assert gate.check(sharp, Detection((10, 10, 30, 30), 0.9, landmarks)).reason == "too_small"
    assert gate.check(sharp, Detection((10, 10, 100, 100), 0.5, landmarks)).reason == "low_score"
    assert gate.check(flat, Detection((10, 10, 100, 100), 0.9, landmarks)).reason == "blurry"
    assert gate.check(sharp, Detection((10, 10, 100, 100), 0.9, landmarks)).passed


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, shift = np.deg2rad(17), 1.7, np.array([12.0, -5.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = TEMPLATE_112
    target = source @ rotation.T + shift
    matrix = similarity_transform(source, target)
    np.testing.assert_allclose(matrix[:, :2], rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)
