"""Writing the face history: recording faces (rows and JPEG crops) and ended tracks, within bounds.

``FaceHistory`` owns the history directory (``schema``: its files, tables and upgrades): one
connection guarded by a lock, usable from several threads; it reads as ``queries.HistoryQueries``.
Face ids are never reused (AUTOINCREMENT), so an id an operator copied from a listing cannot come to
mean another face. Recording never raises into the recognition pipeline: a full disk, a damaged
database or anything else is logged, counted (``failures``) and the face is skipped.

Bounds: after each insert the rows older than ``max_age_days`` go, then the oldest rows beyond
``max_faces``, with their crops (counted in ``dropped``); tracks are bounded alike. Steady state is a
rolling window.

Faces are stamped with the wall clock, which NTP may step by days or years on a box without a
real-time clock. When it steps, the stamps this run made before the step are moved by the step
(they were off by it), so the age bound drops no face because the clock was set.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from edge_daemon.clock import Clock, WallClockSteps
from edge_daemon.config.paths import state_directory
from edge_daemon.history.queries import HistoryQueries, Revision
from edge_daemon.history.schema import CROPS_DIR, DB_FILE, crop_name, open_history_database, unit_vector
from edge_daemon.logs import RepeatedFailure, get_logger
from edge_daemon.recognition.gallery import validate_identity

log = get_logger(__name__)

JPEG_QUALITY = 90


def history_directory(config) -> Path:
    """Where the history lives: ``history.path``, else the state directory's ``history``."""
    return Path(config.path) if config.path is not None else state_directory() / "history"


class FaceHistory(HistoryQueries):
    """The faces behind decisions, bounded in count and age, in ``path`` (created if missing).

    Raises ``OSError`` when the directory or database cannot be opened at all (permissions, a lock
    held too long); a damaged database is set aside instead."""

    def __init__(self, path: Path, max_faces: int = 100_000, max_age_days: float = 30.0, clock: Clock = Clock()):
        self.path = Path(path)
        self.db_path = self.path / DB_FILE
        self.max_faces = max_faces
        self.max_age_s = max_age_days * 24 * 3600
        self.dropped = 0
        self._recording = RepeatedFailure(
            log, "face history cannot record a face: skipped, recognition goes on", "face history records again"
        )
        super().__init__(open_history_database(self.path), threading.Lock(), self.path / CROPS_DIR)
        self._clock = clock
        self._wall_clock = WallClockSteps(clock)
        # Rows after these were stamped by this run; steps of the wall clock not yet applied to them
        # (step, last face id, last track ref when it was noticed).
        self._run_first = (self._last_id("faces", "face_id"), self._last_id("tracks", "track_ref"))
        self._unapplied_steps: list[tuple[float, int, int]] = []

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
                self._follow_wall_clock()
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
                self._follow_wall_clock()
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

    def revise(self, revisions: dict[int, Revision]) -> None:
        """Record the revised decision of each of these tracks (track_ref -> ``Revision``), beside
        what was decided at the time."""
        with self._lock, self._transaction():
            self._db.executemany(
                "UPDATE tracks SET revised_identity = ?, revised_verdict = ?, revised_score = ?, revised_at = ?, "
                "revised_gallery = ? WHERE track_ref = ?",
                [
                    (r.identity, r.verdict, float(r.score), float(r.at), r.gallery_version, int(track_ref))
                    for track_ref, r in revisions.items()
                ],
            )

    def mark_enrolled(self, face_ids: list[int], identity: str) -> int:
        """Record that these faces were enrolled as ``identity``; returns how many rows exist and were
        marked. The name is checked as the gallery checks it (``ValueError`` if refused)."""
        identity = validate_identity(identity)
        with self._lock, self._transaction():
            marked = self._db.executemany(
                "UPDATE faces SET enrolled_as = ? WHERE face_id = ?", [(identity, int(face_id)) for face_id in face_ids]
            ).rowcount
        return marked

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

    def _last_id(self, table: str, key: str) -> int:
        return self._db.execute(f"SELECT COALESCE(MAX({key}), 0) FROM {table}").fetchone()[0]

    def _follow_wall_clock(self) -> None:
        """Move this run's stamps made before a step of the wall clock by the step (the caller holds
        ``_lock``). One that cannot be written now (a full disk) is applied with a later record."""
        step = self._wall_clock.step()
        if step:
            self._unapplied_steps.append((step, self._last_id("faces", "face_id"), self._last_id("tracks", "track_ref")))
        while self._unapplied_steps:
            step, faces_up_to, tracks_up_to = self._unapplied_steps[0]
            first_face, first_track = self._run_first
            with self._transaction():
                self._db.execute("UPDATE faces SET ts = ts + ? WHERE face_id > ? AND face_id <= ?", (step, first_face, faces_up_to))
                self._db.execute(
                    "UPDATE tracks SET first_ts = first_ts + ?, last_ts = last_ts + ? WHERE track_ref > ? AND track_ref <= ?",
                    (step, step, first_track, tracks_up_to),
                )
            self._unapplied_steps.pop(0)

    def _drop_oldest(self, table: str, key: str, time_column: str) -> list[int]:
        """Apply the bounds to ``table`` (faces, or tracks): rows older than ``max_age_days``, then
        the oldest beyond ``max_faces``; returns the ``key`` of each row dropped."""
        cutoff = self._clock.wall() - self.max_age_s
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

    @property
    def failures(self) -> int:
        """Faces and tracks that could not be recorded since start."""
        return self._recording.total

    @property
    def problem(self) -> str | None:
        """Why faces cannot be recorded now (the latest failure of a run of them), or None."""
        reason = self._recording.reason
        return f"face history cannot record faces ({reason})" if reason else None

    def _record_failed(self, exc: Exception) -> None:
        self._recording.failed(f"{type(exc).__name__}: {exc}")

    def _record_succeeded(self) -> None:
        self._recording.succeeded()

    # --- disk use and closing -----------------------------------------------------------------

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
