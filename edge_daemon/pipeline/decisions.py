"""Decisions: turns the embedded faces of each track into one event per track (and one more when the
answer changes).

``template`` mode (the default): a track's faces combine into one template, the normalised mean of
their embeddings weighted by face quality (``thresholds.template``); after each face the template is
looked up in the gallery through FAISS with the open-set threshold for its quality and effective
number of faces, so the answer firms up as better faces arrive. A poor face still adds, with a low
weight; only a face below ``decisions.min_quality`` is dropped (counted as faces_dropped_useless).
A track whose every face was useless is ``uncertain``: someone was there, we could not see who; so
is a track whose faces the quality gates all refused (``TrackUnseen`` from tracking).

``vote`` mode (for benchmarks): each face is matched alone and votes for its identity (or for
"unknown") with its cosine score; the identity with the highest total wins.

The first decision is published as ``recognized`` or ``unknown`` (``verdict`` says whether an
unnamed track is unknown or uncertain), a later change of identity or verdict as ``updated``, and
the track's end as ``ended``. Each event goes through the sinks (``pipeline.sinks``: its crop file,
the face history, the transports), with the face behind it and, when the track ends, the track's
template faces.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_daemon.config import DecisionConfig
from edge_daemon.counters import Histogram, StageCounters
from edge_daemon.logs import get_logger
from edge_daemon.messages import (
    Event,
    Identification,
    IdentificationQueue,
    Shutdown,
    TrackEnded,
    TrackUnseen,
    Verdict,
    utc_iso,
)
from edge_daemon.pipeline.camera_view import CameraViews
from edge_daemon.pipeline.sinks import Decided, DecisionSink, TrackFaces
from edge_daemon.pipeline.status import TrackVerdict
from edge_daemon.recognition.matcher import Matcher
from edge_daemon.recognition.templates import Decision, decide_templates
from edge_daemon.recognition.thresholds import template

log = get_logger(__name__)


@dataclass
class TrackState:
    """What one track has shown so far, and what was last published for it."""

    vectors: list[np.ndarray] = field(default_factory=list)  # the faces of the template
    qualities: list[float] = field(default_factory=list)
    totals: dict[str | None, float] = field(default_factory=dict)  # vote mode: score totals
    scores: dict[str | None, list[float]] = field(default_factory=dict)  # vote mode: scores
    verdicts: dict[str | None, list[Verdict]] = field(default_factory=dict)  # vote mode: per-face verdicts
    attempts: int = 0
    decision: Decision | None = None  # the last one published
    last_captured_at: float = 0.0  # capture time of the latest face behind its decision
    gallery_version: str | None = None  # the gallery that decided it last
    first_seen: float | None = None  # capture time of its first face embedded

    def vote(self, identification: Identification) -> Decision:
        """Add one face's vote; the identity with the highest score total (then most votes)."""
        identity = identification.identity
        self.totals[identity] = self.totals.get(identity, 0.0) + max(identification.score, 0.0)
        self.scores.setdefault(identity, []).append(identification.score)
        self.verdicts.setdefault(identity, []).append(identification.verdict)
        winner = max(self.totals, key=lambda name: (self.totals[name], len(self.scores[name])))
        scores = self.scores[winner]
        if winner is not None:
            verdict: Verdict = "recognized"
        else:  # unnamed: uncertain only when no vote for "nobody" was cast from a face good enough
            verdict = "uncertain" if all(v == "uncertain" for v in self.verdicts[None]) else "unknown"
        return Decision(winner, verdict, sum(scores) / len(scores), identification.sample.quality)


