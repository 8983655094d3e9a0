"""Motion gating on generated clips without a detector: a static noisy scene skips detection,
cameras take turns for their whole frames, a light change re-learns the background."""

from __future__ import annotations

import numpy as np
import pytest

from edge_daemon.config import Settings
from edge_daemon.messages import TrackedFace
from edge_daemon.pipeline.build import motion_settings, region_settings
from edge_daemon.pipeline.motion_gate import DetectionPolicy, Motion, MotionSettings, SceneMotion
from edge_daemon.pipeline.regions import FACE_DETECT_PX, RegionSettings
from tests.support.scene_motion import FPS, IDLE_DETECT_S, noisy, run


def test_a_static_noisy_scene_skips_detection_but_for_the_idle_full_detection(scene):
    rng = np.random.default_rng(0)
    policy = DetectionPolicy(IDLE_DETECT_S, max_side=640)
    seconds = 10
    plans = run((noisy(scene, rng) for _ in range(int(seconds * FPS))), policy, SceneMotion())
    full = [now for now, plan, _ in plans if plan.kind == "full"]
    assert full == [0.0, 4.0, 8.0]
    assert all(plan.kind == "skip" for now, plan, _ in plans if now not in full)
    assert policy.counters.get("frames_skipped_no_motion") == len(plans) - 3
    assert policy.counters.get("frames_detected_full_idle") == 3


def test_cameras_started_together_detect_whole_frames_at_their_own_phase(scene):
    """With a phase, the first frame only teaches the motion mask its background; the first full
    detection comes that share of idle_detect_s later, then one every idle_detect_s: cameras
    started together do not all detect whole frames at once, at start or after."""
    rng = np.random.default_rng(0)
    for phase, expected in [(0.5, [2.0, 6.0]), (0.0, [0.2, 4.2, 8.2]), (0.9, [3.6, 7.6])]:
        policy = DetectionPolicy(IDLE_DETECT_S, max_side=640, phase=phase)
        plans = run((noisy(scene, rng) for _ in range(int(10 * FPS))), policy, SceneMotion())
        assert [now for now, plan, _ in plans if plan.kind == "full"] == pytest.approx(expected)
        assert (plans[0][1].kind, plans[0][1].reason) == ("skip", "first_frame")
        assert policy.counters.get("frames_skipped_no_motion") == len(plans) - len(expected)
    with pytest.raises(ValueError, match="phase"):
        DetectionPolicy(IDLE_DETECT_S, max_side=640, phase=1.0)


def test_a_moving_blob_is_boxed_by_its_changed_pixels_not_by_the_dilation(scene):
    """The dilation joins a blob's pixels; its box is where the frame changed, so a region's
    padding is not added on top of the dilation's (dilate_px small pixels a side)."""
    rng = np.random.default_rng(3)
    motion = SceneMotion()
    motion.update(noisy(scene, rng))
    changed = scene.copy()
    changed[400:480, 800:880] = 250 - 0.3 * changed[400:480, 800:880]
    (box,) = motion.update(noisy(changed, rng)).boxes
    small_px = scene.shape[1] / motion.settings.width
    x, y, w, h = box
    assert x <= 800 and y <= 400 and x + w >= 880 and y + h >= 480
    assert max(800 - x, 400 - y, x + w - 880, y + h - 480) < motion.settings.dilate_px * small_px


def test_a_light_change_relearns_the_background_and_detects_the_whole_frame(scene):
    rng = np.random.default_rng(3)
    motion = SceneMotion()
    policy = DetectionPolicy(IDLE_DETECT_S, max_side=640)
    assert policy.plan(0.0, (1280, 720), motion.update(noisy(scene, rng)), []).kind == "full"
    brighter = motion.update(noisy(np.clip(scene * 1.6, 0, 255), rng))
    assert brighter.relearned and not brighter.boxes
    assert policy.plan(0.2, (1280, 720), brighter, []).reason == "relearned"
    assert motion.update(noisy(np.clip(scene * 1.6, 0, 255), rng)).boxes == []  # the new light is the background


