"""Faces found in regions and mosaics by the real default detector map back to the frame exactly,
once each, whole even when a region's edge cuts them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_daemon.messages import Detection
from edge_daemon.pipeline.detection import DetectRequest, detect_requests
from edge_daemon.pipeline.regions import (
    CALL_COST_PX,
    SHRINK_COST_PER_PX,
    Mosaic,
    Region,
    detector_pixels,
    iou,
    pack_mosaics,
    plan_regions,
    region_around,
    regions_cost,
)
from tests.support.pasted_faces import load_faces, paste
from tests.support.paths import CROWD_CLIP, need
from tests.support.regions import FULL_HD, SETTINGS


def detect_in_regions(detector, frame: np.ndarray, regions, mosaic_side: int = 0) -> list[Detection]:
    """The faces in the regions of ``frame`` as the detection queue's worker finds them."""
    (found,) = detect_requests(detector, [DetectRequest("test", 0, 0.0, frame, tuple(regions), mosaic_side=mosaic_side)])
    return found


WHOLE_FULL_HD_COST = 640 * 384 + CALL_COST_PX + SHRINK_COST_PER_PX * 1920 * 1080


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


def _canvas_box(mosaic: Mosaic, region: Region) -> tuple[int, int, int, int]:
    ((left, top),) = [(left, top) for tile, left, top in mosaic.tiles if tile is region]
    return (left, top, *region.detected_size)


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
