"""Counters and histograms that a stage keeps while others read them (stats, /metrics, the systemd
status line). Kept beside the messages, not among them: they never travel through a queue."""

from __future__ import annotations

import threading


class StageCounters:
    """Counters a stage increments from its own thread while others (stats, /metrics, systemd
    status) read them: the lock keeps a reader from iterating a dict that is gaining a key."""

    def __init__(self) -> None:
        self._values: dict = {}
        self._lock = threading.Lock()

    def add(self, name, amount: int = 1) -> None:
        with self._lock:
            self._values[name] = self._values.get(name, 0) + amount

    def get(self, name) -> int:
        return self._values.get(name, 0)

    @property
    def values(self) -> dict:
        """A copy, safe to iterate."""
        with self._lock:
            return dict(self._values)


class Histogram:
    """Observation counts per bucket (keyed by the bucket's upper bound; inf for the rest)."""

    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = StageCounters()
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts.add(next((b for b in self.buckets if value <= b), float("inf")))
        self.total += value
