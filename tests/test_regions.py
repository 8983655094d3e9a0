"""Regions: their geometry, and faces found in them by the real default detector mapping back to
the frame exactly, once each, whole even when a region's edge cuts them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_daemon.messages import Detection
from edge_daemon.pipeline.detection import DetectRequest, detect_requests
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
    iou,
    pack_mosaics,
    plan_regions,
    region_around,
    regions_cost,
)
from tests.support.pasted_faces import load_faces, paste
from tests.support.paths import CROWD_CLIP, need

FULL_HD = (1920, 1080)
SETTINGS = RegionSettings()


def detect_in_regions(detector, frame: np.ndarray, regions, mosaic_side: int = 0) -> list[Detection]:
    """The faces in the regions of ``frame`` as the detection queue's worker finds them."""
    (found,) = detect_requests(detector, [DetectRequest("test", 0, 0.0, frame, tuple(regions), mosaic_side=mosaic_side)])
    return found


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


WHOLE_FULL_HD_COST = 640 * 384 + CALL_COST_PX + SHRINK_COST_PER_PX * 1920 * 1080


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


@pytest.fixture(scope="module")
def crowd_frame() -> np.ndarray:
    capture = cv2.VideoCapture(str(need(CROWD_CLIP)))
    ok, frame = capture.read()
    capture.release()
    assert ok
    return frame


@pytest.fixture(scope="module")
def faces(default_detector):
    return load_faces(default_detector, 4)


def test_region_boxes_and_landmarks_map_back_exactly(default_detector, crowd_frame, faces):
    frame = crowd_frame.copy()
    truth = paste(frame, faces[0], 40, (1500, 250))
    region = region_around(truth, FULL_HD, SETTINGS)
    found = detect_in_regions(default_detector, frame, [region])
    alone = default_detector.detect(np.ascontiguousarray(region.crop(frame)))
    assert len(found) == len(alone) >= 1
    for mapped, own in zip(sorted(found, key=lambda d: -d.score), sorted(alone, key=lambda d: -d.score)):
        x, y, w, h = own.bbox
        assert mapped.bbox == (x + region.x, y + region.y, w, h)
        np.testing.assert_array_equal(mapped.landmarks, own.landmarks + np.array([region.x, region.y], np.float32))
        assert mapped.score == own.score
    assert max(iou(detection.bbox, truth) for detection in found) > 0.6


