"""systemd's notify protocol: one datagram of ``KEY=VALUE`` lines to the socket named by
``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace). Without that variable every call
is a no-op, so the daemon runs the same by hand.
"""

from __future__ import annotations

import os
import socket

from edge_daemon.logs import RepeatedFailure, get_logger

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
        self._failures = RepeatedFailure(log, "systemd notification failed", "systemd notified again")

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
            self._failures.failed(str(exc))
            return
        self._failures.succeeded()
