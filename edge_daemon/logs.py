"""Structured logging: readable on a terminal, one JSON object per line elsewhere (journald, files)."""

from __future__ import annotations

import logging
import sys
import threading

import structlog


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Send structlog output to stderr (stdout may carry JSON-lines events)."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


get_logger = structlog.get_logger


def worth_logging(repeats: int) -> bool:
    """The 1st, 2nd, 4th, 8th... failure in a row, and every 100th: a fault that lasts a day costs a
    few dozen log lines, not thousands, and each says how many it stands for."""
    return repeats & (repeats - 1) == 0 or repeats % 100 == 0


class RepeatedFailure:
    """One kind of failure that may repeat many times in a row (a full disk, for every event): the
    1st, 2nd, 4th... of a run of failures is logged with its count (``worth_logging``), and the first
    success after a run logs ``recovered`` once with how many failed. Thread-safe."""

    def __init__(self, logger, message: str, recovered: str):
        self._log = logger
        self._message = message
        self._recovered = recovered
        self._lock = threading.Lock()
        self.total = 0  # every failure since start
        self.in_a_row = 0  # failures since the last success: nonzero while failing
        self.reason: str | None = None  # the latest failure's, while failing

    @property
    def failing(self) -> bool:
        return self.in_a_row > 0

    def failed(self, reason: str, **fields) -> None:
        with self._lock:
            self.total += 1
            self.in_a_row += 1
            self.reason = reason
            repeats, total = self.in_a_row, self.total
        if worth_logging(repeats):
            self._log.error(self._message, reason=reason, failures_in_a_row=repeats, failures_total=total, **fields)

    def succeeded(self, **fields) -> None:
        with self._lock:
            repeats, self.in_a_row, self.reason = self.in_a_row, 0, None
        if repeats:
            self._log.info(self._recovered, failures_in_a_row=repeats, failures_total=self.total, **fields)
