"""Motion gating with the real detector: a person walking in, standing still or appearing is found,
and the real daemon counts the frames it skipped."""

from __future__ import annotations

import json
import urllib.request

import cv2
import numpy as np

from edge_daemon.config import Settings
from edge_daemon.pipeline.motion_gate import CLOCK_SLACK_S, DetectionPolicy, SceneMotion
from edge_daemon.pipeline.regions import iou
from tests.support.pasted_faces import load_faces, paste
from tests.support.scene_motion import FPS, IDLE_DETECT_S, noisy, run
from tests.support.waiting import free_port, wait_until

CLIP_FPS = 10


EMPTY_S, FADE_S, STILL_S = 4.0, 5.0, 7.0  # nobody, then a person faded in, then standing still


FAST_LEARNING = 0.5  # background learning that follows a 5 s fade-in: no pixel strays 15 levels from it


def write_still_person_clip(path, scene: np.ndarray, face) -> tuple:
    """A static noisy 720p scene in which a person appears without motion: faded in over ``FADE_S``,
    slower than the background (``FAST_LEARNING``) learns them, then standing still. Motion never
    sees them arrive, so no region is planned and no track exists: they are in view as someone
    standing still is after their track ended, and only the idle full detection can find them."""
    rng = np.random.default_rng(4)
    with_person = scene.copy()
    truth = paste(with_person, face, 60, (700, 300))
    height, width = scene.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), CLIP_FPS, (width, height))
    for index in range(int((EMPTY_S + FADE_S + STILL_S) * CLIP_FPS)):
        alpha = np.clip((index / CLIP_FPS - EMPTY_S) / FADE_S, 0, 1)
        writer.write(noisy(scene * (1 - alpha) + with_person * alpha, rng))
    writer.release()
    return truth


def test_a_person_walking_in_view_at_start_is_detected_from_the_second_frame(default_detector, scene):
    """A staggered camera does not detect its first frame, but the person moving in it is motion
    against that frame from the next one on, and is found in a region long before the phase's full
    detection."""
    face = load_faces(default_detector, 1)[0]
    rng = np.random.default_rng(4)
    frames, truths = [], []
    for index in range(5):
        frame = scene.copy()
        truths.append(paste(frame, face, 40, (600 + 30 * index, 400)))
        frames.append(noisy(frame, rng))
    policy = DetectionPolicy(IDLE_DETECT_S, max_side=640, phase=0.9)
    plans = run(frames, policy, SceneMotion(), default_detector)
    assert plans[0][1].reason == "first_frame"
    assert [plan.kind for _, plan, _ in plans[1:]] == ["regions"] * 4
    assert all(any(iou(d.bbox, truth) > 0.5 for d in found) for (_, _, found), truth in zip(plans[1:], truths[1:]))


def test_a_person_standing_still_is_found_within_idle_detect_s(default_detector, scene):
    """They step in, then stand still: the background learns them within seconds and motion stops.
    With no live track (the camera's tracker lost them), only the idle full detection finds them."""
    face = load_faces(default_detector, 1)[0]
    with_person = scene.copy()
    truth = paste(with_person, face, 60, (700, 300))
    rng = np.random.default_rng(1)
    arrive_s = 1.0
    frames = (noisy(with_person if i / FPS >= arrive_s else scene, rng) for i in range(int(16 * FPS)))
    policy = DetectionPolicy(IDLE_DETECT_S, max_side=640)
    plans = run(frames, policy, SceneMotion(), default_detector)
    still_from = next(now for now, plan, _ in plans if now > arrive_s and plan.kind == "skip")
    assert still_from < 10  # faded into the background
    next_full = next(now for now, plan, _ in plans if now > still_from and plan.kind == "full")
    assert all(plan.kind == "skip" for now, plan, _ in plans if still_from <= now < next_full)
    found_at = [now for now, _, found in plans if now >= still_from and any(iou(d.bbox, truth) > 0.5 for d in found)]
    assert found_at and found_at[0] - still_from <= IDLE_DETECT_S


