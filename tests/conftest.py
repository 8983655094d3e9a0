"""Shared fixtures: paths to ../shared data, real models, a real mosquitto broker."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytest_plugins = ["rtsp"]  # the real RTSP server fixtures (tests/rtsp.py)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
YUNET_ONNX = SHARED / "models" / "face_detection_yunet.onnx"
HAMILTON = DATA / "video" / "hamilton"
HAMILTON_CLIP = HAMILTON / "short_hamilton_clip.mp4"
CROWD_CLIP = DATA / "video" / "crowd" / "crowd_1080p.mp4"


def need(path: Path) -> Path:
    """Skip (with the reason) when shared data is absent; tests never fake it."""
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (expected ../shared beside the repository)")
    return path


def wait_until(condition, timeout_s: float, interval_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval_s)
    return bool(condition())


def tiny_dataset(root, identities=4, images=20):
    """Symlinks to a few celeb24 people (nothing is copied)."""
    source = need(DATA / "train" / "celeb24")
    for person in sorted(source.iterdir())[:identities]:
        (root / person.name).mkdir(parents=True)
        for image in sorted(person.iterdir())[:images]:
            (root / person.name / image.name).symlink_to(image.resolve())
    return root


@pytest.fixture(scope="session")
def default_detector():
    """The default detector configuration (``yunet``), in this process."""
    from edge_daemon.config import DetectorConfig
    from edge_daemon.detectors import create_detector

    return create_detector(DetectorConfig(), separate_process=False)


@pytest.fixture(scope="session")
def yuface_detector():
    """libfacedetection's own code (the ``yuface`` wheel: x86_64, CPython 3.10-3.11), in this process."""
    pytest.importorskip("yuface", reason="yuface has wheels for x86_64 CPython 3.10-3.11 only")
    from edge_daemon.config import DetectorConfig
    from edge_daemon.detectors import create_detector

    return create_detector(DetectorConfig(backend="yuface"), separate_process=False)


@pytest.fixture(scope="session")
def default_embedder():
    """The default embedder configuration, in this process."""
    from edge_daemon.config import EmbedderConfig
    from edge_daemon.embedders import create_embedder

    return create_embedder(EmbedderConfig(), separate_process=False)


@pytest.fixture(scope="session")
def hamilton_gallery(tmp_path_factory, default_detector, default_embedder) -> Path:
    """The Hamilton gallery enrolled with the default detector and embedder."""
    from edge_daemon.api import build_gallery

    gallery, _ = build_gallery(need(HAMILTON / "gallery"), default_detector, default_embedder)
    path = tmp_path_factory.mktemp("hamilton") / "gallery"
    gallery.save(path)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    """A real mosquitto on a free loopback port; can be killed and restarted on the same port.
    ``listeners`` adds configuration after the plain listener (e.g. a TLS listener on another port)."""

    def __init__(self, directory: Path, persistent: bool = False, listeners: str = ""):
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        settings = f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
        if persistent:  # sessions and queued QoS 1 messages survive a restart (saved every second)
            settings += f"persistence true\npersistence_location {directory}/\nautosave_interval 1\n"
        else:
            settings += "persistence false\n"
        self.config.write_text(settings + listeners)
        self.log = directory / "mosquitto.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen(
            [binary, "-c", str(self.config)], stdout=open(self.log, "ab"), stderr=subprocess.STDOUT
        )

        def accepting() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        if not wait_until(accepting, 10):
            raise RuntimeError(f"mosquitto did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


def _require_mosquitto() -> None:
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        pytest.fail("mosquitto is not installed: apt-get install mosquitto (.ci/run does)")


@pytest.fixture
def broker(tmp_path):
    _require_mosquitto()
    server = Broker(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def persistent_broker(tmp_path):
    """Not started: the test decides when it is up."""
    _require_mosquitto()
    server = Broker(tmp_path, persistent=True)
    yield server
    server.stop()


class FakeSystemd:
    """A datagram socket standing in for systemd's notify socket; collects what the daemon says."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[dict[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            self.messages.append(dict(line.split("=", 1) for line in data.splitlines()))

    def has(self, key: str, value: str | None = None) -> bool:
        return any(key in m and (value is None or m[key] == value) for m in list(self.messages))

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
