"""Running as a service: systemd notifications, a health check that can fail, per-camera rates.

systemd's notify protocol is one datagram of ``KEY=VALUE`` lines to the socket named by
``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace); without that variable every
call is a no-op, so the daemon runs the same by hand.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from edge_daemon.logs import get_logger

log = get_logger(__name__)


class SystemdNotifier:
    def __init__(self, address: str | None = None):
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self._address = None
        if address:
            self._address = "\0" + address[1:] if address.startswith("@") else address
        watchdog_usec = os.environ.get("WATCHDOG_USEC")
        watchdog_pid = os.environ.get("WATCHDOG_PID")
        mine = watchdog_pid is None or watchdog_pid == str(os.getpid())
        # Ping at half the interval systemd expects, as sd_watchdog_enabled(3) advises.
        self.watchdog_interval_s = int(watchdog_usec) / 2e6 if watchdog_usec and mine else None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, **fields: str) -> None:
        if self._address is None:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, self._address)
        except OSError as exc:
            log.warning("systemd notification failed", error=str(exc))


@dataclass(frozen=True)
class Health:
    healthy: bool
    problems: list[str]
    # Every camera's state: one that is stalled or reconnecting is reported here and in STATUS=, but
    # does not make the daemon unhealthy (a restart would not bring the camera back).
    cameras: dict[str, str]
    # The broker: connected, or since when not and why. Reported, never unhealthy either: events wait
    # in the spool, and a restart would not fix a broker, a certificate or a network.
    mqtt: dict | None = None


def _skipped(tracker) -> str:
    """The share of a motion-gated camera's frames not detected since start (nothing moved)."""
    policy = tracker.detection.policy
    processed = tracker.counters.get("frames_processed")
    if policy is None or not processed:
        return ""
    return f" ({policy.counters.get('frames_skipped_no_motion') / processed:.0%} skipped: no motion)"


class ServiceMonitor:
    """Called from the daemon's main loop: tells systemd when the daemon is ready, pings its
    watchdog only while the pipeline is healthy, and keeps per-camera frame rates."""

    def __init__(self, daemon, notifier: SystemdNotifier, stuck_after_s: float, ready_timeout_s: float, status_interval_s: float = 5.0):
        self._daemon = daemon
        self._notifier = notifier
        self._stuck_after_s = stuck_after_s
        self._ready_deadline = time.monotonic() + ready_timeout_s
        self._status_interval_s = status_interval_s
        self.ready = False
        self.fps: dict[str, float] = {}
        self._last_rates = (time.monotonic(), self._processed())
        self._last_watchdog = 0.0
        self._last_status = 0.0

    def _processed(self) -> dict[str, int]:
        return {tracker.camera: tracker.counters.get("frames_processed") for tracker in self._daemon.trackers}

    def health(self) -> Health:
        """Unhealthy when a worker thread died, or a streaming camera's frames stopped being processed."""
        problems = []
        now = time.monotonic()
        for thread in (self._daemon.detect_queue, self._daemon.embed_worker, self._daemon.decisions):
            if not thread.is_alive():
                problems.append(f"{thread.name} thread is not running")
        for camera, tracker in zip(self._daemon.cameras, self._daemon.trackers):
            if camera.state != "streaming":
                continue
            if not tracker.is_alive():
                problems.append(f"{camera.config.name}: detection thread is not running")
            elif camera.streaming_since is not None and now - max(camera.streaming_since, tracker.last_frame_at or 0) > self._stuck_after_s:
                problems.append(f"{camera.config.name}: no frame processed for {self._stuck_after_s:.0f} s")
        mqtt = self._daemon.mqtt.status() if self._daemon.mqtt is not None else None
        return Health(not problems, problems, {camera.config.name: camera.state for camera in self._daemon.cameras}, mqtt)

    def status_line(self) -> str:
        cameras = ", ".join(
            f"{camera.config.name} {camera.state} {self.fps.get(camera.config.name, 0.0):.1f} fps{_skipped(tracker)}"
            for camera, tracker in zip(self._daemon.cameras, self._daemon.trackers)
        )
        line = f"{cameras}; {sum(self._daemon.decisions.counters.values.values())} events"
        if self._daemon.mqtt is None:
            return line
        broker = self._daemon.mqtt.link.state()
        return f"{line}; mqtt " + ("connected" if broker["connected"] else f"down since {broker['since']}: {broker['reason']}")

    def tick(self) -> None:
        now = time.monotonic()
        if not self.ready and (
            all(camera.state != "starting" for camera in self._daemon.cameras) or now >= self._ready_deadline
        ):
            self.ready = True
            self._notifier.notify(READY="1", STATUS=self.status_line())
            log.info("daemon ready", cameras={c.config.name: c.state for c in self._daemon.cameras})
        if now - self._last_rates[0] >= self._status_interval_s:
            processed = self._processed()
            elapsed = now - self._last_rates[0]
            self.fps = {name: (count - self._last_rates[1].get(name, 0)) / elapsed for name, count in processed.items()}
            self._last_rates = (now, processed)
        if self.ready and now - self._last_status >= self._status_interval_s:
            self._last_status = now
            self._notifier.notify(STATUS=self.status_line())
        interval = self._notifier.watchdog_interval_s
        if self.ready and interval is not None and now - self._last_watchdog >= interval:
            health = self.health()
            if health.healthy:
                self._last_watchdog = now
                self._notifier.notify(WATCHDOG="1")
            else:
                log.error("health check failed: not pinging the systemd watchdog", problems=health.problems)

    def stopping(self) -> None:
        self._notifier.notify(STOPPING="1", STATUS="stopping: draining queues")
