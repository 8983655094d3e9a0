"""One way to reach the MQTT broker, shared by the event transport, gallery sync and ``gallery
publish``: a paho client configured from ``[mqtt]`` (credentials, TLS, client certificate), and a
``BrokerLink`` that connects it in the background and says what is wrong when it cannot.

paho-mqtt retries a failed connection silently: ``on_connect_fail`` is called without the reason,
and a broker that drops the connection right after the TLS handshake (a missing client certificate
under TLS 1.3) shows only in ``on_log``. paho calls both inside its ``except OSError`` block, so the
exception is read from ``sys.exc_info()``. The tests against a real mosquitto (wrong CA, refused
port, missing client certificate) fail should a paho release stop doing so.
"""

from __future__ import annotations

import re
import socket
import ssl
import sys
import threading
import time
from typing import Callable

import paho.mqtt.client as mqtt

from edge_daemon.config import ConfigError, MqttConfig
from edge_daemon.logs import get_logger, worth_logging
from edge_daemon.messages import utc_iso

log = get_logger(__name__)

RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30

# OpenSSL's names for what the broker said, and what to do about it on this side.
TLS_HINTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the broker requires a client certificate: set mqtt.client_cert",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the broker did not accept the client certificate",
    "TLSV1_ALERT_UNKNOWN_CA": "the broker does not trust the CA of the client certificate",
    "WRONG_VERSION_NUMBER": "no TLS on that port: is it the broker's plain MQTT port?",
}


def tls_context(config: MqttConfig) -> ssl.SSLContext:
    """Verifies the broker against ``ca_file`` (the system store when unset) and presents the client
    certificate when one is configured. Unusable files are configuration errors, named by field."""
    try:
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    except ssl.SSLError as exc:
        raise ConfigError(f"mqtt.ca_file: {config.ca_file} holds no PEM certificate ({ssl_text(exc)})") from None
    if config.client_cert is not None:
        try:
            context.load_cert_chain(config.client_cert, config.client_key)
        except ssl.SSLError as exc:
            key = config.client_key or "the key in it"
            raise ConfigError(
                f"mqtt.client_cert / mqtt.client_key: {config.client_cert} and {key} are not a PEM certificate and "
                f"its unencrypted private key ({ssl_text(exc)})"
            ) from None
    return context


def new_client(config: MqttConfig, client_id: str, clean_session: bool) -> mqtt.Client:
    """A paho client for the configured broker, with its credentials and TLS; not connected yet."""
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session)
    if config.username:
        client.username_pw_set(config.username, config.secret_password())
    if config.use_tls:
        client.tls_set_context(tls_context(config))
    return client


