"""The default detector: libfacedetection's YuNet converted to ONNX from the yuface wheel's weights,
its parity with yuface, the checks that refuse a wrong model, the registry's errors, and
``models prepare`` without npm or from another box's models."""

from __future__ import annotations

import pytest

from edge_daemon.config import DetectorConfig
from edge_daemon.detectors import DetectorError, create_local_detector


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(DetectorError, match=r"unknown detector backend 'retina'; known: yunet, yuface, yunet_onnx"):
        create_local_detector(DetectorConfig.model_construct(backend="retina"))
