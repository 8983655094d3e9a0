"""Regions: crops of a frame around what moves and what is tracked, detected instead of the whole
frame.

The detector shrinks whatever it is given to ``detector.max_side`` (640). A whole 1080p frame is
shrunk to a third, so a face 30 px wide reaches the detector 10 px wide, at the edge of what YuNet
finds. A region no larger than ``max_side`` is detected at full resolution, and several of them
cost less than the whole frame when the scene moves in a few places only.

The idea is Frigate's (regions sized to the box, never smaller than a minimum, kept inside the
frame, merged when they overlap), adapted to faces and to YuNet:

- a region is centred on its box, each side ``box_scale`` times the box's and at least
  ``padding_px`` beyond it, so a face that the box cuts (a motion box that caught half a head) is
  whole inside the region. Frigate's objects take twice their box for context; a face needs none,
  and a walker's motion box is tall: at 2x, a person whose face is 28 px wide in 1080p got a
  512 px region costing more than the whole frame (bench/regions.py);
- a region is a rectangle of its box's shape, not Frigate's square: Frigate's detectors take a
  fixed square input, YuNet takes any size and mosaics pack rectangles, so a walker's tall box
  does not pay for a square as wide as it is tall. Sides are multiples of ``SIDE_STEP``;
- a region is shifted, not clipped, to stay inside the frame, so it keeps its size and its margin
  on the far side;
- regions overlapping by ``merge_overlap`` of the smaller one become one region around both boxes:
  one detector call instead of two over mostly the same pixels;
- a face found in two regions is kept once (by IoU), and a face cut by a region's inner edge gives
  way to the whole face that a neighbouring region found;
- a region has a scale: motion where no face is known yet is detected at full resolution (the
  point of regions: small faces), but a region around a live track, whose face size is known, is
  shrunk until that face is ``face_px`` (40) wide for the detector, never below the whole frame's
  own downscale (the scale the embedders' alignment and thresholds were measured at). A 100-px
  face in a 352-px region of a 720p frame is detected at half size, for about a third of the time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edge_daemon.detectors.base import Detector
from edge_daemon.messages import BBox, Detection

STRIDE = 32  # YuNet pads its input to a multiple of its coarsest stride
# A region's sides are multiples of YuNet's finest stride: a region alone is padded to STRIDE by the
# detector anyway, but a tile in a mosaic rounded up to STRIDE would pay up to 31 px of black a side.
SIDE_STEP = 8
EDGE_PX = 2  # a detection this close to a crop's inner edge is taken as cut by it
CUT_OVERLAP = 0.5  # a cut face mostly inside a kept face is that face
# The default width a tracked face is shrunk to for detection. bench/pipeline.py --clip idle --cost:
# at 40 px the regions found every face they found at full size (55 of 55) for 0.80-0.90x the
# detector time; at 32 px they lost 7 of 55.
FACE_DETECT_PX = 40
# What a detector call costs besides its network's pixels, in the network's pixels (the policy
# compares the regions' cost with the whole frame's by them): a call's fixed cost (the pipe to the
# detector process, ONNX Runtime's own, decoding and NMS), and shrinking an image for the detector,
# per source pixel. bench/detect.py --cost-model measures them: on the 2-core box (four runs) a call
# took 0.51-0.75 ms plus 20-31 ms per megapixel of network input (19,000-33,000 pixels' worth), and
# shrinking 1.0-1.7 ms per source megapixel (0.046-0.058 of a network pixel; 1080p to 640: about
# 2.3 ms, more than a third of the whole frame's network time).
CALL_COST_PX = 30_000
SHRINK_COST_PER_PX = 0.05
# Black between a mosaic's tiles: one of YuNet's finest strides, so a face at a tile's edge is not
# pieced together with its neighbour's pixels.
MOSAIC_GAP_PX = 8


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


@dataclass(frozen=True)
class Region:
    """A crop of a frame: top-left corner and size, in frame pixels, and the scale it is detected at."""

    x: int
    y: int
    width: int
    height: int
    scale: float = 1.0  # (0, 1]: the crop is shrunk by this before detection

    def __post_init__(self) -> None:
        if not 0 < self.scale <= 1:
            raise ValueError(f"a region's scale must be in (0, 1], got {self.scale}")

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def detected_size(self) -> tuple[int, int]:
        """Width and height of the image the detector is given."""
        return max(1, round(self.width * self.scale)), max(1, round(self.height * self.scale))

    def crop(self, frame: np.ndarray) -> np.ndarray:
        """The region's pixels (a view: nothing is copied)."""
        height, width = frame.shape[:2]
        if self.x < 0 or self.y < 0 or self.x + self.width > width or self.y + self.height > height:
            raise ValueError(f"{self} lies outside the {width}x{height} frame")
        return frame[self.y : self.y + self.height, self.x : self.x + self.width]

    def image(self, frame: np.ndarray) -> np.ndarray:
        """What the detector is given: the crop, shrunk to the region's scale."""
        crop = self.crop(frame)
        if self.scale == 1:
            return crop
        return cv2.resize(crop, self.detected_size, interpolation=cv2.INTER_AREA)


