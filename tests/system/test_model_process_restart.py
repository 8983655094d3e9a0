"""A model process that the kernel kills (its OOM killer under a memory limit such as systemd's
MemoryMax= sends SIGKILL) is started again with a log line, and the daemon goes on recognising and
does not hang. The test sends the SIGKILL itself: under a cgroup limit, the process's allocation
pattern decides when the kernel would, which makes a poor test."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from edge_daemon.config import Settings
from edge_daemon.messages import utc_iso
from edge_daemon.pipeline.daemon import Daemon
from tests.support.paths import HAMILTON_CLIP, need
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def named(events_file: Path) -> list[dict]:
    """The events that name someone (a track's first decision, or an update to it)."""
    lines = events_file.read_text().splitlines() if events_file.exists() else []
    return [event for event in map(json.loads, lines) if event["identity"] is not None]


@pytest.mark.parametrize("model", ["embedder", "detector"])
def test_a_killed_model_process_is_restarted_and_recognition_goes_on(tmp_path, hamilton_gallery, model):
    events_file = tmp_path / "events.jsonl"
    settings = Settings(
        cameras=[{"name": "stage", "url": str(need(HAMILTON_CLIP)), "loop": True}],
        gallery={"path": str(hamilton_gallery)},
        events={"jsonl": str(events_file)},
        history={"enabled": False},
    )
    daemon = Daemon(settings)
    with capture_logs() as logs:
        daemon.start()
        try:
            assert wait_until(lambda: named(events_file), 120), "no recognition"
            (child,) = [child for child in multiprocessing.active_children() if child.name.startswith(f"{model}-")]
            os.kill(child.pid, signal.SIGKILL)
            killed_at = time.time()
            assert wait_until(lambda: not child.is_alive(), 10)
            after_restart = utc_iso(killed_at + 1)
            assert wait_until(lambda: any(event["ts"] > after_restart for event in named(events_file)), 120), \
                "no recognition after the restart"
        finally:
            daemon.request_stop()
            started = time.monotonic()
            daemon.shutdown()
    assert time.monotonic() - started < 30  # no hang on the way out
    restarts = [entry for entry in logs if entry["event"] == "child process died, restarting"]
    assert [entry["process"] for entry in restarts] == [child.name] and restarts[0]["exitcode"] == -signal.SIGKILL
    assert {event["identity"] for event in named(events_file)} == {"lin_manuel_miranda"}
