"""The detector registry: an unknown backend is a clear error."""

from __future__ import annotations

import pytest

from edge_daemon.config import DetectorConfig
from edge_daemon.detectors import DetectorError, create_local_detector


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(DetectorError, match=r"unknown detector backend 'retina'; known: yunet, yuface, yunet_onnx"):
        create_local_detector(DetectorConfig.model_construct(backend="retina"))