def face_scale(face_width: float, frame_scale: float, face_px: int = FACE_DETECT_PX) -> float:
    """The scale at which a tracked face ``face_width`` frame pixels wide is detected in a region:
    small enough that it is ``face_px`` wide, never smaller than ``frame_scale`` (the whole frame's
    downscale), never enlarged; ``face_px`` 0: full size."""
    if face_width <= 0 or not 0 < frame_scale <= 1:
        raise ValueError(f"face_width must be positive and frame_scale in (0, 1], got {face_width}, {frame_scale}")
    if face_px == 0:
        return 1.0
    return min(1.0, max(frame_scale, face_px / face_width))


def _check_frame_size(frame_size: tuple[int, int]) -> None:
    if min(frame_size) <= 0:
        raise ValueError(f"frame_size must be (width, height) with both positive, got {frame_size}")


def _region_side(length: float, settings: RegionSettings) -> int:
    needed = max(length * settings.box_scale, length + 2 * settings.padding_px)
    return max(settings.min_side, math.ceil(needed / SIDE_STEP) * SIDE_STEP)


def region_around(box: BBox, frame_size: tuple[int, int], settings: RegionSettings, scale: float = 1.0) -> Region:
    """The region for one box (``frame_size`` = width, height), shifted inside the frame; only a
    frame smaller than the region cuts it to the frame's side."""
    _check_frame_size(frame_size)
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise ValueError(f"a box must have a positive size, got {box}")
    frame_width, frame_height = frame_size
    width, height = min(_region_side(w, settings), frame_width), min(_region_side(h, settings), frame_height)
    left = min(max(round(x + w / 2 - width / 2), 0), frame_width - width)
    top = min(max(round(y + h / 2 - height / 2), 0), frame_height - height)
    return Region(left, top, width, height, scale)


