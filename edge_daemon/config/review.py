"""``[review]``: the review pages, their token and the largest upload they take."""

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
    max_upload_mb: float = Field(
        20.0,
        gt=0,
        le=1024,
        title="Largest upload",
        description="Most megabytes (MiB) of photos one upload on the people page may carry, all files together; "
        "a larger one is refused (413) before it is read.",
    )
