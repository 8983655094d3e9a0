"""The face history's storage: SQLite rows and JPEG crops in one directory.

  history.db   SQLite in WAL mode, one row per face (``faces``): when, which camera and box, the
               track, the decision (``event_type``, ``identity`` NULL when unknown, ``score``), the
               embedder and gallery that made it, the embedding (little-endian float32 bytes,
               L2-normalised, with ``dim``), the crop's file name, and ``enrolled_as`` once an
               operator has enrolled the face.
               ``track_ref`` names the row of ``tracks`` the face belongs to once its track ended.
  (tracks)     one row per ended track (``tracks``): when it was first and last seen, camera, box and
               track id, its decision (``identity``, ``verdict``), its template (the quality-weighted
               mean of all its faces, as decided on), the template's quality and effective number of
               faces, and ``group_id``: the unknown group it joined (``grouping.UnknownGroups``).
  crops/       the face as a JPEG, ``<face_id:09d>.jpg``, written to a temporary name and renamed.

``FaceHistory`` owns both: one connection guarded by a lock, usable from several threads. Face ids
are never reused (AUTOINCREMENT), so an id an operator copied from a listing cannot come to mean
another face. Recording never raises into the recognition pipeline: a full disk, a damaged database
or anything else is logged, counted (``failures``) and the face is skipped. A database found damaged
when opened (not SQLite, failing ``PRAGMA integrity_check``, another schema) is moved aside with its
crops as ``history.db.damaged-<UTC time>`` / ``crops.damaged-<UTC time>`` and an empty one started.

Bounds: after each insert the rows older than ``max_age_days`` go, then the oldest rows beyond
``max_faces``, with their crops (counted in ``dropped``); tracks are bounded alike. Steady state is a
rolling window.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from edge_daemon.config.paths import state_directory
from edge_daemon.logs import get_logger
from edge_daemon.recognition.gallery import validate_identity

log = get_logger(__name__)

DB_FILE = "history.db"
CROPS_DIR = "crops"
SCHEMA_VERSION = 3  # PRAGMA user_version of a history database; 2 added ``quality``, 3 ``tracks``
JPEG_QUALITY = 90
EMBEDDING_DTYPE = np.dtype("<f4")
LOG_EVERY_FAILURES = 100  # while recording keeps failing, log the first failure and then every 100th

COLUMNS = (
    "face_id",
    "ts",
    "camera",
    "box",
    "track_id",
    "event_type",
    "identity",
    "score",
    "embedder",
    "embedder_version",
    "gallery_version",
    "dim",
    "embedding",
    "crop",
    "enrolled_as",
    "quality",
    "track_ref",
)
FACES_SCHEMA = """
CREATE TABLE faces (
    face_id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    camera TEXT NOT NULL,
    box TEXT NOT NULL,
    track_id INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    identity TEXT,
    score REAL NOT NULL,
    embedder TEXT NOT NULL,
    embedder_version TEXT NOT NULL,
    gallery_version TEXT,
    dim INTEGER NOT NULL,
    embedding BLOB NOT NULL,
    crop TEXT NOT NULL,
    enrolled_as TEXT,
    quality REAL,
    track_ref INTEGER
);
CREATE INDEX faces_by_ts ON faces (ts);
CREATE INDEX faces_by_track ON faces (track_ref);
"""
TRACK_COLUMNS = (
    "track_ref",
    "first_ts",
    "last_ts",
    "camera",
    "box",
    "track_id",
    "identity",
    "verdict",
    "quality",
    "faces",
    "embedder_version",
    "dim",
    "embedding",
    "group_id",
)
TRACKS_SCHEMA = """
CREATE TABLE tracks (
    track_ref INTEGER PRIMARY KEY AUTOINCREMENT,
    first_ts REAL NOT NULL,
    last_ts REAL NOT NULL,
    camera TEXT NOT NULL,
    box TEXT NOT NULL,
    track_id INTEGER NOT NULL,
    identity TEXT,
    verdict TEXT NOT NULL,
    quality REAL NOT NULL,
    faces REAL NOT NULL,
    embedder_version TEXT NOT NULL,
    dim INTEGER NOT NULL,
    embedding BLOB NOT NULL,
    group_id INTEGER
);
CREATE INDEX tracks_by_last_ts ON tracks (last_ts);
"""
SCHEMA = FACES_SCHEMA + TRACKS_SCHEMA
# A history of schema 2 gains the tracks table; each of its faces becomes a track of one face (the
# faces of one track were not tied together then), so its unknown faces can still be grouped.
MIGRATE_2_TO_3 = f"""
ALTER TABLE faces ADD COLUMN track_ref INTEGER;
CREATE INDEX faces_by_track ON faces (track_ref);
{TRACKS_SCHEMA}
INSERT INTO tracks (track_ref, first_ts, last_ts, camera, box, track_id, identity, verdict, quality, faces,
                    embedder_version, dim, embedding)
    SELECT face_id, ts, ts, camera, box, track_id, identity,
           CASE WHEN identity IS NULL THEN 'unknown' ELSE 'recognized' END, COALESCE(quality, 0.0), 1.0,
           embedder_version, dim, embedding FROM faces;
