"""One gallery for the fleet, over a real mosquitto: every box adopts a published revision, daemons
swap it in while they run and keep it across a restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import paho.mqtt.client as mqtt

from edge_daemon.comms.gallery_sync import manifest_topic, publish_gallery
from edge_daemon.config import MqttConfig, Settings
from edge_daemon.recognition.gallery import Gallery
from tests.support.gallery_sync import PREFIX, embedder_of, newer_revision, start_sync
from tests.support.paths import HAMILTON, HAMILTON_CLIP, ROOT, need
from tests.support.waiting import wait_until


def retained(broker, pattern: str) -> dict[str, bytes]:
    """The retained messages under ``pattern`` right now."""
    found: dict[str, bytes] = {}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="retained-reader")
    client.on_message = lambda c, u, message: found.__setitem__(message.topic, message.payload) if message.retain else None
    client.connect("127.0.0.1", broker.port)
    client.subscribe(pattern, qos=1)
    client.loop_start()
    time.sleep(1.0)
    client.loop_stop()
    client.disconnect()
    return found


def recognise_lin(gallery_dir) -> str | None:
    """``edge-daemon recognize`` of a Lin-Manuel Miranda photo against ``gallery_dir``."""
    probe = next(p for p in sorted((need(HAMILTON / "gallery") / "lin_manuel_miranda").iterdir()))
    result = subprocess.run(
        [sys.executable, "-m", "edge_daemon.cli", "recognize", str(probe), "--gallery", str(gallery_dir), "--json"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)["faces"][0]["identity"]


def daemon_settings(broker, directory, box: str) -> Settings:
    camera = {"name": "stage", "url": str(need(HAMILTON_CLIP)), "loop": True, "realtime": False}
    return Settings(
        cameras=[camera],
        gallery={"path": str(directory), "sync": "mqtt"},
        mqtt={"url": broker.url, "prefix": PREFIX, "homeassistant": False},
        spool={"path": str(directory.parent / f"{box}.spool.db")},
        service={"box": box},
        events={"jsonl": str(directory.parent / f"{box}.events.jsonl")},
    )


def test_a_published_gallery_is_adopted_by_every_box_and_a_newer_one_replaces_it(broker, hamilton_gallery, tmp_path):
    embedder = embedder_of(hamilton_gallery)
    config = MqttConfig(url=broker.url)
    syncs = [start_sync(broker, tmp_path / name, embedder) for name in ("north", "south")]
    try:
        manifest = publish_gallery(hamilton_gallery, config, PREFIX, chunk_bytes=4096)
        assert sum(part["chunks"] for part in manifest["parts"].values()) > 4  # really chunked
        assert wait_until(lambda: all(adopted for _, adopted in syncs), 20)
        for (sync, adopted), name in zip(syncs, ("north", "south")):
            assert adopted[-1].version == sync.current_version == manifest["version"]
            on_disk = Gallery.load(tmp_path / name)
            assert on_disk.version == manifest["version"] and on_disk.labels == Gallery.load(hamilton_gallery).labels
            assert all((tmp_path / name / "faces" / face).is_file() for face in on_disk.faces if face)

        assert recognise_lin(tmp_path / "north") == "lin_manuel_miranda"

        newer = newer_revision(hamilton_gallery, tmp_path / "newer")
        second = publish_gallery(newer, config, PREFIX, chunk_bytes=4096)
        assert wait_until(lambda: all(sync.current_version == second["version"] for sync, _ in syncs), 20)
        topics = retained(broker, f"{PREFIX}/gallery/#")
        assert json.loads(topics[manifest_topic(PREFIX)])["version"] == second["version"]
        assert not [t for t in topics if manifest["version"] in t]  # the superseded chunks are cleared
    finally:
        for sync, _ in syncs:
            sync.close()


def test_daemons_adopt_a_revision_while_running_and_keep_it_across_a_restart_without_the_broker(
    persistent_broker, hamilton_gallery, tmp_path
):
    from edge_daemon.pipeline.daemon import Daemon

    persistent_broker.start()
    config = MqttConfig(url=persistent_broker.url)
    daemons = [Daemon(daemon_settings(persistent_broker, tmp_path / box, box)) for box in ("north", "south")]
    try:
        for daemon in daemons:
            daemon.start()
        first = publish_gallery(hamilton_gallery, config, PREFIX, chunk_bytes=1 << 20)
        assert wait_until(lambda: all(d.stats()["gallery"]["version"] == first["version"] for d in daemons), 30)
        # A newer revision while the clip is being processed: processing goes on through the swap
        # (files read as fast as the pipeline takes frames: a pause would show, nothing is dropped),
        # and the events after it carry it.
        assert wait_until(lambda: daemons[0].trackers[0].counters.get("frames_processed") > 10, 60)
        processed = [d.trackers[0].counters.get("frames_processed") for d in daemons]
        second = publish_gallery(newer_revision(hamilton_gallery, tmp_path / "newer"), config, PREFIX, chunk_bytes=1 << 20)
        assert wait_until(lambda: all(d.stats()["gallery"]["version"] == second["version"] for d in daemons), 30)
        assert wait_until(lambda: all(d.trackers[0].counters.get("frames_processed") > n + 10 for d, n in zip(daemons, processed)), 30)
        events_file = tmp_path / "north.events.jsonl"
        assert wait_until(
            lambda: any(json.loads(line)["gallery_version"] == second["version"] for line in events_file.read_text().splitlines()),
            120,
        )
    finally:
        for daemon in daemons:
            daemon.request_stop()
            daemon.shutdown()
    for daemon in daemons:
        stats = daemon.stats()
        assert stats["gallery"]["adopted"] == 2 and not stats["embedder"].get("faces_failed")
    assert recognise_lin(tmp_path / "south") == "lin_manuel_miranda"  # the synced directory is a gallery

    persistent_broker.stop()  # a restart without the broker keeps the revision on disk
    restarted = Daemon(daemon_settings(persistent_broker, tmp_path / "north", "north"))
    restarted.start()
    try:
        assert restarted.matcher.gallery.version == second["version"]
    finally:
        restarted.request_stop()
        restarted.shutdown()
    assert np.allclose(Gallery.load(tmp_path / "north").vectors, Gallery.load(tmp_path / "south").vectors)
