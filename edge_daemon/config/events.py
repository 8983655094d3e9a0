"""``[events]``: where decisions are written on this box."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge_daemon.config.base import Section


class EventsConfig(Section):
    jsonl: str | None = Field(
        "-", title="JSON-lines output", description="File to append events to, '-' for stdout, empty to disable."
    )
    crops_dir: Path | None = Field(
        None, title="Face crops", description="If set, the face behind each decision is saved here as a JPEG."
    )
