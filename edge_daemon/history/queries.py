"""Reading the face history: its faces, its ended tracks and its unknown groups, filtered.

``HistoryQueries`` is the reading half of ``store.FaceHistory``: every query takes the history's
lock, so reads see whole writes. ``FaceRow``, ``TrackRow``, ``Cluster``, and for the review pages'
listings ``DecisionRow`` and ``RevisedTrack``, are what they return.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_daemon.history.schema import crop_name, stored_embedding


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value; rows compare by identity
class FaceRow:
    face_id: int
    ts: float
    camera: str
    box: str  # the box (service.box) whose camera saw the face, as in events
    track_id: int
    event_type: str
    identity: str | None  # None: unknown
    score: float
    embedder: str
    embedder_version: str
    gallery_version: str | None
    embedding: np.ndarray  # float32 (dim,), L2-normalised, read-only
    crop_path: Path
    enrolled_as: str | None
    quality: float | None = None  # face-quality score (quality.face_quality); None for faces from before it
    track_ref: int | None = None  # its track's row in ``tracks``; None while the track is live


@dataclass(frozen=True)
class Revision:
    """An unnamed track decided again against a later gallery (``reprocess``); what was decided and
    sent at the time stays in the track's ``identity`` and ``verdict``."""

    identity: str | None
    verdict: str
    score: float
    at: float  # when it was decided again
    gallery_version: str | None  # the gallery that decided it


@dataclass(frozen=True, eq=False)
class TrackRow:
    """One ended track: its template and decision, and the unknown group it joined (None: none yet)."""

    track_ref: int
    first_ts: float
    last_ts: float
    camera: str
    box: str
    track_id: int
    identity: str | None
    verdict: str
    quality: float
    faces: float  # the template's effective number of faces (thresholds.template)
    embedder_version: str
    embedding: np.ndarray  # float32 (dim,), L2-normalised, read-only
    group_id: int | None
    revision: Revision | None = None  # its latest revised decision; None: never revised


@dataclass(frozen=True)
class DecisionRow:
    """A face behind a decision as the review page lists it: its own answer (``identity``, ``score``,
    ``verdict``: ``recognized`` when named, else its ended track's ``unknown`` or ``uncertain``,
    ``unknown`` while the track is live), and its track's revision, if any."""

    face_id: int
    ts: float
    camera: str
    track_id: int
    event_type: str
    identity: str | None
    verdict: str
    score: float
    quality: float | None
    enrolled_as: str | None
    revision: Revision | None


@dataclass(frozen=True)
class RevisedTrack:
    """A track whose decision was revised: when and where it was seen, what was decided then, what
    now, and the face of its best quality (None: its faces are gone)."""

    track_ref: int
    camera: str
    track_id: int
    first_ts: float
    last_ts: float
    identity: str | None
    verdict: str
    revision: Revision
    face_id: int | None


@dataclass(frozen=True)
class Sighting:
    """The newest face decided as someone: when, where and how sure."""

    face_id: int
    ts: float
    camera: str
    score: float


@dataclass(frozen=True)
class Cluster:
    """One group of unknown faces (``FaceHistory.unknown_groups``): a person, or a face on its own."""

    cluster_id: int  # 1-based, largest cluster first (then earliest seen), stable within one listing
    face_ids: tuple[int, ...]  # best quality first (then newest)
    size: int  # faces
    tracks: int
    cameras: tuple[str, ...]
    first_seen: float
    last_seen: float
    representative: int  # the face of the best quality
    crops_dir: Path

    def crop_paths(self, limit: int | None = None) -> list[Path]:
        """The crops of its faces, best first."""
        return [self.crops_dir / crop_name(face_id) for face_id in self.face_ids[:limit]]

    @property
    def representative_crop(self) -> Path:
        return self.crops_dir / crop_name(self.representative)


