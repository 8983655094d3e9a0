"""A real mosquitto broker on a free loopback port, and its fixtures."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.support.waiting import free_port, wait_until


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


class Subscriber:
    """A QoS 1 subscriber to ``topic`` that keeps every message it gets."""

    def __init__(self, port: int, topic: str):
        self.messages: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="test-subscriber")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append(message)

    def on(self, topic: str) -> list[mqtt.MQTTMessage]:
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class BrokerGate:
    """A TCP forwarder on its own loopback port in front of a broker. ``close()`` cuts every
    connection through it and refuses new ones: the broker is away for whoever connects through the
    gate, while it stays up for clients connected to it directly (a subscriber that must miss
    nothing). ``open()`` lets connections through again."""

    def __init__(self, broker_port: int):
        self.port = free_port()
        self._broker_port = broker_port
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def open(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._accepting = threading.Thread(target=self._accept, args=(self._listener,), daemon=True)
        self._accepting.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client = listener.accept()[0]
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self._broker_port))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for end in (source, target):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._accepting.join()  # until accept() returns, the kernel keeps the port listening
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for end in sockets:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()


def require_mosquitto() -> None:
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        pytest.fail("mosquitto is not installed: apt-get install mosquitto (.ci/run does)")


@pytest.fixture
def broker(tmp_path):
    require_mosquitto()
    server = Broker(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def persistent_broker(tmp_path):
    """Not started: the test decides when it is up."""
    require_mosquitto()
    server = Broker(tmp_path, persistent=True)
    yield server
    server.stop()
