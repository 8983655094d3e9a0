"""Regions without a detector: their geometry, their cost against the whole frame, and mosaics that
pack them."""

from __future__ import annotations

import numpy as np
import pytest

from edge_daemon.messages import Detection
from edge_daemon.pipeline.regions import (
    CALL_COST_PX,
    FACE_DETECT_PX,
    MOSAIC_GAP_PX,
    SHRINK_COST_PER_PX,
    SIDE_STEP,
    Mosaic,
    Region,
    RegionSettings,
    call_cost,
    detector_pixels,
    face_scale,
    pack_mosaics,
    plan_regions,
    region_around,
    regions_cost,
)
from tests.support.regions import FULL_HD, SETTINGS

WHOLE_FULL_HD_COST = 640 * 384 + CALL_COST_PX + SHRINK_COST_PER_PX * 1920 * 1080


def _canvas_box(mosaic: Mosaic, region: Region) -> tuple[int, int, int, int]:
    ((left, top),) = [(left, top) for tile, left, top in mosaic.tiles if tile is region]
    return (left, top, *region.detected_size)


def test_a_region_is_a_rectangle_of_its_boxs_shape_holding_it_with_padding():
    box = (1000.0, 500.0, 100.0, 300.0)
    region = region_around(box, FULL_HD, SETTINGS)
    assert region.width == 152  # 100 + 2 * 24 = 148 (more than 1.25 * 100), rounded up to a multiple of 8
    assert region.height == 376  # 1.25 * 300 = 375 (more than 300 + 2 * 24), rounded up
    assert region.width % SIDE_STEP == 0 and region.height % SIDE_STEP == 0
    assert region.x <= box[0] - SETTINGS.padding_px and region.x + region.width >= box[0] + box[2] + SETTINGS.padding_px
    assert region.y <= box[1] - SETTINGS.padding_px and region.y + region.height >= box[1] + box[3] + SETTINGS.padding_px
    small = region_around((10.0, 10.0, 10.0, 4.0), FULL_HD, SETTINGS)
    assert (small.width, small.height) == (SETTINGS.min_side, SETTINGS.min_side)


def test_a_region_is_shifted_inside_the_frame_not_clipped():
    corner = region_around((1900.0, 1070.0, 20.0, 10.0), FULL_HD, SETTINGS)
    assert corner == Region(1920 - 72, 1080 - 64, 72, 64)  # 20 + 2 * 24 = 68 wide, rounded up; 64: the smallest side
    narrow = region_around((10.0, 10.0, 100.0, 100.0), (640, 120), SETTINGS)
    assert (narrow.x, narrow.y, narrow.width, narrow.height) == (0, 0, 152, 120)


def test_overlapping_regions_merge_and_distant_ones_stay_apart():
    near = [(500.0, 500.0, 40.0, 40.0), (540.0, 510.0, 40.0, 40.0)]
    far = (1600.0, 200.0, 40.0, 40.0)
    regions = plan_regions([*near, far], FULL_HD, SETTINGS)
    assert len(regions) == 2
    merged = next(region for region in regions if region.x < 1000)
    for x, y, w, h in near:
        assert merged.x <= x and x + w <= merged.x + merged.width and merged.y <= y and y + h <= merged.y + merged.height
    assert plan_regions([], FULL_HD, SETTINGS) == []


def test_cost_is_the_detector_pixels_calls_and_shrinking_against_the_whole_frame():
    assert detector_pixels(1920, 1080, 640) == 640 * 384  # shrunk to 640x360, padded to the stride
    assert detector_pixels(320, 320, 640) == 320 * 320  # not shrunk
    # The whole frame pays for its shrinking (a third of its network's time in 1080p); a crop at
    # full size only for its pixels and its call.
    assert call_cost(1920, 1080, 640) == pytest.approx(WHOLE_FULL_HD_COST)
    assert call_cost(320, 320, 640) == 320 * 320 + CALL_COST_PX
    assert regions_cost([Region(0, 0, 320, 320)], FULL_HD, 640) == pytest.approx((320 * 320 + CALL_COST_PX) / WHOLE_FULL_HD_COST)
    # Two crops that do not fit one 640-px mosaic (with its gap between them) pay for two calls.
    assert len(pack_mosaics([Region(0, 0, 320, 320), Region(1000, 0, 320, 320)], 640)) == 2
    assert regions_cost([Region(0, 0, 320, 320), Region(1000, 0, 320, 320)], FULL_HD, 640) == pytest.approx(
        2 * (320 * 320 + CALL_COST_PX) / WHOLE_FULL_HD_COST)


