"""``[mqtt]``: the broker events go to, its credentials and TLS, Home Assistant discovery."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator, model_validator

from edge_daemon.config.base import ConfigError, Section


class MqttConfig(Section):
    url: str | None = Field(
        None,
        title="Broker",
        description="'mqtt://HOST[:1883]', or 'mqtts://HOST[:8883]' for TLS; unset disables MQTT.",
    )
    prefix: str = Field(
        "edge-daemon",
        title="Topic prefix",
        description="Events of every box go to <prefix>/events, and to <prefix>/<box>/<camera>/events; this box's "
        "availability to <prefix>/<box>/availability (see service.box).",
        pattern=r"^[^#+\x00]+$",
    )
    client_id: str | None = Field(None, title="Client id", description="Defaults to edge-daemon-<box> (service.box).")
    username: str | None = Field(None, title="User name", description="Broker user name.")
    password: SecretStr | None = Field(
        None, title="Password", description="Broker password (never logged); prefer EDGE_MQTT__PASSWORD or password_file."
    )
    password_file: Path | None = Field(
        None, title="Password file", description="File holding the broker password (e.g. a systemd credential)."
    )
    tls: bool = Field(False, title="TLS", description="Connect with TLS; an mqtts:// url implies it.")
    ca_file: Path | None = Field(
        None, title="CA file", description="PEM CA bundle that signed the broker's certificate; the system store when unset."
    )
    client_cert: Path | None = Field(
        None,
        title="Client certificate",
        description="PEM certificate (chain) this box presents to the broker (mutual TLS, e.g. AWS IoT Core); "
        "the file may hold the private key too.",
    )
    client_key: Path | None = Field(
        None, title="Client key", description="Unencrypted PEM private key of client_cert, when client_cert does not hold it."
    )
    keepalive_s: int = Field(30, ge=5, le=3600, title="Keepalive", description="MQTT keepalive in seconds.")
    homeassistant: bool = Field(
        True,
        title="Home Assistant discovery",
        description="Announce an event entity and a last-identity sensor per camera, and a last-seen sensor and a "
        "presence sensor per person of the gallery.",
    )
    presence_timeout_s: int = Field(
        300,
        ge=1,
        le=86400,
        title="Presence timeout",
        description="A person's Home Assistant presence sensor turns off this many seconds after they were last recognised.",
    )
    discovery_prefix: str = Field(
        "homeassistant", title="Discovery prefix", description="Home Assistant's MQTT discovery prefix.", pattern=r"^[^#+\x00]+$"
    )
    stats_interval_s: float = Field(
        0.0, ge=0, title="Stats interval", description="Publish pipeline counters to <prefix>/<box>/stats this often; 0 disables."
    )

    def secret_password(self) -> str | None:
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"mqtt.password_file: cannot read {self.password_file}: {exc.strerror}") from None
        return self.password.get_secret_value() if self.password else None

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, url: str | None) -> str | None:
        if url:
            parsed = urlparse(url)
            if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
                raise ValueError("expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
            parsed.port  # noqa: B018 - raises ValueError on a bad port
        return url or None

    @field_validator("ca_file", "client_cert", "client_key")
    @classmethod
    def _readable(cls, path: Path | None) -> Path | None:
        # Checked here, so that a typo is a config error at start and not a TLS failure at every retry.
        if path is not None:
            try:
                path.open("rb").close()
            except OSError as exc:
                raise ValueError(f"cannot read {path}: {exc.strerror}") from None
        return path

    @model_validator(mode="after")
    def _client_certificate_needs(self) -> MqttConfig:
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key needs client_cert (the certificate the key belongs to)")
        if self.client_cert is not None and not self.use_tls:
            raise ValueError("client_cert needs TLS: use an mqtts:// url or tls = true")
        return self

    @property
    def use_tls(self) -> bool:
        return self.tls or urlparse(self.url or "").scheme == "mqtts"

    @property
    def host(self) -> str:
        return urlparse(self.url).hostname or "localhost"

    @property
    def port(self) -> int:
        return urlparse(self.url).port or (8883 if urlparse(self.url).scheme == "mqtts" else 1883)
