"""Face photos as cameras see them in difficult light: named renderers of a BGR photo, each drawing
its parameters from a plausible range with the caller's seeded generator, so a benchmark meets a
spread of cameras and nights rather than one setting it could be tuned to. They compose with the
width degradation of ``edge_daemon.evaluation.open_set`` (rendered first, then made smaller).
For video, ``noise`` gives each frame its own sensor noise while one generator, made afresh for each
frame from the same seed, keeps the camera's settings (contrast, blur, compression) from frame to frame.

  daylight     the photo as it is
  grey         one channel (a colour camera's night mode without IR, or a grey photo)
  infrared     night vision: grey, contrast reduced and blacks lifted (IR-lit skin is flat and
               washed out), slight blur, sensor noise, a low-bitrate grey stream
  low_light    a dark colour picture with the noise of a camera's gain
  motion_blur  a walker's face smeared along a random direction
  low_bitrate  colour, strongly JPEG-compressed (a starved substream)

What each does to recognition, by face width: docs/guide/night.md.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import cv2
import numpy as np

Renderer = Callable[[np.ndarray, np.random.Generator, np.random.Generator], np.ndarray]  # image, settings, noise


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` (BGR or one channel) through a JPEG encoder at ``quality``, as decoded."""
    encoded, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not encoded:
        raise ValueError("cannot JPEG-encode the rendered image")
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def _noisy(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(image.astype(np.float32) + rng.normal(0.0, sigma, image.shape), 0, 255).astype(np.uint8)


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def daylight(image: np.ndarray, rng: np.random.Generator, noise: np.random.Generator) -> np.ndarray:
    return image


def grey(image: np.ndarray, rng: np.random.Generator, noise: np.random.Generator) -> np.ndarray:
    return cv2.cvtColor(_grey(image), cv2.COLOR_GRAY2BGR)


def infrared(image: np.ndarray, rng: np.random.Generator, noise: np.random.Generator) -> np.ndarray:
    # The grey stream is encoded with one channel, so the result has no chroma at all (as an IR
    # camera's frames have none).
    contrast = rng.uniform(0.35, 0.65)
    lift = rng.uniform(0.3, 1.0) * 255 * (1 - contrast)  # the black level, never above white
    flat = _grey(image).astype(np.float32) * contrast + lift
    blurred = cv2.GaussianBlur(flat, (0, 0), rng.uniform(0.5, 1.2))
    noisy = _noisy(blurred, rng.uniform(3.0, 8.0), noise)
    return cv2.cvtColor(_jpeg(noisy, rng.integers(15, 36)), cv2.COLOR_GRAY2BGR)


def low_light(image: np.ndarray, rng: np.random.Generator, noise: np.random.Generator) -> np.ndarray:
    dark = image.astype(np.float32) * rng.uniform(0.15, 0.35)
    return _jpeg(_noisy(dark, rng.uniform(2.0, 5.0), noise), rng.integers(40, 71))


def motion_blur(image: np.ndarray, rng: np.random.Generator, noise: np.random.Generator) -> np.ndarray:
    length = int(rng.integers(5, 12))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    turn = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, turn, (length, length))
    return cv2.filter2D(image, -1, kernel / kernel.sum())


def low_bitrate(image: np.ndarray, rng: np.random.Generator, noise: np.random.Generator) -> np.ndarray:
    return _jpeg(image, rng.integers(8, 16))


CONDITIONS: dict[str, Renderer] = {
    "daylight": daylight,
    "grey": grey,
    "infrared": infrared,
    "low_light": low_light,
    "motion_blur": motion_blur,
    "low_bitrate": low_bitrate,
}


def photo_rng(seed: int, name: str) -> np.random.Generator:
    """The generator for one photo: the same photo and seed always render the same."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def render(image: np.ndarray, condition: str, rng: np.random.Generator, noise: np.random.Generator | None = None) -> np.ndarray:
    """``image`` (BGR uint8) as seen under ``condition`` (a name in ``CONDITIONS``), BGR uint8 of the
    same size; sensor noise drawn from ``noise`` where given, else from ``rng``."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}: one of {', '.join(CONDITIONS)}")
    return CONDITIONS[condition](image, rng, rng if noise is None else noise)
