"""SIGHUP swaps the gallery without stopping the stream; SIGTERM drains and exits 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from edge_daemon.recognition.gallery import Gallery
from tests.support.paths import HAMILTON_CLIP, ROOT, need
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def read_events(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def test_sighup_reloads_gallery_and_sigterm_drains(tmp_path, hamilton_gallery):
    gallery = tmp_path / "gallery"
    Gallery.load(hamilton_gallery).save(gallery)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[cameras]]\nname = "stage"\nurl = "{need(HAMILTON_CLIP)}"\nloop = true\n\n'
        f'[gallery]\npath = "{gallery}"\n\n[events]\njsonl = "{tmp_path / "events.jsonl"}"\n\n[logging]\nformat = "json"\n'
    )
    log_file = tmp_path / "daemon.log"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=open(log_file, "w"), cwd=ROOT,
    )
    try:
        events_file = tmp_path / "events.jsonl"
        assert wait_until(lambda: any(e["identity"] == "lin_manuel_miranda" for e in read_events(events_file)), 90)
        old_version = read_events(events_file)[0]["gallery_version"]

        changed = Gallery.load(gallery)
        assert changed.remove("lin_manuel_miranda") == 1
        changed.save(gallery)
        daemon.send_signal(signal.SIGHUP)
        assert wait_until(lambda: changed.version in log_file.read_text(), 20)
        seen = len(read_events(events_file))
        # The looping clip brings Lin back as new tracks; now he is unknown under the new gallery.
        assert wait_until(
            lambda: any(e["gallery_version"] == changed.version and e["type"] in ("unknown", "recognized")
                        for e in read_events(events_file)[seen:]),
            90,
        )
        new_decisions = [e for e in read_events(events_file)[seen:] if e["gallery_version"] == changed.version]
        assert all(e["identity"] != "lin_manuel_miranda" for e in new_decisions)
        assert old_version != changed.version
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(60)
    assert code == 0
    stopped = [json.loads(line) for line in log_file.read_text().splitlines() if '"daemon stopped"' in line]
    assert stopped, log_file.read_text()[-2000:]
    camera = stopped[0]["cameras"]["stage"]
    assert camera.get("frames_dropped", 0) == 0, camera
    assert camera["frames_processed"] == camera["frames_sent"]  # the queue was drained on SIGTERM
    decided = {(e["track_id"]) for e in read_events(events_file) if e["type"] in ("recognized", "unknown")}
    ended = {(e["track_id"]) for e in read_events(events_file) if e["type"] == "ended"}
    assert decided == ended  # every open track got its 'ended' at shutdown
