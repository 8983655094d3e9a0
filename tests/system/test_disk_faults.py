"""The daemon as a process on a sick disk, with the Hamilton clip looping and a real mosquitto: a
state directory that is read-only at start (a degraded start, or a refusal in strict mode), and one
that fills up mid-run. What reached the broker is checked against the JSON-lines file."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections import Counter

from edge_daemon.comms.homeassistant import discovery_id
from tests.support.broker import Subscriber
from tests.support.disk import small_disk  # noqa: F401 - a fixture
from tests.support.paths import HAMILTON_CLIP, ROOT, need
from tests.support.systemd import FakeSystemd
from tests.support.waiting import free_port, wait_until

PREFIX = "faults"


def write_config(tmp_path, broker, gallery, metrics_port: int = 0, strict: bool = False):
    config = tmp_path / "c.toml"
    config.write_text(
        f'[[cameras]]\nname = "stage"\nurl = "{need(HAMILTON_CLIP)}"\nloop = true\n[gallery]\npath = "{gallery}"\n'
        f'[events]\njsonl = "{tmp_path / "events.jsonl"}"\n'
        f'[mqtt]\nurl = "{broker.url}"\nprefix = "{PREFIX}"\nhomeassistant = true\n'
        f'[service]\nbox = "box1"\nmetrics_port = {metrics_port}\nstrict_state = {"true" if strict else "false"}\n'
    )
    return config


def start_daemon(config, state, stderr, notify=None) -> subprocess.Popen:
    """The daemon with ``state`` as its systemd StateDirectory (spool, history) and its crops there too."""
    env = {"STATE_DIRECTORY": str(state), "PATH": "/usr/bin:/bin", "EDGE_EVENTS__CROPS_DIR": str(state / "crops"),
           **({"NOTIFY_SOCKET": str(notify)} if notify else {})}
    return subprocess.Popen([sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=stderr, text=True, cwd=ROOT, env=env)


def event_ids(path) -> list[str]:
    return [json.loads(line)["event_id"] for line in path.read_text().splitlines()] if path.exists() else []


def logs(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_a_read_only_state_directory_at_start_gives_a_degraded_start_that_recognises_and_publishes(
    small_disk, broker, tmp_path, hamilton_gallery  # noqa: F811 - fixtures
):
    state = small_disk.path / "state"
    state.mkdir()
    small_disk.remount("ro")
    fake = FakeSystemd(tmp_path / "notify")
    subscriber = Subscriber(broker.port, "#")
    port = free_port()
    log_file = tmp_path / "daemon.log"
    daemon = start_daemon(write_config(tmp_path, broker, hamilton_gallery, port), state, open(log_file, "w"), tmp_path / "notify")
    jsonl = tmp_path / "events.jsonl"
    try:
        assert wait_until(lambda: fake.has("READY", "1"), 90), log_file.read_text()[-3000:]
        assert wait_until(lambda: any("lin_manuel_miranda" in json.dumps(json.loads(m.payload))
                                      for m in subscriber.on(f"{PREFIX}/events")), 90)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            health = json.loads(response.read())
        assert response.status == 200 and health["healthy"] is True and health["status"] == "degraded"
        assert any(problem.startswith("no event spool (event spool cannot be written at ") for problem in health["degraded"])
        assert any(problem.startswith("face history cannot be written at ") for problem in health["degraded"])
        assert any(problem.startswith("face crops directory cannot be written at ") for problem in health["degraded"])
        assert wait_until(lambda: any(m.get("STATUS", "").startswith("degraded: ") for m in fake.messages), 15)
        # Home Assistant: the box's diagnostic entity, and the retained health it reads.
        node = f"edge-daemon_{discovery_id('box1')}"
        assert subscriber.on(f"homeassistant/binary_sensor/{node}/degraded/config")
        (retained_health,) = [m for m in subscriber.on(f"{PREFIX}/box1/health")][-1:]
        assert json.loads(retained_health.payload)["state"] == "degraded"
        daemon.terminate()
        assert daemon.wait(60) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        fake.close()
        subscriber.close()
    entries = logs(log_file)
    starts = [entry for entry in entries if entry["event"].endswith("cannot be written: starting degraded, events wait in memory for the broker")]
    assert len(starts) == 1  # one clear line, naming the path and the error
    published = {json.loads(m.payload)["event_id"] for m in subscriber.on(f"{PREFIX}/events")}
    assert event_ids(jsonl) and set(event_ids(jsonl)) <= published  # every event, though nothing could be spooled
    stopped = next(entry for entry in entries if entry["event"] == "daemon stopped")
    assert stopped["transports"]["unspooled_mqtt"] == len(event_ids(jsonl)) and stopped["degraded"]


def test_strict_state_refuses_a_read_only_state_directory(small_disk, broker, tmp_path, hamilton_gallery):  # noqa: F811
    state = small_disk.path / "state"
    state.mkdir()
    small_disk.remount("ro")
    daemon = start_daemon(write_config(tmp_path, broker, hamilton_gallery, strict=True), state, subprocess.PIPE)
    _, stderr = daemon.communicate(timeout=120)
    assert daemon.returncode != 0
    assert "event spool cannot be written at" in stderr and "service.strict_state is set: not starting" in stderr


def test_a_state_directory_filling_up_mid_run_loses_no_event_to_the_broker(
    small_disk, broker, tmp_path, hamilton_gallery  # noqa: F811 - fixtures
):
    state = small_disk.path / "state"
    subscriber = Subscriber(broker.port, f"{PREFIX}/events")
    log_file = tmp_path / "daemon.log"
    daemon = start_daemon(write_config(tmp_path, broker, hamilton_gallery), state, open(log_file, "w"))
    jsonl = tmp_path / "events.jsonl"
    try:
        assert wait_until(lambda: len(event_ids(jsonl)) >= 5, 120), log_file.read_text()[-3000:]
        small_disk.fill()
        before = len(event_ids(jsonl))
        assert wait_until(lambda: len(event_ids(jsonl)) >= before + 60, 240)
        small_disk.free()
        after = len(event_ids(jsonl))
        assert wait_until(lambda: len(event_ids(jsonl)) >= after + 10, 120)
        daemon.terminate()
        assert daemon.wait(60) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        subscriber.close()
    written = event_ids(jsonl)
    published = {json.loads(m.payload)["event_id"] for m in subscriber.on(f"{PREFIX}/events")}
    assert len(set(written) & published) >= 0.99 * len(written), f"{len(set(written) - published)} of {len(written)} missing"
    print(f"disk full mid-run: {len(set(written) & published)} of {len(written)} events reached the broker")  # -s shows it
    entries = logs(log_file)
    stopped = next(entry for entry in entries if entry["event"] == "daemon stopped")
    transports = stopped["transports"]
    assert transports["unspooled_mqtt"] > 0 and transports["spooled_mqtt"] >= 15 and not transports.get("failed_mqtt")
    assert stopped["degraded"] == []  # the spool writes again
    spool_failures = [entry for entry in entries if entry["event"] == "event spool cannot be written: events wait in memory for the broker"]
    assert 1 <= len(spool_failures) <= 10  # counted, not one line per event
    assert [entry["event"] for entry in entries].count("event spool written again") == 1
    # The spool's, the history's and the crops' failures alike: logged with counts, a handful of lines each.
    repeated = Counter(entry["event"] for entry in entries if entry["level"] in ("warning", "error"))
    assert repeated and max(repeated.values()) <= 10, repeated
