"""Face detectors: one module per backend, chosen by ``detector.backend``. Each returns boxes,
scores and 5 landmarks (eyes, nose tip, mouth corners) in frame coordinates.

  yuface      libfacedetection's YuNet, weights compiled into the ``yuface`` wheel
  yunet_onnx  YuNet from an ONNX file on OpenCV's ``FaceDetectorYN``
"""

from __future__ import annotations

from typing import Callable

from edge_daemon.config import DetectorConfig
from edge_daemon.detectors import yuface, yunet_onnx
from edge_daemon.detectors.base import Detector, DetectorError
from edge_daemon.detectors.process import ProcessDetector

__all__ = ["BACKENDS", "Detector", "DetectorError", "ProcessDetector", "create_detector", "create_local_detector"]

BACKENDS: dict[str, Callable[[DetectorConfig], Detector]] = {
    "yuface": yuface.create,
    "yunet_onnx": yunet_onnx.create,
}


def create_local_detector(config: DetectorConfig) -> Detector:
    """The configured backend in this process."""
    try:
        backend = BACKENDS[config.backend]
    except KeyError:
        raise DetectorError(f"unknown detector backend {config.backend!r}; known: {', '.join(BACKENDS)}") from None
    return backend(config)


def create_detector(config: DetectorConfig, separate_process: bool | None = None, threads: int = 1) -> Detector:
    """The configured backend; in a child process (with ``threads`` compute threads) when
    ``separate_process`` (default: the config) says so."""
    if config.separate_process if separate_process is None else separate_process:
        return ProcessDetector(config, create_local_detector, threads)
    return create_local_detector(config)