class DecisionMaker(threading.Thread):
    def __init__(
        self,
        identifications: IdentificationQueue,
        sinks: Sequence[DecisionSink],
        embedder_name: str,
        embedder_version: str,
        box: str,
        matcher: Matcher,
        config: DecisionConfig | None = None,
        views: CameraViews | None = None,
    ):
        """``sinks``: where each event goes, in order (``sinks.decision_sinks``); ``views``: told
        each track's latest decision and its end (the cameras view)."""
        super().__init__(name="decisions", daemon=True)
        self.counters = StageCounters()  # events made, by type
        self.drops = StageCounters()  # faces left out of templates, by reason
        self.latencies: deque[float] = deque(maxlen=10_000)  # capture -> event seconds, latest first decisions
        self.latency_histogram = Histogram((0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0))
        self._input = identifications
        self._sinks = list(sinks)
        self._embedder = (embedder_name, embedder_version)
        self._box = box
        self._matcher = matcher
        self._config = config or DecisionConfig()
        self._tracks: dict[tuple[str, int], TrackState] = {}
        self._views = views

    def run(self) -> None:
        while True:
            message = self._input.get()
            if isinstance(message, Shutdown):
                return
            try:
                if isinstance(message, Identification):
                    self._identified(message)
                elif isinstance(message, TrackUnseen):
                    self._unseen(message)
                elif isinstance(message, TrackEnded):
                    self._ended(message)
            except Exception:
                log.exception("decision failed", message=type(message).__name__)

    def _identified(self, identification: Identification) -> None:
        sample = identification.sample
        track = self._tracks.setdefault((sample.camera, sample.track_id), TrackState())
        track.attempts += 1
        track.last_captured_at, track.gallery_version = sample.captured_at, identification.gallery_version
        if track.first_seen is None:
            track.first_seen = sample.captured_at
        self._add_to_template(track, identification)
        if self._config.mode == "vote":
            decision = track.vote(identification)
        else:
            decision = self._template_decision(track, identification)
        self._decided(track, decision, sample.camera, sample.track_id, sample.bbox, sample.captured_at, identification)

    def _unseen(self, unseen: TrackUnseen) -> None:
        """A track the gates refused every face of: uncertain, unless a face of it was decided already."""
        track = self._tracks.setdefault((unseen.camera, unseen.track_id), TrackState())
        if track.decision is not None:
            return
        track.last_captured_at = unseen.captured_at
        track.gallery_version = self._matcher.gallery.version if self._matcher.gallery is not None else None
        decision = Decision(None, "uncertain", 0.0, unseen.quality)
        self._decided(track, decision, unseen.camera, unseen.track_id, unseen.bbox, unseen.captured_at)

    def _decided(self, track: TrackState, decision: Decision, camera: str, track_id: int, bbox, captured_at: float,
                 identification: Identification | None = None) -> None:
        """Publish ``decision`` for the track if it is its first or a change."""
        if self._views is not None:  # every decision, not only the published: its score follows the template
            self._views.track_decided(camera, track_id, TrackVerdict(decision.verdict, decision.identity, decision.score))
        previous, track.decision = track.decision, decision
        if previous is not None and (decision.identity, decision.verdict) == (previous.identity, previous.verdict):
            return  # the same answer: its score and quality follow the template without an event
        if previous is not None:
            event_type = "updated"
        else:
            event_type = "recognized" if decision.identity is not None else "unknown"
        event = self._event(event_type, camera, track_id, track, bbox)
        if event_type != "updated":
            latency = time.time() - captured_at
            self.latencies.append(latency)
            self.latency_histogram.observe(latency)
        self._publish(Decided(event, identification))

    def _add_to_template(self, track: TrackState, identification: Identification) -> None:
        """The face joins the track's template unless it is useless (then it is counted)."""
        if identification.sample.quality < self._config.min_quality or identification.embedding is None:
            self.drops.add("faces_dropped_useless")
        else:
            track.vectors.append(identification.embedding)
            track.qualities.append(identification.sample.quality)

    def _template_decision(self, track: TrackState, identification: Identification) -> Decision:
        """Look the track's template up."""
        if not track.vectors:
            return track.decision or Decision(None, "uncertain", 0.0, identification.sample.quality)
        vector, quality, faces = template(np.stack(track.vectors), track.qualities)
        decisions, _ = decide_templates(self._matcher, vector[None, :], [quality], [faces])
        return decisions[0]

    def _ended(self, ended: TrackEnded) -> None:
        track = self._tracks.pop((ended.camera, ended.track_id), None)
        if self._views is not None:
            self._views.track_ended(ended.camera, ended.track_id)
        if track is None or track.decision is None:
            return
        faces = TrackFaces(tuple(track.vectors), tuple(track.qualities), track.first_seen, track.last_captured_at)
        self._publish(Decided(self._event("ended", ended.camera, ended.track_id, track, ended.bbox), track=faces))

    def _event(self, event_type, camera, track_id, track: TrackState, bbox) -> Event:
        decision = track.decision
        return Event(
            type=event_type,
            box=self._box,
            camera=camera,
            track_id=track_id,
            identity=decision.identity,
            score=round(decision.score, 4),
            verdict=decision.verdict,
            quality=round(decision.quality, 4),
            bbox=tuple(round(v, 1) for v in bbox),
            ts=utc_iso(time.time()),
            frame_ts=utc_iso(track.last_captured_at),
            attempts=track.attempts,
            embedder=self._embedder[0],
            embedder_version=self._embedder[1],
            gallery_version=track.gallery_version,
        )

    def _publish(self, decided: Decided) -> None:
        self.counters.add(f"events_{decided.event.type}")
        for sink in self._sinks:
            decided = sink.take(decided)
