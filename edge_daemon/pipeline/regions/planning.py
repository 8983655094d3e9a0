"""Region planning: the crops of a frame around what moves and what is tracked, detected instead of
the whole frame.

The detector shrinks whatever it is given to ``detector.max_side``. A whole 1080p frame is shrunk to
a third, so a face 30 px wide reaches the detector 10 px wide, at the edge of what YuNet finds. A
region no larger than ``max_side`` is detected at full resolution, and several of them cost less
than the whole frame when the scene moves in a few places only (``cost.regions_cost`` says when).

The idea is Frigate's (regions sized to the box, never smaller than a minimum, kept inside the
frame, merged when they overlap), adapted to faces and to YuNet:

- a region is centred on its box, each side ``box_scale`` times the box's and at least
  ``padding_px`` beyond it, so a face that the box cuts (a motion box that caught half a head) is
  whole inside the region. Frigate's objects take twice their box for context; a face needs none,
  and a walker's motion box is tall: at twice its box, a distant walker's region can cost more than
  the whole frame (docs/design/detection-cost.md);
- a region is a rectangle of its box's shape, not Frigate's square: Frigate's detectors take a
  fixed square input, YuNet takes any size and mosaics pack rectangles, so a walker's tall box
  does not pay for a square as wide as it is tall. Sides are multiples of ``SIDE_STEP``;
- a region is shifted, not clipped, to stay inside the frame, so it keeps its size and its margin
  on the far side;
- regions overlapping by ``merge_overlap`` of the smaller one become one region around both boxes:
  one detector call instead of two over mostly the same pixels;
- a region has a scale: motion where no face is known yet is detected at full resolution (the
  point of regions: small faces), but a region around a live track, whose face size is known, is
  shrunk until that face is ``face_px`` wide for the detector, never below the whole frame's own
  downscale (the scale the embedders' alignment and thresholds were measured at), so a large face
  costs the detector no more pixels than finding it needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from edge_daemon.messages import BBox
from edge_daemon.pipeline.regions.geometry import Region, check_frame_size, intersection, union

# A region's sides are multiples of YuNet's finest stride: a region alone is padded to its coarsest
# (``cost.STRIDE``) by the detector anyway, but a tile in a mosaic rounded up to that would pay up to
# 31 px of black a side.
SIDE_STEP = 8
# The default width a tracked face is shrunk to for detection: the smallest tried at which the
# regions still found every face they found at full size, for less detector time
# (docs/design/detection-cost.md).
FACE_DETECT_PX = 40


def require_fractions(settings, *names: str) -> None:
    """Raise ValueError unless each named attribute of ``settings`` is in (0, 1]."""
    for name in names:
        if not 0 < getattr(settings, name) <= 1:
            raise ValueError(f"{name} must be in (0, 1], got {getattr(settings, name)}")


@dataclass(frozen=True)
class RegionSettings:
    min_side: int = 64  # frame pixels; a multiple of SIDE_STEP
    box_scale: float = 1.25  # a region's side per the same side of its box
    padding_px: int = 24  # frame pixels kept around a box at least
    merge_overlap: float = 0.3  # of the smaller region
    duplicate_iou: float = 0.3
    face_px: int = FACE_DETECT_PX  # a tracked face's width for the detector; 0: regions at full size

    def __post_init__(self) -> None:
        if self.min_side < SIDE_STEP or self.min_side % SIDE_STEP:
            raise ValueError(f"min_side must be a positive multiple of {SIDE_STEP}, got {self.min_side}")
        if self.box_scale < 1:
            raise ValueError(f"box_scale must be at least 1 (a region holds its box), got {self.box_scale}")
        if self.padding_px < 0 or self.face_px < 0:
            raise ValueError(f"padding_px and face_px must not be negative, got {self.padding_px}, {self.face_px}")
        require_fractions(self, "merge_overlap", "duplicate_iou")


def face_scale(face_width: float, frame_scale: float, face_px: int = FACE_DETECT_PX) -> float:
    """The scale at which a tracked face ``face_width`` frame pixels wide is detected in a region:
    small enough that it is ``face_px`` wide, never smaller than ``frame_scale`` (the whole frame's
    downscale), never enlarged; ``face_px`` 0: full size."""
    if face_width <= 0 or not 0 < frame_scale <= 1:
        raise ValueError(f"face_width must be positive and frame_scale in (0, 1], got {face_width}, {frame_scale}")
    if face_px == 0:
        return 1.0
    return min(1.0, max(frame_scale, face_px / face_width))


def _region_side(length: float, settings: RegionSettings) -> int:
    needed = max(length * settings.box_scale, length + 2 * settings.padding_px)
    return max(settings.min_side, math.ceil(needed / SIDE_STEP) * SIDE_STEP)


def region_around(box: BBox, frame_size: tuple[int, int], settings: RegionSettings, scale: float = 1.0) -> Region:
    """The region for one box (``frame_size`` = width, height), shifted inside the frame; only a
    frame smaller than the region cuts it to the frame's side."""
    check_frame_size(frame_size)
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise ValueError(f"a box must have a positive size, got {box}")
    frame_width, frame_height = frame_size
    width, height = min(_region_side(w, settings), frame_width), min(_region_side(h, settings), frame_height)
    left = min(max(round(x + w / 2 - width / 2), 0), frame_width - width)
    top = min(max(round(y + h / 2 - height / 2), 0), frame_height - height)
    return Region(left, top, width, height, scale)


def plan_regions(
    boxes: Sequence[BBox], frame_size: tuple[int, int], settings: RegionSettings, scales: Sequence[float] | None = None
) -> list[Region]:
    """Regions covering every box (motion areas and live tracks alike), overlapping ones merged.
    ``scales``: each box's detection scale (default 1); a merged region takes the largest of its
    boxes', so that the smallest face among them stays findable."""
    if scales is None:
        scales = [1.0] * len(boxes)
    if len(scales) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(scales)} scales")
    planned = [(tuple(box), region_around(box, frame_size, settings, scale)) for box, scale in zip(boxes, scales)]
    merged = True
    while merged:
        merged = False
        for i in range(len(planned)):
            for j in range(i + 1, len(planned)):
                (box_a, a), (box_b, b) = planned[i], planned[j]
                overlap = intersection((a.x, a.y, a.width, a.height), (b.x, b.y, b.width, b.height))
                if overlap >= settings.merge_overlap * min(a.area, b.area):
                    box = union(box_a, box_b)
                    planned[i] = (box, region_around(box, frame_size, settings, max(a.scale, b.scale)))
                    del planned[j]
                    merged = True
                    break
            if merged:
                break
    return [region for _, region in planned]
