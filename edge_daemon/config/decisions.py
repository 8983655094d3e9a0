"""``[decisions]``: how a track's faces become one decision."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge_daemon.config.base import Section


class DecisionConfig(Section):
    mode: Literal["template", "vote"] = Field(
        "template",
        title="Decision per track",
        description="'template': a track's faces combine into one quality-weighted template, matched against the "
        "gallery with the threshold for its quality and number of faces. 'vote': each face is matched alone and "
        "votes for its identity with its score (the old way, kept for benchmarks).",
    )
    min_quality: float = Field(
        0.02,
        ge=0,
        le=1,
        title="Useless face",
        description="Faces below this quality score add nothing to a template and are dropped (counted as "
        "faces_dropped_useless); poorer faces above it still add, with a low weight.",
    )
