"""Running as a service: when the daemon is ready, a health check that can fail, the systemd
status line, per-camera frame rates. Read from the daemon's status snapshots, told to systemd
through a ``SystemdNotifier``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from edge_daemon.logs import get_logger
from edge_daemon.pipeline.status import CameraStatus, DaemonStatus
from edge_daemon.service.systemd import SystemdNotifier

log = get_logger(__name__)


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
    # Why the daemon runs degraded (a disk it cannot write): reported, never unhealthy, for the same reason.
    degraded: tuple[str, ...] = ()


def _skipped(camera: CameraStatus) -> str:
    """The share of a motion-gated camera's frames not detected since start (nothing moved)."""
    processed = camera.tracking.get("frames_processed", 0)
    if camera.motion_gate is None or not processed:
        return ""
    return f" ({camera.motion_gate.get('frames_skipped_no_motion', 0) / processed:.0%} skipped: no motion)"


def _processed(status: DaemonStatus) -> dict[str, int]:
    return {camera.name: camera.tracking.get("frames_processed", 0) for camera in status.cameras}


class ServiceMonitor:
    """Ticked by the main loop: tells systemd when the daemon is ready, pings its watchdog only while
    the pipeline is healthy, and keeps per-camera frame rates. ``status`` takes a snapshot of the
    daemon (``Daemon.status``)."""

    def __init__(
        self,
        status: Callable[[], DaemonStatus],
        notifier: SystemdNotifier,
        stuck_after_s: float,
        ready_timeout_s: float,
        status_interval_s: float = 5.0,
    ):
        self._status = status
        self._notifier = notifier
        self._stuck_after_s = stuck_after_s
        self._ready_deadline = time.monotonic() + ready_timeout_s
        self._status_interval_s = status_interval_s
        self.ready = False
        self.fps: dict[str, float] = {}
        self._last_rates = (time.monotonic(), _processed(status()))
        self._last_watchdog = 0.0
        self._last_status = 0.0

    def health(self) -> Health:
        """Unhealthy when a worker thread died, or a streaming camera's frames stopped being processed."""
        now = time.monotonic()
        return self._health(self._status(), now)

    def _health(self, status: DaemonStatus, now: float) -> Health:
        problems = [f"{worker.name} thread is not running" for worker in status.workers if not worker.alive]
        for camera in status.cameras:
            if camera.state != "streaming":
                continue
            if not camera.tracking_alive:
                problems.append(f"{camera.name}: detection thread is not running")
            elif camera.streaming_since is not None and now - max(camera.streaming_since, camera.last_frame_at or 0) > self._stuck_after_s:
                problems.append(f"{camera.name}: no frame processed for {self._stuck_after_s:.0f} s")
        mqtt = status.mqtt.report() if status.mqtt is not None else None
        return Health(not problems, problems, {camera.name: camera.state for camera in status.cameras}, mqtt, status.degraded)

    def status_line(self) -> str:
        return self._status_line(self._status())

    def _status_line(self, status: DaemonStatus) -> str:
        cameras = ", ".join(
            f"{camera.name} {camera.state} {self.fps.get(camera.name, 0.0):.1f} fps{_skipped(camera)}" for camera in status.cameras
        )
        line = f"{cameras}; {sum(status.events.values())} events"
        if status.degraded:
            line = f"degraded: {'; '.join(status.degraded)}. {line}"
        if status.mqtt is None:
            return line
        broker = status.mqtt.link
        return f"{line}; mqtt " + ("connected" if broker["connected"] else f"down since {broker['since']}: {broker['reason']}")

    def tick(self) -> None:
        now = time.monotonic()
        rates_due = now - self._last_rates[0] >= self._status_interval_s
        status_due = now - self._last_status >= self._status_interval_s
        watchdog_s = self._notifier.watchdog_interval_s
        watchdog_due = watchdog_s is not None and now - self._last_watchdog >= watchdog_s
        if self.ready and not (rates_due or status_due or watchdog_due):
            return  # nothing to do this tick: no snapshot taken (it counts the spool)
        status = self._status()
        if not self.ready and (all(camera.state != "starting" for camera in status.cameras) or now >= self._ready_deadline):
            self.ready = True
            self._notifier.notify(READY="1", STATUS=self._status_line(status))
            log.info("daemon ready", cameras={camera.name: camera.state for camera in status.cameras})
        if rates_due:
            processed = _processed(status)
            elapsed = now - self._last_rates[0]
            self.fps = {name: (count - self._last_rates[1].get(name, 0)) / elapsed for name, count in processed.items()}
            self._last_rates = (now, processed)
        if self.ready and status_due:
            self._last_status = now
            self._notifier.notify(STATUS=self._status_line(status))
        if self.ready and watchdog_due:
            health = self._health(status, now)
            if health.healthy:
                self._last_watchdog = now
                self._notifier.notify(WATCHDOG="1")
            else:
                log.error("health check failed: not pinging the systemd watchdog", problems=health.problems)

    def stopping(self) -> None:
        self._notifier.notify(STOPPING="1", STATUS="stopping: draining queues")
