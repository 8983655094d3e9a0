"""OpenCV's reader: every frame is decoded (``grab``), converted only when wanted (``retrieve``).

It cannot decode only keyframes (``cameras.idle_keyframes_after_s``): ``VideoCapture`` has no way to
skip a frame before decoding it, nor to say which frames are keyframes before they are decoded."""

from __future__ import annotations

import time

import cv2
import numpy as np

from edge_daemon.config import CameraConfig
from edge_daemon.sources.base import SourceError, is_network, read_timeout_s


class OpenCvSource:
    decoder = "opencv"
    keyframes_only = False

    def __init__(self, config: CameraConfig):
        url = config.url
        if url.startswith("usb:"):
            capture = cv2.VideoCapture(int(url[4:]))
        else:
            # One decoding thread per camera, as every other stage: the cores are shared.
            parameters = [cv2.CAP_PROP_N_THREADS, 1]
            if is_network(url):
                # Open parameters rather than FFmpeg options: their names (timeout, stimeout) differ between
                # the FFmpeg builds OpenCV bundles, and some builds fail to open with the wrong one.
                timeout_ms = int(read_timeout_s(config) * 1000)
                parameters += [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
            capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, parameters)
        if not capture.isOpened():
            capture.release()
            raise SourceError("OpenCV cannot open it")
        self._capture = capture
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.native_fps = fps if 0 < fps < 1000 else 25.0
        self.width, self.height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self._index = 0
        self.last_read_at = time.monotonic()

    def grab(self) -> float | None:
        if not self._capture.grab():
            return None
        self.last_read_at = time.monotonic()
        self._index += 1
        return (self._index - 1) / self.native_fps

    def retrieve(self) -> np.ndarray | None:
        ok, image = self._capture.retrieve()
        return image if ok else None

    def release(self) -> None:
        self._capture.release()
