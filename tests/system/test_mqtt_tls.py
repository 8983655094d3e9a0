"""Brokers that say what is wrong, against a real mosquitto with TLS and client certificates: wrong
CA, wrong host, wrong password, and events spooled meanwhile all delivered."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from edge_daemon.comms.gallery_sync import GallerySync
from edge_daemon.comms.mqtt import MqttTransport
from edge_daemon.comms.spool import EventSpool
from edge_daemon.config import ConfigError, MqttConfig, load_settings
from edge_daemon.recognition.gallery import Gallery
from tests.support.broker import Broker, Subscriber, require_mosquitto
from tests.support.mqtt_tls import event, failed_attempts
from tests.support.paths import HAMILTON_CLIP, ROOT, need
from tests.support.systemd import FakeSystemd
from tests.support.waiting import free_port, wait_until

PREFIX = "tlstest"


def openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


class Pki:
    """Certificates for the tests, in a directory user ``mosquitto`` can read: mosquitto started as
    root drops to that user before it loads its certificate and key."""

    def __init__(self):
        self.directory = Path(tempfile.mkdtemp(prefix="edge-daemon-pki-"))
        self.directory.chmod(0o755)
        for ca in ("ca", "wrong-ca"):
            openssl(self.directory, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "2", "-subj", f"/CN=edge-daemon test {ca}",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self._leaf("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        self._leaf("elsewhere", "subjectAltName=DNS:elsewhere.example\nextendedKeyUsage=serverAuth\n")
        self._leaf("client", "extendedKeyUsage=clientAuth\n")
        for path in self.directory.iterdir():
            path.chmod(0o644)

    def _leaf(self, name: str, extensions: str) -> None:
        (self.directory / f"{name}.ext").write_text(extensions)
        openssl(self.directory, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=edge-daemon test {name}")
        openssl(self.directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")

    def __getitem__(self, name: str) -> Path:
        return self.directory / name


@pytest.fixture(scope="module")
def pki():
    if not shutil.which("openssl"):
        pytest.fail("openssl is not installed: apt-get install openssl")
    made = Pki()
    yield made
    shutil.rmtree(made.directory)


@pytest.fixture
def tls_broker(tmp_path, pki):
    """mosquitto with a plain listener (``port``, for the tests' own subscribers), a TLS listener
    that requires a client certificate signed by the test CA (``tls_port``), and one whose
    certificate names another host (``elsewhere_port``)."""
    require_mosquitto()
    tls_port, elsewhere_port = free_port(), free_port()
    server = Broker(tmp_path, listeners="".join(
        f"listener {port} 127.0.0.1\ncafile {pki['ca.crt']}\ncertfile {pki[name + '.crt']}\n"
        f"keyfile {pki[name + '.key']}\nrequire_certificate true\n"
        for port, name in ((tls_port, "server"), (elsewhere_port, "elsewhere"))
    ))
    server.tls_port, server.elsewhere_port = tls_port, elsewhere_port
    server.start()
    yield server
    server.stop()


def mtls(pki, url: str, **changes) -> MqttConfig:
    """The config of a box that does everything right; ``changes`` break one thing."""
    fields = {"url": url, "prefix": PREFIX, "ca_file": pki["ca.crt"], "client_cert": pki["client.crt"],
              "client_key": pki["client.key"], **changes}
    return MqttConfig(**{key: value for key, value in fields.items() if value is not None})


def event_ids(subscriber: Subscriber) -> list[str]:
    """The events that reached the broker, in the order it passed them on."""
    return [json.loads(message.payload)["event_id"] for message in subscriber.on(f"{PREFIX}/events")]


# OpenSSL's words for a broker certificate from a CA it does not trust, depending on whether the
# broker sends its CA along (mosquitto does: OpenSSL builds the chain from its cafile).
WRONG_CA = {"TLS: certificate verify failed: self-signed certificate in certificate chain",
            "TLS: certificate verify failed: unable to get local issuer certificate"}


def synthetic_gallery(directory: Path) -> Path:
    gallery = Gallery("synthetic", "v1", 4, 0.5, "test")
    gallery.add("ana", np.eye(4, dtype=np.float32)[:2], ["ana1.jpg", "ana2.jpg"])
    gallery.save(directory)
    return directory


def daemon_config(path: Path, pki, broker, ca: str, metrics_port: int) -> Path:
    path.write_text(
        f'[[cameras]]\nname = "stage"\nurl = "{need(HAMILTON_CLIP)}"\nloop = false\n\n[events]\njsonl = ""\n\n'
        f'[mqtt]\nurl = "mqtts://127.0.0.1:{broker.tls_port}"\nprefix = "{PREFIX}"\nca_file = "{pki[ca]}"\n'
        f'client_cert = "{pki["client.crt"]}"\nclient_key = "{pki["client.key"]}"\nhomeassistant = false\n\n'
        f'[spool]\npath = "{path.parent / "spool.db"}"\n\n[service]\nbox = "tlsbox"\nmetrics_port = {metrics_port}\n'
        f'\n[logging]\nformat = "json"\n'
    )
    return path


class DaemonProcess:
    """``edge-daemon run`` with its JSON log lines collected as they come, each with its arrival time."""

    def __init__(self, config: Path, env: dict | None = None):
        self.started = time.monotonic()
        self.process = subprocess.Popen([sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                        env={**os.environ, **(env or {})})
        self.lines: list[tuple[float, dict]] = []
        self.text: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.text.append(line)
            try:
                self.lines.append((time.monotonic() - self.started, json.loads(line)))
            except ValueError:
                pass

    def logged(self, event: str) -> list[tuple[float, dict]]:
        return [(at, entry) for at, entry in list(self.lines) if entry.get("event") == event]

    def wait(self, timeout_s: float) -> int:
        code = self.process.wait(timeout_s)
        self._reader.join(5)
        return code

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def healthz(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        return json.loads(response.read())


def _reachable(port: int) -> bool:
    try:
        healthz(port)
        return True
    except OSError:
        return False


def test_mqtts_url_implies_tls_and_port_8883_and_client_certificate_errors_are_clear(pki, tmp_path):
    config = MqttConfig(url="mqtts://broker.example")
    assert config.use_tls and config.port == 8883 and config.host == "broker.example"
    assert MqttConfig(url="mqtts://broker.example:9999").port == 9999
    assert MqttConfig(url="mqtt://broker.example").port == 1883 and not MqttConfig(url="mqtt://b").use_tls
    with pytest.raises(ConfigError, match=r"mqtt.url: .*expected mqtt://HOST\[:PORT\] or mqtts://"):
        load_settings(mqtt={"url": "http://broker.example"})
    with pytest.raises(ConfigError, match="mqtt: .*client_key needs client_cert"):
        load_settings(mqtt={"url": "mqtts://b", "client_key": str(pki["client.key"])})
    with pytest.raises(ConfigError, match="mqtt: .*client_cert needs TLS"):
        load_settings(mqtt={"url": "mqtt://b", "client_cert": str(pki["client.crt"])})
    with pytest.raises(ConfigError, match=r"mqtt.client_cert: .*cannot read .*nope.crt: No such file"):
        load_settings(mqtt={"url": "mqtts://b", "client_cert": str(tmp_path / "nope.crt")})
    with pytest.raises(ConfigError, match=r"mqtt.ca_file: .*cannot read"):
        load_settings(mqtt={"url": "mqtts://b", "ca_file": str(tmp_path)})  # a directory
    # A key that is not the certificate's: named when the client is made, before any connection.
    with pytest.raises(ConfigError, match="mqtt.client_cert / mqtt.client_key: .* not a PEM certificate and its"):
        MqttTransport(mtls(pki, "mqtts://127.0.0.1:1", client_key=pki["server.key"]), "tlsbox",
                      EventSpool(tmp_path / "spool.db"))


def test_mtls_with_a_client_certificate_delivers_and_published_counts_acknowledged(tls_broker, pki, tmp_path):
    subscriber = Subscriber(tls_broker.port, f"{PREFIX}/#")
    transport = MqttTransport(mtls(pki, f"mqtts://127.0.0.1:{tls_broker.tls_port}"), "tlsbox", EventSpool(tmp_path / "s.db"))
    try:
        assert transport.connected.wait(10), transport.link.state()
        sent = [event(number) for number in range(5)]
        for item in sent:
            transport.publish(item)
        assert wait_until(lambda: event_ids(subscriber) == [e.event_id for e in sent], 10)
        assert wait_until(lambda: transport.delivered == 5, 5)
        assert transport.status()["connected"] is True and transport.status()["spool_depth"] == 0
    finally:
        transport.close()
        subscriber.close()


def test_without_a_client_certificate_the_refusal_is_logged_clearly(tls_broker, pki, tmp_path):
    config = mtls(pki, f"mqtts://127.0.0.1:{tls_broker.tls_port}", client_cert=None, client_key=None)
    logged, transport = failed_attempts(config, tmp_path, events=1)
    reason = logged[0]["reason"]
    assert reason == ("TLS: tlsv13 alert certificate required "
                      "(the broker requires a client certificate: set mqtt.client_cert)")
    state = transport.status()
    assert transport.delivered == 0 and state["spool_depth"] == 1  # spooled, never counted as published
    assert state["connected"] is False and state["reason"] == reason and state["failed_attempts"] >= 1


def test_wrong_ca_is_named_within_5_s(tls_broker, pki, tmp_path):
    config = mtls(pki, f"mqtts://127.0.0.1:{tls_broker.tls_port}", ca_file=pki["wrong-ca.crt"])
    logged, _ = failed_attempts(config, tmp_path, timeout_s=5)
    assert logged[0]["reason"] in WRONG_CA


def test_a_certificate_for_another_host_is_named(tls_broker, pki, tmp_path):
    logged, _ = failed_attempts(mtls(pki, f"mqtts://127.0.0.1:{tls_broker.elsewhere_port}"), tmp_path)
    assert logged[0]["reason"] == (
        "TLS: certificate verify failed: IP address mismatch, certificate is not valid for '127.0.0.1'."
    )


def test_wrong_password_is_logged_as_not_authorised(pki, tmp_path):
    require_mosquitto()
    passwords = pki["passwd"]  # beside the certificates: user mosquitto must read it
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "box", "right"], check=True, capture_output=True)
    passwords.chmod(0o644)
    server = Broker(tmp_path)
    server.config.write_text(f"listener {server.port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n")
    server.start()
    try:
        logged, _ = failed_attempts(MqttConfig(url=server.url, username="box", password="Wr0ng-pa55"), tmp_path)
        assert logged[0]["reason"] == "refused by the broker: Not authorized"
    finally:
        server.stop()


def test_events_spooled_under_a_wrong_ca_are_all_delivered_once_it_is_fixed(tls_broker, pki, tmp_path):
    subscriber = Subscriber(tls_broker.port, f"{PREFIX}/#")
    url = f"mqtts://127.0.0.1:{tls_broker.tls_port}"
    sent = [event(number) for number in range(20)]
    wrong = MqttTransport(mtls(pki, url, ca_file=pki["wrong-ca.crt"]), "tlsbox", EventSpool(tmp_path / "s.db"))
    for item in sent:
        wrong.publish(item)
    wrong.close(drain_timeout_s=1)
    assert wrong.delivered == 0 and wrong.spool.depth() == 20 and not event_ids(subscriber)
    fixed = MqttTransport(mtls(pki, url), "tlsbox", EventSpool(tmp_path / "s.db"))
    try:
        assert wait_until(lambda: event_ids(subscriber) == [e.event_id for e in sent], 15), len(event_ids(subscriber))
        assert wait_until(lambda: fixed.delivered == 20 and fixed.spool.depth() == 0, 5)
    finally:
        fixed.close()
        subscriber.close()


def test_gallery_publish_and_sync_over_mtls(tls_broker, pki, tmp_path):
    from edge_daemon.comms.gallery_sync import SyncError, publish_gallery

    url = f"mqtts://127.0.0.1:{tls_broker.tls_port}"
    source = synthetic_gallery(tmp_path / "source")
    adopted: list[Gallery] = []
    sync = GallerySync(mtls(pki, url), PREFIX, "tls-sync", ("synthetic", "v1"), tmp_path / "box", None, adopted.append)
    try:
        assert sync.link.connected.wait(10), sync.link.state()
        manifest = publish_gallery(source, mtls(pki, url), PREFIX, chunk_bytes=1024)
        assert wait_until(lambda: adopted, 10)
        assert adopted[0].version == manifest["version"] and Gallery.load(tmp_path / "box").labels == ["ana", "ana"]
    finally:
        sync.close()
    with pytest.raises(SyncError, match="cannot connect to the broker at 127.0.0.1:.*certificate required"):
        publish_gallery(source, mtls(pki, url, client_cert=None, client_key=None), PREFIX, chunk_bytes=1024)


def test_gallery_publish_command_takes_the_tls_settings_with_mqtt_url(tls_broker, pki, tmp_path):
    source = synthetic_gallery(tmp_path / "source")
    config = tmp_path / "publisher.toml"
    config.write_text(f'[mqtt]\nprefix = "{PREFIX}"\nca_file = "{pki["ca.crt"]}"\n'
                      f'client_cert = "{pki["client.crt"]}"\nclient_key = "{pki["client.key"]}"\n')
    subscriber = Subscriber(tls_broker.port, f"{PREFIX}/gallery/manifest")

    def publish(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "edge_daemon.cli", "gallery", "publish", str(source), "--config", str(config),
             "--mqtt", f"mqtts://127.0.0.1:{tls_broker.tls_port}", *extra],
            capture_output=True, text=True, timeout=120, cwd=ROOT,
        )

    try:
        result = publish()
        assert result.returncode == 0, result.stderr[-2000:]
        assert wait_until(lambda: subscriber.messages, 5)
        assert json.loads(subscriber.messages[0].payload)["version"] == json.loads(result.stdout)["published"]
    finally:
        subscriber.close()
    config.write_text(f'[mqtt]\nprefix = "{PREFIX}"\nca_file = "{pki["wrong-ca.crt"]}"\n'
                      f'client_cert = "{pki["client.crt"]}"\nclient_key = "{pki["client.key"]}"\n')
    result = publish()
    assert result.returncode == 1
    assert "certificate verify failed" in result.stderr.splitlines()[-1], result.stderr[-2000:]


def test_wrong_ca_daemon_says_why_at_once_and_after_the_fix_the_spool_delivers_every_event(tls_broker, pki, tmp_path):
    port = free_port()
    systemd = FakeSystemd(tmp_path / "notify")
    daemon = DaemonProcess(daemon_config(tmp_path / "wrong.toml", pki, tls_broker, "wrong-ca.crt", port),
                           {"NOTIFY_SOCKET": str(tmp_path / "notify")})
    try:
        # Within 5 s of the process starting (model loading included), the log names the problem.
        assert wait_until(lambda: daemon.logged("cannot connect to the mqtt broker"), 5), "".join(daemon.text)[-3000:]
        at, entry = daemon.logged("cannot connect to the mqtt broker")[0]
        assert at < 5 and entry["reason"] in WRONG_CA and entry["role"] == "events"
        assert wait_until(lambda: _reachable(port), 30)
        broker = healthz(port)["mqtt"]
        assert broker["connected"] is False and broker["reason"] in WRONG_CA and broker["since"].endswith("Z")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            metrics = response.read().decode()
        assert "edge_daemon_mqtt_connected 0.0" in metrics
        assert 'edge_daemon_events_published_total{result="published",transport="mqtt"} 0.0' in metrics
        assert float(re.search(r"^edge_daemon_mqtt_connect_failures_total (\S+)$", metrics, re.M)[1]) >= 1
        assert wait_until(lambda: any(f"mqtt down since {broker['since']}: {broker['reason']}" in message.get("STATUS", "")
                                      for message in list(systemd.messages)), 15)
        assert daemon.wait(240) == 0, "".join(daemon.text)[-3000:]
    finally:
        daemon.kill()
        systemd.close()
    stopped = daemon.logged("daemon stopped")[-1][1]
    spooled = stopped["transports"].get("spooled_mqtt", 0)
    assert spooled > 0 and stopped["transports"]["published_mqtt"] == 0  # nothing reached the broker
    assert stopped["mqtt"]["spool_depth"] == spooled
    assert stopped["mqtt"]["connected"] is False and stopped["mqtt"]["reason"] in WRONG_CA

    subscriber = Subscriber(tls_broker.port, f"{PREFIX}/#")
    rerun = DaemonProcess(daemon_config(tmp_path / "fixed.toml", pki, tls_broker, "ca.crt", port))
    try:
        assert rerun.wait(240) == 0, "".join(rerun.text)[-3000:]
    finally:
        rerun.kill()
        subscriber.close()
    stopped = rerun.logged("daemon stopped")[-1][1]
    received = set(event_ids(subscriber))
    # 0 lost: the first run's events and the second's all reached the broker and were acknowledged.
    assert stopped["transports"]["published_mqtt"] == spooled + stopped["transports"].get("spooled_mqtt", 0) == len(received)
    assert stopped["mqtt"]["spool_depth"] == 0 and stopped["mqtt"]["reason"] == "closed by this client"
    assert rerun.logged("mqtt connected")[0][1]["role"] == "events"
