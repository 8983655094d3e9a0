"""A self-made demo: enrol two people from photos that ship in registry packages, synthesise a
short clip in which they walk past with a third, unenrolled person, and run the daemon on it.

Faces: Grace Hopper (matplotlib's sample data), astronaut Eileen Collins and "the cameraman"
(scikit-image's bundled test images), both of the ``demo`` extra. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_daemon.logs import get_logger

log = get_logger(__name__)

CLIP_SIZE = (640, 360)
CLIP_FPS = 15
CLIP_SECONDS = 12


@dataclass(frozen=True)
class Person:
    name: str | None  # None: not enrolled
    image: np.ndarray  # BGR photo
    head: tuple[int, int, int, int]  # x, y, w, h of the head and shoulders to cut out


class SamplePhotosUnavailable(ImportError):
    """matplotlib or scikit-image, whose sample photos the demo is made of, is not installed."""


def demo_people() -> list[Person]:
    try:
        import matplotlib.cbook
        import skimage.data
    except ImportError as exc:
        raise SamplePhotosUnavailable(
            f"the demo needs the sample photos of matplotlib and scikit-image ({exc.name} is not installed): "
            "pip install 'edge-daemon[demo]'"
        ) from None

    hopper = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    cameraman = cv2.cvtColor(skimage.data.camera(), cv2.COLOR_GRAY2BGR)
    return [
        Person("grace_hopper", hopper, (130, 60, 280, 340)),
        Person("eileen_collins", astronaut, (140, 20, 170, 220)),
        Person(None, cameraman, (160, 70, 130, 160)),
    ]


def write_gallery_photos(people: list[Person], directory: Path) -> None:
    """One folder per enrolled person, holding their photo (the ``<identity>/<image>`` layout)."""
    for person in people:
        if person.name is not None:
            folder = directory / person.name
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / "photo.jpg"), person.image)


def _paths(frames: int) -> list[list[tuple[float, float, float]]]:
    """Per person, per frame: (centre x, centre y, scale)."""
    width, height = CLIP_SIZE
    t = np.linspace(0.0, 1.0, frames)
    tracks = [
        # One after the other, the same way, like people walking past a door camera.
        (np.clip((t - 0.00) / 0.45, 0, 1), -100, width + 100, 0.45),
        (np.clip((t - 0.28) / 0.45, 0, 1), -100, width + 100, 0.60),
        (np.clip((t - 0.55) / 0.45, 0, 1), -100, width + 100, 1.40),
    ]
    paths = []
    for progress, start, end, scale in tracks:
        x = start + (end - start) * progress
        y = height * 0.5 + 10 * np.sin(progress * 6 * np.pi)  # a little bounce while walking
        paths.append([(float(xi), float(yi), scale * (0.9 + 0.2 * p)) for xi, yi, p in zip(x, y, progress)])
    return paths


def write_clip(people: list[Person], path: Path) -> Path:
    frames = CLIP_FPS * CLIP_SECONDS
    width, height = CLIP_SIZE
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), CLIP_FPS, CLIP_SIZE)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write video {path}")
    rng = np.random.default_rng(7)
    background = cv2.GaussianBlur(rng.integers(60, 120, (height, width, 3), dtype=np.uint8), (0, 0), 9)
    sprites = [person.image[y : y + h, x : x + w] for person in people for (x, y, w, h) in [person.head]]
    for index, placements in enumerate(zip(*_paths(frames))):
        frame = background.copy()
        for sprite, (cx, cy, scale) in zip(sprites, placements):
            resized = cv2.resize(sprite, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            h, w = resized.shape[:2]
            x0, y0 = int(cx - w / 2), int(cy - h / 2)
            fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
            if fx1 > fx0 and fy1 > fy0:
                frame[fy0:fy1, fx0:fx1] = resized[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
        noise = rng.normal(0, 3, frame.shape)
        writer.write(np.clip(frame + noise, 0, 255).astype(np.uint8))
        if index == frames // 2:
            cv2.imwrite(str(path.with_suffix(".preview.jpg")), frame)
    writer.release()
    return path


def make_demo_assets(directory: Path) -> tuple[Path, Path]:
    """Write ``photos/<name>/photo.jpg`` and ``clip.mp4`` under ``directory``; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    people = demo_people()
    write_gallery_photos(people, directory / "photos")
    clip = write_clip(people, directory / "clip.mp4")
    log.info("demo assets written", photos=str(directory / "photos"), clip=str(clip))
    return directory / "photos", clip
