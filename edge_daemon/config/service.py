"""``[service]``: this box's name, health for systemd and the metrics server."""

from __future__ import annotations

import re
import socket

from pydantic import Field

from edge_daemon.config.base import BOX_NAME_PATTERN, Section


def default_box_name() -> str:
    """This machine's host name, reduced to what a box name may hold."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname()).strip("-._")[:64]
    return name or "edge-daemon"


class ServiceConfig(Section):
    box: str | None = Field(
        None,
        title="Box name",
        description="This box's name, unique among the boxes sharing a broker: in every event ('box'), the MQTT "
        "client id, topics and Home Assistant unique ids. Unset: the host name.",
        pattern=BOX_NAME_PATTERN,
    )
    stuck_after_s: float = Field(
        30.0,
        gt=0,
        title="Stuck after",
        description="Unhealthy (no systemd watchdog ping, /healthz 503) when a streaming camera has had no frame "
        "processed for this many seconds.",
    )
    ready_timeout_s: float = Field(
        30.0, gt=0, title="Ready timeout", description="Tell systemd READY=1 at the latest after this, even if a camera is still opening."
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, title="Metrics port", description="Serve /metrics and /healthz on this port; 0 disables."
    )
    metrics_host: str = Field("127.0.0.1", title="Metrics address", description="Address to listen on (local by default).")
    strict_state: bool = Field(
        False,
        title="Refuse a sick disk",
        description="Refuse to start when the spool, the face history or the crops directory cannot be written (a "
        "read-only or full disk). Off: start degraded without them, recognise and publish, and say so on /healthz, "
        "in the systemd status and to Home Assistant.",
    )

    @property
    def box_name(self) -> str:
        return self.box or default_box_name()
