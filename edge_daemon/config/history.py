"""``[history]``: the faces kept on this box for review, and how unknown tracks are grouped into people."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge_daemon.config.base import Section


class HistoryConfig(Section):
    enabled: bool = Field(
        True, title="Face history", description="Keep each decision's face (crop and embedding) on this box for review."
    )
    path: Path | None = Field(
        None,
        title="History directory",
        description="SQLite rows and JPEG crops; default $STATE_DIRECTORY/history under systemd, else "
        "~/.local/state/edge-daemon/history. Nothing in it leaves the box unless asked.",
    )
    max_faces: int = Field(100_000, ge=1, title="Most faces kept", description="The oldest are dropped (and counted) beyond.")
    max_age_days: float = Field(30.0, gt=0, title="Oldest face kept", description="Faces older than this many days are dropped.")
    group_fpir: float = Field(
        0.003,
        gt=0,
        lt=1,
        title="Grouping stranger rate",
        description="Unknown tracks are grouped into people at the threshold that keeps this share of new "
        "people from joining someone else's group, for the number of groups there are (the open-set table's, for "
        "the track's quality and number of faces): lower keeps groups purer, higher splits a person less. "
        "0.003 kept 99.3% of tracks in the right group on LFW View 1 DevTrain.",
    )
    group_min_quality: float = Field(
        0.35,
        ge=0,
        le=1,
        title="Poorest track grouped",
        description="Unknown tracks whose template's quality is below this stay on their own: the faces of small, "
        "blurred tracks look alike, and groups of them mix people (0.35: the poorest fifth of the faces the "
        "open-set table was calibrated on).",
    )
