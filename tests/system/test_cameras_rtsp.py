"""Cameras against a real RTSP server (GStreamer, see tests/support/rtsp.py): a stall with the connection
open, a server killed and restarted, another resolution after a restart, credentials that never
leak, and clear errors for a wrong path or refused credentials."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from edge_daemon.config import CameraConfig, Settings
from edge_daemon.pipeline.capture import Camera
from edge_daemon.pipeline.daemon import Daemon
from edge_daemon.service.health import ServiceMonitor
from edge_daemon.service.systemd import SystemdNotifier
from tests.support.keyframe_clips import FPS, quiet_frames, walk_in_frames, write_h264
from tests.support.pasted_faces import load_faces
from tests.support.paths import CROWD_CLIP, HAMILTON_CLIP, ROOT
from tests.support.rtsp import RtspServer, require_clip, require_gstreamer
from tests.support.systemd import FakeSystemd
from tests.support.waiting import free_port, wait_until

pytestmark = pytest.mark.slow

STALL_TIMEOUT_S = 3.0
LIVE = {"stall_timeout_s": STALL_TIMEOUT_S, "reconnect_initial_s": 0.5, "reconnect_max_s": 2.0}


def start_daemon(tmp_path, *cameras: dict) -> Daemon:
    daemon = Daemon(Settings(cameras=list(cameras), events={"jsonl": str(tmp_path / "events.jsonl")}))
    daemon.start()
    return daemon


def processed(daemon: Daemon, index: int) -> int:
    return daemon.trackers[index].counters.get("frames_processed")


def streams(daemon: Daemon, index: int, frames: int = 5, timeout_s: float = 30) -> bool:
    """The camera is streaming and ``frames`` more of its frames get processed."""
    start = processed(daemon, index)
    return wait_until(
        lambda: daemon.cameras[index].state == "streaming" and processed(daemon, index) >= start + frames, timeout_s
    )


def test_a_stall_with_the_connection_open_is_noticed_and_the_camera_recovers(rtsp_server, tmp_path):
    clip = require_clip(HAMILTON_CLIP)
    daemon = start_daemon(
        tmp_path, {"name": "door", "url": rtsp_server.url, **LIVE}, {"name": "file", "url": str(clip), "loop": True}
    )
    try:
        assert streams(daemon, 0)
        rtsp_server.pause()
        paused_at = time.monotonic()
        assert wait_until(lambda: daemon.cameras[0].state == "stalled", 4 * STALL_TIMEOUT_S)
        noticed_s = time.monotonic() - paused_at
        assert noticed_s <= STALL_TIMEOUT_S + 1.5, noticed_s  # within the timeout (plus frames already in flight)
        assert daemon.cameras[0].counters.get("stalls") == 1
        service = daemon.settings.service
        monitor = ServiceMonitor(daemon.status, SystemdNotifier(""), service.stuck_after_s, service.ready_timeout_s)
        health = monitor.health()
        assert health.healthy and health.cameras == {"door": "stalled", "file": "streaming"}
        assert "door stalled" in monitor.status_line()
        file_before = processed(daemon, 1)
        time.sleep(2)
        assert processed(daemon, 1) - file_before >= 7  # the other camera keeps its 5 fps
        rtsp_server.resume()
        assert streams(daemon, 0, timeout_s=30)
    finally:
        daemon.request_stop()
        daemon.shutdown()


def test_a_camera_decoding_only_keyframes_is_no_stall_and_a_stall_is_still_noticed(scene, tmp_path):
    """Idle, the camera decodes a frame a keyframe interval, longer here than the stall timeout:
    a stall is data that stops coming, not frames."""
    require_gstreamer()
    keyframe_s = STALL_TIMEOUT_S + 1
    clip = tmp_path / "quiet.mp4"
    write_h264(clip, quiet_frames(scene.astype(np.uint8), 3 * keyframe_s), FPS, round(keyframe_s * FPS))
    server = RtspServer(clip, tmp_path)
    server.start()
    daemon = start_daemon(tmp_path, {"name": "door", "url": server.url, **LIVE, "idle_keyframes_after_s": 1.0})
    camera = daemon.cameras[0]
    try:
        assert wait_until(lambda: camera.counters.get("frames_keyframe_only") >= 3, 8 * keyframe_s)
        assert camera.state == "streaming" and camera.counters.get("stalls") == 0
        server.pause()
        paused_at = time.monotonic()
        assert wait_until(lambda: camera.state == "stalled", 4 * STALL_TIMEOUT_S)
        assert time.monotonic() - paused_at <= STALL_TIMEOUT_S + 1.5
        read = camera.counters.get("frames_read")
        server.resume()
        assert wait_until(lambda: camera.state == "streaming" and camera.counters.get("frames_read") > read, 30)
    finally:
        daemon.request_stop()
        daemon.shutdown()
        server.stop()


def test_an_idle_live_camera_decodes_every_frame_again_from_the_keyframe_that_shows_someone(default_detector, scene, tmp_path):
    """Live, packets come in real time: the motion in the keyframe that first shows the person turns
    every-frame decoding back on before the next packets are read, not a keyframe interval later."""
    require_gstreamer()
    keyframe_s, quiet_s = 2.0, 8.0
    clip = tmp_path / "entry.mp4"
    face = load_faces(default_detector, 1)[0]
    write_h264(clip, walk_in_frames(scene.astype(np.uint8), face, quiet_s, 6.0, []), FPS, round(keyframe_s * FPS))
    server = RtspServer(clip, tmp_path)
    server.start()
    daemon = start_daemon(tmp_path, {"name": "door", "url": server.url, **LIVE, "idle_keyframes_after_s": 2.0})
    camera, tracker = daemon.cameras[0], daemon.trackers[0]
    try:
        assert wait_until(lambda: camera.counters.get("frames_keyframe_only") >= 1, 4 * keyframe_s + 10)
        assert wait_until(lambda: tracker.counters.get("faces_detected") >= 1, 2 * quiet_s + 10)
        processed_then = processed(daemon, 0)
        time.sleep(1.5)
        assert processed(daemon, 0) - processed_then >= 4  # 5 fps again, not a frame a keyframe interval
        assert camera.counters.get("stalls") == 0
    finally:
        daemon.request_stop()
        daemon.shutdown()
        server.stop()


def test_a_killed_server_is_reconnected_and_another_resolution_ends_the_old_tracks(rtsp_server, tmp_path):
    crowd = require_clip(CROWD_CLIP)
    daemon = start_daemon(tmp_path, {"name": "door", "url": rtsp_server.url, **LIVE})
    try:
        assert streams(daemon, 0)
        rtsp_server.kill()
        assert wait_until(lambda: daemon.cameras[0].state in ("reconnecting", "failed"), 10)
        rtsp_server.clip = crowd  # the camera comes back at 1920x1080 instead of 640x360
        rtsp_server.start(rtsp_server.port)
        assert wait_until(lambda: daemon.trackers[0].counters.get("geometry_changes") == 1, 40)
        assert streams(daemon, 0)
        assert daemon.cameras[0].counters.get("reconnects") >= 1
    finally:
        daemon.request_stop()
        daemon.shutdown()
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    decided = {e["track_id"] for e in events if e["type"] in ("recognized", "unknown")}
    assert decided and decided == {e["track_id"] for e in events if e["type"] == "ended"}


def test_credentials_never_reach_any_output(tmp_path, broker):
    require_gstreamer()
    password = "s3cret-Pa55"
    server = RtspServer(require_clip(HAMILTON_CLIP), tmp_path, user="viewer", password=password)
    server.start()
    messages: list[bytes] = []
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    subscriber.on_message = lambda client, userdata, message: messages.append(message.topic.encode() + message.payload)
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.subscribe("#")
    subscriber.loop_start()
    fake = FakeSystemd(tmp_path / "notify")
    port = free_port()
    config = tmp_path / "c.toml"
    config.write_text(
        f'[[cameras]]\nname = "door"\nurl = "{server.url}"\nstall_timeout_s = 3\nreconnect_initial_s = 0.5\n'
        f'[events]\njsonl = "{tmp_path / "events.jsonl"}"\n'
        f'[mqtt]\nurl = "{broker.url}"\nstats_interval_s = 1\n'
        f'[spool]\npath = "{tmp_path / "spool.db"}"\n'
        f'[service]\nmetrics_port = {port}\n'
    )
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "2000000", "PATH": "/usr/bin:/bin"}
    daemon = subprocess.Popen([sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(config)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env)
    output: dict[str, bytes] = {}

    def drain(name, stream):
        output[name] = stream.read()

    readers = [threading.Thread(target=drain, args=(n, s), daemon=True) for n, s in (("stdout", daemon.stdout), ("stderr", daemon.stderr))]
    for reader in readers:
        reader.start()
    scrapes = []
    try:
        assert wait_until(lambda: any("door streaming" in m.get("STATUS", "") for m in fake.messages), 60)
        server.kill()  # reconnects, with the URL in its messages
        time.sleep(3)
        server.start(server.port)
        assert wait_until(lambda: sum("door streaming" in m.get("STATUS", "") for m in fake.messages) >= 2, 60)
        assert wait_until(lambda: (tmp_path / "events.jsonl").exists() and (tmp_path / "events.jsonl").stat().st_size > 0, 60)
        for path in ("/metrics", "/healthz"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                scrapes.append(response.read())
    finally:
        daemon.terminate()
        daemon.wait(60)
        for reader in readers:
            reader.join(10)
        subscriber.loop_stop()
        fake.close()
        server.stop()
    everything = {
        **output,
        "events": (tmp_path / "events.jsonl").read_bytes(),
        "mqtt": b"\n".join(messages),
        "systemd": json.dumps(fake.messages).encode(),
        "http": b"\n".join(scrapes),
    }
    assert b"camera reconnecting" in everything["stderr"] and everything["mqtt"] and everything["events"]
    for name, text in everything.items():
        assert password.encode() not in text, f"the password leaked into {name}"


def wait_for_error(config: CameraConfig, expected: str) -> tuple[str, int]:
    """Run one camera until its error says ``expected``; then how many reconnects 3 more seconds cost."""
    stop = threading.Event()
    camera = Camera(config, stop)
    camera.start()
    try:
        assert wait_until(lambda: expected in (camera.last_error or ""), 20), camera.last_error
        before = camera.counters.get("reconnects")
        time.sleep(3)
        return camera.last_error, camera.counters.get("reconnects") - before
    finally:
        stop.set()
        while camera.is_alive():
            try:
                camera.frames.get(timeout=0.5)
            except Exception:  # queue.Empty: the thread is still finishing
                pass


def test_wrong_path_and_refused_credentials_are_clear_errors_with_backoff(tmp_path):
    require_gstreamer()
    server = RtspServer(require_clip(HAMILTON_CLIP), tmp_path, user="viewer", password="right")
    server.start()
    base = f"rtsp://viewer:right@127.0.0.1:{server.port}"
    try:
        cases = [
            (f"{base}/nope", "no stream at /nope"),
            (f"rtsp://viewer:wrong@127.0.0.1:{server.port}/stream", "refused the credentials"),
            (f"rtsp://127.0.0.1:{server.port}/stream", "wants credentials"),
            (f"rtsp://127.0.0.1:{free_port()}/stream", "cannot connect"),
        ]
        for url, expected in cases:
            error, reconnects = wait_for_error(CameraConfig(name="door", url=url, **LIVE), expected)
            assert "right" not in error and "wrong" not in error  # the URL in it is redacted
            assert reconnects <= 4, (url, reconnects)  # backoff, not a hot loop
    finally:
        server.stop()