UPDATE faces SET track_ref = face_id;
"""
DAMAGE_ERRORS = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}  # other errors (locked, no permission) are not damage


class DamagedHistory(Exception):
    """The history database cannot be used as it is (says why)."""


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


def history_directory(config) -> Path:
    """Where the history lives: ``history.path``, else the state directory's ``history``."""
    return Path(config.path) if config.path is not None else state_directory() / "history"


def crop_name(face_id: int) -> str:
    return f"{face_id:09d}.jpg"


class FaceHistory:
    """The faces behind decisions, bounded in count and age, in ``path`` (created if missing).

    Raises ``OSError`` when the directory or database cannot be opened at all (permissions, a lock
    held too long); a damaged database is set aside instead."""

    def __init__(self, path: Path, max_faces: int = 100_000, max_age_days: float = 30.0):
        self.path = Path(path)
        self.db_path = self.path / DB_FILE
        self.crops_dir = self.path / CROPS_DIR
        self.max_faces = max_faces
        self.max_age_s = max_age_days * 24 * 3600
        self.dropped = 0
        self.failures = 0
        self._failing = False
        self._lock = threading.Lock()
        self.crops_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open_or_replace()
        except sqlite3.Error as exc:
            raise OSError(f"cannot open face history {self.db_path}: {exc}") from None

    # --- opening ---------------------------------------------------------------------------

    def _open_or_replace(self) -> sqlite3.Connection:
        try:
            return _open_database(self.db_path)
        except DamagedHistory as exc:
            moved_to = self._set_aside()
            log.error(
                "face history database is damaged: moved it aside and started an empty one",
                path=str(self.db_path),
                reason=str(exc),
                moved_to=str(moved_to),
            )
            self.crops_dir.mkdir(exist_ok=True)
            return _open_database(self.db_path)

    def _set_aside(self) -> Path:
        """Rename the database (with its -wal/-shm) and its crops to ``*.damaged-<UTC time>``; the
        crops go too because new face ids start again at 1 and would reuse their names."""
        suffix = _unused_damaged_suffix(self.path)
        for part in ("", "-wal", "-shm"):
            source = self.path / f"{DB_FILE}{part}"
            if source.exists():
                os.replace(source, self.path / f"{DB_FILE}{suffix}{part}")
        if self.crops_dir.exists():
            os.replace(self.crops_dir, self.path / f"{CROPS_DIR}{suffix}")
        return self.path / f"{DB_FILE}{suffix}"

    # --- recording -------------------------------------------------------------------------

    def record(
        self,
        *,
        ts: float,
        camera: str,
        box: str,
        track_id: int,
        event_type: str,
        identity: str | None,
        score: float,
        embedder: str,
        embedder_version: str,
        gallery_version: str | None,
        embedding: np.ndarray,
        crop: np.ndarray,
        quality: float | None = None,
    ) -> int | None:
        """Store one face (``crop`` is BGR) and return its id, or None when it could not be stored
        (logged and counted in ``failures``; never raises)."""
        with self._lock:
            try:
                vector = unit_vector(embedding)
                jpeg = _encode_jpeg(crop)
                values = (
                    float(ts), str(camera), str(box), int(track_id), str(event_type), identity, float(score),
                    str(embedder), str(embedder_version), gallery_version, None if quality is None else float(quality),
                )  # plain Python values: sqlite3 cannot bind numpy scalars
                face_id, dropped_ids = self._insert(values, vector, jpeg)
            except Exception as exc:  # noqa: BLE001 - a history failure must never stop recognition
                self._record_failed(exc)
                return None
            self._record_succeeded()
        self._remove_crops(dropped_ids)
        return face_id

    def record_track(
        self,
        *,
        first_ts: float,
        last_ts: float,
        camera: str,
        box: str,
        track_id: int,
        identity: str | None,
        verdict: str,
        quality: float,
        faces: float,
        embedder_version: str,
        embedding: np.ndarray,
        face_ids: list[int],
        group_id: int | None = None,
    ) -> int | None:
        """Store one ended track (its template ``embedding``) and tie its recorded faces
        (``face_ids``) to it; returns its ``track_ref``, or None when it could not be stored
        (logged and counted in ``failures``, like a face; never raises)."""
        with self._lock:
            try:
                vector = unit_vector(embedding)
                values = (
                    float(first_ts), float(last_ts), str(camera), str(box), int(track_id), identity, str(verdict),
                    float(quality), float(faces), str(embedder_version), len(vector), vector.tobytes(),
                    None if group_id is None else int(group_id),
                )
                with self._transaction():
                    track_ref = self._db.execute(
                        "INSERT INTO tracks (first_ts, last_ts, camera, box, track_id, identity, verdict, quality, "
                        "faces, embedder_version, dim, embedding, group_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        values,
                    ).lastrowid
                    self._db.executemany(
                        "UPDATE faces SET track_ref = ? WHERE face_id = ?", [(track_ref, int(i)) for i in face_ids]
                    )
                    self._drop_oldest("tracks", "track_ref", "last_ts")
            except Exception as exc:  # noqa: BLE001 - a history failure must never stop recognition
                self._record_failed(exc)
                return None
            self._record_succeeded()
        return track_ref

    def set_groups(self, groups: dict[int, int]) -> None:
        """Record the group each of these tracks joined (track_ref -> group_id)."""
        with self._lock, self._transaction():
            self._db.executemany(
                "UPDATE tracks SET group_id = ? WHERE track_ref = ?", [(int(g), int(t)) for t, g in groups.items()]
            )

    def largest_group_id(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COALESCE(MAX(group_id), 0) FROM tracks").fetchone()[0]

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction (the caller holds ``_lock``): committed, or rolled back on any error."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _insert(self, values: tuple, vector: np.ndarray, jpeg: bytes) -> tuple[int, list[int]]:
        """Insert the row, write its crop and apply the bounds in one transaction: a row is never
        committed without its crop. Returns the face id and the ids dropped by the bounds."""
        written: Path | None = None
        try:
            with self._transaction():
                face_id = self._db.execute(
                    "INSERT INTO faces (ts, camera, box, track_id, event_type, identity, score, embedder, "
                    "embedder_version, gallery_version, quality, dim, embedding, crop) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')",
                    (*values, len(vector), vector.tobytes()),
                ).lastrowid
                written = self.crops_dir / crop_name(face_id)
                _atomic_write(written, jpeg)
                self._db.execute("UPDATE faces SET crop = ? WHERE face_id = ?", (written.name, face_id))
                dropped_ids = self._drop_oldest("faces", "face_id", "ts")
        except BaseException:
            if written is not None:
                written.unlink(missing_ok=True)
            raise
        self.dropped += len(dropped_ids)
        return face_id, dropped_ids

    def _drop_oldest(self, table: str, key: str, time_column: str) -> list[int]:
        """Apply the bounds to ``table`` (faces, or tracks): rows older than ``max_age_days``, then
        the oldest beyond ``max_faces``; returns the ``key`` of each row dropped."""
        cutoff = time.time() - self.max_age_s
        dropped = [row[0] for row in self._db.execute(f"DELETE FROM {table} WHERE {time_column} < ? RETURNING {key}", (cutoff,))]
        excess = self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] - self.max_faces
        if excess > 0:
            dropped += [
                row[0]
                for row in self._db.execute(
                    f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} ORDER BY {time_column}, {key} LIMIT ?) "
                    f"RETURNING {key}",
                    (excess,),
                )
            ]
        return dropped

    def _remove_crops(self, face_ids: list[int]) -> None:
        # Paths come from the ids, not the stored names, so a tampered row cannot point outside crops/.
        for face_id in face_ids:
            try:
                (self.crops_dir / crop_name(face_id)).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("cannot remove a dropped face crop", face_id=face_id, error=str(exc))

    def _record_failed(self, exc: Exception) -> None:
        self.failures += 1
        if not self._failing or self.failures % LOG_EVERY_FAILURES == 0:
            log.error(
                "face history cannot record a face: skipped, recognition goes on",
                error=f"{type(exc).__name__}: {exc}",
                failures_total=self.failures,
            )
        self._failing = True

    def _record_succeeded(self) -> None:
        if self._failing:
            log.info("face history records again", failures_total=self.failures)
        self._failing = False

    # --- reading ---------------------------------------------------------------------------

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

    def mark_enrolled(self, face_ids: list[int], identity: str) -> int:
        """Record that these faces were enrolled as ``identity``; returns how many rows exist and were
        marked. The name is checked as the gallery checks it (``ValueError`` if refused)."""
        identity = validate_identity(identity)
        with self._lock, self._transaction():
            marked = self._db.executemany(
                "UPDATE faces SET enrolled_as = ? WHERE face_id = ?", [(identity, int(face_id)) for face_id in face_ids]
            ).rowcount
        return marked

    def _row(self, record: tuple) -> FaceRow:
        face_id, *fields, dim, blob, enrolled_as, quality, track_ref = record
        embedding = _embedding(blob, dim, f"face {face_id}")
        return FaceRow(face_id, *fields, embedding, self.crops_dir / crop_name(face_id), enrolled_as, quality, track_ref)

    def tracks(
        self,
        embedder_version: str,
        since: float | None = None,
        camera: str | None = None,
        unknown_only: bool = False,
        grouped: bool | None = None,
    ) -> list[TrackRow]:
        """Ended tracks of one embedder version matching every filter given (``since``: last seen
        then or later; ``grouped``: with or without a group), oldest first."""
        conditions, parameters = _filters("last_ts", since, camera, embedder_version, unknown_only)
        if grouped is not None:
            conditions.append("group_id IS NOT NULL" if grouped else "group_id IS NULL")
        with self._lock:
            records = self._db.execute(
                f"{_SELECT_TRACKS} WHERE {' AND '.join(conditions)} ORDER BY first_ts, track_ref", parameters
            ).fetchall()
        rows = []
        for track_ref, *fields, dim, blob, group_id in records:
            rows.append(TrackRow(track_ref, *fields, _embedding(blob, dim, f"track {track_ref}"), group_id))
        return rows

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
                f"MIN(f.ts) AS first, MAX(f.ts), GROUP_CONCAT(DISTINCT f.camera) {_UNKNOWN_FACES} WHERE {where} "
                "GROUP BY g HAVING size >= ? ORDER BY size DESC, first, g LIMIT ?",
                [*parameters, min_faces, -1 if limit is None else limit],
            ).fetchall()
            wanted = {summary[0] for summary in summaries}
            members: dict[int, list[tuple[float, float, int]]] = {key: [] for key in wanted}
            for key, face_id, quality, ts in self._db.execute(
                f"SELECT {_GROUP_KEY}, f.face_id, f.quality, f.ts {_UNKNOWN_FACES} WHERE {where}", parameters
            ):
                if key in wanted:
                    members[key].append((-1.0 if quality is None else quality, ts, face_id))
        groups = []
        for number, (key, size, tracks, first, last, cameras) in enumerate(summaries, start=1):
            best_first = tuple(face_id for _, _, face_id in sorted(members[key], reverse=True))
            cameras = tuple(sorted(cameras.split(",")))
            groups.append(Cluster(number, best_first, size, tracks, cameras, first, last, best_first[0], self.crops_dir))
        return groups

    def disk_bytes(self) -> int:
        """Bytes the history occupies on disk (allocated blocks): database, WAL and crops."""
        files = [self.db_path, self.path / f"{DB_FILE}-wal"]
        total = sum(_allocated_bytes(path) for path in files if path.exists())
        with os.scandir(self.crops_dir) as entries:
            total += sum(entry.stat().st_blocks * 512 for entry in entries if entry.is_file())
        return total

    def close(self) -> None:
        with self._lock:
            self._db.close()


