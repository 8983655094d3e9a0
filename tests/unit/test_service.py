"""systemd's notify protocol, spoken through a fake NOTIFY_SOCKET."""

from __future__ import annotations

from edge_daemon.service.systemd import SystemdNotifier
from tests.support.systemd import FakeSystemd
from tests.support.waiting import wait_until


def test_notifier_speaks_the_protocol(tmp_path):
    fake = FakeSystemd(tmp_path / "notify")
    try:
        SystemdNotifier(str(tmp_path / "notify")).notify(READY="1", STATUS="all good")
        assert wait_until(lambda: fake.has("READY", "1") and fake.has("STATUS", "all good"), 2)
    finally:
        fake.close()
    SystemdNotifier("").notify(READY="1")  # no socket: silently nothing
