"""Tracker association and the per-track decision rules (one event per track, updated on change),
without models."""

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
from tests.support.tracking_and_decisions import Collect


def detection(x, y, w=50, h=60):
    return Detection((x, y, w, h), 0.9, np.zeros((5, 2), np.float32))


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
