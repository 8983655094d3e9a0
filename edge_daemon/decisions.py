"""Decisions: turns per-face identifications into one event per track (and one more if it changes).

Each embedded face of a track votes for its identity (or for "unknown") with its cosine score;
the identity with the highest total wins. The first decision is published as ``recognized`` or
``unknown``, a later change as ``updated``, and the track's end as ``ended``.
"""

from __future__ import annotations

import queue
from collections import deque
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from edge_daemon.alignment import first_crop
from edge_daemon.comms.dispatcher import EventDispatcher
from edge_daemon.embed_worker import Shutdown
from edge_daemon.events import Event, utc_iso
from edge_daemon.history import FaceHistory
from edge_daemon.logs import get_logger
from edge_daemon.messages import Histogram, Identification, StageCounters, TrackEnded

log = get_logger(__name__)


@dataclass
class TrackVotes:
    totals: dict[str | None, float] = field(default_factory=dict)
    scores: dict[str | None, list[float]] = field(default_factory=dict)
    decided: str | None = None
    has_decision: bool = False
    last: Identification | None = None

    def add(self, identification: Identification) -> None:
        identity = identification.identity
        self.totals[identity] = self.totals.get(identity, 0.0) + max(identification.score, 0.0)
        self.scores.setdefault(identity, []).append(identification.score)
        self.last = identification

    def winner(self) -> tuple[str | None, float]:
        identity = max(self.totals, key=lambda name: (self.totals[name], len(self.scores[name])))
        scores = self.scores[identity]
        return identity, sum(scores) / len(scores)

    @property
    def attempts(self) -> int:
        return sum(len(scores) for scores in self.scores.values())


class DecisionMaker(threading.Thread):
    def __init__(
        self,
        identifications: queue.Queue,
        dispatcher: EventDispatcher,
        embedder_name: str,
        embedder_version: str,
        box: str,
        crops_dir: Path | None = None,
        history: FaceHistory | None = None,
    ):
        super().__init__(name="decisions", daemon=True)
        self.counters = StageCounters()
        self.latencies: deque[float] = deque(maxlen=10_000)  # capture -> event seconds, latest first decisions
        self.latency_histogram = Histogram((0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0))
        self._input = identifications
        self._dispatcher = dispatcher
        self._embedder = (embedder_name, embedder_version)
        self._box = box
        self._history = history
        self._crops_dir = crops_dir
        self._tracks: dict[tuple[str, int], TrackVotes] = {}

    def run(self) -> None:
        while True:
            message = self._input.get()
            if isinstance(message, Shutdown):
                return
            try:
                if isinstance(message, Identification):
                    self._identified(message)
                elif isinstance(message, TrackEnded):
                    self._ended(message)
            except Exception:
                log.exception("decision failed", message=type(message).__name__)

    def _identified(self, identification: Identification) -> None:
        sample = identification.sample
        votes = self._tracks.setdefault((sample.camera, sample.track_id), TrackVotes())
        votes.add(identification)
        identity, score = votes.winner()
        if votes.has_decision and identity == votes.decided:
            return
        event_type = "updated" if votes.has_decision else ("recognized" if identity is not None else "unknown")
        votes.decided, votes.has_decision = identity, True
        event = self._event(event_type, sample.camera, sample.track_id, identity, score, votes, sample.bbox)
        if event_type != "updated":
            latency = time.time() - sample.captured_at
            self.latencies.append(latency)
            self.latency_histogram.observe(latency)
        self._publish(event, identification)

    def _ended(self, ended: TrackEnded) -> None:
        votes = self._tracks.pop((ended.camera, ended.track_id), None)
        if votes is None or not votes.has_decision:
            return
        _, score = votes.winner()
        self._publish(self._event("ended", ended.camera, ended.track_id, votes.decided, score, votes, ended.bbox))

    def _event(self, event_type, camera, track_id, identity, score, votes: TrackVotes, bbox) -> Event:
        last = votes.last
        return Event(
            type=event_type,
            box=self._box,
            camera=camera,
            track_id=track_id,
            identity=identity,
            score=round(score, 4),
            bbox=tuple(round(v, 1) for v in bbox),
            ts=utc_iso(time.time()),
            frame_ts=utc_iso(last.sample.captured_at),
            attempts=votes.attempts,
            embedder=self._embedder[0],
            embedder_version=self._embedder[1],
            gallery_version=last.gallery_version,
        )

    def _publish(self, event: Event, identification: Identification | None = None) -> None:
        if identification is not None and self._crops_dir is not None:
            event = event.model_copy(update={"crop_path": self._save_crop(event, identification)})
        if identification is not None and self._history is not None and identification.embedding is not None:
            self._remember(event, identification)
        self.counters.add(f"events_{event.type}")
        self._dispatcher.publish(event)

    def _remember(self, event: Event, identification: Identification) -> None:
        """The face behind a decision, into the history (which never raises: recognition goes on)."""
        sample = identification.sample
        self._history.record(
            ts=sample.captured_at,
            camera=event.camera,
            box=event.box,
            track_id=event.track_id,
            event_type=event.type,
            identity=identification.identity,
            score=identification.score,
            embedder=event.embedder,
            embedder_version=event.embedder_version,
            gallery_version=identification.gallery_version,
            embedding=identification.embedding,
            crop=sample.face_image if sample.face_image is not None else first_crop(sample.crop),
        )

    def _save_crop(self, event: Event, identification: Identification) -> str | None:
        path = self._crops_dir / event.camera / f"{event.event_id}.jpg"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), first_crop(identification.sample.crop)):
                raise OSError("imwrite failed")
        except (OSError, cv2.error) as exc:
            log.warning("cannot save face crop", path=str(path), error=str(exc))
            return None
        return str(path)