_SELECT = (
    "SELECT face_id, ts, camera, box, track_id, event_type, identity, score, embedder, embedder_version, "
    "gallery_version, dim, embedding, enrolled_as, quality, track_ref FROM faces"
)
_SELECT_TRACKS = (
    "SELECT track_ref, first_ts, last_ts, camera, box, track_id, identity, verdict, quality, faces, embedder_version, "
    "dim, embedding, group_id FROM tracks"
)


def _open_database(path: Path) -> sqlite3.Connection:
    """A checked connection to the history at ``path`` (created empty when missing); raises
    ``DamagedHistory`` when the file is not a usable history database."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        _check_integrity(db)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        _check_or_create_schema(db)
    except BaseException as exc:
        db.close()
        if isinstance(exc, sqlite3.DatabaseError) and getattr(exc, "sqlite_errorname", None) in DAMAGE_ERRORS:
            raise DamagedHistory(str(exc)) from None
        raise
    return db


def _check_integrity(db: sqlite3.Connection) -> None:
    problems = [row[0] for row in db.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise DamagedHistory(f"integrity check: {'; '.join(problems[:5])}")


def _check_or_create_schema(db: sqlite3.Connection) -> None:
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        db.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        return
    columns = tuple(row[1] for row in db.execute("PRAGMA table_info(faces)"))
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == 1 and columns == COLUMNS[:-2]:  # a history from before face quality: its faces have none
        db.executescript("BEGIN; ALTER TABLE faces ADD COLUMN quality REAL; PRAGMA user_version = 2; COMMIT;")
        columns, version = COLUMNS[:-1], 2
    if version == 2 and columns == COLUMNS[:-1] and "tracks" not in tables:
        db.executescript(f"BEGIN; {MIGRATE_2_TO_3} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        columns, version = COLUMNS, SCHEMA_VERSION
    track_columns = tuple(row[1] for row in db.execute("PRAGMA table_info(tracks)"))
    if columns != COLUMNS or track_columns != TRACK_COLUMNS or version != SCHEMA_VERSION:
        raise DamagedHistory(
            f"not a face history database (schema version {version}, faces columns {list(columns)}, "
            f"tracks columns {list(track_columns)})"
        )


def _unused_damaged_suffix(directory: Path) -> str:
    """``.damaged-<UTC time>``, with a counter when a damaged set from the same second is there."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    suffix, counter = f".damaged-{stamp}", 0
    while (directory / f"{DB_FILE}{suffix}").exists() or (directory / f"{CROPS_DIR}{suffix}").exists():
        counter += 1
        suffix = f".damaged-{stamp}-{counter}"
    return suffix


