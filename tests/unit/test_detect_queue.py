"""The shared detection queue with stand-in detectors: fair turns between cameras, order per camera,
stale frames skipped, failures answered."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edge_daemon.pipeline.detection import DetectionQueue, DetectRequest
from edge_daemon.pipeline.regions import Region


class Slow:
    """Takes ``seconds`` a frame and records the (camera, seq) painted into each frame's corner."""

    name = "slow"

    def __init__(self, seconds: float, log: list, lock: threading.Lock):
        self.seconds, self.log, self.lock = seconds, log, lock

    def detect(self, image):
        time.sleep(self.seconds)
        with self.lock:
            self.log.append(("detected", int(image[0, 0, 0]), int(image[0, 1, 0])))
        return []


def marked(camera: int, seq: int) -> np.ndarray:
    image = np.zeros((32, 32, 3), np.uint8)
    image[0, 0, 0], image[0, 1, 0] = camera, seq % 256
    return image


def answers(results, count: int, timeout_s: float = 60.0) -> list:
    return [results.get(timeout=timeout_s) for _ in range(count)]


def test_a_flooding_camera_does_not_starve_a_quiet_one():
    log: list = []
    lock = threading.Lock()
    detect_queue = DetectionQueue(Slow(0.01, log, lock), max_age_s=600, queue_size=4)
    flood_results, quiet_results = detect_queue.add_camera("flood"), detect_queue.add_camera("quiet")
    detect_queue.start()
    stop = threading.Event()
    flooded = []

    def flood():
        seq = 0
        while not stop.is_set():
            detect_queue.submit(DetectRequest("flood", seq, time.time(), marked(1, seq)))
            seq += 1
            time.sleep(0.001)
        flooded.append(seq)

    flooder = threading.Thread(target=flood)
    flooder.start()
    time.sleep(0.05)
    for seq in range(10):
        with lock:
            log.append(("submitted", 2, seq))
        detect_queue.submit(DetectRequest("quiet", seq, time.time(), marked(2, seq)))
        result = quiet_results.get(timeout=30)
        assert (result.request.seq, result.status) == (seq, "detected")
    stop.set()
    flooder.join()
    detect_queue.close()
    for seq in range(10):
        submitted = log.index(("submitted", 2, seq))
        served = log.index(("detected", 2, seq))
        # At most the flood's frame already in the detector, then the quiet camera's turn.
        assert sum(1 for entry in log[submitted:served] if entry[:2] == ("detected", 1)) <= 1
    flood_seqs = [seq for kind, camera, seq in log if kind == "detected" and camera == 1]
    assert flood_seqs == sorted(flood_seqs) and len(flood_seqs) > 10  # the flood was served too, in order
    flood_answers = answers(flood_results, flooded[0], timeout_s=5)
    assert [result.request.seq for result in flood_answers] == list(range(flooded[0]))  # one answer each, in order
    counters = detect_queue.counters("flood")
    assert counters.get("detect_dropped") > 0
    assert counters.get("detect_dropped") + counters.get("detect_detected") + counters.get("detect_stale") == flooded[0]


def test_two_workers_share_the_cameras_and_keep_each_cameras_order():
    """Two detectors (two workers) serve three flooding cameras: both work, and each camera's frames
    are detected and answered in order, one at a time."""
    log: list = []  # both detectors', in the order they finished
    lock = threading.Lock()
    first, second = Slow(0.01, log, lock), Slow(0.01, log, lock)
    calls = {id(first): 0, id(second): 0}
    for detector in (first, second):
        def counted(image, detector=detector, detect=detector.detect):
            calls[id(detector)] += 1
            return detect(image)
        detector.detect = counted
    detect_queue = DetectionQueue(first, max_age_s=600, queue_size=50, more_detectors=[second])
    results = [detect_queue.add_camera(f"cam{camera}") for camera in range(3)]
    detect_queue.start()
    for seq in range(30):
        for camera in range(3):
            detect_queue.submit(DetectRequest(f"cam{camera}", seq, time.time(), marked(camera, seq)))
    got = [answers(queue, 30) for queue in results]
    detect_queue.close()
    assert [[r.request.seq for r in camera] for camera in got] == [list(range(30))] * 3
    assert all(r.status == "detected" for camera in got for r in camera)
    assert min(calls.values()) > 10 and sum(calls.values()) == 90  # both workers took turns
    for camera in range(3):  # and never two frames of one camera at once: detected in order
        assert [seq for _, which, seq in log if which == camera] == list(range(30))


