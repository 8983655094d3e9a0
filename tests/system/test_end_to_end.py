"""The daemon as a user runs it: the real CLI on the real Hamilton clip."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from tests.support.paths import HAMILTON_CLIP, ROOT, need

pytestmark = pytest.mark.slow


def run_daemon(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge_daemon.cli", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def hamilton_events(hamilton_gallery, tmp_path_factory):
    clip = need(HAMILTON_CLIP)
    events_file = tmp_path_factory.mktemp("events") / "events.jsonl"
    result = run_daemon("--camera", f"stage={clip}", "--gallery", str(hamilton_gallery), "--events-out", str(events_file))
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in events_file.read_text().splitlines()]


def test_hamilton_recognises_lin_manuel_miranda_and_no_other_known_name(hamilton_events, hamilton_gallery):
    from edge_daemon.recognition.gallery import Gallery

    named = {event["identity"] for event in hamilton_events if event["identity"] is not None}
    assert named == {"lin_manuel_miranda"}, named
    recognised = [e for e in hamilton_events if e["type"] == "recognized"]
    assert len(recognised) >= 1
    assert all(e["score"] >= Gallery.load(hamilton_gallery).threshold for e in recognised)


def test_one_decision_per_track_not_per_frame(hamilton_events):
    first_decisions = Counter(
        (e["camera"], e["track_id"]) for e in hamilton_events if e["type"] in ("recognized", "unknown")
    )
    assert first_decisions and max(first_decisions.values()) == 1
    ended = Counter((e["camera"], e["track_id"]) for e in hamilton_events if e["type"] == "ended")
    assert ended == first_decisions  # every decided track ends exactly once
    # 275 frames at 5 detect-fps is about 46 processed frames; events must be far fewer than faces seen.
    assert len(hamilton_events) < 60


def test_event_fields(hamilton_events):
    event = hamilton_events[0]
    assert set(event) >= {
        "event_id", "type", "camera", "track_id", "identity", "score", "bbox", "ts",
        "embedder", "embedder_version", "gallery_version",
    }
    assert event["camera"] == "stage"
    assert event["embedder"] == "fused"
    assert len(event["bbox"]) == 4 and event["ts"].endswith("Z")
    assert len({e["event_id"] for e in hamilton_events}) == len(hamilton_events)


def test_daemon_exits_2_on_malformed_config(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[[cameras]]\nname = "door"\nurl = "x.mp4"\ndetect_fps = -3\n')
    result = run_daemon("--config", str(config), timeout=60)
    assert result.returncode == 2
    assert "cameras.0.detect_fps" in result.stderr and "greater than 0" in result.stderr


def test_camera_that_never_opens_is_reported_not_fatal(tmp_path, hamilton_gallery):
    """One dead camera and one good one: the good one is processed, the daemon exits normally."""
    clip = need(HAMILTON_CLIP)
    events_file = tmp_path / "events.jsonl"
    result = run_daemon(
        "--camera", f"dead={tmp_path / 'missing.mp4'}",
        "--camera", f"stage={clip}",
        "--gallery", str(hamilton_gallery),
        "--events-out", str(events_file),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "camera cannot open" in result.stderr and "missing.mp4" in result.stderr
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert {e["camera"] for e in events} == {"stage"}
    assert any(e["identity"] == "lin_manuel_miranda" for e in events)


def test_gallery_from_another_embedder_is_refused(tmp_path, hamilton_gallery):
    from edge_daemon.recognition.gallery import Gallery

    other = Gallery.load(hamilton_gallery)
    other.embedder, other.embedder_version = "vgg16", "vgg16-0123456789abcdef"
    other.save(tmp_path / "g")
    result = run_daemon("--camera", f"stage={need(HAMILTON_CLIP)}", "--gallery", str(tmp_path / "g"), timeout=60)
    assert result.returncode == 1
    assert "gallery was built with embedder vgg16" in result.stderr
    assert "Traceback" not in result.stderr
