"""People walking past a camera in a real clip keep one track each."""

from __future__ import annotations

import pytest

from edge_daemon.config import TrackerConfig
from edge_daemon.pipeline.tracking import Tracker
from tests.support.paths import DATA, need


@pytest.mark.slow
def test_people_walking_past_keep_one_track_each(default_detector):
    """The walking clip's frames (real LFW photos, a new pose every 0.6 s, 48 px faces) through the
    daemon's detector at 5 detections a second: one track per walk, no track holding two walkers."""
    from tests.support.walking_clip import FRAME_SIZE, Painter, choose_walks, duration, walk_at

    walks, _ = choose_walks(need(DATA / "eval" / "lfw"), enrolled=2, strangers=2)
    painter = Painter(walks, face_px=48)
    tracker = Tracker(TrackerConfig())
    walkers_of: dict[int, set[int]] = {}
    for step in range(round(duration(walks) * 5)):
        t = step / 5
        for track, _ in tracker.update(default_detector.detect(painter.frame(t)), t, FRAME_SIZE)[0]:
            walkers_of.setdefault(track.track_id, set()).add(walk_at(walks, t))
    assert all(len(walkers) == 1 and None not in walkers for walkers in walkers_of.values()), walkers_of
    assert len(walkers_of) <= 1.5 * len(walks), walkers_of
