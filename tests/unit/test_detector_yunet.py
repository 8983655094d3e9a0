"""The detector registry: an unknown backend is a clear error. YuNet's non-maximum suppression
keeps libfacedetection's greedy rule."""

from __future__ import annotations

import numpy as np
import pytest

from edge_daemon.config import DetectorConfig
from edge_daemon.detectors import DetectorError, create_local_detector
from edge_daemon.detectors.yunet import _nms


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(DetectorError, match=r"unknown detector backend 'retina'; known: yunet, yuface, yunet_onnx"):
        create_local_detector(DetectorConfig.model_construct(backend="retina"))


def test_nms_drops_a_box_only_for_a_kept_one():
    boxes = np.array([
        [0, 0, 10, 10],    # best: kept
        [3, 0, 13, 10],    # IoU 0.54 with the first: goes
        [7, 0, 17, 10],    # IoU 0.18 with the first, 0.54 with the second, which went: kept
        [0, 0, 10, 10],    # the first again: goes
        [50, 50, 50, 60],  # empty, alone: kept
        [50, 50, 50, 60],  # empty beside an empty one (0/0): kept, as libfacedetection keeps it
    ], dtype=np.float32)
    assert _nms(boxes) == [0, 2, 4, 5]
