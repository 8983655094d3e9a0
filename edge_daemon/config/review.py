"""``[review]``: the review page and its token."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge_daemon.config.base import Section


class ReviewConfig(Section):
    enabled: bool = Field(
        False,
        title="Review page",
        description="Serve /review on the metrics port: recent faces, unknown groups to enrol, 'not this person'.",
    )
    token_file: Path | None = Field(
        None,
        title="Review token file",
        description="File holding the access token (16+ characters, e.g. a systemd credential); required when "
        "enabled. Open /review?token=... once; the page is refused without it.",
    )
