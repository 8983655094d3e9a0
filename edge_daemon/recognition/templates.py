"""A track's decision from its template: the one rule the daemon decides live tracks by
(``pipeline.decisions``) and the history decides ended tracks by again after the gallery changed
(``history.reprocess``), so a revised track is named exactly as it would have been at the time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_daemon.messages import Verdict
from edge_daemon.recognition.matcher import Matcher


@dataclass(frozen=True)
class Decision:
    identity: str | None
    verdict: Verdict
    score: float
    quality: float


def decide_templates(
    matcher: Matcher, vectors: np.ndarray, qualities: list[float], faces: list[float]
) -> tuple[list[Decision], str | None]:
    """The decision on each track template (a row of ``vectors``, of quality ``qualities[i]`` and
    ``faces[i]`` effective faces: ``thresholds.template``) against the matcher's gallery, held to the
    open-set threshold for that quality and size; and the version of the gallery that decided."""
    matches, gallery_version = matcher.match(vectors, qualities, faces)
    decisions = [Decision(match.identity, match.verdict, match.score, quality) for match, quality in zip(matches, qualities)]
    return decisions, gallery_version
