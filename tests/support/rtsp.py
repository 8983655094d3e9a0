"""A real RTSP server for tests: ``RtspServer`` runs ``gst_rtsp_server.py`` (GStreamer) on a loopback port.

The server streams a clip as live H.264, looping forever. Tests can pause it (the connection
stays open but no frames come), kill it, and restart it on the same port. Use the ``rtsp_server``
fixture (the Hamilton clip) or ``crowd_rtsp_server`` (1080p, for benchmarks) after naming this
module in ``pytest_plugins (the root conftest does)``, or build an ``RtspServer`` directly for credentials
or another clip (and stop it yourself).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.paths import CROWD_CLIP, HAMILTON_CLIP

SYSTEM_PYTHON = "/usr/bin/python3"  # GStreamer's bindings (gi) are Debian packages, not in the venv
SERVER_SCRIPT = Path(__file__).resolve().with_name("gst_rtsp_server.py")
APT_INSTALL = (
    "apt-get install -y --no-install-recommends python3-gi gir1.2-gst-rtsp-server-1.0"
    " gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
)
READY_TIMEOUT_S = 15.0  # reading the clip into memory is part of startup; 1080p on a busy machine


def require_gstreamer() -> None:
    """Fail (not skip): the test script installs GStreamer, so its absence is a broken setup."""
    check = "import gi; gi.require_version('GstRtspServer', '1.0')"
    try:
        subprocess.run([SYSTEM_PYTHON, "-c", check], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        pytest.fail(f"GStreamer's RTSP server is not available to {SYSTEM_PYTHON} ({error}): {APT_INSTALL}")


def require_clip(clip: Path) -> Path:
    if not clip.exists():
        pytest.skip(f"shared data not found: {clip} (expected ../shared beside the repository)")
    return clip


class RtspServer:
    """One server process; ``port`` survives ``kill``/``stop`` so ``restart`` reuses it."""

    def __init__(self, clip: Path, directory: Path, user: str | None = None, password: str | None = None,
                 path: str = "/stream"):
        self.clip = Path(clip)
        self.stderr_path = Path(directory) / "rtsp_server.stderr"
        self.user = user
        self.password = password
        self.path = path
        self.port: int | None = None
        self.process: subprocess.Popen | None = None

    def start(self, port: int = 0) -> None:
        command = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--clip", str(self.clip), "--port", str(port),
                   "--path", self.path, "--parent-pid", str(os.getpid())]
        if self.user is not None:
            command += ["--user", self.user, "--password", self.password]
        # Appended, not overwritten: a restart keeps the earlier run's messages for a post-mortem.
        with open(self.stderr_path, "ab") as stderr:
            stderr_start = stderr.tell()
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr)
        self.port = self._wait_ready(stderr_start)

    def _wait_ready(self, stderr_start: int) -> int:
        line = self._read_line(READY_TIMEOUT_S)
        if line is not None and line.startswith("READY "):
            return int(line.split()[1])
        self.kill()
        with open(self.stderr_path, "rb") as stderr:
            stderr.seek(stderr_start)
            messages = stderr.read().decode(errors="replace")
        if line is None:
            outcome = f"no READY within {READY_TIMEOUT_S} s"
        elif line == "":
            outcome = f"exited with status {self.process.returncode}"
        else:
            outcome = f"printed {line!r}"
        raise RuntimeError(f"RTSP server on {self.clip} did not start: {outcome}; its stderr:\n{messages}")

    def _read_line(self, timeout_s: float) -> str | None:
        """The next stdout line ("" once it has exited), or None on timeout."""
        # select, not a blocking readline: a hung server must not hang the test run.
        readable, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        return self.process.stdout.readline().decode(errors="replace").strip() if readable else None

    @property
    def url(self) -> str:
        credentials = ""
        if self.user is not None:
            credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}@"
        return f"rtsp://{credentials}127.0.0.1:{self.port}{self.path}"

    def pause(self) -> None:
        """Stop sending frames to every client; their connections stay open."""
        self.process.send_signal(signal.SIGUSR1)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGUSR2)

    def kill(self) -> None:
        """Die at once, as a crashed camera would: no RTSP teardown."""
        if self.process and self.process.poll() is None:
            self.process.kill()
        self._reap()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._reap()

    def restart(self) -> None:
        """Start again on the same port (stopping first if still running)."""
        self.stop()
        self.start(self.port)

    def _reap(self) -> None:
        if self.process:
            self.process.wait(10)
            self.process.stdout.close()


def started_server(clip: Path, directory: Path) -> RtspServer:
    require_gstreamer()
    server = RtspServer(require_clip(clip), directory)
    server.start()
    return server


@pytest.fixture
def rtsp_server(tmp_path):
    """A started server streaming the Hamilton clip (640x360, 275 frames at 29.97 fps)."""
    server = started_server(HAMILTON_CLIP, tmp_path)
    yield server
    server.stop()


@pytest.fixture
def crowd_rtsp_server(tmp_path):
    """A started server streaming the 1080p crowd clip (105 frames at 25 fps), for benchmarks."""
    server = started_server(CROWD_CLIP, tmp_path)
    yield server
    server.stop()