def test_a_person_who_appears_is_found_in_a_region_around_the_motion(default_detector, scene):
    face = load_faces(default_detector, 1)[0]
    rng = np.random.default_rng(2)
    frames = [noisy(scene, rng) for _ in range(3)]
    truth = paste(frames[-1], face, 30, (900, 400))
    policy = DetectionPolicy(IDLE_DETECT_S, max_side=640)
    now, plan, found = run(frames, policy, SceneMotion(), default_detector)[-1]
    assert plan.kind == "regions"
    assert any(region.x <= truth[0] and truth[0] + truth[2] <= region.x + region.width for region in plan.regions)
    assert any(iou(d.bbox, truth) > 0.5 for d in found)
    assert policy.counters.get("regions_detected") == len(plan.regions)


def test_the_daemon_skips_still_frames_and_finds_a_person_standing_still_within_idle_detect_s(
    default_detector, scene, tmp_path
):
    from edge_daemon.service.runner import DaemonRunner

    truth = write_still_person_clip(tmp_path / "still.mp4", scene, load_faces(default_detector, 1)[0])
    port = free_port()
    settings = Settings(
        cameras=[{"name": "hall", "url": str(tmp_path / "still.mp4"), "realtime": False, "idle_detect_s": IDLE_DETECT_S}],
        motion={"learning_rate": FAST_LEARNING},
        events={"jsonl": str(tmp_path / "events.jsonl")},
        service={"metrics_port": port},
    )
    runner = DaemonRunner(settings)
    daemon = runner.daemon
    detection = daemon.trackers[0].detection
    seen = []  # per frame: video seconds, faces found (None: not looked at), the policy's counters after it
    detect = detection.detect

    def watched(frame, tracked):
        found = detect(frame, tracked)
        seen.append((frame.stream_time, found, detection.policy.counters.values))
        return found

    detection.detect = watched
    runner.start()
    try:
        assert wait_until(lambda: daemon.cameras[0].state == "ended" and not daemon.trackers[0].is_alive(), 120)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            metrics = response.read().decode()
    finally:
        runner.request_stop()
        runner.shutdown()
    first = next(index for index, (_, found, _) in enumerate(seen) if found and any(iou(d.bbox, truth) > 0.5 for d in found))
    found_at, _, counters = seen[first]
    assert EMPTY_S < found_at <= EMPTY_S + FADE_S + IDLE_DETECT_S
    # Until then nothing moved: every frame was skipped but the idle full detections, and no region was planned.
    assert counters.get("frames_detected_regions", 0) == 0
    assert counters["frames_skipped_no_motion"] == first + 1 - counters["frames_detected_full_idle"]
    # A file read as fast as the pipeline takes it is not staggered: the whole frame on the first
    # frame, then every idle_detect_s, replayed over the frames' own times.
    assert detection.policy.phase is None
    last_full, expected_full = seen[0][0], 1
    for now, _, _ in seen[1 : first + 1]:
        if now - last_full >= IDLE_DETECT_S - CLOCK_SLACK_S:
            last_full, expected_full = now, expected_full + 1
    assert counters["frames_detected_full_idle"] == expected_full
    stats = daemon.stats()["cameras"]["hall"]
    assert stats["frames_skipped_no_motion"] >= counters["frames_skipped_no_motion"]
    assert stats["frames_processed"] == len(seen) and stats.get("frames_not_detected", 0) == 0
    assert stats["detect_submitted"] == len(seen) - stats["frames_skipped_no_motion"]
    assert f'edge_daemon_frames_skipped_no_motion_total{{camera="hall"}} {stats["frames_skipped_no_motion"]}.0' in metrics
    assert 'edge_daemon_frames_detected_full_total{camera="hall",reason="idle"}' in metrics
    assert "edge_daemon_detector_busy_seconds_total" in metrics
    assert "% skipped: no motion)" in runner.monitor.status_line()  # systemd STATUS=
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [event["type"] for event in events] == ["unknown", "ended"]
