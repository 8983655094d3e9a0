"""``[spool]``: where events wait while the broker is away."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge_daemon.config.base import Section


class SpoolConfig(Section):
    path: Path | None = Field(
        None,
        title="Spool file",
        description="SQLite file where events wait for the broker; default $STATE_DIRECTORY/spool.db under systemd, "
        "else ~/.local/state/edge-daemon/spool.db.",
    )
    max_events: int = Field(100_000, ge=1, title="Most events kept", description="Oldest are dropped (and counted) beyond.")
    max_age_s: float = Field(
        7 * 24 * 3600.0, gt=0, title="Oldest event kept", description="Events older than this many seconds are dropped."
    )
    memory_events: int = Field(
        1000,
        ge=1,
        title="Most events in memory",
        description="Events wait in memory when the spool cannot be written (a full or read-only disk); with the "
        "broker away too, the oldest beyond this many are dropped (and counted). Lost if the daemon stops.",
    )
