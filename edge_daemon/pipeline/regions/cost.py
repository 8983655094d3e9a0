"""The cost model: what detecting an image costs, in the detector network's pixels, so that the
policy can compare a frame's regions with the whole frame (docs/design/detection-cost.md)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from edge_daemon.pipeline.regions.geometry import Region, check_frame_size
from edge_daemon.pipeline.regions.mosaic import pack_mosaics

STRIDE = 32  # YuNet pads its input to a multiple of its coarsest stride
# What a detector call costs besides its network's pixels, in the network's pixels: a call's fixed
# cost (the pipe to the detector process, ONNX Runtime's own, decoding and NMS), and shrinking an
# image for the detector, per source pixel (a 1080p frame's shrinking is a large share of its
# detection). ``python -m bench.detect --cost-model`` measures both; docs/design/detection-cost.md
# has the measurements these values stand for.
CALL_COST_PX = 30_000
SHRINK_COST_PER_PX = 0.05


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
    check_frame_size(frame_size)
    whole = call_cost(*frame_size, max_side)
    return sum(
        call_cost(mosaic.width, mosaic.height, max_side, sum(region.area for region in mosaic.regions if region.scale < 1))
        for mosaic in pack_mosaics(regions, max_side)
    ) / whole
