"""The face history's files, its SQLite schema, the upgrades of older databases, and opening it.

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
               An unnamed track decided again after the gallery changed (``reprocess``) keeps what was
               decided and sent at the time; the new decision is beside it: ``revised_identity``,
               ``revised_verdict``, ``revised_score``, ``revised_at`` (when) and ``revised_gallery``
               (the gallery version that decided it), NULL while never revised.
  crops/       the face as a JPEG, ``<face_id:09d>.jpg``, written to a temporary name and renamed.

A database of an older schema version is upgraded in place when opened. A database found damaged
when opened (not SQLite, failing ``PRAGMA integrity_check``, another schema) is moved aside with its
crops as ``history.db.damaged-<UTC time>`` / ``crops.damaged-<UTC time>`` and an empty one started.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge_daemon.logs import get_logger

log = get_logger(__name__)

DB_FILE = "history.db"
CROPS_DIR = "crops"
SCHEMA_VERSION = 4  # PRAGMA user_version of a history database; 2 added ``quality``, 3 ``tracks``, 4 revisions
EMBEDDING_DTYPE = np.dtype("<f4")

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
REVISION_COLUMNS = ("revised_identity", "revised_verdict", "revised_score", "revised_at", "revised_gallery")
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
    *REVISION_COLUMNS,
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
# A history of schema 3 gains the revised decisions of tracks (none yet), and the indexes the review
# pages' listings filter by: faces by camera, tracks by when they were revised.
MIGRATE_3_TO_4 = """
ALTER TABLE tracks ADD COLUMN revised_identity TEXT;
ALTER TABLE tracks ADD COLUMN revised_verdict TEXT;
ALTER TABLE tracks ADD COLUMN revised_score REAL;
ALTER TABLE tracks ADD COLUMN revised_at REAL;
ALTER TABLE tracks ADD COLUMN revised_gallery TEXT;
CREATE INDEX IF NOT EXISTS faces_by_camera ON faces (camera, ts);
CREATE INDEX IF NOT EXISTS tracks_by_revised_at ON tracks (revised_at);
"""
# A new database is made as schema 3 and upgraded: one definition of each table, and a new
# database exactly like an upgraded one.
SCHEMA = FACES_SCHEMA + TRACKS_SCHEMA + MIGRATE_3_TO_4
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
# Who was seen when: the people page's "last seen" is one lookup per person in it, not a scan of
# every face. Made when missing at each open, so a history of any schema version gains it.
IDENTITY_INDEX = "CREATE INDEX IF NOT EXISTS faces_by_identity ON faces (identity, ts)"
DAMAGE_ERRORS = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}  # other errors (locked, no permission) are not damage


class DamagedHistory(Exception):
    """The history database cannot be used as it is (says why)."""


def crop_name(face_id: int) -> str:
    return f"{face_id:09d}.jpg"


def unit_vector(embedding: np.ndarray) -> np.ndarray:
    """The embedding as little-endian float32 of length 1. A vector already of unit length (what the
    embedders produce) is kept bit for bit: dividing it by its norm again would change the last bit."""
    vector = np.asarray(embedding, dtype=EMBEDDING_DTYPE).ravel()
    norm = float(np.linalg.norm(vector))
    if not vector.size or not np.isfinite(norm) or norm == 0.0:
        raise ValueError("embedding is empty, zero or not finite")
    return vector if abs(norm - 1.0) <= 1e-5 else (vector / norm).astype(EMBEDDING_DTYPE)


def stored_embedding(blob: bytes, dim: int, what: str) -> np.ndarray:
    """An ``embedding`` column read back (read-only float32); ``DamagedHistory`` when it does not
    hold ``dim`` values (``what``: the row, for the message)."""
    embedding = np.frombuffer(blob, dtype=EMBEDDING_DTYPE).astype(np.float32, copy=False)
    if embedding.shape != (dim,):
        raise DamagedHistory(f"{what}: embedding of {embedding.size} values, expected {dim}")
    return embedding


def open_history_database(directory: Path) -> sqlite3.Connection:
    """The connection to the history database in ``directory`` (created with its crops directory
    when missing, upgraded when older), one usable from several threads. Raises ``OSError`` when the
    directory or database cannot be opened at all (permissions, a lock held too long); a damaged
    database is set aside and an empty one started instead."""
    (directory / CROPS_DIR).mkdir(parents=True, exist_ok=True)
    try:
        return _open_or_replace(directory)
    except sqlite3.Error as exc:
        raise OSError(f"cannot open face history {directory / DB_FILE}: {exc}") from None


def _open_or_replace(directory: Path) -> sqlite3.Connection:
    db_path = directory / DB_FILE
    try:
        return _open_database(db_path)
    except DamagedHistory as exc:
        moved_to = _set_aside(directory)
        log.error(
            "face history database is damaged: moved it aside and started an empty one",
            path=str(db_path),
            reason=str(exc),
            moved_to=str(moved_to),
        )
        (directory / CROPS_DIR).mkdir(exist_ok=True)
        return _open_database(db_path)


def _set_aside(directory: Path) -> Path:
    """Rename the database (with its -wal/-shm) and its crops to ``*.damaged-<UTC time>``; the
    crops go too because new face ids start again at 1 and would reuse their names."""
    suffix = _unused_damaged_suffix(directory)
    for part in ("", "-wal", "-shm"):
        source = directory / f"{DB_FILE}{part}"
        if source.exists():
            os.replace(source, directory / f"{DB_FILE}{suffix}{part}")
    crops_dir = directory / CROPS_DIR
    if crops_dir.exists():
        os.replace(crops_dir, directory / f"{CROPS_DIR}{suffix}")
    return directory / f"{DB_FILE}{suffix}"


def _unused_damaged_suffix(directory: Path) -> str:
    """``.damaged-<UTC time>``, with a counter when a damaged set from the same second is there."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    suffix, counter = f".damaged-{stamp}", 0
    while (directory / f"{DB_FILE}{suffix}").exists() or (directory / f"{CROPS_DIR}{suffix}").exists():
        counter += 1
        suffix = f".damaged-{stamp}-{counter}"
    return suffix


