"""Face detectors: one module per backend, chosen by ``detector.backend``. Each returns boxes,
scores and 5 landmarks (eyes, nose tip, mouth corners) in frame coordinates.

  yunet       libfacedetection's YuNet on ONNX Runtime (the default): its weights are read from the
              ``yuface`` wheel and converted by ``edge-daemon models prepare``, so no compiled
              wheel of one CPU or Python is needed to run it
  yuface      libfacedetection's YuNet, weights compiled into the ``yuface`` wheel (x86_64, CPython
              3.10-3.11; optional)
  yunet_onnx  YuNet from an ONNX file on OpenCV's ``FaceDetectorYN``

Backend modules import their runtime only when created, so the default path never imports yuface.
"""

from __future__ import annotations

from typing import Callable

from edge_daemon.config import DetectorConfig
from edge_daemon.detectors import yuface, yunet, yunet_onnx
from edge_daemon.detectors.base import Detector, DetectorError
from edge_daemon.detectors.process import ProcessDetector

__all__ = ["BACKENDS", "Detector", "DetectorError", "ProcessDetector", "create_detector", "create_local_detector"]

BACKENDS: dict[str, Callable[[DetectorConfig], Detector]] = {
    "yunet": yunet.create,
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
