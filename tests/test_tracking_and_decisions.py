"""Tracker association and the per-track decision rules (one event per track, updated on change)."""

from __future__ import annotations

import queue
import time

import numpy as np

from edge_daemon.comms.dispatcher import EventDispatcher
from edge_daemon.config import DecisionConfig, GalleryConfig, TrackerConfig
from edge_daemon.messages import Detection, FaceSample, Identification, Shutdown, TrackEnded
from edge_daemon.pipeline.decisions import DecisionMaker
from edge_daemon.pipeline.regions import iou
from edge_daemon.pipeline.sinks import decision_sinks
from edge_daemon.pipeline.tracking import Tracker
from edge_daemon.recognition.matcher import Matcher


def detection(x, y, w=50, h=60):
    return Detection((x, y, w, h), 0.9, np.zeros((5, 2), np.float32))


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert abs(iou((0, 0, 10, 10), (5, 0, 10, 10)) - 50 / 150) < 1e-9


def test_tracker_keeps_ids_for_moving_faces_and_ends_lost_tracks():
    tracker = Tracker(TrackerConfig(max_missed_s=1.0))
    pairs, ended = tracker.update([detection(0, 0), detection(300, 0)], now=0.0)
    ids = [track.track_id for track, _ in pairs]
    assert ids == [1, 2] and not ended
    pairs, ended = tracker.update([detection(305, 4), detection(6, 3)], now=0.2)  # both moved a little
    assert sorted((track.track_id, d.bbox[0]) for track, d in pairs) == [(1, 6), (2, 305)]
    pairs, ended = tracker.update([detection(8, 5)], now=0.9)
    assert [t.track_id for t, _ in pairs] == [1] and not ended
    pairs, ended = tracker.update([detection(10, 5)], now=1.5)  # track 2 unseen for 1.3 s
    assert [t.track_id for t in ended] == [2]
    pairs, _ = tracker.update([detection(600, 0)], now=1.6)  # far away: a new person
    assert [t.track_id for t, _ in pairs] == [3]
    assert sorted(t.track_id for t in tracker.end_all()) == [1, 3]


class Collect:
    name = "collect"

    def __init__(self):
        self.events = []

    def publish(self, event):
        self.events.append(event)

    def close(self):
        pass


def run_decisions(messages):
    """Decisions by per-face voting (these tests are about the vote; tests/test_open_set.py covers templates)."""
    sink = Collect()
    inbox: queue.Queue = queue.Queue()
    matcher = Matcher(GalleryConfig(), None)  # no gallery: the identifications below carry the answers
    sinks = decision_sinks(EventDispatcher([sink]))
    maker = DecisionMaker(inbox, sinks, "dlib_resnet", "v1", "box", matcher, DecisionConfig(mode="vote"))
    maker.start()
    for message in [*messages, Shutdown()]:
        inbox.put(message)
    maker.join(5)
    return sink.events


def identified(track_id, identity, score, camera="door"):
    sample = FaceSample(camera, track_id, (1, 2, 3, 4), 1.0, np.zeros((4, 4, 3), np.uint8), None, time.time())
    return Identification(sample, identity, score, "r1-abc", time.time())


def test_one_event_per_decision_and_updates_only_on_change():
    events = run_decisions(
        [
            identified(1, "ana", 0.95),
            identified(1, "ana", 0.93),  # same decision: no event
            identified(2, None, 0.80),
            identified(2, "bo", 0.92),  # 0.92 for bo beats 0.80 for unknown: updated
            identified(2, "bo", 0.93),
            TrackEnded("door", 1, (1, 2, 3, 4)),
            TrackEnded("door", 2, (1, 2, 3, 4)),
            TrackEnded("door", 3, (1, 2, 3, 4)),  # never decided: no event
        ]
    )
    summary = [(e.type, e.track_id, e.identity) for e in events]
    assert summary == [
        ("recognized", 1, "ana"),
        ("unknown", 2, None),
        ("updated", 2, "bo"),
        ("ended", 1, "ana"),
        ("ended", 2, "bo"),
    ]
    assert events[0].score == 0.95 and events[3].attempts == 2 and events[4].attempts == 3
    assert events[0].gallery_version == "r1-abc" and events[0].embedder == "dlib_resnet"


def test_score_weighted_vote_resists_one_outlier():
    events = run_decisions([identified(7, "ana", 0.93), identified(7, "ana", 0.92), identified(7, "bo", 0.95)])
    assert [(e.type, e.identity) for e in events] == [("recognized", "ana")]


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
