"""Nothing lost across a daemon crash: events spooled while the broker is down survive a SIGKILL and
are delivered by the next run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from tests.support.delivery import PREFIX, PersistentSubscriber
from tests.support.paths import HAMILTON_CLIP, ROOT, need
from tests.support.waiting import wait_until


def spooled_ids(path) -> list[str]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        try:
            rows = db.execute("SELECT payload FROM events ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # the daemon opens the spool first thing: its table may not be there yet
            return []
        return [json.loads(row[0])["event_id"] for row in rows]


def daemon_config(path, broker_port, spool, loop: bool):
    path.write_text(
        f'[[cameras]]\nname = "stage"\nurl = "{need(HAMILTON_CLIP)}"\nloop = {str(loop).lower()}\n\n'
        f'[events]\njsonl = ""\n\n[mqtt]\nurl = "mqtt://127.0.0.1:{broker_port}"\nprefix = "{PREFIX}"\n\n'
        f'[spool]\npath = "{spool}"\n'
    )
    return path


def test_events_spooled_while_broker_down_survive_sigkill(persistent_broker, tmp_path):
    spool = tmp_path / "spool.db"
    config = daemon_config(tmp_path / "run1.toml", persistent_broker.port, spool, loop=True)
    daemon = subprocess.Popen([sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        assert wait_until(lambda: len(spooled_ids(spool)) >= 3, 90), "no events spooled"
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    waiting = spooled_ids(spool)
    assert len(waiting) >= 3

    persistent_broker.start()
    subscriber = PersistentSubscriber(persistent_broker.port)
    try:
        time.sleep(0.5)
        rerun = daemon_config(tmp_path / "run2.toml", persistent_broker.port, spool, loop=False)
        result = subprocess.run([sys.executable, "-m", "edge_daemon.cli", "run", "--config", str(rerun)],
                                capture_output=True, text=True, timeout=240, cwd=ROOT)
        assert result.returncode == 0, result.stderr[-2000:]
        assert wait_until(lambda: set(waiting) <= set(subscriber.ids()), 20)
        assert subscriber.ids()[: len(waiting)] == waiting  # the backlog first, in order
        assert spooled_ids(spool) == []
    finally:
        subscriber.close()
