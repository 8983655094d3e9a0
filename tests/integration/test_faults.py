"""A camera that vanishes reconnects while the others keep their rate."""

from __future__ import annotations

import shutil
import time

import pytest

from edge_daemon.config import Settings
from edge_daemon.pipeline.daemon import Daemon
from tests.support.paths import HAMILTON_CLIP, need
from tests.support.waiting import wait_until


@pytest.mark.slow
def test_vanishing_camera_reconnects_while_the_others_keep_their_rate(tmp_path, hamilton_gallery):
    clip = need(HAMILTON_CLIP)
    flaky, steady = tmp_path / "flaky.mp4", tmp_path / "steady.mp4"
    shutil.copy(clip, flaky)
    shutil.copy(clip, steady)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    garbled = tmp_path / "garbled.mp4"
    data = bytearray(clip.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 20000] = bytes(range(256)) * 78 + bytes(32)  # damage the middle
    garbled.write_bytes(bytes(data))
    settings = Settings(
        cameras=[
            {"name": "flaky", "url": str(flaky), "loop": True, "reconnect_initial_s": 0.5, "reconnect_max_s": 2},
            {"name": "steady", "url": str(steady), "loop": True},
            {"name": "truncated", "url": str(truncated)},
            {"name": "garbled", "url": str(garbled)},
        ],
        gallery={"path": str(hamilton_gallery)},
        events={"jsonl": ""},
    )
    daemon = Daemon(settings)
    daemon.start()
    flaky_camera, steady_tracker = daemon.cameras[0], daemon.trackers[1]
    try:
        assert wait_until(lambda: flaky_camera.state == "streaming", 20)
        flaky.rename(tmp_path / "away.mp4")  # the open file plays to its end, then cannot be reopened
        assert wait_until(lambda: flaky_camera.counters.get("reconnects") >= 2, 40)
        assert flaky_camera.state == "reconnecting" and "not found" in flaky_camera.last_error
        before, started = steady_tracker.counters.get("frames_processed"), time.monotonic()
        time.sleep(4)
        steady_rate = (steady_tracker.counters.get("frames_processed") - before) / (time.monotonic() - started)
        assert steady_rate > 3.5  # about its 5 fps while the other camera is down
        (tmp_path / "away.mp4").rename(flaky)
        processed = daemon.trackers[0].counters.get("frames_processed")
        assert wait_until(lambda: daemon.trackers[0].counters.get("frames_processed") > processed + 5, 20)
        assert flaky_camera.state == "streaming"
        assert wait_until(lambda: daemon.cameras[2].state in ("ended", "failed") and daemon.cameras[3].state == "ended", 120)
    finally:
        daemon.request_stop()
        daemon.shutdown()
    stats = daemon.stats()
    assert stats["cameras"]["garbled"]["frames_processed"] > 10  # decoding went on past the damage
    assert all(thread.is_alive() is False for thread in daemon.trackers)
