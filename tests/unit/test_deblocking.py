"""``cameras.deblocking``: off by default, the decoder skips H.264's in-loop deblocking filter. The
frames it gives then differ from a full decode (so the option reached the decoder), and only
faintly, on a real camera clip."""

from __future__ import annotations

import numpy as np

from edge_daemon.config import CameraConfig
from edge_daemon.sources import open_source
from tests.support.paths import HAMILTON_CLIP, need

FRAMES = 60


def grey_frames(deblocking: bool) -> list[np.ndarray]:
    config = CameraConfig(name="door", url=str(need(HAMILTON_CLIP)), decoder="pyav", deblocking=deblocking)
    source = open_source(config)
    frames = []
    try:
        while len(frames) < FRAMES and source.grab() is not None:
            frames.append(source.retrieve().grey((640, 360)).astype(np.float64))
    finally:
        source.release()
    return frames


def test_deblocking_is_off_by_default():
    assert CameraConfig(name="door", url="rtsp://camera/stream").deblocking is False


def test_frames_decoded_without_deblocking_differ_from_a_full_decode_only_faintly():
    skipped, full = grey_frames(deblocking=False), grey_frames(deblocking=True)
    assert len(skipped) == len(full) == FRAMES
    errors = np.array([np.mean((a - b) ** 2) for a, b in zip(skipped, full)])
    assert errors.max() > 0, "the decoder ignored skip_loop_filter: every frame is the full decode"
    psnr = 10 * np.log10(255**2 / np.maximum(errors, 1e-12))
    assert psnr.min() > 35, f"frames without deblocking fell to {psnr.min():.1f} dB against the full decode"
