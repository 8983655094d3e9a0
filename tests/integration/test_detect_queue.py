"""The shared detection queue with the real detector: faces from several cameras, gated by motion,
come back to the right camera in order."""

from __future__ import annotations

import threading
import time

import cv2
import pytest

from edge_daemon.messages import Frame
from edge_daemon.pipeline.detection import CameraDetection, DetectionQueue, DetectRequest
from edge_daemon.pipeline.motion_gate import DetectionPolicy, SceneMotion
from edge_daemon.pipeline.regions import RegionSettings, iou, plan_regions
from tests.support.pasted_faces import load_faces, paste
from tests.support.paths import CROWD_CLIP, need


class Batched:
    """The real detector behind ``detect_batch``, recording the batch sizes it was given."""

    def __init__(self, detector):
        self._detector = detector
        self.name = detector.name
        self.batches: list[int] = []

    def detect(self, image):
        return self._detector.detect(image)

    def detect_batch(self, images):
        self.batches.append(len(images))
        return [self._detector.detect(image) for image in images]


def answers(results, count: int, timeout_s: float = 60.0) -> list:
    return [results.get(timeout=timeout_s) for _ in range(count)]


@pytest.fixture(scope="module")
def camera_frames(default_detector):
    """Three frames per camera: camera 'left' has a face on the left, 'right' on the right, each at
    another height per frame, so a result shows which camera and frame it came from."""
    capture = cv2.VideoCapture(str(need(CROWD_CLIP)))
    ok, background = capture.read()
    capture.release()
    assert ok
    faces = load_faces(default_detector, 2)
    frames = {}
    for name, x, face in (("left", 200, faces[0]), ("right", 1700, faces[1])):
        frames[name] = []
        for seq in range(3):
            frame = background.copy()
            frames[name].append((frame, paste(frame, face, 96, (x, 150 + 250 * seq))))
    return frames


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "one-at-a-time"])
def test_faces_from_two_cameras_come_back_to_their_camera_in_order(default_detector, camera_frames, batched):
    detector = Batched(default_detector) if batched else default_detector
    detect_queue = DetectionQueue(detector, max_age_s=600, queue_size=3)
    results = {name: detect_queue.add_camera(name) for name in camera_frames}
    for seq in range(3):
        for name, frames in camera_frames.items():
            frame, truth = frames[seq]
            # Odd frames as two regions in one mosaic (around the face, and an empty one), the others whole.
            regions = tuple(plan_regions([truth, (900.0, 900.0, 40.0, 40.0)], (1920, 1080), RegionSettings())) if seq % 2 else None
            request = DetectRequest(name, seq, time.time(), frame, regions, mosaic_side=640)
            assert len(request.images) == 1
            detect_queue.submit(request)
    detect_queue.start()  # after submitting, so that turns find both cameras waiting
    for name, frames in camera_frames.items():
        got = answers(results[name], 3)
        assert [(result.request.seq, result.status) for result in got] == [(0, "detected"), (1, "detected"), (2, "detected")]
        for result, (_, truth) in zip(got, frames):
            assert result.status == "detected" and result.request.camera == name
            assert any(iou(d.bbox, truth) > 0.5 for d in result.detections)
    detect_queue.close()
    if batched:
        assert detector.batches[0] == 2  # one whole frame from each camera in the first call
        assert dict(detect_queue.batch_sizes.values) == {2: 3}
    else:
        assert dict(detect_queue.batch_sizes.values) == {1: 6}
    assert detect_queue.counters("left").get("detect_detected") == 3


def test_cameras_gated_by_motion_share_one_detector(default_detector, camera_frames):
    """Two cameras on their own threads: 'idle' watches a static scene and asks the detector for
    its first frame only; 'door' sees a person step in and has them detected in a region."""
    detect_queue = DetectionQueue(default_detector, max_age_s=600)
    cameras = {
        name: CameraDetection(name, detect_queue, DetectionPolicy(60.0, max_side=640), SceneMotion())
        for name in ("idle", "door")
    }
    detect_queue.start()
    background = camera_frames["left"][0][0].copy()
    background[:, :400] = camera_frames["right"][0][0][:, :400]  # no face on the left
    person, truth = camera_frames["left"][1]
    found = {}

    def watch(name: str, frames: list) -> None:
        camera = cameras[name]
        found[name] = [camera.detect(Frame(name, seq, image, time.time(), seq / 5.0)) for seq, image in enumerate(frames)]

    threads = [
        threading.Thread(target=watch, args=("idle", [background] * 6)),
        threading.Thread(target=watch, args=("door", [background] * 3 + [person])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    detect_queue.close()
    assert [len(faces) for faces in found["idle"][1:]] == [0] * 5
    assert detect_queue.counters("idle").get("detect_submitted") == 1
    assert cameras["idle"].policy.counters.get("frames_skipped_no_motion") == 5
    assert any(iou(d.bbox, truth) > 0.5 for d in found["door"][-1])
    assert cameras["door"].policy.counters.get("frames_detected_regions") == 1
    with pytest.raises(ValueError, match="both"):
        CameraDetection("yard", detect_queue, DetectionPolicy(60.0, max_side=640))
