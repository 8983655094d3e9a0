"""Reprocessing: after the gallery changed, the recent ended tracks that were not named (``unknown``
or ``uncertain``) are decided again from their stored templates, by the rule the daemon decides live
tracks by (``recognition.templates``: the open-set threshold for the template's quality and
effective number of faces). A track whose answer differs from its latest is revised in the history
(``FaceHistory.revise``) beside what was decided and sent at the time. Nothing is sent: the events
of the time stand, and this module has no way to the transports."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edge_daemon.history.queries import Revision, TrackRow
from edge_daemon.history.store import FaceHistory
from edge_daemon.logs import get_logger
from edge_daemon.recognition.matcher import Matcher
from edge_daemon.recognition.templates import decide_templates

log = get_logger(__name__)

REPROCESS_WINDOW_S = 24 * 3600
REPROCESS_TRACKS = 5000  # the latest; a template is a few KiB, and matching them all takes milliseconds


@dataclass(frozen=True)
class Reprocessed:
    """What one reprocessing did: the tracks decided again, those whose answer changed, and the
    gallery version that decided them (None: no gallery)."""

    checked: int
    changed: tuple[int, ...]  # track_refs
    named: int  # of the changed, those now named
    gallery_version: str | None


def reprocess(
    history: FaceHistory,
    matcher: Matcher,
    embedder_version: str,
    window_s: float = REPROCESS_WINDOW_S,
    limit: int = REPROCESS_TRACKS,
) -> Reprocessed:
    """Decide again the unnamed tracks of ``embedder_version`` that ended within ``window_s`` (at
    most the latest ``limit``) against ``matcher``'s gallery, and record the ones that changed."""
    now = time.time()
    tracks = history.tracks(embedder_version, since=now - window_s, unknown_only=True, latest=limit)
    gallery_version = matcher.gallery.version if matcher.gallery is not None else None
    revisions: dict[int, Revision] = {}
    if tracks:
        vectors = np.stack([track.embedding for track in tracks])
        decisions, gallery_version = decide_templates(
            matcher, vectors, [track.quality for track in tracks], [track.faces for track in tracks]
        )
        revisions = {
            track.track_ref: Revision(decision.identity, decision.verdict, decision.score, now, gallery_version)
            for track, decision in zip(tracks, decisions)
            if (decision.identity, decision.verdict) != _latest_answer(track)
        }
        history.revise(revisions)
    named = sum(revision.identity is not None for revision in revisions.values())
    result = Reprocessed(len(tracks), tuple(revisions), named, gallery_version)
    log.info(
        "history reprocessed against the gallery",
        tracks=result.checked,
        changed=len(result.changed),
        named=result.named,
        gallery=result.gallery_version,
    )
    return result


def _latest_answer(track: TrackRow) -> tuple[str | None, str]:
    revision = track.revision
    return (track.identity, track.verdict) if revision is None else (revision.identity, revision.verdict)
