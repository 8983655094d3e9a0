"""A detector running in a child process (see ``edge_daemon.models.process``)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from edge_daemon.config import DetectorConfig
from edge_daemon.detectors.base import Detector, DetectorError, as_bgr, downscale
from edge_daemon.messages import Detection
from edge_daemon.models.process import ChildProcess, IsolationError


class ProcessDetector:
    """``create_local(config)`` built in a child process. Frames are downscaled here first, so
    only the small image crosses the pipe."""

    def __init__(self, config: DetectorConfig, create_local: Callable[[DetectorConfig], Detector], threads: int = 1):
        try:
            self._child = ChildProcess(
                f"detector-{config.backend}",
                create_local,
                config,
                "detect",
                ("name",),
                recycle_after=config.recycle_after if config.backend == "yuface" else 0,
                threads=threads,
            )
        except IsolationError as exc:
            raise DetectorError(str(exc)) from None
        self.name = self._child.attributes["name"]
        self._max_side = config.max_side

    def detect(self, image: np.ndarray) -> list[Detection]:
        small, scale = downscale(as_bgr(image), self._max_side)
        found = self._child.call(small)
        if scale == 1.0:
            return found
        return [
            Detection(tuple(v / scale for v in d.bbox), d.score, d.landmarks / scale) for d in found
        ]

    def close(self) -> None:
        self._child.close()
