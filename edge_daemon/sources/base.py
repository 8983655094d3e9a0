"""What every video source is: the protocol, its error, and how long its reader waits for data."""


from __future__ import annotations

from typing import Protocol

import numpy as np

from edge_daemon.config import CameraConfig
from edge_daemon.messages import Picture

# PyAV's timeout bounds each wait for data, so a third of the stall timeout notices a stall within
# it. OpenCV's bounds a whole read(), which also waits for the next decodable frame (up to a
# keyframe interval after connecting), and returns False only after one to three times it: it gets
# the whole stall timeout (docs/guide/cameras.md).
READ_TIMEOUT_SHARE = {"pyav": 1 / 3, "opencv": 1.0}


class SourceError(RuntimeError):
    """A source cannot be opened; the message says why (never with the URL's credentials)."""


class VideoSource(Protocol):
    decoder: str
    width: int
    height: int
    native_fps: float
    last_read_at: float  # time.monotonic() when data last came from the stream
    keyframes_only: bool  # the last frame came from keyframe-only decoding

    def grab(self) -> float | None: ...

    def retrieve(self) -> np.ndarray | Picture | None: ...

    def release(self) -> None: ...


def is_network(url: str) -> bool:
    return "://" in url


def read_timeout_s(config: CameraConfig) -> float:
    """How long the camera's reader waits for data before it gives up."""
    return config.stall_timeout_s * READ_TIMEOUT_SHARE[decoder_for(config)]


def decoder_for(config: CameraConfig) -> str:
    """'auto': PyAV for files and network streams, OpenCV for capture devices."""
    if config.decoder != "auto":
        return config.decoder
    return "opencv" if config.url.startswith("usb:") else "pyav"
