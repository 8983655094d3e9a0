"""The health check fails when a streaming camera's frames stop being processed."""

from __future__ import annotations

from edge_daemon.config import Settings
from edge_daemon.service.runner import DaemonRunner
from tests.support.paths import HAMILTON_CLIP, need
from tests.support.waiting import wait_until


def test_health_fails_when_a_streaming_camera_is_stuck(hamilton_gallery):
    """Stop the detection thread of a live camera: the check must fail, not keep pinging."""
    settings = Settings(
        cameras=[{"name": "stage", "url": str(need(HAMILTON_CLIP)), "loop": True}],
        gallery={"path": str(hamilton_gallery)},
        events={"jsonl": ""},
        service={"stuck_after_s": 1.0},
    )
    runner = DaemonRunner(settings)
    daemon, monitor = runner.daemon, runner.monitor
    runner.start()
    try:
        assert wait_until(lambda: daemon.cameras[0].state == "streaming" and daemon.trackers[0].last_frame_at, 30)
        assert monitor.health().healthy
        # Wedge the pipeline: hold the camera's frame queue so detection starves while the camera is "up".
        with daemon.cameras[0].frames.mutex:
            assert wait_until(lambda: not monitor.health().healthy, 5)
            problems = monitor.health().problems
        assert any("stage: no frame processed" in p for p in problems)
    finally:
        runner.request_stop()
        runner.shutdown()
