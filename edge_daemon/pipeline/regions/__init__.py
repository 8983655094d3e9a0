"""Regions: crops of a frame around what moves and what is tracked, detected instead of the whole
frame, so that a small face reaches the detector large enough to be found.

- ``geometry``: a region (a crop and the scale it is detected at) and box arithmetic;
- ``planning``: which regions a frame's boxes need, and at what scale;
- ``mosaic``: small regions packed onto canvases, one detector call each;
- ``cost``: what detecting regions costs against the whole frame;
- ``merging``: what the detector found in them, back in frame coordinates, each face once.

Detecting them is the detection queue's (``pipeline.detection.detect_requests``).
"""

from edge_daemon.pipeline.regions.cost import (
    CALL_COST_PX,
    SHRINK_COST_PER_PX,
    call_cost,
    detector_pixels,
    regions_cost,
)
from edge_daemon.pipeline.regions.geometry import Region, iou
from edge_daemon.pipeline.regions.merging import merge_mosaic_detections, shrunk_frame_detections
from edge_daemon.pipeline.regions.mosaic import MOSAIC_GAP_PX, Mosaic, pack_mosaics
from edge_daemon.pipeline.regions.planning import (
    FACE_DETECT_PX,
    SIDE_STEP,
    RegionSettings,
    face_scale,
    plan_regions,
    region_around,
    require_fractions,
)

__all__ = [
    "CALL_COST_PX",
    "FACE_DETECT_PX",
    "MOSAIC_GAP_PX",
    "SHRINK_COST_PER_PX",
    "SIDE_STEP",
    "Mosaic",
    "Region",
    "RegionSettings",
    "call_cost",
    "detector_pixels",
    "face_scale",
    "iou",
    "merge_mosaic_detections",
    "pack_mosaics",
    "plan_regions",
    "region_around",
    "regions_cost",
    "require_fractions",
    "shrunk_frame_detections",
]