class HistoryQueries:
    """The queries over one history database (``db``, guarded by ``lock``; crops in ``crops_dir``)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock, crops_dir: Path):
        self._db = db
        self._lock = lock
        self.crops_dir = crops_dir

    def faces(
        self,
        since: float | None = None,
        camera: str | None = None,
        unknown_only: bool = False,
        embedder_version: str | None = None,
        not_enrolled: bool = False,
        limit: int | None = None,
    ) -> list[FaceRow]:
        """Stored faces matching every filter given, newest first (at most ``limit``)."""
        conditions, parameters = _filters("ts", since, camera, embedder_version, unknown_only)
        if not_enrolled:
            conditions.append("enrolled_as IS NULL")
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        with self._lock:
            records = self._db.execute(
                f"{_SELECT} {where} ORDER BY ts DESC, face_id DESC LIMIT ?", [*parameters, -1 if limit is None else limit]
            ).fetchall()
        return [self._row(record) for record in records]

    def face(self, face_id: int) -> FaceRow | None:
        with self._lock:
            record = self._db.execute(f"{_SELECT} WHERE face_id = ?", (face_id,)).fetchone()
        return None if record is None else self._row(record)

    def last_seen(self, identities: list[str]) -> dict[str, Sighting]:
        """The newest face decided as each of ``identities`` (one never seen is left out): one
        lookup per identity in the ``faces_by_identity`` index."""
        found = {}
        with self._lock:
            for identity in identities:
                record = self._db.execute(
                    "SELECT face_id, ts, camera, score FROM faces WHERE identity = ? ORDER BY ts DESC LIMIT 1", (identity,)
                ).fetchone()
                if record is not None:
                    found[identity] = Sighting(*record)
        return found

    def _row(self, record: tuple) -> FaceRow:
        face_id, *fields, dim, blob, enrolled_as, quality, track_ref = record
        embedding = stored_embedding(blob, dim, f"face {face_id}")
        return FaceRow(face_id, *fields, embedding, self.crops_dir / crop_name(face_id), enrolled_as, quality, track_ref)

    def tracks(
        self,
        embedder_version: str,
        since: float | None = None,
        camera: str | None = None,
        unknown_only: bool = False,
        grouped: bool | None = None,
        latest: int | None = None,
    ) -> list[TrackRow]:
        """Ended tracks of one embedder version matching every filter given (``since``: last seen
        then or later; ``grouped``: with or without a group; ``latest``: at most that many, the
        last seen), oldest first."""
        conditions, parameters = _filters("last_ts", since, camera, embedder_version, unknown_only)
        if grouped is not None:
            conditions.append("group_id IS NOT NULL" if grouped else "group_id IS NULL")
        with self._lock:
            records = self._db.execute(
                f"SELECT * FROM ({_SELECT_TRACKS} WHERE {' AND '.join(conditions)} ORDER BY last_ts DESC, track_ref DESC "
                "LIMIT ?) ORDER BY first_ts, track_ref",
                [*parameters, -1 if latest is None else latest],
            ).fetchall()
        rows = []
        for track_ref, *fields, dim, blob, group_id, revised_identity, verdict, score, at, gallery in records:
            embedding = stored_embedding(blob, dim, f"track {track_ref}")
            revision = _revision(revised_identity, verdict, score, at, gallery)
            rows.append(TrackRow(track_ref, *fields, embedding, group_id, revision))
        return rows

    def decisions(
        self, camera: str | None = None, person: str | None = None, verdict: str | None = None, limit: int = 100
    ) -> list[DecisionRow]:
        """The faces behind the latest decisions matching every filter given, newest first
        (``person``: the face was named so, or its track has been revised to that name)."""
        conditions, parameters = [], []
        if camera is not None:
            conditions.append("f.camera = ?")
            parameters.append(camera)
        if person is not None:
            conditions.append("(f.identity = ? OR t.revised_identity = ?)")
            parameters += [person, person]
        if verdict is not None:
            conditions.append(f"{_FACE_VERDICT} = ?")
            parameters.append(verdict)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        with self._lock:
            records = self._db.execute(
                f"SELECT f.face_id, f.ts, f.camera, f.track_id, f.event_type, f.identity, {_FACE_VERDICT}, f.score, "
                f"f.quality, f.enrolled_as, {_REVISION} {_FACES_WITH_TRACKS} {where} "
                "ORDER BY f.ts DESC, f.face_id DESC LIMIT ?",
                [*parameters, limit],
            ).fetchall()
        return [DecisionRow(*record[:10], _revision(*record[10:])) for record in records]

    def revised_tracks(self, limit: int = 100) -> list[RevisedTrack]:
        """The tracks whose decision was revised, latest revision first, at most ``limit``."""
        with self._lock:
            records = self._db.execute(
                f"SELECT t.track_ref, t.camera, t.track_id, t.first_ts, t.last_ts, t.identity, t.verdict, {_REVISION}, "
                "(SELECT f.face_id FROM faces f WHERE f.track_ref = t.track_ref ORDER BY f.quality DESC, f.face_id LIMIT 1) "
                "FROM tracks t WHERE t.revised_at IS NOT NULL ORDER BY t.revised_at DESC, t.track_ref DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [RevisedTrack(*record[:7], _revision(*record[7:12]), record[12]) for record in records]

    def largest_group_id(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COALESCE(MAX(group_id), 0) FROM tracks").fetchone()[0]

    def unknown_groups(
        self,
        embedder_version: str,
        since: float | None = None,
        camera: str | None = None,
        min_faces: int = 1,
        limit: int | None = None,
    ) -> list[Cluster]:
        """The unknown, not enrolled faces of one embedder version seen since ``since``, gathered by
        their track's group (a face whose track has none is a group of its own): groups of at least
        ``min_faces`` faces, largest first (then earliest seen), at most ``limit``, numbered from 1.
        Aggregated in SQLite, without decoding a single embedding: the review page's query."""
        where, parameters = _unknown_faces_where(since, camera, embedder_version)
        with self._lock:
            summaries = self._db.execute(
                f"SELECT {_GROUP_KEY} AS g, COUNT(*) AS size, COUNT(DISTINCT COALESCE(f.track_ref, -f.face_id)), "
                f"MIN(f.ts) AS first, MAX(f.ts), GROUP_CONCAT(DISTINCT f.camera) {_FACES_WITH_TRACKS} WHERE {where} "
                "GROUP BY g HAVING size >= ? ORDER BY size DESC, first, g LIMIT ?",
                [*parameters, min_faces, -1 if limit is None else limit],
            ).fetchall()
            wanted = {summary[0] for summary in summaries}
            members: dict[int, list[tuple[float, float, int]]] = {key: [] for key in wanted}
            for key, face_id, quality, ts in self._db.execute(
                f"SELECT {_GROUP_KEY}, f.face_id, f.quality, f.ts {_FACES_WITH_TRACKS} WHERE {where}", parameters
            ):
                if key in wanted:
                    members[key].append((-1.0 if quality is None else quality, ts, face_id))
        groups = []
        for number, (key, size, tracks, first, last, cameras) in enumerate(summaries, start=1):
            best_first = tuple(face_id for _, _, face_id in sorted(members[key], reverse=True))
            cameras = tuple(sorted(cameras.split(",")))
            groups.append(Cluster(number, best_first, size, tracks, cameras, first, last, best_first[0], self.crops_dir))
        return groups


