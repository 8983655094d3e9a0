"""Tracking with real faces: a full embed queue defers faces without charging the track, and faces
too small to decide on give uncertain."""

from __future__ import annotations

import queue
import time

import numpy as np

from edge_daemon.comms.dispatcher import EventDispatcher
from edge_daemon.config import GalleryConfig, TrackerConfig
from edge_daemon.messages import Detection, FaceSample, Shutdown, TrackEnded
from edge_daemon.pipeline.decisions import DecisionMaker
from edge_daemon.pipeline.sinks import decision_sinks
from edge_daemon.recognition.matcher import Matcher
from tests.support.tracking_and_decisions import Collect


def detection(x, y, w=50, h=60):
    return Detection((x, y, w, h), 0.9, np.zeros((5, 2), np.float32))


def test_full_embed_queue_defers_faces_without_charging_the_track(default_detector, default_embedder):
    import cv2

    from edge_daemon.config import DetectorConfig
    from edge_daemon.messages import Frame, StreamEnded
    from edge_daemon.pipeline.detection import CameraDetection, DetectionQueue
    from edge_daemon.pipeline.tracking import TrackingWorker
    from edge_daemon.recognition.quality import QualityGate
    from tests.support.paths import DATA, need

    image = cv2.imread(str(need(DATA / "photos" / "group" / "obama_and_biden.jpg")))
    frames: queue.Queue = queue.Queue()
    faces: queue.Queue = queue.Queue(maxsize=1)
    faces.put("something already waiting")
    detect_queue = DetectionQueue(default_detector, max_age_s=60)
    worker = TrackingWorker(
        "door", frames, faces, CameraDetection("door", detect_queue), QualityGate(DetectorConfig(min_sharpness=0, max_yaw=10)),
        default_embedder.aligner, TrackerConfig(max_attempts=1),
    )
    detect_queue.start()
    worker.start()
    frames.put(Frame("door", 1, image, time.time(), 0.0))
    frames.put(Frame("door", 2, image, time.time(), 0.2))
    deadline = time.time() + 30
    while worker.counters.get("frames_processed") < 2 and time.time() < deadline:
        time.sleep(0.05)
    detected_per_frame = worker.counters.get("faces_detected") // 2
    assert detected_per_frame >= 2
    assert worker.counters.get("faces_deferred") == 2 * detected_per_frame and worker.counters.get("faces_sent") == 0
    faces.get()  # the embedder catches up
    faces_seen = []
    for seq in (3, 4):
        frames.put(Frame("door", seq, image, time.time(), seq * 0.2))
        faces_seen.append(faces.get(timeout=30))  # each track is still owed its one attempt
    frames.put(StreamEnded("door", "ended"))
    worker.join(30)
    detect_queue.close()
    assert all(isinstance(sample, FaceSample) for sample in faces_seen)
    assert worker.counters.get("faces_sent") >= 2


def test_faces_too_small_to_decide_on_give_uncertain_not_silence(default_detector, default_embedder):
    """Every face refused by the gates (here: all 'too small'): after uncertain_after detections each
    track is reported once as seen but unrecognisable, decided 'uncertain', and ends with 'ended'."""
    import cv2

    from edge_daemon.config import DetectorConfig
    from edge_daemon.messages import Frame, StreamEnded, TrackUnseen
    from edge_daemon.pipeline.detection import CameraDetection, DetectionQueue
    from edge_daemon.pipeline.tracking import TrackingWorker
    from edge_daemon.recognition.quality import QualityGate
    from tests.support.paths import DATA, need

    image = cv2.imread(str(need(DATA / "photos" / "group" / "obama_and_biden.jpg")))

    def tracked(uncertain_after: int) -> list:
        frames, faces = queue.Queue(), queue.Queue()
        detect_queue = DetectionQueue(default_detector, max_age_s=60)
        worker = TrackingWorker(
            "door", frames, faces, CameraDetection("door", detect_queue), QualityGate(DetectorConfig(min_face_px=10_000)),
            default_embedder.aligner, TrackerConfig(uncertain_after=uncertain_after),
        )
        detect_queue.start()
        worker.start()
        for seq in range(4):
            frames.put(Frame("door", seq, image, time.time(), seq * 0.2))
        frames.put(StreamEnded("door", "ended"))
        worker.join(60)
        detect_queue.close()
        assert worker.counters.get("faces_dropped_too_small") >= 8  # two people or more, four frames
        return [faces.get_nowait() for _ in range(faces.qsize())], worker.counters.get("tracks_unseen")

    silent, unseen_count = tracked(0)
    assert silent == [] and unseen_count == 0  # the old behaviour, still to be had
    messages, unseen_count = tracked(2)
    unseen = [m for m in messages if isinstance(m, TrackUnseen)]
    ended = [m for m in messages if isinstance(m, TrackEnded)]
    assert len(unseen) >= 2 and unseen_count == len(unseen) and {m.reason for m in unseen} == {"too_small"}
    assert sorted(m.track_id for m in unseen) == sorted(m.track_id for m in ended)  # once per track, then its end
    assert not any(isinstance(m, FaceSample) for m in messages)

    sink = Collect()
    inbox: queue.Queue = queue.Queue()
    maker = DecisionMaker(inbox, decision_sinks(EventDispatcher([sink])), "fused", "v1", "box", Matcher(GalleryConfig(), None))
    maker.start()
    for message in [*messages, Shutdown()]:
        inbox.put(message)
    maker.join(5)
    decided = [(e.type, e.identity, e.verdict, e.attempts) for e in sink.events if e.type != "ended"]
    assert decided == [("unknown", None, "uncertain", 0)] * len(unseen)
    assert sum(e.type == "ended" for e in sink.events) == len(unseen)
    assert all(0.0 <= e.quality <= 1.0 for e in sink.events)
