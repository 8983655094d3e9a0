"""Tracks follow predicted motion: walkers keep one track, crossers keep theirs, swaps are refused."""

from __future__ import annotations

import numpy as np
import pytest

from edge_daemon.config import ConfigError, TrackerConfig, load_settings
from edge_daemon.messages import Detection
from edge_daemon.pipeline.tracking import Tracker

WIDTH = 48  # a face a few metres from a 720p camera


def face(cx: float, cy: float, width: float = WIDTH) -> Detection:
    return Detection((cx - width / 2, cy - width * 0.6, width, width * 1.2), 0.9, np.zeros((5, 2), np.float32))


def ids(pairs) -> dict[float, int]:
    """Track id by the detection's centre x."""
    return {round(detection.bbox[0] + detection.bbox[2] / 2): track.track_id for track, detection in pairs}


def test_a_face_moving_two_widths_between_detections_stays_one_track():
    # 9 face widths a second (a walker's pace) at 5 detections a second: 1.8 widths per step, so the
    # boxes of consecutive detections do not even overlap.
    tracker = Tracker(TrackerConfig())
    seen = set()
    for step in range(15):
        pairs, ended = tracker.update([face(100 + 86.4 * step, 300 + 3 * (step % 2))], now=0.2 * step)
        seen |= {track.track_id for track, _ in pairs}
        assert not ended
    assert seen == {1}


def test_prediction_uses_frame_times_when_frames_are_dropped():
    # Detections at uneven times (frames dropped while detection was behind): the face moves
    # 430 px/s throughout, so the gap of 0.6 s puts it 5.4 widths further, where the track predicts.
    tracker = Tracker(TrackerConfig())
    times = [0.0, 0.2, 0.4, 0.6, 1.2, 1.4, 1.8, 2.0]
    tracks = {track.track_id for t in times for track, _ in tracker.update([face(100 + 430 * t, 300)], now=t)[0]}
    assert tracks == {1}


def test_predicted_faces_hold_where_a_walker_will_be_and_widen_with_time():
    """The boxes regions are planned around: a walker's next detection lies inside its predicted box,
    the box grows while the track goes unseen, and a track predicted out of the frame has none."""
    tracker = Tracker(TrackerConfig())
    for step in range(5):
        tracker.update([face(100 + 86.4 * step, 300)], now=0.2 * step, frame_size=(1280, 720))
    (soon_face,) = tracker.predicted_faces(1.0, (1280, 720))
    (later_face,) = tracker.predicted_faces(1.4, (1280, 720))
    soon, later = soon_face.area, later_face.area
    x, y, w, h = face(100 + 86.4 * 5, 300).bbox
    assert abs(soon_face.face[2] - w) < 0.1 * w and abs(soon_face.face[0] - x) < 0.25 * w
    assert soon[0] < x and x + w < soon[0] + soon[2] and soon[1] < y and y + h < soon[1] + soon[3]
    assert later[2] > soon[2] and later[3] > soon[3]
    assert tracker.predicted_faces(3.0, (1280, 720)) == []  # walked out at 430 px/s


def test_a_face_predicted_to_shrink_to_nothing_has_no_predicted_box():
    """A face shrinking fast, predicted late (a busy box), would have a negative width: it is left out."""
    tracker = Tracker(TrackerConfig())
    for step in range(5):
        tracker.update([face(640, 300, width=120 - 20 * step)], now=0.2 * step, frame_size=(1280, 720))
    assert tracker.predicted_faces(0.9, (1280, 720))  # still a face a little later
    assert tracker.predicted_faces(1.4, (1280, 720)) == []  # predicted below one pixel
    assert all(f.face[2] >= 1 for f in tracker.predicted_faces(1.0, (1280, 720)))


def test_two_people_crossing_keep_their_tracks():
    tracker = Tracker(TrackerConfig())
    first = ids(tracker.update([face(100, 300), face(900, 330)], now=0.0)[0])
    assert first == {100: 1, 900: 2}
    for step in range(1, 12):
        t = 0.2 * step
        a, b = face(100 + 400 * t, 300), face(900 - 400 * t, 330)
        # At the crossing (their faces overlap) the detector sees only the nearer one for a frame.
        detections = [b] if abs(800 * t - 800) < 100 else [a, b]
        pairs, ended = tracker.update(detections, now=t)
        assert not ended
        for track, detection in pairs:
            going_right = detection is a
            assert track.track_id == (1 if going_right else 2), (t, track.track_id, detection.bbox)


def test_a_track_that_disappears_ends_after_max_missed_s():
    tracker = Tracker(TrackerConfig(max_missed_s=1.0))
    tracker.update([face(300, 300)], now=0.0)
    tracker.update([face(310, 300)], now=0.2)
    assert tracker.update([], now=1.1)[1] == []  # unseen for 0.9 s: still there
    pairs, ended = tracker.update([], now=1.3)
    assert [track.track_id for track in ended] == [1] and tracker.tracks == []
    # Whoever appears there next is someone new.
    assert [track.track_id for track, _ in tracker.update([face(320, 300)], now=1.4)[0]] == [2]


