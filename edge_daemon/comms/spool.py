"""A disk-backed, bounded, ordered queue of events waiting for the broker (SQLite in WAL mode).

Every event is written here before anything is sent, and deleted only once the broker has
acknowledged it, so neither a broker outage nor a daemon crash loses it. When the bound is hit
(count or age) the oldest events are dropped, counted and logged.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge_daemon.config.paths import state_directory
from edge_daemon.logs import get_logger

log = get_logger(__name__)


def default_spool_path() -> Path:
    return state_directory() / "spool.db"


@dataclass(frozen=True)
class SpooledEvent:
    row_id: int
    camera: str
    payload: str


class EventSpool:
    def __init__(self, path: Path, max_events: int = 100_000, max_age_s: float = 7 * 24 * 3600):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._max_events = max_events
        self._max_age_s = max_age_s
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.dropped = 0
        self._closed_depth: int | None = None
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "created REAL NOT NULL, camera TEXT NOT NULL, payload TEXT NOT NULL)"
            )
        except sqlite3.DatabaseError as exc:
            raise OSError(f"cannot open event spool {self.path}: {exc}") from None

    def append(self, camera: str, payload: str) -> None:
        with self._changed:
            self._db.execute("INSERT INTO events (created, camera, payload) VALUES (?, ?, ?)", (time.time(), camera, payload))
            self._enforce_bounds()
            self._changed.notify_all()

    def _enforce_bounds(self) -> None:
        cutoff = time.time() - self._max_age_s
        aged = self._db.execute("DELETE FROM events WHERE created < ?", (cutoff,)).rowcount
        excess = self.depth() - self._max_events
        over = 0
        if excess > 0:
            over = self._db.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT ?)", (excess,)
            ).rowcount
        if aged or over:
            self.dropped += aged + over
            log.error("event spool full: oldest events dropped", too_old=aged, over_limit=over, dropped_total=self.dropped)

    def depth(self) -> int:
        # Closed: what it closed with, for the final stats and a /metrics scrape during shutdown.
        if self._closed_depth is not None:
            return self._closed_depth
        return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def oldest(self, limit: int = 1) -> list[SpooledEvent]:
        with self._lock:
            rows = self._db.execute("SELECT id, camera, payload FROM events ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [SpooledEvent(*row) for row in rows]

    def remove(self, row_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM events WHERE id = ?", (row_id,))

    def wait_for_events(self, timeout_s: float) -> bool:
        with self._changed:
            if self.depth():
                return True
            self._changed.wait(timeout_s)
            return self.depth() > 0

    def close(self) -> None:
        with self._lock:
            self._closed_depth = self.depth()
            self._db.close()
