"""H.264 clips with a chosen keyframe interval, for the tests of keyframe-only decoding: a quiet
scene (the walking clip's background with sensor noise) and the same scene with a person who walks
in after a quiet spell. Encoded by PyAV's libx264 without B-frames, as most IP cameras stream."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np

from edge_daemon.messages import BBox
from tests.support.pasted_faces import Face, paste
from tests.support.scene_motion import noisy

FPS = 10
FACE_PX = 60


def write_h264(path: Path, frames: Iterable[np.ndarray], fps: int, keyframe_every: int, b_frames: int = 0) -> None:
    """BGR frames to an MP4 file whose keyframes come exactly every ``keyframe_every`` frames."""
    with av.open(str(path), "w") as output:
        stream = None
        for index, image in enumerate(frames):
            if stream is None:
                stream = output.add_stream("libx264", rate=fps)
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.codec_context.gop_size = keyframe_every
                stream.codec_context.max_b_frames = b_frames
                stream.codec_context.options = {"preset": "veryfast", "keyint_min": str(keyframe_every), "sc_threshold": "0"}
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))


def quiet_frames(scene: np.ndarray, seconds: float, seed: int = 0) -> Iterable[np.ndarray]:
    rng = np.random.default_rng(seed)
    for _ in range(round(seconds * FPS)):
        yield noisy(scene, rng)


def walk_in_frames(scene: np.ndarray, face: Face, quiet_s: float, walk_s: float, truths: list[BBox | None]) -> Iterable[np.ndarray]:
    """``quiet_s`` of the empty scene, then a face crossing it from the left for ``walk_s``; the
    face's box for each frame (None before it is in view) is appended to ``truths``."""
    rng = np.random.default_rng(1)
    height, width = scene.shape[:2]
    for index in range(round((quiet_s + walk_s) * FPS)):
        image = noisy(scene, rng)
        t = index / FPS - quiet_s
        truths.append(None if t < 0 else paste(image, face, FACE_PX, (FACE_PX + t / walk_s * (width - 2 * FACE_PX), height * 0.4)))
        yield image
