"""Mosaics: a frame's regions packed onto as few canvases as fit, each canvas detected in one call.

A detector call has a fixed cost besides its pixels (``cost.CALL_COST_PX``): many small regions in
one canvas pay it once, and the canvas's pixels, instead of once a region."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge_daemon.messages import Detection
from edge_daemon.pipeline.regions.geometry import Region

# Black between a mosaic's tiles: one of YuNet's finest strides, so a face at a tile's edge is not
# pieced together with its neighbour's pixels.
MOSAIC_GAP_PX = 8


@dataclass(frozen=True)
class Mosaic:
    """Regions detected in one image: each region's detector image (``Region.image``) at its offset
    on a black canvas, so that many small regions cost the canvas's pixels and one call's fixed cost
    (ONNX Runtime's, the decoding's and NMS's) instead of a fixed cost each."""

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
