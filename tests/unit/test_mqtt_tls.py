"""Repeated broker failures are logged first, then at growing intervals, with a count."""

from __future__ import annotations

from edge_daemon.logs import worth_logging


def test_repeated_failures_are_logged_first_then_exponentially():
    assert [n for n in range(1, 300) if worth_logging(n)] == [1, 2, 4, 8, 16, 32, 64, 100, 128, 200, 256]
