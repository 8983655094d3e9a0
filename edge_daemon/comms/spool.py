"""A disk-backed, bounded, ordered queue of events waiting for the broker (SQLite in WAL mode).

Every event is written here before anything is sent, and deleted only once the broker has
acknowledged it, so neither a broker outage nor a daemon crash loses it. When the bound is hit
(count or age) the oldest events are dropped, counted and logged.

Ages come from the monotonic clock, not the wall clock: a box without a real-time clock may boot
days or years off and be stepped by NTP later, and an event spooled before the step must not look
too old (or young) after it. Each row keeps the boot it was spooled in (the kernel's boot id) and
the monotonic reading then; only a row from an earlier boot, whose monotonic reading means nothing
now, is aged by its wall-clock stamp. A step of the wall clock is logged once (``clock``).

A write that fails (a full or read-only disk) raises ``SpoolError`` and changes nothing; the
caller decides where the event goes instead. Deleting what the broker acknowledged never raises:
the rows are marked delivered in memory and deleted by the next write that succeeds.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from edge_daemon.clock import Clock, WallClockSteps
from edge_daemon.config.paths import state_directory
from edge_daemon.logs import get_logger

log = get_logger(__name__)


def default_spool_path() -> Path:
    return state_directory() / "spool.db"


def boot_id() -> str:
    """This boot's id: monotonic readings compare only within one boot. Without /proc, an id of this
    process (rows of an earlier process are then aged by the wall clock)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return uuid.uuid4().hex


class SpoolError(OSError):
    """The spool could not be written (full, read-only or damaged disk): the event is not in it."""


@dataclass(frozen=True)
class SpooledEvent:
    row_id: int
    camera: str
    payload: str


class EventSpool:
    def __init__(self, path: Path, max_events: int = 100_000, max_age_s: float = 7 * 24 * 3600, clock: Clock = Clock()):
        """Raises ``OSError`` when the file cannot be opened and written (a read-only or full disk, a
        damaged file)."""
        self.path = Path(path)
        self._max_events = max_events
        self._max_age_s = max_age_s
        self._clock = clock
        self._boot = boot_id()
        self._wall_clock = WallClockSteps(clock)
        self._lock = threading.RLock()
        self.dropped = 0
        self._delivered_up_to = 0  # rows up to this id were acknowledged; deleted with the next write
        self._closed_depth: int | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "created REAL NOT NULL, camera TEXT NOT NULL, payload TEXT NOT NULL, boot TEXT, mono REAL)"
            )
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
            for column, kind in (("boot", "TEXT"), ("mono", "REAL")):  # spools written before ages were monotonic
                if column not in columns:
                    self._db.execute(f"ALTER TABLE events ADD COLUMN {column} {kind}")
            self._db.execute("BEGIN IMMEDIATE")  # can it be written at all? (a read-only file opens fine)
            self._db.execute("ROLLBACK")
        except (sqlite3.Error, OSError) as exc:
            raise OSError(f"cannot open event spool {self.path}: {exc}") from None

    def append(self, camera: str, payload: str) -> None:
        """Spool one event and apply the bounds, in one transaction; ``SpoolError`` when it cannot be
        written (nothing is changed then)."""
        with self._lock:
            self._wall_clock.step()  # logged; the ages below do not depend on it
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO events (created, camera, payload, boot, mono) VALUES (?, ?, ?, ?, ?)",
                    (self._clock.wall(), camera, payload, self._boot, self._clock.monotonic()),
                )
                self._db.execute("DELETE FROM events WHERE id <= ?", (self._delivered_up_to,))
                aged, over = self._enforce_bounds()
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._roll_back()
                raise SpoolError(str(exc)) from None
        if aged or over:
            self.dropped += aged + over
            log.error("event spool full: oldest events dropped", too_old=aged, over_limit=over, dropped_total=self.dropped)

    def _roll_back(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite rolls back by itself when a statement of the transaction failed on I/O

    def _enforce_bounds(self) -> tuple[int, int]:
        aged = self._db.execute(
            "DELETE FROM events WHERE (boot = ? AND mono < ?) OR (boot IS NOT ? AND created < ?)",
            (self._boot, self._clock.monotonic() - self._max_age_s, self._boot, self._clock.wall() - self._max_age_s),
        ).rowcount
        excess = self._depth() - self._max_events
        over = 0
        if excess > 0:
            over = self._db.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT ?)", (excess,)
            ).rowcount
        return aged, over

    def depth(self) -> int:
        """Events waiting (not yet acknowledged by the broker)."""
        with self._lock:
            return self._depth()

    def _depth(self) -> int:
        # Closed: what it closed with, for the final stats and a /metrics scrape during shutdown.
        if self._closed_depth is not None:
            return self._closed_depth
        return self._db.execute("SELECT COUNT(*) FROM events WHERE id > ?", (self._delivered_up_to,)).fetchone()[0]

    def oldest(self, limit: int = 1) -> list[SpooledEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, camera, payload FROM events WHERE id > ? ORDER BY id LIMIT ?", (self._delivered_up_to, limit)
            ).fetchall()
        return [SpooledEvent(*row) for row in rows]

    def remove(self, row_id: int) -> None:
        """The broker acknowledged ``row_id`` (the oldest waiting): it is never handed out again, and
        deleted now, or with the next write that succeeds when the disk refuses this one."""
        with self._lock:
            self._delivered_up_to = max(self._delivered_up_to, row_id)
            try:
                self._db.execute("DELETE FROM events WHERE id <= ?", (self._delivered_up_to,))
            except sqlite3.Error:
                pass  # the mark in memory keeps it from being sent twice in this run

    def close(self) -> None:
        with self._lock:
            self._closed_depth = self._depth()
            self._db.close()