def test_a_shrunk_region_maps_back_by_its_own_rounded_size(default_detector, crowd_frame, faces):
    """A region detected at half size: what the detector finds in the shrunk crop maps back by the
    crop's rounded sides exactly, and lands on the face found at full resolution."""
    frame = crowd_frame.copy()
    truth = paste(frame, faces[3], 100, (1400, 300))
    full = region_around(truth, FULL_HD, SETTINGS)
    half = region_around(truth, FULL_HD, SETTINGS, scale=0.5)
    assert (half.x, half.y, half.width, half.height) == (full.x, full.y, full.width, full.height)
    assert half.detected_size == (full.width // 2, full.height // 2)
    alone = default_detector.detect(half.image(frame))
    (mapped,) = [d for d in detect_in_regions(default_detector, frame, [half]) if iou(d.bbox, truth) > 0.5]
    (own,) = [d for d in alone if iou((d.bbox[0] * 2 + half.x, d.bbox[1] * 2 + half.y, d.bbox[2] * 2, d.bbox[3] * 2), truth) > 0.5]
    x, y, w, h = own.bbox
    assert mapped.bbox == (x * 2.0 + half.x, y * 2.0 + half.y, w * 2.0, h * 2.0)
    np.testing.assert_array_equal(mapped.landmarks, own.landmarks * 2 + np.array([half.x, half.y], np.float32))
    (at_full,) = [d for d in detect_in_regions(default_detector, frame, [full]) if iou(d.bbox, truth) > 0.5]
    assert iou(mapped.bbox, at_full.bbox) > 0.8
    odd = Region(11, 7, 333, 331, 0.3)  # sides that do not divide: each axis maps back by its own ratio
    assert odd.detected_size == (100, 99) and odd.image(frame).shape[:2] == (99, 100)
    assert regions_cost([half], FULL_HD, 640) == pytest.approx(
        (detector_pixels(*half.detected_size, 640) + CALL_COST_PX + SHRINK_COST_PER_PX * half.area) / WHOLE_FULL_HD_COST)


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


def test_a_small_face_is_found_in_a_region(default_detector, crowd_frame, faces):
    """24 px wide in 1080p: 8 px after the whole-frame downscale, 24 px in a region."""
    for face in faces:
        frame = crowd_frame.copy()
        truth = paste(frame, face, 24, (1500, 250))
        regions = plan_regions([truth], FULL_HD, SETTINGS)
        assert regions_cost(regions, FULL_HD, 640) < 1
        assert any(iou(d.bbox, truth) > 0.5 for d in detect_in_regions(default_detector, frame, regions))


def test_a_face_cut_by_the_motion_box_is_whole_in_its_padded_region(default_detector, crowd_frame, faces):
    frame = crowd_frame.copy()
    truth = paste(frame, faces[1], 60, (1500, 250))
    x, y, w, h = truth
    half_face = (x + w / 2, y, w / 2 + 200, h + 200)  # motion caught the right half of the face and the body
    regions = plan_regions([half_face], FULL_HD, SETTINGS)
    assert [d for d in detect_in_regions(default_detector, frame, regions) if iou(d.bbox, truth) > 0.6]


def test_a_face_in_two_regions_is_kept_once_whole(default_detector, crowd_frame, faces):
    frame = crowd_frame.copy()
    truth = paste(frame, faces[2], 80, (1500, 300))
    x, y, w, h = truth
    cutting = Region(round(x + w / 2) - 320, 150, 320, 320)  # its right edge runs through the face
    holding = Region(round(x) - 100, 150, 320, 320)
    overlapping = Region(round(x) - 140, 130, 320, 320)  # holds it too: a duplicate
    (whole,) = [d for d in detect_in_regions(default_detector, frame, [holding]) if iou(d.bbox, truth) > 0]
    assert iou(whole.bbox, truth) > 0.6
    assert [d for d in detect_in_regions(default_detector, frame, [cutting]) if iou(d.bbox, truth) > 0]  # a half face
    for regions in ([cutting, holding], [holding, cutting], [overlapping, cutting, holding]):
        found = [d for d in detect_in_regions(default_detector, frame, regions) if iou(d.bbox, truth) > 0]
        assert len(found) == 1, regions
        if regions[0] is not overlapping:  # the whole face wins over the half face, whatever their scores
            assert found[0].bbox == whole.bbox, regions


def _canvas_box(mosaic: Mosaic, region: Region) -> tuple[int, int, int, int]:
    ((left, top),) = [(left, top) for tile, left, top in mosaic.tiles if tile is region]
    return (left, top, *region.detected_size)


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


def test_faces_in_a_mosaic_are_the_faces_of_their_regions(default_detector, crowd_frame, faces):
    """Six small faces, six regions, one detector call: each face found where its region alone
    finds it, and the canvas's pixels are each region's own image."""
    frame = crowd_frame.copy()
    truths = [paste(frame, faces[i % len(faces)], 24, (200 + 300 * i, 300 + 100 * (i % 2))) for i in range(6)]
    regions = plan_regions(truths, FULL_HD, SETTINGS)
    (mosaic,) = pack_mosaics(regions, 640)
    canvas = mosaic.image(frame)
    for region in regions:
        x, y, w, h = _canvas_box(mosaic, region)
        np.testing.assert_array_equal(canvas[y : y + h, x : x + w], region.image(frame))
    packed = detect_in_regions(default_detector, frame, regions, mosaic_side=640)
    alone = detect_in_regions(default_detector, frame, regions)
    for truth in truths:
        (in_mosaic,) = [d for d in packed if iou(d.bbox, truth) > 0.4]
        (by_itself,) = [d for d in alone if iou(d.bbox, truth) > 0.4]
        # YuNet's box of a 24-px face moves by up to 3 px with what lies around it (the tile's gap, the detector's padding)
        assert iou(in_mosaic.bbox, by_itself.bbox) > 0.7