def test_a_track_predicted_out_of_the_frame_ends_at_once():
    # A walker leaves at the right edge of a 1280x720 frame: the track ends as soon as its prediction
    # has left the frame, not max_missed_s later, so 'ended' follows the person's leaving.
    tracker = Tracker(TrackerConfig(max_missed_s=1.5))
    for step in range(6):
        tracker.update([face(800 + 86 * step, 300)], now=0.2 * step, frame_size=(1280, 720))
    assert tracker.update([], now=1.1, frame_size=(1280, 720))[1] == []  # predicted at 1273: in view
    assert [track.track_id for track in tracker.update([], now=1.4, frame_size=(1280, 720))[1]] == [1]


def test_a_face_seen_once_is_not_continued_after_a_gap():
    # Seen once, its velocity unknown: after missed frames, a face four widths away is as likely a
    # passer-by as the same person (the crowd clip's swaps), so it starts its own track. The same
    # jump in the very next frame is a walker's stride and continues the track.
    tracker = Tracker(TrackerConfig())
    tracker.update([face(300, 300)], now=0.0)
    for t in (0.2, 0.4, 0.6, 0.8):
        tracker.update([], now=t)
    assert [track.track_id for track, _ in tracker.update([face(300 + 4 * WIDTH, 300)], now=1.0)[0]] == [2]
    assert [track.track_id for track, _ in tracker.update([face(300 + 6 * WIDTH, 300)], now=1.2)[0]] == [2]


def test_a_much_larger_or_smaller_face_is_someone_else():
    tracker = Tracker(TrackerConfig())
    tracker.update([face(300, 300)], now=0.0)
    pairs, _ = tracker.update([face(305, 300, width=2.2 * WIDTH)], now=0.2)
    assert [track.track_id for track, _ in pairs] == [2]


def test_a_face_cut_by_the_frame_edge_continues_its_track():
    """Walking out on the right: the last box is the part still in view, narrower than the face
    (the idle clip's walker: 105 px predicted, 70 px detected at the edge of a 1280-px frame)."""
    tracker = Tracker(TrackerConfig())
    for step in range(5):
        tracker.update([face(900 + 74 * step, 300, 100)], now=0.2 * step, frame_size=(1280, 720))
    x, y, w, h = face(900 + 74 * 5, 300, 100).bbox  # where it is predicted: 40 of its 100 px out of view
    cut = Detection((x, y, 1280 - x, h), 0.9, np.zeros((5, 2), np.float32))
    pairs, _ = tracker.update([cut], now=1.0, frame_size=(1280, 720))
    assert [track.track_id for track, _ in pairs] == [1]
    assert tracker.started == 1
    inside = Tracker(TrackerConfig())  # the same narrowing in the middle of the frame: someone else
    for step in range(5):
        inside.update([face(300 + 74 * step, 300, 100)], now=0.2 * step, frame_size=(1280, 720))
    x, y, w, h = face(300 + 74 * 5, 300, 100).bbox
    pairs, _ = inside.update([Detection((x, y, 0.6 * w, h), 0.9, np.zeros((5, 2), np.float32))], now=1.0, frame_size=(1280, 720))
    assert [track.track_id for track, _ in pairs] == [2]


def test_the_appearance_check_refuses_a_swap():
    # Two people walk towards each other, one a little higher in the frame. Where they meet, each
    # face is found nearer the other's predicted height (one ducked): motion alone swaps them, their
    # embeddings do not let it.
    rng = np.random.default_rng(0)
    ana, bo = (vector / np.linalg.norm(vector) for vector in rng.normal(size=(2, 128)))

    def tracks_of_ana_and_bo(config: TrackerConfig) -> list[int]:
        tracker = Tracker(config)
        for t in (0.0, 0.2):
            tracker.update([face(300 + 250 * t, 300), face(500 - 250 * t, 330)], now=t, embeddings=[ana, bo])
        ana_face, bo_face = face(400, 318), face(400, 312)
        pairs, _ = tracker.update([ana_face, bo_face], now=0.4, embeddings=[ana, bo])
        track_of = {id(detection): track.track_id for track, detection in pairs}
        return [track_of[id(ana_face)], track_of[id(bo_face)]]

    assert tracks_of_ana_and_bo(TrackerConfig(min_appearance_similarity=-1)) == [2, 1]  # check off: swapped
    assert tracks_of_ana_and_bo(TrackerConfig()) == [1, 2]


def test_old_iou_options_are_refused_with_what_replaces_them(tmp_path):
    config = tmp_path / "old.toml"
    config.write_text("[tracker]\niou_threshold = 0.3\niou_buffer = 0.5\n")
    with pytest.raises(ConfigError, match=r"tracker: .*no longer supported: iou_buffer, iou_threshold .*max_speed"):
        load_settings(config)
