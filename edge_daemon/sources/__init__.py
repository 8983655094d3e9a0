"""Video sources: a camera URL opened and decoded, by OpenCV or by PyAV (``cameras.decoder``).

  opencv  OpenCV's FFmpeg reader (V4L2 for ``usb:N``): decodes every frame
  pyav    PyAV, FFmpeg's libraries: skips decoding the frames detection will not look at
          (B-frames, then all non-reference frames) while the rest still cover ``detect_fps``

A source yields frames one at a time: ``grab()`` decodes the next one and returns its media time
in seconds (None when the stream ended, failed or timed out), ``retrieve()`` hands it over, only for
the frames handed to detection: OpenCV's as a BGR image, PyAV's as a ``Picture`` that converts only
what a stage asks of it (the motion mask's small grey copy, the detector's shrunk frame, BGR).
``last_read_at`` is when data last came (a stall is measured from it), ``keyframes_only`` whether the
last frame came from keyframe-only decoding (PyAV only).
"""

from __future__ import annotations

from collections.abc import Callable

from edge_daemon.config import CameraConfig
from edge_daemon.sources import opencv, pyav
from edge_daemon.sources.base import SourceError, VideoSource, decoder_for, is_network, read_timeout_s

__all__ = ["BACKENDS", "SourceError", "VideoSource", "is_network", "open_source", "read_timeout_s"]

BACKENDS = {"opencv": opencv.OpenCvSource, "pyav": pyav.PyAvSource}


def open_source(config: CameraConfig, keyframes_only: Callable[[], bool] | None = None) -> VideoSource:
    """The camera's source, opened; ``SourceError`` if it cannot be. ``keyframes_only``: asked while
    decoding whether to decode only keyframes (an idle scene); only PyAV can, OpenCV's reader decodes
    every frame whatever it is told (it has no way to skip frames before decoding them)."""
    if decoder_for(config) == "pyav" and keyframes_only is not None:
        return pyav.PyAvSource(config, keyframes_only=keyframes_only)
    return BACKENDS[decoder_for(config)](config)