@pytest.mark.parametrize(
    "settings",
    [dict(min_side=100), dict(min_side=0), dict(box_scale=0.5), dict(padding_px=-1), dict(merge_overlap=0), dict(duplicate_iou=1.5)],
)
def test_bad_settings_are_refused(settings):
    with pytest.raises(ValueError):
        RegionSettings(**settings)


def test_bad_boxes_and_regions_are_refused():
    with pytest.raises(ValueError, match="positive size"):
        region_around((0.0, 0.0, 0.0, 10.0), FULL_HD, SETTINGS)
    with pytest.raises(ValueError, match="frame_size"):
        region_around((0.0, 0.0, 10.0, 10.0), (0, 1080), SETTINGS)
    with pytest.raises(ValueError, match="outside"):
        Region(1800, 0, 320, 320).crop(np.zeros((1080, 1920, 3), np.uint8))


def test_a_tracked_face_is_detected_at_the_scale_it_needs():
    assert face_scale(4 * FACE_DETECT_PX, 0.2) == 0.25  # shrunk until the face is FACE_DETECT_PX wide
    assert face_scale(4 * FACE_DETECT_PX, 0.5) == 0.5  # never below the whole frame's own downscale
    assert face_scale(FACE_DETECT_PX / 2, 0.5) == 1.0  # never enlarged
    assert face_scale(4 * FACE_DETECT_PX, 0.2, face_px=0) == 1.0  # off: full size
    merged = plan_regions([(1000.0, 500.0, 100.0, 120.0), (1050.0, 520.0, 30.0, 36.0)], FULL_HD, SETTINGS, [0.33, 1.0])
    assert [region.scale for region in merged] == [1.0]  # one region: its smallest face decides
    with pytest.raises(ValueError, match="scale"):
        Region(0, 0, 320, 320, 0.0)
    with pytest.raises(ValueError, match="2 boxes but 1 scales"):
        plan_regions([(0.0, 0.0, 10.0, 10.0)] * 2, FULL_HD, SETTINGS, [1.0])


def test_small_regions_share_one_mosaic_without_overlapping():
    regions = [Region(150 * i, 100 * (i % 3), 128, 128) for i in range(12)] + [Region(0, 400, 192, 192, 0.5)]
    (mosaic,) = pack_mosaics(regions, 640)
    assert sorted(map(id, mosaic.regions)) == sorted(map(id, regions))
    assert mosaic.width <= 640 and mosaic.height <= 640
    boxes = [_canvas_box(mosaic, region) for region in regions]
    for index, (x, y, w, h) in enumerate(boxes):
        assert x >= 0 and y >= 0 and x + w <= mosaic.width and y + h <= mosaic.height
        for ox, oy, ow, oh in boxes[index + 1 :]:  # apart by at least the gap on one axis
            assert x + w + MOSAIC_GAP_PX <= ox or ox + ow + MOSAIC_GAP_PX <= x or y + h + MOSAIC_GAP_PX <= oy or oy + oh + MOSAIC_GAP_PX <= y
    # 4 a row, 3 rows: 536 x 400, one call
    assert regions_cost(regions[:12], FULL_HD, 640) == pytest.approx((544 * 416 + CALL_COST_PX) / WHOLE_FULL_HD_COST)


def test_a_large_region_is_detected_alone_and_side_0_packs_nothing():
    large, small = Region(0, 0, 800, 800), Region(1000, 0, 128, 128)
    packed = pack_mosaics([large, small], 640)
    assert [mosaic.regions for mosaic in packed] == [[small], [large]]
    assert (packed[1].width, packed[1].height) == (800, 800)
    assert [mosaic.regions for mosaic in pack_mosaics([large, small], 0)] == [[large], [small]]
    frame = np.zeros((1080, 1920, 3), np.uint8)
    assert packed[0].image(frame).shape == (128, 128, 3)  # alone: the region's own image, no canvas


def test_mosaic_detections_go_back_to_their_tile_exactly():
    regions = [Region(0, 0, 128, 128), Region(500, 500, 160, 160), Region(900, 100, 128, 128)]
    (mosaic,) = pack_mosaics(regions, 640)
    landmarks = np.array([[1.0, 2.0]] * 5, np.float32)
    made = []
    for region in regions:
        left, top, _, _ = _canvas_box(mosaic, region)
        made.append(Detection((left + 10.0, top + 20.0, 30.0, 40.0), 0.9, landmarks + np.array([left, top], np.float32)))
    per_tile = mosaic.split(made)
    for region, found in zip(mosaic.regions, per_tile):
        (detection,) = found
        assert detection.bbox == (10.0, 20.0, 30.0, 40.0)
        np.testing.assert_array_equal(detection.landmarks, landmarks)
    gap = Detection((mosaic.width - 1.0, mosaic.height - 1.0, 0.5, 0.5), 0.9, landmarks)
    assert sum(map(len, mosaic.split([gap]))) <= 1