def test_stale_frames_are_skipped_and_counted_never_detected():
    log: list = []
    now = [1000.0]
    detect_queue = DetectionQueue(Slow(0.0, log, threading.Lock()), max_age_s=1.0, clock=lambda: now[0])
    results = detect_queue.add_camera("door")
    detect_queue.submit(DetectRequest("door", 0, 998.5, marked(3, 0)))  # 1.5 s old at its turn
    detect_queue.submit(DetectRequest("door", 1, 999.5, marked(3, 1)))
    detect_queue.start()
    got = answers(results, 2)
    detect_queue.close()
    assert [(result.request.seq, result.status) for result in got] == [(0, "stale"), (1, "detected")]
    assert log == [("detected", 3, 1)]
    assert detect_queue.counters("door").get("detect_stale") == 1


def test_frames_of_a_file_read_as_fast_as_the_pipeline_takes_it_never_go_stale():
    log: list = []
    now = [1000.0]
    detect_queue = DetectionQueue(Slow(0.0, log, threading.Lock()), max_age_s=1.0, clock=lambda: now[0])
    results = detect_queue.add_camera("file")
    detect_queue.submit(DetectRequest("file", 0, 900.0, marked(3, 0), may_expire=False))  # 100 s old
    detect_queue.start()
    got = answers(results, 1)
    detect_queue.close()
    assert [(result.request.seq, result.status) for result in got] == [(0, "detected")]
    assert detect_queue.counters("file").get("detect_stale") == 0


def test_a_failing_detector_answers_failed_and_the_worker_goes_on():
    class Failing:
        name = "failing"

        def detect(self, image):
            if image[0, 1, 0] == 0:
                raise RuntimeError("model crashed")
            return []

    detect_queue = DetectionQueue(Failing(), max_age_s=600)
    results = detect_queue.add_camera("door")
    detect_queue.start()
    detect_queue.submit(DetectRequest("door", 0, time.time(), marked(3, 0)))
    detect_queue.submit(DetectRequest("door", 1, time.time(), marked(3, 1)))
    assert [result.status for result in answers(results, 2)] == ["failed", "detected"]
    detect_queue.close()


def test_bad_requests_are_refused():
    detect_queue = DetectionQueue(Slow(0.0, [], threading.Lock()))
    detect_queue.add_camera("door")
    with pytest.raises(ValueError, match="already registered"):
        detect_queue.add_camera("door")
    with pytest.raises(ValueError, match="not registered"):
        detect_queue.submit(DetectRequest("yard", 0, time.time(), marked(1, 0)))
    with pytest.raises(ValueError, match="at least one region"):
        detect_queue.submit(DetectRequest("door", 0, time.time(), marked(1, 0), ()))
    with pytest.raises(ValueError, match="outside"):
        detect_queue.submit(DetectRequest("door", 0, time.time(), marked(1, 0), (Region(0, 0, 64, 64),)))
    with pytest.raises(ValueError, match="uint8"):
        detect_queue.submit(DetectRequest("door", 0, time.time(), np.zeros((8, 8), np.uint8)))
    with pytest.raises(ValueError, match="max_age_s"):
        DetectionQueue(Slow(0.0, [], threading.Lock()), max_age_s=0)
    detect_queue.close()
    with pytest.raises(RuntimeError, match="closed"):
        detect_queue.submit(DetectRequest("door", 0, time.time(), marked(1, 0)))
