"""Idle cameras decode only keyframes (``cameras.idle_keyframes_after_s``), in the daemon: a scene that
stays quiet decodes only its keyframes (counted), and a person who walks into a quiet scene is
detected within one keyframe interval (plus detection) of walking in."""

from __future__ import annotations

import time

import pytest

from edge_daemon.config import Settings
from edge_daemon.pipeline.daemon import Daemon
from edge_daemon.pipeline.regions import iou
from tests.support.keyframe_clips import FPS, quiet_frames, walk_in_frames, write_h264
from tests.support.pasted_faces import load_faces
from tests.support.waiting import wait_until

KEYFRAME_S = 2.0
IDLE_AFTER_S = 2.0
CLIP_S = 13.0
ENTER_S = 8.5  # between keyframes: the first one to show the person comes 1.5 s later
DETECT_FPS = 5.0
STREAM_START_S = 1 / DETECT_FPS  # a camera's stream time starts one detection period in


@pytest.fixture(scope="module")
def idle_run(default_detector, scene, tmp_path_factory):
    """Two realtime file cameras, both quiet long enough to go idle; in one, a person walks in at ENTER_S.
    Per camera: (clip seconds, faces found or None, captured_at, answered_at) of every frame processed."""
    directory = tmp_path_factory.mktemp("keyframe_idle")
    scene_bgr = scene.astype("uint8")
    write_h264(directory / "quiet.mp4", quiet_frames(scene_bgr, CLIP_S), FPS, round(KEYFRAME_S * FPS))
    truths: list = []
    face = load_faces(default_detector, 1)[0]
    write_h264(directory / "entry.mp4", walk_in_frames(scene_bgr, face, ENTER_S, CLIP_S - ENTER_S, truths), FPS,
               round(KEYFRAME_S * FPS))
    cameras = [{"name": name, "url": str(directory / f"{name}.mp4"), "idle_keyframes_after_s": IDLE_AFTER_S}
               for name in ("quiet", "entry")]
    daemon = Daemon(Settings(cameras=cameras, events={"jsonl": str(directory / "events.jsonl")}))
    seen: dict[str, list] = {"quiet": [], "entry": []}
    for tracker in daemon.trackers:
        watch(tracker.detection, seen[tracker.camera])
    daemon.start()
    try:
        assert wait_until(lambda: all(camera.state == "ended" for camera in daemon.cameras), CLIP_S + 60)
        assert wait_until(lambda: not any(tracker.is_alive() for tracker in daemon.trackers), 30)
        stats = daemon.stats()["cameras"]
    finally:
        daemon.request_stop()
        daemon.shutdown()
    return seen, stats, truths


def watch(detection, seen: list) -> None:
    detect = detection.detect

    def watched(frame, tracked):
        found = detect(frame, tracked)
        seen.append((round(frame.stream_time - STREAM_START_S, 3), found, frame.captured_at, time.time()))
        return found

    detection.detect = watched


def is_keyframe(clip_s: float) -> bool:
    return abs(clip_s / KEYFRAME_S - round(clip_s / KEYFRAME_S)) < 1e-3


def test_a_scene_that_stays_quiet_decodes_only_keyframes(idle_run):
    seen, stats, _ = idle_run
    quiet = stats["quiet"]
    # Idle from IDLE_AFTER_S of quiet on (the first frame only teaches the background): then only
    # the keyframes at 4, 6, 8, 10 and 12 s are decoded, and every one of them is counted.
    assert quiet["keyframe_only_periods"] == 1
    assert quiet["frames_keyframe_only"] >= 5
    assert quiet["keyframe_only_ms"] >= 1000 * 2 * KEYFRAME_S
    late = [clip_s for clip_s, _, _, _ in seen["quiet"] if clip_s > IDLE_AFTER_S + KEYFRAME_S]
    assert late and all(is_keyframe(clip_s) for clip_s in late), late
    decoded_before_idle = quiet["frames_read"] - quiet["frames_keyframe_only"]
    assert decoded_before_idle <= (IDLE_AFTER_S + KEYFRAME_S + 1) * FPS  # not the whole clip's 130 frames
    assert quiet.get("stalls", 0) == 0 and quiet.get("faces_detected", 0) == 0


def test_a_person_walking_into_a_quiet_scene_is_detected_within_one_keyframe_interval(idle_run):
    seen, stats, truths = idle_run
    entry = seen["entry"]
    before = [clip_s for clip_s, _, _, _ in entry if IDLE_AFTER_S + KEYFRAME_S < clip_s < ENTER_S]
    assert before and all(is_keyframe(clip_s) for clip_s in before), before  # idle when they walked in
    first = next(
        (clip_s, answered_at - captured_at)
        for clip_s, found, captured_at, answered_at in entry
        if found and clip_s >= ENTER_S and any(iou(d.bbox, truths[round(clip_s * FPS)]) > 0.3 for d in found)
    )
    found_at, detection_s = first
    assert found_at <= ENTER_S + KEYFRAME_S, found_at  # the first keyframe with them in view
    assert detection_s < KEYFRAME_S, detection_s
    # Then every frame is decoded again, from that keyframe on: the frames after it are processed at
    # the detection rate, not a keyframe interval apart.
    after = [clip_s for clip_s, _, _, _ in entry if found_at < clip_s < found_at + KEYFRAME_S]
    assert len(after) >= KEYFRAME_S * DETECT_FPS - 2, after
    assert stats["entry"]["keyframe_only_periods"] >= 1 and stats["entry"]["tracks_started"] >= 1