_SELECT = (
    "SELECT face_id, ts, camera, box, track_id, event_type, identity, score, embedder, embedder_version, "
    "gallery_version, dim, embedding, enrolled_as, quality, track_ref FROM faces"
)
_SELECT_TRACKS = (
    "SELECT track_ref, first_ts, last_ts, camera, box, track_id, identity, verdict, quality, faces, embedder_version, "
    "dim, embedding, group_id, revised_identity, revised_verdict, revised_score, revised_at, revised_gallery FROM tracks"
)
_REVISION = "t.revised_identity, t.revised_verdict, t.revised_score, t.revised_at, t.revised_gallery"

# The faces with their ended tracks (a face of a live track has none yet), and the verdict of each
# face: named, or else its ended track's verdict (the faces themselves keep no verdict).
_FACES_WITH_TRACKS = "FROM faces f LEFT JOIN tracks t ON t.track_ref = f.track_ref"
_FACE_VERDICT = (
    "CASE WHEN f.identity IS NOT NULL THEN 'recognized' WHEN t.verdict = 'uncertain' THEN 'uncertain' ELSE 'unknown' END"
)

# The key of an unknown face's group: the group's id, or minus the face id of a face that is a
# group of its own.
_GROUP_KEY = "COALESCE(t.group_id, -f.face_id)"


def _unknown_faces_where(since: float | None, camera: str | None, embedder_version: str) -> tuple[str, list]:
    conditions, parameters = _filters("f.ts", since, camera, embedder_version, unknown_only=True, table="f.")
    # A track reprocessing has since named is no longer an unknown person to enrol.
    return " AND ".join([*conditions, "f.enrolled_as IS NULL", "t.revised_identity IS NULL"]), parameters


def _filters(time_column: str, since: float | None, camera: str | None, embedder_version: str | None,
             unknown_only: bool, table: str = "") -> tuple[list[str], list]:
    """SQL conditions and their parameters for the filters faces and tracks share (``table``: the
    prefix of their columns in a join)."""
    conditions, parameters = [], []
    filters = ((f"{time_column} >= ?", since), (f"{table}camera = ?", camera), (f"{table}embedder_version = ?", embedder_version))
    for condition, value in filters:
        if value is not None:
            conditions.append(condition)
            parameters.append(value)
    if unknown_only:
        conditions.append(f"{table}identity IS NULL")
    return conditions, parameters


def _revision(identity: str | None, verdict: str | None, score: float | None, at: float | None,
              gallery_version: str | None) -> Revision | None:
    """A track's revised_* columns read back; None when it was never revised."""
    return None if at is None else Revision(identity, verdict, score, at, gallery_version)