def _intersection(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(width, 0.0) * max(height, 0.0)


def iou(a: BBox, b: BBox) -> float:
    """Intersection over union of two (x, y, w, h) boxes; 0 when they do not overlap."""
    overlap = _intersection(a, b)
    return overlap / (a[2] * a[3] + b[2] * b[3] - overlap) if overlap > 0 else 0.0


def _union(a: BBox, b: BBox) -> BBox:
    left, top = min(a[0], b[0]), min(a[1], b[1])
    return (left, top, max(a[0] + a[2], b[0] + b[2]) - left, max(a[1] + a[3], b[1] + b[3]) - top)


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
                overlap = _intersection((a.x, a.y, a.width, a.height), (b.x, b.y, b.width, b.height))
                if overlap >= settings.merge_overlap * min(a.area, b.area):
                    box = _union(box_a, box_b)
                    planned[i] = (box, region_around(box, frame_size, settings, max(a.scale, b.scale)))
                    del planned[j]
                    merged = True
                    break
            if merged:
                break
    return [region for _, region in planned]


@dataclass(frozen=True)
class Mosaic:
    """Regions detected in one image: each region's detector image (``Region.image``) at its offset
    on a black canvas. Twelve small regions in one call cost the canvas's pixels and one call's
    fixed cost (ONNX Runtime's, the decoding's and NMS's), instead of twelve calls' fixed costs."""

    width: int
    height: int
    tiles: tuple[tuple[Region, int, int], ...]  # region, left and top on the canvas

    @property
    def regions(self) -> list[Region]:
        return [region for region, _, _ in self.tiles]

    def image(self, frame: np.ndarray) -> np.ndarray:
        """What the detector is given: the region's own image when it is alone, else the canvas."""
        if len(self.tiles) == 1:
            return self.tiles[0][0].image(frame)
        canvas = np.zeros((self.height, self.width, *frame.shape[2:]), frame.dtype)
        for region, left, top in self.tiles:
            width, height = region.detected_size
            canvas[top : top + height, left : left + width] = region.image(frame)
        return canvas

    def split(self, detections: Sequence[Detection]) -> list[list[Detection]]:
        """The canvas's detections, per tile, each given to the tile holding its centre, in that
        tile's coordinates: what its region's image alone would have given."""
        per_tile: list[list[Detection]] = [[] for _ in self.tiles]
        for detection in detections:
            x, y, w, h = detection.bbox
            centre_x, centre_y = x + w / 2, y + h / 2
            for found, (region, left, top) in zip(per_tile, self.tiles):
                width, height = region.detected_size
                if left <= centre_x < left + width and top <= centre_y < top + height:
                    offset = np.array([left, top], dtype=detection.landmarks.dtype)
                    found.append(Detection((x - left, y - top, w, h), detection.score, detection.landmarks - offset))
                    break
        return per_tile


def pack_mosaics(regions: Sequence[Region], side: int) -> list[Mosaic]:
    """The regions on as few canvases of at most ``side`` x ``side`` (the detector's ``max_side``,
    so a canvas is not shrunk) as shelf packing finds: tallest first, each on the first shelf with
    room, ``MOSAIC_GAP_PX`` of black between tiles so that the detector sees each tile's edge as
    it sees an image's. A region larger than ``side`` is detected alone (shrunk as the whole frame
    would be); ``side`` 0: every region alone."""
    alone: list[Mosaic] = []
    canvases: list[list[list]] = []  # canvas -> shelves: [top, height, used width, tiles]
    for region in sorted(regions, key=lambda region: region.detected_size[1], reverse=True):
        width, height = region.detected_size
        if not side or width > side or height > side:
            alone.append(Mosaic(width, height, ((region, 0, 0),)))
            continue
        for shelves in canvases:
            shelf = next((s for s in shelves if height <= s[1] and s[2] + MOSAIC_GAP_PX + width <= side), None)
            if shelf is not None:
                shelf[3].append((region, shelf[2] + MOSAIC_GAP_PX, shelf[0]))
                shelf[2] += MOSAIC_GAP_PX + width
                break
            top = shelves[-1][0] + shelves[-1][1] + MOSAIC_GAP_PX
            if top + height <= side:
                shelves.append([top, height, width, [(region, 0, top)]])
                break
        else:
            canvases.append([[0, height, width, [(region, 0, 0)]]])
    packed = [
        Mosaic(max(shelf[2] for shelf in shelves), shelves[-1][0] + shelves[-1][1],
               tuple(tile for shelf in shelves for tile in shelf[3]))
        for shelves in canvases
    ]
    return packed + alone


def detector_pixels(width: int, height: int, max_side: int) -> int:
    """Pixels the detector's network runs on for an image of this size: shrunk to ``max_side`` as
    ``detectors.base.downscale`` does, padded to the stride. Detector time grows with it."""
    scale = min(1.0, max_side / max(width, height))
    return math.ceil(round(width * scale) / STRIDE) * STRIDE * math.ceil(round(height * scale) / STRIDE) * STRIDE


def call_cost(width: int, height: int, max_side: int, shrunk_px: int = 0) -> float:
    """What detecting one image of this size costs, in detector pixels: the network's pixels
    (``detector_pixels``), a call's fixed cost, and the shrinking of the image (when it is larger
    than ``max_side``) and of ``shrunk_px`` more source pixels (a mosaic's shrunk tiles)."""
    if max(width, height) > max_side:
        shrunk_px += width * height
    return detector_pixels(width, height, max_side) + CALL_COST_PX + SHRINK_COST_PER_PX * shrunk_px


def regions_cost(regions: Sequence[Region], frame_size: tuple[int, int], max_side: int) -> float:
    """What detecting the regions costs, packed as the detector gets them (``pack_mosaics``), as a
    share of what detecting the whole frame costs (1.0: as costly), both by ``call_cost``."""
    _check_frame_size(frame_size)
    whole = call_cost(*frame_size, max_side)
    return sum(
        call_cost(mosaic.width, mosaic.height, max_side, sum(region.area for region in mosaic.regions if region.scale < 1))
        for mosaic in pack_mosaics(regions, max_side)
    ) / whole


def _to_frame(detection: Detection, region: Region) -> Detection:
    x, y, w, h = detection.bbox
    # The shrunk crop's own size, not the scale, maps back: its sides were rounded to whole pixels.
    detected_width, detected_height = region.detected_size
    fx, fy = region.width / detected_width, region.height / detected_height
    dtype = detection.landmarks.dtype
    landmarks = detection.landmarks * np.array([fx, fy], dtype=dtype) + np.array([region.x, region.y], dtype=dtype)
    return Detection((x * fx + region.x, y * fy + region.y, w * fx, h * fy), detection.score, landmarks)


def _is_cut(detection: Detection, region: Region, frame_size: tuple[int, int]) -> bool:
    """Whether the face touches an edge of the crop that is not an edge of the frame."""
    x, y, w, h = detection.bbox  # coordinates of the image the detector was given
    crop_width, crop_height = region.detected_size
    frame_width, frame_height = frame_size
    return (
        (region.x > 0 and x <= EDGE_PX)
        or (region.y > 0 and y <= EDGE_PX)
        or (region.x + region.width < frame_width and x + w >= crop_width - EDGE_PX)
        or (region.y + region.height < frame_height and y + h >= crop_height - EDGE_PX)
    )


def merge_region_detections(
    regions: Sequence[Region],
    found: Sequence[Sequence[Detection]],
    frame_size: tuple[int, int],
    duplicate_iou: float,
) -> list[Detection]:
    """Each region's detections (in its crop's coordinates) -> one list in frame coordinates, each
    face once: whole faces before cut ones, then best score first; a face overlapping a kept one by
    more than ``duplicate_iou``, or a cut face lying mostly inside a kept one, is the kept one."""
    if len(regions) != len(found):
        raise ValueError(f"{len(regions)} regions but {len(found)} detection lists")
    candidates = [
        (_is_cut(detection, region, frame_size), _to_frame(detection, region))
        for region, detections in zip(regions, found)
        for detection in detections
    ]
    candidates.sort(key=lambda candidate: (candidate[0], -candidate[1].score))
    kept: list[Detection] = []
    for cut, detection in candidates:
        area = detection.bbox[2] * detection.bbox[3]
        duplicate = False
        for other in kept:
            overlap = _intersection(detection.bbox, other.bbox)
            if iou(detection.bbox, other.bbox) > duplicate_iou or (cut and overlap > CUT_OVERLAP * area):
                duplicate = True
                break
        if not duplicate:
            kept.append(detection)
    return kept


def merge_mosaic_detections(
    mosaics: Sequence[Mosaic],
    found: Sequence[Sequence[Detection]],
    frame_size: tuple[int, int],
    duplicate_iou: float,
) -> list[Detection]:
    """Each mosaic's detections (in its canvas's coordinates) -> one list in frame coordinates, each
    face once (``merge_region_detections`` over every tile)."""
    if len(mosaics) != len(found):
        raise ValueError(f"{len(mosaics)} mosaics but {len(found)} detection lists")
    regions = [region for mosaic in mosaics for region in mosaic.regions]
    per_region = [tile for mosaic, detections in zip(mosaics, found) for tile in mosaic.split(detections)]
    return merge_region_detections(regions, per_region, frame_size, duplicate_iou)


def detect_in_regions(
    detector: Detector,
    frame: np.ndarray,
    regions: Sequence[Region],
    duplicate_iou: float = RegionSettings.duplicate_iou,
    mosaic_side: int = 0,
) -> list[Detection]:
    """Faces in the regions of ``frame``, in frame coordinates, each face once; with ``mosaic_side``
    (the detector's ``max_side``) the regions packed into mosaics, as the daemon detects them."""
    height, width = frame.shape[:2]
    mosaics = pack_mosaics(regions, mosaic_side)
    found = [detector.detect(mosaic.image(frame)) for mosaic in mosaics]
    return merge_mosaic_detections(mosaics, found, (width, height), duplicate_iou)