def ssl_text(error: ssl.SSLError) -> str:
    """OpenSSL's words without its bookkeeping: '[SSL: X] words (_ssl.c:1006)' -> 'words'."""
    return re.sub(r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$", "", str(error))


def describe(error: BaseException | None) -> str:
    """Why a connection attempt failed, in words an operator can act on."""
    if isinstance(error, ssl.SSLCertVerificationError):  # before SSLError: it is one
        return f"TLS: certificate verify failed: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        hint = TLS_HINTS.get(error.reason or "")
        return f"TLS: {ssl_text(error)}" + (f" ({hint})" if hint else "")
    if isinstance(error, ConnectionRefusedError):
        return "connection refused: nothing accepts connections on that port"
    if isinstance(error, socket.gaierror):
        return f"DNS: the host name does not resolve ({error.strerror})"
    if isinstance(error, TimeoutError):
        return "timeout: the broker did not answer in time"
    if isinstance(error, OSError):
        return error.strerror or str(error) or type(error).__name__
    return "the broker closed the connection before accepting it"


class BrokerLink:
    """Connects ``client`` to the configured broker in paho's loop thread (reconnecting with backoff
    from 1 to 30 s) and knows what /healthz and the stats report: connected, or since when not and
    why. Every failed attempt is logged with its reason (refused, TLS, DNS, timeout, not authorised);
    repeats of one reason are rate-limited by ``logs.worth_logging`` and carry their count. ``on_ready``
    runs on every successful connection, before ``connected`` is set."""

    def __init__(
        self, client: mqtt.Client, config: MqttConfig, role: str, on_ready: Callable[[mqtt.Client], None] | None = None
    ):
        self._client = client
        self._config = config
        self._role = role
        self._on_ready = on_ready
        self.broker = f"{config.host}:{config.port}"
        self.connected = threading.Event()
        self.failures = 0  # every failed attempt since start
        self._settled = threading.Event()  # the first attempt succeeded or failed
        self._lock = threading.Lock()
        self._since = time.time()
        self._reason = "not connected yet"
        self._repeats = 0  # failed attempts in a row with the same reason
        self._down_attempts = 0  # failed attempts since the link was last up
        # Per attempt, in paho's thread: a socket error seen while connecting, and whether the
        # attempt's outcome was already counted (a refused CONNACK is followed by a disconnect).
        self._attempt_error: OSError | None = None
        self._attempt_counted = False
        self._closing = False
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_log = self._on_log
        client.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)

    def start(self) -> None:
        self._client.connect_async(self._config.host, self._config.port, keepalive=self._config.keepalive_s)
        self._client.loop_start()

    def wait_settled(self, timeout_s: float) -> bool:
        """For one-shot commands: True once connected; False when the first attempt failed (``reason``
        says why) or nothing happened within ``timeout_s``."""
        self._settled.wait(timeout_s)
        return self.connected.is_set()

    @property
    def reason(self) -> str | None:
        with self._lock:
            return None if self.connected.is_set() else self._reason

    @property
    def since(self) -> float:
        """Unix time since when the link is in its current state (up, or down)."""
        with self._lock:
            return self._since

    def state(self) -> dict:
        with self._lock:
            if self.connected.is_set():
                return {"connected": True, "since": utc_iso(self._since)}
            return {"connected": False, "since": utc_iso(self._since), "reason": self._reason,
                    "failed_attempts": self._down_attempts}

    def _on_pre_connect(self, client, userdata) -> None:
        self._attempt_error, self._attempt_counted = None, False

    def _on_log(self, client, userdata, level, message) -> None:
        error = sys.exc_info()[1]
        if level == mqtt.MQTT_LOG_ERR and isinstance(error, OSError):
            self._attempt_error = error

    def _on_connect_fail(self, client, userdata) -> None:
        self._failed(describe(sys.exc_info()[1]))

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._failed(f"refused by the broker: {reason_code}")
            return
        if self._on_ready is not None:
            self._on_ready(client)
        with self._lock:
            down_s, attempts = time.time() - self._since, self._down_attempts
            self._since, self._repeats, self._down_attempts, self._attempt_counted = time.time(), 0, 0, True
            self.connected.set()
        self._settled.set()
        log.info("mqtt connected", role=self._role, broker=self.broker, failed_attempts=attempts, was_down_s=round(down_s, 1))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._closing:
            with self._lock:
                if self.connected.is_set():  # a failure's reason stays: the final stats still say why
                    self._since, self._reason = time.time(), "closed by this client"
                self.connected.clear()
        elif self.connected.is_set():
            detail = describe(self._attempt_error) if self._attempt_error else f"the broker closed it ({reason_code})"
            with self._lock:
                self.connected.clear()
                self._since, self._reason = time.time(), f"connection lost: {detail}"
            log.warning("mqtt connection lost, reconnecting", role=self._role, broker=self.broker, reason=detail)
        elif not self._attempt_counted:
            self._failed(describe(self._attempt_error))

    def _failed(self, reason: str) -> None:
        with self._lock:
            self._attempt_counted = True
            self.failures += 1
            self._down_attempts += 1
            self._repeats = self._repeats + 1 if reason == self._reason else 1
            self._reason = reason
            repeats, down_s = self._repeats, time.time() - self._since
        self._settled.set()
        if worth_logging(repeats):
            log.error("cannot connect to the mqtt broker", role=self._role, broker=self.broker, reason=reason,
                      failed_attempts=repeats, down_s=round(down_s, 1))

    def stop(self) -> None:
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()