def test_live_tracks_get_regions_without_motion_and_motion_everywhere_detects_the_whole_frame():
    policy = DetectionPolicy(IDLE_DETECT_S, max_side=640)
    still = Motion([], 0.0, False)
    assert policy.plan(0.0, (1920, 1080), still, []).kind == "full"
    tracked = policy.plan(0.2, (1920, 1080), still, [TrackedFace((110.0, 110.0, 20.0, 30.0), (100.0, 100.0, 40.0, 50.0))])
    assert tracked.kind == "regions" and len(tracked.regions) == 1
    # 15 walkers' boxes (100 x 300 px in 1080p) all over the frame: their regions would cost 3.7x the whole frame
    everywhere = Motion([(x, y, 100.0, 300.0) for x in range(0, 1900, 400) for y in (0, 380, 760)], 0.3, False)
    assert policy.plan(0.4, (1920, 1080), everywhere, []).reason == "cost"


def test_tracked_faces_set_the_scale_of_their_regions_and_of_the_blob_of_their_person():
    """An 80-px face in 1080p is detected shrunk to FACE_DETECT_PX, its walking body's blob with it;
    a blob with no tracked face in it, or a crowd's blob too large for one person, at full size."""
    policy = DetectionPolicy(IDLE_DETECT_S, max_side=640)
    policy.plan(0.0, (1920, 1080), Motion([], 0.0, False), [])
    big = TrackedFace((800.0, 300.0, 80.0, 94.0), (780.0, 280.0, 120.0, 134.0))
    body = (740.0, 280.0, 200.0, 500.0)
    (region,) = policy.plan(0.2, (1920, 1080), Motion([body], 0.1, False), [big]).regions
    assert region.scale == FACE_DETECT_PX / 80
    stranger = (100.0, 100.0, 60.0, 120.0)
    regions = policy.plan(0.4, (1920, 1080), Motion([body, stranger], 0.1, False), [big]).regions
    assert sorted(region.scale for region in regions) == [FACE_DETECT_PX / 80, 1.0]
    near = TrackedFace((500.0, 300.0, 48.0, 56.0), (490.0, 290.0, 68.0, 76.0))  # in 720p: shrunk to 2/3
    (region,) = policy.plan(0.6, (1280, 720), Motion([(440.0, 280.0, 200.0, 400.0)], 0.1, False), [near]).regions
    assert region.scale == FACE_DETECT_PX / 48
    group = (380.0, 280.0, 300.0, 200.0)  # over 6 faces wide: more than one person
    (region,) = policy.plan(0.8, (1280, 720), Motion([group], 0.3, False), [near]).regions
    assert region.scale == 1.0
    small = TrackedFace((800.0, 300.0, 24.0, 28.0), (790.0, 290.0, 44.0, 48.0))
    (region,) = policy.plan(1.0, (1920, 1080), Motion([], 0.0, False), [small]).regions
    assert region.scale == 1.0


def test_bad_settings_and_frames_are_refused():
    with pytest.raises(ValueError, match="idle_detect_s"):
        DetectionPolicy(0, max_side=640)
    with pytest.raises(ValueError, match="threshold"):
        MotionSettings(threshold=0)
    with pytest.raises(ValueError, match="uint8"):
        SceneMotion().update(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="BGR"):
        SceneMotion().update(np.zeros((10, 10, 4), np.uint8))


def test_the_configs_defaults_are_the_settings_defaults():
    """The benchmarks and tests build RegionSettings() and MotionSettings(); the daemon builds them
    from [motion]: both must mean the same detection."""
    config = Settings(cameras=[{"name": "door", "url": "/dev/null"}])
    assert region_settings(config.motion) == RegionSettings()
    assert motion_settings(config.motion, config.cameras[0].motion_threshold) == MotionSettings()
