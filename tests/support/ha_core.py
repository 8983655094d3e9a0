"""A real Home Assistant core (``hass``) for the tests, from the venv that
scripts/setup-homeassistant.sh makes under Python 3.13.

It listens on a free loopback port with a configuration directory made here: a minimal
configuration.yaml, and the MQTT integration as a config entry in ``.storage/core.config_entries``
(HA configures MQTT only through config entries) pointing at the test's mosquitto. The first start
creates the owner through the onboarding API and trades its authorisation code for an access token;
the tests then read HA over its REST API (states) and WebSocket API (entity and device registries,
state changes as they happen). HA runs with ``--skip-pip``: offline, it must never try to install.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import websocket  # websocket-client, which the test extra's selenium depends on

from tests.support.broker import Broker, require_mosquitto
from tests.support.waiting import free_port, wait_until

HA_VERSION = "2025.4.4"
HA_VENV = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edge-daemon" / f"homeassistant-{HA_VERSION}"
# Loggers whose warnings would be about our discovery or the entities it makes.
DISCOVERY_LOGGERS = re.compile(r"homeassistant\.(components\.(mqtt|event|sensor)|helpers\.(entity|device)\w*)")
LOG_LINE = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) \([^)]*\) \[([^\]]+)\] (.*)$")


def need_home_assistant() -> Path:
    """The ``hass`` executable; skips with the reason when the set-up script has not made it."""
    if not (HA_VENV / ".complete").exists():
        pytest.skip(f"Home Assistant {HA_VERSION} is not installed in {HA_VENV}: "
                    "run scripts/setup-homeassistant.sh (it needs a Python 3.13)")
    return HA_VENV / "bin" / "hass"


class HomeAssistant:
    def __init__(self, directory: Path, broker: Broker):
        self.executable = need_home_assistant()
        self.directory = directory
        self.broker = broker
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # HA rotates its own log file at every start; its stderr, appended here, keeps every start's lines.
        self.log = directory / "stderr.log"
        self.token: str | None = None
        self.process: subprocess.Popen | None = None
        self._stderr = None
        # Location and units given, so HA does not look them up online; no default_config, whose
        # integrations (cloud, updates, discovery protocols) want the network or hardware.
        (directory / "configuration.yaml").write_text(
            "homeassistant:\n  name: edge-daemon test\n  latitude: 0\n  longitude: 0\n  elevation: 0\n"
            "  unit_system: metric\n  time_zone: UTC\n  country: GB\n  currency: EUR\n"
            f"http:\n  server_host: 127.0.0.1\n  server_port: {self.port}\n"
        )
        (directory / ".storage").mkdir()
        # Storage minor version 1: HA's own migration fills in every field added since.
        entry = {"entry_id": "edgedaemontestmqtt", "domain": "mqtt", "title": "test broker", "source": "user",
                 "version": 1, "minor_version": 2, "data": {"broker": "127.0.0.1", "port": broker.port}}
        (directory / ".storage" / "core.config_entries").write_text(json.dumps(
            {"version": 1, "minor_version": 1, "key": "core.config_entries", "data": {"entries": [entry]}}))

    def start(self) -> None:
        self._stderr = open(self.log, "ab")
        self.process = subprocess.Popen(
            [str(self.executable), "--skip-pip", "--log-no-color", "--config", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=self._stderr,
        )
        if not wait_until(lambda: self.process.poll() is not None or self._answers(), 120, 0.2) or self.process.poll() is not None:
            raise RuntimeError(f"home assistant did not start:\n{self.log_tail()}")
        if self.token is None:
            self.token = self._onboard()
        if not wait_until(self._running_with_mqtt, 60, 0.2):
            raise RuntimeError(f"home assistant did not finish starting with MQTT loaded:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self._stderr:
            self._stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def discovery_warnings(self) -> list[str]:
        """Warnings and errors about MQTT discovery and its entities, or naming our boxes, in every start's log."""
        problems = []
        for line in self.log.read_text(errors="replace").splitlines():
            match = LOG_LINE.match(line)
            if match and (DISCOVERY_LOGGERS.match(match[2]) or "edge-daemon" in match[3] or "edge_daemon" in match[3]):
                problems.append(line)
        return problems

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.url}/api/onboarding", timeout=2).close()
            return True
        except urllib.error.HTTPError:
            return True  # up, only refusing
        except OSError:
            return False

    def _onboard(self) -> str:
        """Create the owner as a first user does in the browser, and log in as them."""
        client_id = f"{self.url}/"
        created = self._post("/api/onboarding/users", json.dumps({
            "client_id": client_id, "name": "Test", "username": "test", "password": "test-password", "language": "en",
        }).encode(), {"Content-Type": "application/json"})
        # An access token lives 30 minutes, far longer than a test module, and survives HA restarts.
        tokens = self._post("/auth/token", urllib.parse.urlencode({
            "grant_type": "authorization_code", "code": created["auth_code"], "client_id": client_id,
        }).encode(), {"Content-Type": "application/x-www-form-urlencoded"})
        return tokens["access_token"]

    def _post(self, path: str, body: bytes, headers: dict) -> dict:
        request = urllib.request.Request(f"{self.url}{path}", data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def _get(self, path: str):
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def _running_with_mqtt(self) -> bool:
        try:
            entries = self._get("/api/config/config_entries/entry")
            return self._get("/api/config")["state"] == "RUNNING" and any(
                e["domain"] == "mqtt" and e["state"] == "loaded" for e in entries)
        except (OSError, KeyError):
            return False

    def state(self, entity_id: str) -> dict | None:
        """The entity's state over REST, or None when HA has no such entity."""
        try:
            return self._get(f"/api/states/{entity_id}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def call(self, command: str, **fields):
        """One WebSocket command's result, on a connection of its own."""
        connection = self.connect()
        try:
            connection.send(json.dumps({"id": 1, "type": command, **fields}))
            reply = json.loads(connection.recv())
            assert reply["success"], reply
            return reply["result"]
        finally:
            connection.close()

    def connect(self) -> websocket.WebSocket:
        connection = websocket.create_connection(f"ws://127.0.0.1:{self.port}/api/websocket", timeout=10)
        assert json.loads(connection.recv())["type"] == "auth_required"
        connection.send(json.dumps({"type": "auth", "access_token": self.token}))
        assert json.loads(connection.recv())["type"] == "auth_ok"
        return connection

    def entity_by_unique_id(self, unique_id: str) -> dict | None:
        """The entity registry's MQTT entry with this unique id, or None."""
        return next((e for e in self.call("config/entity_registry/list")
                     if e["platform"] == "mqtt" and e["unique_id"] == unique_id), None)

    def device(self, device_id: str) -> dict:
        return next(d for d in self.call("config/device_registry/list") if d["id"] == device_id)


class StateChanges:
    """Every state change HA makes while open (a WebSocket subscription): a poll could miss an event
    entity's change when two decisions arrive close together."""

    def __init__(self, ha: HomeAssistant):
        self._connection = ha.connect()
        self._connection.settimeout(None)
        self._connection.send(json.dumps({"id": 1, "type": "subscribe_events", "event_type": "state_changed"}))
        assert json.loads(self._connection.recv())["success"]  # subscribed before the test goes on
        self._changes: list[dict] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                raw = self._connection.recv()
            except (websocket.WebSocketException, OSError):
                return  # closed here
            if not raw:
                return  # closed by HA
            message = json.loads(raw)
            if message.get("type") == "event" and message["event"]["data"].get("new_state"):
                with self._lock:
                    self._changes.append(message["event"]["data"]["new_state"])

    def of(self, entity_id: str) -> list[dict]:
        with self._lock:
            return [state for state in self._changes if state["entity_id"] == entity_id]

    def __enter__(self) -> StateChanges:
        return self

    def __exit__(self, *exc) -> None:
        self._connection.close()
        self._thread.join(5)


@pytest.fixture(scope="module")
def home_assistant(tmp_path_factory):
    """One HA start per test module (it takes seconds), with a mosquitto of its own; stopped afterwards."""
    need_home_assistant()
    require_mosquitto()
    broker = Broker(tmp_path_factory.mktemp("ha-broker"))
    broker.start()
    ha = HomeAssistant(tmp_path_factory.mktemp("ha-config"), broker)
    try:
        ha.start()
        yield ha
    finally:
        ha.stop()
        broker.stop()
