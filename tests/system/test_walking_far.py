"""Faces 28 px wide are evidence: people walking past further from the camera, through the daemon
with its default configuration, are named when enrolled and strangers are not.

The walking clip (tests/support/walking_clip.py: real LFW photos, a new pose every 0.6 s) with faces
28 px wide, played in real time as a live camera. Before ``detector.min_face_px`` came down to 20,
every one of these faces was refused as too small and every walk was ``uncertain``."""

from __future__ import annotations

import json

import pytest

from edge_daemon.config import Settings
from tests.support.paths import LFW, need
from tests.support.walking_clip import choose_walks, enrol, score, watch, write_clip

pytestmark = pytest.mark.slow

FACE_PX = 28


def test_people_walking_past_with_28px_faces_are_named_and_strangers_are_not(tmp_path):
    assert Settings().detector.min_face_px <= FACE_PX  # the default configuration reaches this far
    walks, candidates = choose_walks(need(LFW), enrolled=2, strangers=3, seed=1)
    clip = tmp_path / "walking.mp4"
    write_clip(clip, walks, FACE_PX)
    gallery, _ = enrol(candidates, tmp_path, detector={})
    events = tmp_path / "events.jsonl"
    started_at, stats = watch(clip, gallery, events, detect_fps=5.0, detector={})
    result = score(walks, [json.loads(line) for line in events.read_text().splitlines()], started_at)

    assert stats["cameras"]["walk"].get("faces_sent", 0) > 0, stats  # the small faces were embedded
    assert result.get("enrolled: named wrong", 0) == 0, result
    assert result.get("stranger: named", 0) == 0, result
    assert result.get("enrolled: named right", 0) >= 2, result  # of the 4 enrolled walks
