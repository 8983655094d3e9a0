"""The face history (``history.enabled``): the face behind each decision, and at a track's end the
track itself: its template, decision and time span, tying its recorded faces together; an unknown
track joins an unknown group then (``history.grouping``)."""

from __future__ import annotations

import numpy as np

from edge_daemon.embedders.alignment import first_crop
from edge_daemon.history import FaceHistory, HistoryGroups
from edge_daemon.logs import RepeatedFailure, get_logger
from edge_daemon.messages import Event, Identification
from edge_daemon.pipeline.sinks.base import Decided, TrackFaces
from edge_daemon.recognition.thresholds import template

log = get_logger(__name__)


class HistoryRecorder:
    """Records decisions' faces and ended tracks; ``groups`` None: faces only, tracks not grouped.
    The history never stops the events: what it cannot store is logged (with counts, not once per
    event), and the event goes on."""

    def __init__(self, history: FaceHistory, groups: HistoryGroups | None = None):
        self._history = history
        self._groups = groups
        self._face_ids: dict[tuple[str, int], list[int]] = {}  # per live track: its faces recorded
        self._failures = RepeatedFailure(log, "face history not written", "face history written again")

    def take(self, decided: Decided) -> Decided:
        event = decided.event
        try:
            if decided.face is not None and decided.face.embedding is not None:
                self._record_face(event, decided.face)
            if event.type == "ended":
                face_ids = self._face_ids.pop((event.camera, event.track_id), [])
                if self._groups is not None and decided.track is not None and decided.track.vectors:
                    self._record_track(event, decided.track, face_ids)
        except Exception as exc:  # noqa: BLE001 - the history never stops the events
            self._failures.failed(f"{type(exc).__name__}: {exc}", camera=event.camera, track_id=event.track_id, event=event.type)
            return decided
        self._failures.succeeded()
        return decided

    def _record_face(self, event: Event, face: Identification) -> None:
        """The face behind a decision (the history itself never raises: recognition goes on)."""
        sample = face.sample
        face_id = self._history.record(
            ts=sample.captured_at,
            camera=event.camera,
            box=event.box,
            track_id=event.track_id,
            event_type=event.type,
            identity=face.identity,
            score=face.score,
            embedder=event.embedder,
            embedder_version=event.embedder_version,
            gallery_version=face.gallery_version,
            embedding=face.embedding,
            crop=sample.face_image if sample.face_image is not None else first_crop(sample.crop),
            quality=sample.quality,
        )
        if face_id is not None:
            self._face_ids.setdefault((event.camera, event.track_id), []).append(face_id)

    def _record_track(self, ended: Event, track: TrackFaces, face_ids: list[int]) -> None:
        vector, quality, faces = template(np.stack(track.vectors), track.qualities)
        self._groups.record_track(
            # When the faces of its template were seen: two tracks whose faces were seen at the same
            # time are two people. (Not the whole time it was tracked: a track that took over someone
            # else's face for its last second would then keep its own person's next track apart.)
            first_ts=track.first_seen,
            last_ts=track.last_seen,
            camera=ended.camera,
            box=ended.box,
            track_id=ended.track_id,
            identity=ended.identity,
            verdict=ended.verdict,
            quality=quality,
            faces=faces,
            embedding=vector,
            face_ids=face_ids,
        )
