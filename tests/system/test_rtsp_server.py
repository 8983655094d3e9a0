"""The RTSP test server itself, read by OpenCV's FFmpeg backend the way the daemon reads cameras.

OpenCV's FFmpeg backend asks for RTSP over TCP unless OPENCV_FFMPEG_CAPTURE_OPTIONS says
otherwise, so these tests exercise the interleaved-TCP path, where a paused feed leaves the
connection open and silent. The ``rtsp_server`` fixture comes from tests/support/rtsp.py, which
conftest.py registers as a plugin.
"""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager

import cv2
import pytest

from tests.support.paths import HAMILTON_CLIP, ROOT
from tests.support.rtsp import RtspServer, require_clip, require_gstreamer

CLIP_SHAPE = (360, 640, 3)
CLIP_FRAMES = 275
TIMEOUTS = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 3000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 2000]


@contextmanager
def capture(url: str):
    stream = cv2.VideoCapture(url, cv2.CAP_FFMPEG, TIMEOUTS)
    try:
        yield stream
    finally:
        stream.release()


def reads_frames(url: str, count: int = 5) -> bool:
    with capture(url) as stream:
        return stream.isOpened() and all(stream.read()[0] for _ in range(count))


def test_frames_have_the_clip_geometry(rtsp_server):
    with capture(rtsp_server.url) as stream:
        assert stream.isOpened()
        ok, frame = stream.read()
    assert ok and frame.shape == CLIP_SHAPE


def test_a_client_can_connect_after_the_last_one_left(rtsp_server):
    # The shared media is torn down with its last client; the next one must get a fresh feed.
    assert reads_frames(rtsp_server.url)
    assert reads_frames(rtsp_server.url)


def test_the_clip_loops_past_its_end(rtsp_server):
    with capture(rtsp_server.url) as stream:
        for n in range(CLIP_FRAMES + 25):
            assert stream.read()[0], f"no frame {n}"


def test_pause_starves_an_open_connection_and_resume_feeds_new_clients(rtsp_server):
    with capture(rtsp_server.url) as stream:
        assert stream.read()[0]
        rtsp_server.pause()
        started = time.monotonic()
        frames_after_pause = 0
        while stream.read()[0] and time.monotonic() - started < 15:
            frames_after_pause += 1
        starved_after = time.monotonic() - started
    assert starved_after < 10
    assert frames_after_pause < 30, "frames kept coming for a second or more after the pause"
    rtsp_server.resume()
    assert reads_frames(rtsp_server.url)


def test_a_killed_server_restarts_on_the_same_port(rtsp_server):
    port = rtsp_server.port
    # Killed mid-stream, its side of the connection lingers (FIN_WAIT/TIME_WAIT): rebinding needs SO_REUSEADDR.
    with capture(rtsp_server.url) as stream:
        assert stream.read()[0]
        rtsp_server.kill()
    assert not reads_frames(rtsp_server.url)
    rtsp_server.restart()
    assert rtsp_server.port == port
    assert reads_frames(rtsp_server.url)


def test_sigterm_exits_cleanly(rtsp_server):
    rtsp_server.stop()
    assert rtsp_server.process.returncode == 0


@pytest.fixture
def protected_server(tmp_path):
    require_gstreamer()
    server = RtspServer(require_clip(HAMILTON_CLIP), tmp_path, user="camera", password="p@ss:word")
    server.start()
    yield server
    server.stop()


def test_basic_auth_admits_only_the_right_credentials(protected_server):
    assert protected_server.url.startswith("rtsp://camera:p%40ss%3Aword@127.0.0.1:")
    assert reads_frames(protected_server.url)
    wrong = protected_server.url.replace("p%40ss", "guess")
    anonymous = f"rtsp://127.0.0.1:{protected_server.port}{protected_server.path}"
    for url in (wrong, anonymous):
        started = time.monotonic()
        assert not reads_frames(url, count=1)
        assert time.monotonic() - started < 5


def test_the_server_exits_when_the_process_that_started_it_dies(tmp_path):
    require_gstreamer()
    require_clip(HAMILTON_CLIP)
    # A stand-in for a test run that crashes without stopping its server.
    parent_script = (
        "import sys, time; from tests.support.rtsp import RtspServer\n"
        "server = RtspServer(sys.argv[1], sys.argv[2]); server.start()\n"
        "print(server.process.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_script, str(HAMILTON_CLIP), str(tmp_path)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    server_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait(10)
    deadline = time.monotonic() + 5
    while process_exists(server_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_exists(server_pid)


def process_exists(pid: int) -> bool:
    """True while the process runs (a zombie awaiting its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
