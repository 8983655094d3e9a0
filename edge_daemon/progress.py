"""Progress for long jobs: a bar on a terminal, a log line every 10% elsewhere."""

from __future__ import annotations

import sys
import time

from edge_daemon.logs import get_logger

log = get_logger(__name__)


class Progress:
    def __init__(self, total: int, what: str):
        self.total, self.what, self.done = max(total, 1), what, 0
        self._started = time.monotonic()
        self._tty = sys.stderr.isatty()
        self._next_report = 0.1

    def __call__(self, step: int = 1) -> None:
        self.done += step
        fraction = min(self.done / self.total, 1.0)
        elapsed = time.monotonic() - self._started
        if self._tty:
            bar = "#" * int(fraction * 30)
            sys.stderr.write(f"\r{self.what}: [{bar:<30}] {self.done}/{self.total} {elapsed:5.0f}s")
            if self.done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif fraction >= self._next_report or self.done >= self.total:
            log.info("progress", job=self.what, done=self.done, total=self.total, elapsed_s=round(elapsed, 1))
            self._next_report = fraction + 0.1