def _open_database(path: Path) -> sqlite3.Connection:
    """A checked connection to the history at ``path`` (created empty when missing); raises
    ``DamagedHistory`` when the file is not a usable history database."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        _check_integrity(db)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        _check_or_create_schema(db)
        db.execute(IDENTITY_INDEX)
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
    """Create the schema in an empty database, upgrade an older one step by step, and refuse
    (``DamagedHistory``) any other."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        db.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        return
    columns = _columns(db, "faces")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == 1 and columns == COLUMNS[:-2]:  # a history from before face quality: its faces have none
        db.executescript("BEGIN; ALTER TABLE faces ADD COLUMN quality REAL; PRAGMA user_version = 2; COMMIT;")
        columns, version = COLUMNS[:-1], 2
    if version == 2 and columns == COLUMNS[:-1] and "tracks" not in tables:
        db.executescript(f"BEGIN; {MIGRATE_2_TO_3} PRAGMA user_version = 3; COMMIT;")
        columns, version = COLUMNS, 3
    if version == 3 and columns == COLUMNS and _columns(db, "tracks") == TRACK_COLUMNS[:-len(REVISION_COLUMNS)]:
        db.executescript(f"BEGIN; {MIGRATE_3_TO_4} PRAGMA user_version = 4; COMMIT;")
        version = 4
    track_columns = _columns(db, "tracks")
    if columns != COLUMNS or track_columns != TRACK_COLUMNS or version != SCHEMA_VERSION:
        raise DamagedHistory(
            f"not a face history database (schema version {version}, faces columns {list(columns)}, "
            f"tracks columns {list(track_columns)})"
        )


def _columns(db: sqlite3.Connection, table: str) -> tuple[str, ...]:
    return tuple(row[1] for row in db.execute(f"PRAGMA table_info({table})"))