# The faces unknown groups are listed from, each with its group's key: the group's id, or minus
# the face id of a face that is a group of its own.
_UNKNOWN_FACES = "FROM faces f LEFT JOIN tracks t ON t.track_ref = f.track_ref"
_GROUP_KEY = "COALESCE(t.group_id, -f.face_id)"


def _unknown_faces_where(since: float | None, camera: str | None, embedder_version: str) -> tuple[str, list]:
    conditions, parameters = _filters("f.ts", since, camera, embedder_version, unknown_only=True, table="f.")
    return " AND ".join([*conditions, "f.enrolled_as IS NULL"]), parameters


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


def _embedding(blob: bytes, dim: int, what: str) -> np.ndarray:
    embedding = np.frombuffer(blob, dtype=EMBEDDING_DTYPE).astype(np.float32, copy=False)
    if embedding.shape != (dim,):
        raise DamagedHistory(f"{what}: embedding of {embedding.size} values, expected {dim}")
    return embedding


def unit_vector(embedding: np.ndarray) -> np.ndarray:
    """The embedding as little-endian float32 of length 1. A vector already of unit length (what the
    embedders produce) is kept bit for bit: dividing it by its norm again would change the last bit."""
    vector = np.asarray(embedding, dtype=EMBEDDING_DTYPE).ravel()
    norm = float(np.linalg.norm(vector))
    if not vector.size or not np.isfinite(norm) or norm == 0.0:
        raise ValueError("embedding is empty, zero or not finite")
    return vector if abs(norm - 1.0) <= 1e-5 else (vector / norm).astype(EMBEDDING_DTYPE)


def stacked_embeddings(rows: list[FaceRow]) -> np.ndarray:
    """The rows' embeddings as one float32 matrix, a row each, for the queries over them."""
    # Cosines between two embedders' vectors mean nothing, even at the same dimension.
    versions = {row.embedder_version for row in rows}
    if len(versions) > 1:
        raise ValueError(f"faces from {len(versions)} embedder versions: select one with faces(embedder_version=...)")
    return np.ascontiguousarray(np.stack([row.embedding for row in rows]), dtype=np.float32)


def _encode_jpeg(crop: np.ndarray) -> bytes:
    encoded, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not encoded:
        raise ValueError("cannot encode the face crop as JPEG")
    return jpeg.tobytes()


def _atomic_write(path: Path, data: bytes) -> None:
    # No fsync: the history is a best-effort record on the recognition path, and a crop lost to a
    # power cut only leaves its row without an image; the rename still hides half-written files.
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _allocated_bytes(path: Path) -> int:
    return path.stat().st_blocks * 512
