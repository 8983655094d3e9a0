"""Real faces pasted into frames at a chosen width and place, and where each face is: the material
the motion, region and detection-queue tests and ``python -m bench.regions`` detect.

The faces are celeb24's aligned 112x112 crops (``shared/data/train``). Where the face lies in its
crop is measured once per crop by the detector itself, on the crop enlarged on a grey canvas, so a
pasted face's expected box is that box scaled and moved, not a guess about the alignment. The crop
is pasted through a feathered ellipse (the head, not a square photo).

    faces = load_faces(detector, count=10)
    box = paste(frame, faces[0], width=24, centre=(900, 400))   # the face's box in the frame
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_daemon.messages import BBox
from tests.support.paths import DATA

CELEB24 = DATA / "train" / "celeb24"
MEASURE_SCALE = 3  # crops are measured at 336 px, where the detector finds every face whole


@dataclass(frozen=True)
class Face:
    image: np.ndarray  # the aligned crop, BGR
    box: BBox  # the face within the crop, crop pixels


def load_faces(detector, count: int, root: Path = CELEB24) -> list[Face]:
    """The first crop of each of ``count`` people (in name order) that the detector finds a face in."""
    faces = []
    for person in sorted(path for path in root.iterdir() if path.is_dir()):
        image = cv2.imread(str(sorted(person.glob("*.jpg"))[0]))
        side = image.shape[1] * MEASURE_SCALE
        canvas = np.full((2 * side, 2 * side, 3), 128, np.uint8)
        canvas[side // 2 : side // 2 + side, side // 2 : side // 2 + side] = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
        found = detector.detect(canvas)
        if len(found) != 1:
            continue
        x, y, w, h = found[0].bbox
        faces.append(Face(image, ((x - side // 2) / MEASURE_SCALE, (y - side // 2) / MEASURE_SCALE, w / MEASURE_SCALE, h / MEASURE_SCALE)))
        if len(faces) == count:
            return faces
    raise ValueError(f"only {len(faces)} of {count} faces found under {root}")


def paste(frame: np.ndarray, face: Face, width: float, centre: tuple[float, float]) -> BBox:
    """Paste ``face`` into ``frame`` (in place) so that its face is ``width`` pixels wide and centred
    at ``centre``; returns the face's expected box in frame pixels. The crop may run off the frame."""
    scale = width / face.box[2]
    side = max(2, round(face.image.shape[1] * scale))
    scale = side / face.image.shape[1]  # the scale the rounded side really has
    patch = cv2.resize(face.image, (side, side), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    mask = np.zeros((side, side), np.float32)
    cv2.ellipse(mask, (side // 2, side // 2), (int(side * 0.46), int(side * 0.5)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(side * 0.03, 0.5))[..., None]
    fx, fy, fw, fh = (v * scale for v in face.box)
    left, top = round(centre[0] - fx - fw / 2), round(centre[1] - fy - fh / 2)
    height, frame_width = frame.shape[:2]
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + side, frame_width), min(top + side, height)
    if x1 > x0 and y1 > y0:
        inside = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
        alpha = mask[inside]
        frame[y0:y1, x0:x1] = (patch[inside] * alpha + frame[y0:y1, x0:x1] * (1 - alpha)).astype(np.uint8)
    return (left + fx, top + fy, fw, fh)

