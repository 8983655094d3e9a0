"""What the detector found in a frame's regions and mosaics, back in frame coordinates, each face
once: a face found in two regions is kept once (by IoU), and a face cut by a region's inner edge
gives way to the whole face that a neighbouring region found."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge_daemon.messages import Detection
from edge_daemon.pipeline.regions.geometry import Region, intersection, iou
from edge_daemon.pipeline.regions.mosaic import Mosaic

EDGE_PX = 2  # a detection this close to a crop's inner edge is taken as cut by it
CUT_OVERLAP = 0.5  # a cut face mostly inside a kept face is that face


def _to_frame(detection: Detection, region: Region) -> Detection:
    # The shrunk crop's own size, not the scale, maps back: its sides were rounded to whole pixels.
    detected_width, detected_height = region.detected_size
    return _mapped(detection, region.width / detected_width, region.height / detected_height, region.x, region.y)


def _mapped(detection: Detection, fx: float, fy: float, left: float = 0.0, top: float = 0.0) -> Detection:
    x, y, w, h = detection.bbox
    dtype = detection.landmarks.dtype
    landmarks = detection.landmarks * np.array([fx, fy], dtype=dtype) + np.array([left, top], dtype=dtype)
    return Detection((x * fx + left, y * fy + top, w * fx, h * fy), detection.score, landmarks)


def shrunk_frame_detections(
    found: Sequence[Detection], shrunk_size: tuple[int, int], frame_size: tuple[int, int]
) -> list[Detection]:
    """What the detector found in the whole frame shrunk to ``shrunk_size`` (width, height), in
    frame coordinates."""
    fx, fy = frame_size[0] / shrunk_size[0], frame_size[1] / shrunk_size[1]
    return [_mapped(detection, fx, fy) for detection in found]


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
            overlap = intersection(detection.bbox, other.bbox)
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
