"""The face history: every face behind a decision, kept so an operator can act on it later.

Storage, in one directory:
  history.db   SQLite in WAL mode, one row per face (``faces``): when, which camera and box, the
               track, the decision (``event_type``, ``identity`` NULL when unknown, ``score``), the
               embedder and gallery that made it, the embedding (little-endian float32 bytes,
               L2-normalised, with ``dim``), the crop's file name, and ``enrolled_as`` once an
               operator has enrolled the face.
  crops/       the face as a JPEG, ``<face_id:09d>.jpg``, written to a temporary name and renamed.

``FaceHistory`` owns both: one connection guarded by a lock, usable from several threads. Face ids
are never reused (AUTOINCREMENT), so an id an operator copied from a listing cannot come to mean
another face. Recording never raises into the recognition pipeline: a full disk, a damaged database
or anything else is logged, counted (``failures``) and the face is skipped. A database found damaged
when opened (not SQLite, failing ``PRAGMA integrity_check``, another schema) is moved aside with its
crops as ``history.db.damaged-<UTC time>`` / ``crops.damaged-<UTC time>`` and an empty one started.

Bounds: after each insert the rows older than ``max_age_days`` go, then the oldest rows beyond
``max_faces``, with their crops (counted in ``dropped``). Steady state is a rolling window.

Queries are functions over the rows ``FaceHistory.faces`` returns:
  ``cluster_faces``  groups faces into people (rule below);
  ``search_faces``   the stored faces most like a query embedding;
  ``contact_sheet``  one PNG row of crops per cluster, for a person to look at.

Clustering rule. Single linkage (connected components of the graph "cosine >= threshold") chains:
one face that looks a little like two people (a blurred or half-turned face) joins them into one
cluster. So the components only bound which faces may share a cluster, and inside each component
a face joins a cluster only if its cosine to the cluster's normalised mean is >= threshold:
  1. faces are taken oldest first; each joins the cluster whose mean is closest if that is within
     the threshold, else starts a new one (leader clustering on means);
  2. one reassignment step: every face moves to the closest final mean, or is left alone when none
     is within the threshold (the first pass depends on which faces came first; this undoes it).
A mean stands for many faces, so a bridge close to one or two faces of each person is far from
both means and cannot pull the two together, while a genuine face is closer to its person's mean
than to the person's individual faces, so the same threshold as the gallery's can be used.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import cv2
import faiss
import numpy as np

from edge_daemon.gallery import validate_identity
from edge_daemon.logs import get_logger

log = get_logger(__name__)

DB_FILE = "history.db"
CROPS_DIR = "crops"
SCHEMA_VERSION = 1  # PRAGMA user_version of a history database
JPEG_QUALITY = 90
EMBEDDING_DTYPE = np.dtype("<f4")
LOG_EVERY_FAILURES = 100  # while recording keeps failing, log the first failure and then every 100th
LABEL_HEIGHT = 24  # pixels above each contact-sheet row for its label

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
)
SCHEMA = """
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
    enrolled_as TEXT
);
CREATE INDEX faces_by_ts ON faces (ts);
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


@dataclass(frozen=True)
class Cluster:
    cluster_id: int  # 1-based, largest cluster first, stable within one call
    face_ids: tuple[int, ...]  # most typical first (closest to the cluster's mean)
    size: int
    cameras: tuple[str, ...]
    first_seen: float
    last_seen: float
    representative: int  # the face closest to the cluster's mean
    representative_crop: Path


def history_directory(config) -> Path:
    """Where the history lives: ``history.path``, else the state directory's ``history``."""
    from edge_daemon.comms.spool import state_directory

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
    ) -> int | None:
        """Store one face (``crop`` is BGR) and return its id, or None when it could not be stored
        (logged and counted in ``failures``; never raises)."""
        with self._lock:
            try:
                vector = _unit_vector(embedding)
                jpeg = _encode_jpeg(crop)
                values = (
                    float(ts), str(camera), str(box), int(track_id), str(event_type), identity, float(score),
                    str(embedder), str(embedder_version), gallery_version,
                )  # plain Python values: sqlite3 cannot bind numpy scalars
                face_id, dropped_ids = self._insert(values, vector, jpeg)
            except Exception as exc:  # noqa: BLE001 - a history failure must never stop recognition
                self._record_failed(exc)
                return None
            self._record_succeeded()
        self._remove_crops(dropped_ids)
        return face_id

    def _insert(self, values: tuple, vector: np.ndarray, jpeg: bytes) -> tuple[int, list[int]]:
        """Insert the row, write its crop and apply the bounds in one transaction: a row is never
        committed without its crop. Returns the face id and the ids dropped by the bounds."""
        written: Path | None = None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            face_id = self._db.execute(
                "INSERT INTO faces (ts, camera, box, track_id, event_type, identity, score, embedder, "
                "embedder_version, gallery_version, dim, embedding, crop) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')",
                (*values, len(vector), vector.tobytes()),
            ).lastrowid
            written = self.crops_dir / crop_name(face_id)
            _atomic_write(written, jpeg)
            self._db.execute("UPDATE faces SET crop = ? WHERE face_id = ?", (written.name, face_id))
            dropped_ids = self._drop_beyond_bounds()
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if written is not None:
                written.unlink(missing_ok=True)
            raise
        self.dropped += len(dropped_ids)
        return face_id, dropped_ids

    def _drop_beyond_bounds(self) -> list[int]:
        cutoff = time.time() - self.max_age_s
        dropped = [row[0] for row in self._db.execute("DELETE FROM faces WHERE ts < ? RETURNING face_id", (cutoff,))]
        excess = self._db.execute("SELECT COUNT(*) FROM faces").fetchone()[0] - self.max_faces
        if excess > 0:
            dropped += [
                row[0]
                for row in self._db.execute(
                    "DELETE FROM faces WHERE face_id IN (SELECT face_id FROM faces ORDER BY ts, face_id LIMIT ?) "
                    "RETURNING face_id",
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
    ) -> list[FaceRow]:
        """Stored faces matching every filter given, newest first."""
        conditions, parameters = [], []
        if since is not None:
            conditions.append("ts >= ?")
            parameters.append(since)
        if camera is not None:
            conditions.append("camera = ?")
            parameters.append(camera)
        if unknown_only:
            conditions.append("identity IS NULL")
        if embedder_version is not None:
            conditions.append("embedder_version = ?")
            parameters.append(embedder_version)
        if not_enrolled:
            conditions.append("enrolled_as IS NULL")
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        with self._lock:
            records = self._db.execute(f"{_SELECT} {where} ORDER BY ts DESC, face_id DESC", parameters).fetchall()
        return [self._row(record) for record in records]

    def face(self, face_id: int) -> FaceRow | None:
        with self._lock:
            record = self._db.execute(f"{_SELECT} WHERE face_id = ?", (face_id,)).fetchone()
        return None if record is None else self._row(record)

    def mark_enrolled(self, face_ids: list[int], identity: str) -> int:
        """Record that these faces were enrolled as ``identity``; returns how many rows exist and were
        marked. The name is checked as the gallery checks it (``ValueError`` if refused)."""
        identity = validate_identity(identity)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                marked = self._db.executemany(
                    "UPDATE faces SET enrolled_as = ? WHERE face_id = ?", [(identity, int(face_id)) for face_id in face_ids]
                ).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return marked

    def _row(self, record: tuple) -> FaceRow:
        face_id, *fields, dim, blob, enrolled_as = record
        embedding = np.frombuffer(blob, dtype=EMBEDDING_DTYPE).astype(np.float32, copy=False)
        if embedding.shape != (dim,):
            raise DamagedHistory(f"face {face_id}: embedding of {embedding.size} values, expected {dim}")
        return FaceRow(face_id, *fields, embedding, self.crops_dir / crop_name(face_id), enrolled_as)

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
    "gallery_version, dim, embedding, enrolled_as FROM faces"
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
    if columns != COLUMNS or version != SCHEMA_VERSION:
        raise DamagedHistory(f"not a face history database (schema version {version}, faces columns {list(columns)})")


def _unused_damaged_suffix(directory: Path) -> str:
    """``.damaged-<UTC time>``, with a counter when a damaged set from the same second is there."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    suffix, counter = f".damaged-{stamp}", 0
    while (directory / f"{DB_FILE}{suffix}").exists() or (directory / f"{CROPS_DIR}{suffix}").exists():
        counter += 1
        suffix = f".damaged-{stamp}-{counter}"
    return suffix


def _unit_vector(embedding: np.ndarray) -> np.ndarray:
    """The embedding as little-endian float32 of length 1. A vector already of unit length (what the
    embedders produce) is kept bit for bit: dividing it by its norm again would change the last bit."""
    vector = np.asarray(embedding, dtype=EMBEDDING_DTYPE).ravel()
    norm = float(np.linalg.norm(vector))
    if not vector.size or not np.isfinite(norm) or norm == 0.0:
        raise ValueError("embedding is empty, zero or not finite")
    return vector if abs(norm - 1.0) <= 1e-5 else (vector / norm).astype(EMBEDDING_DTYPE)


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


# --- queries ---------------------------------------------------------------------------------


def cluster_faces(rows: list[FaceRow], threshold: float) -> list[Cluster]:
    """Group ``rows`` (of one embedder version) so that one cluster is about one person; the rule is
    in the module docstring. Faces that joined no one are returned as clusters of one, after the
    others; clusters are ordered largest first (then earliest seen)."""
    if not rows:
        return []
    vectors = _stacked_embeddings(rows)
    groups: list[np.ndarray] = []
    for members in _components_oldest_first(rows, _connected_components(vectors, threshold)):
        groups += _split_by_mean(vectors, members, threshold) if len(members) > 1 else [members]
    clusters = [_describe(members, rows, vectors) for members in groups]
    clusters.sort(key=lambda cluster: (-cluster.size, cluster.first_seen, cluster.representative))
    return [replace(cluster, cluster_id=number) for number, cluster in enumerate(clusters, start=1)]


def _stacked_embeddings(rows: list[FaceRow]) -> np.ndarray:
    # Cosines between two embedders' vectors mean nothing, even at the same dimension.
    versions = {row.embedder_version for row in rows}
    if len(versions) > 1:
        raise ValueError(f"faces from {len(versions)} embedder versions: select one with faces(embedder_version=...)")
    return np.ascontiguousarray(np.stack([row.embedding for row in rows]), dtype=np.float32)


def _connected_components(vectors: np.ndarray, threshold: float, batch: int = 4096) -> np.ndarray:
    """A component label per row of the graph with an edge wherever cosine >= threshold: FAISS
    range search a batch of queries at a time (a frequent face has thousands of neighbours), each
    batch's edges merged at once into a union–find forest."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    radius = float(np.nextafter(np.float32(threshold), np.float32(-2)))  # range_search keeps scores > radius
    parent = np.arange(len(vectors))
    for start in range(0, len(vectors), batch):
        limits, _, neighbours = index.range_search(vectors[start : start + batch], radius)
        queries = start + np.repeat(np.arange(len(limits) - 1), np.diff(limits).astype(np.int64))
        later = neighbours > queries  # each pair is found from both ends, and every face finds itself
        _union(parent, queries[later], neighbours[later])
    return parent


def _components_oldest_first(rows: list[FaceRow], labels: np.ndarray) -> list[np.ndarray]:
    """Row positions of each component, each component's oldest first."""
    by_time = np.lexsort(([row.face_id for row in rows], [row.ts for row in rows]))
    grouped = by_time[np.argsort(labels[by_time], kind="stable")]
    starts = np.flatnonzero(np.diff(labels[grouped])) + 1
    return np.split(grouped, starts)


def _union(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Union–find over many edges at once: hook the larger root of each edge onto the smaller, then
    compress paths until every face points at its root; repeat until no edge joins two roots."""
    while True:
        root_a, root_b = parent[a], parent[b]
        apart = root_a != root_b
        if not apart.any():
            return
        low, high = np.minimum(root_a[apart], root_b[apart]), np.maximum(root_a[apart], root_b[apart])
        np.minimum.at(parent, high, low)
        while not np.array_equal(parent, parent[parent]):
            parent[:] = parent[parent]


def _split_by_mean(vectors: np.ndarray, members: np.ndarray, threshold: float) -> list[np.ndarray]:
    """Split one component (``members``, oldest first) into clusters by cosine to cluster means."""
    sums = np.zeros((len(members), vectors.shape[1]), dtype=np.float64)
    norms = np.zeros(len(members))
    count = 0
    for index in members:
        vector = vectors[index]
        if count:
            cosines = sums[:count] @ vector / norms[:count]
            best = int(np.argmax(cosines))
            if cosines[best] >= threshold:
                sums[best] += vector
                norms[best] = np.linalg.norm(sums[best])
                continue
        sums[count], norms[count] = vector, np.linalg.norm(vector)
        count += 1
    cosines = vectors[members] @ (sums[:count] / norms[:count, None]).T.astype(np.float32)
    nearest = np.argmax(cosines, axis=1)
    close = cosines[np.arange(len(members)), nearest] >= threshold
    groups = [members[close & (nearest == cluster)] for cluster in range(count)]
    return [group for group in groups if len(group)] + [members[i : i + 1] for i in np.flatnonzero(~close)]


def _describe(members: np.ndarray, rows: list[FaceRow], vectors: np.ndarray) -> Cluster:
    """A cluster of ``members`` (row positions), id 0 until the clusters are ordered."""
    mean = vectors[members].sum(axis=0)
    typical_first = members[np.argsort(-(vectors[members] @ mean), kind="stable")]
    faces = [rows[i] for i in typical_first]
    return Cluster(
        cluster_id=0,
        face_ids=tuple(face.face_id for face in faces),
        size=len(faces),
        cameras=tuple(sorted({face.camera for face in faces})),
        first_seen=min(face.ts for face in faces),
        last_seen=max(face.ts for face in faces),
        representative=faces[0].face_id,
        representative_crop=faces[0].crop_path,
    )


def search_faces(
    rows: list[FaceRow], query: np.ndarray, top: int = 20, approximate_from: int = 200_000
) -> list[tuple[FaceRow, float]]:
    """The ``top`` stored faces most like ``query`` (an embedding of the rows' embedder), with their
    cosine, best first: exact search, HNSW from ``approximate_from`` rows on (as the gallery does)."""
    if not rows or top <= 0:
        return []
    vectors = _stacked_embeddings(rows)
    query = _unit_vector(query).astype(np.float32).reshape(1, -1)
    if query.shape[1] != vectors.shape[1]:
        raise ValueError(f"query has {query.shape[1]} dimensions, the faces {vectors.shape[1]}")
    scores, found = _search_index(vectors, approximate_from).search(query, min(top, len(rows)))
    return [(rows[i], float(score)) for score, i in zip(scores[0], found[0]) if i >= 0]


def _search_index(vectors: np.ndarray, approximate_from: int) -> faiss.Index:
    """The gallery's rule (``Gallery._build_index``): exact inner product, HNSW for large sets."""
    dim = vectors.shape[1]
    if len(vectors) >= approximate_from:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 64
    else:
        index = faiss.IndexFlatIP(dim)
    index.add(vectors)
    return index


def contact_sheet(
    clusters: list[Cluster], rows_by_id: dict[int, FaceRow], out: Path, per_row: int = 8, size: int = 96
) -> None:
    """Write a PNG with one row per cluster: its label ("cluster N: M faces") above up to
    ``per_row`` crops, most typical first, each fitted into ``size`` x ``size`` pixels. A face whose
    row or crop is missing shows as a grey square. Height: len(clusters) * (size + LABEL_HEIGHT)."""
    if not clusters:
        raise ValueError("no clusters to draw")
    labels = [f"cluster {cluster.cluster_id}: {cluster.size} face{'s' if cluster.size != 1 else ''}" for cluster in clusters]
    label_width = max(cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0] for label in labels) + 8
    row_height = size + LABEL_HEIGHT
    sheet = np.full((len(clusters) * row_height, max(per_row * size, label_width), 3), 255, dtype=np.uint8)
    for number, (cluster, label) in enumerate(zip(clusters, labels)):
        top = number * row_height
        cv2.putText(sheet, label, (4, top + 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        for column, face_id in enumerate(cluster.face_ids[:per_row]):
            row = rows_by_id.get(face_id)
            tile = _fitted_tile(row.crop_path if row else None, size)
            sheet[top + LABEL_HEIGHT : top + row_height, column * size : (column + 1) * size] = tile
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), sheet):
        raise OSError(f"cannot write the contact sheet {out}")


def _fitted_tile(crop_path: Path | None, size: int) -> np.ndarray:
    """The crop scaled to fit ``size`` x ``size`` without distortion, centred on grey."""
    tile = np.full((size, size, 3), 200, dtype=np.uint8)
    image = cv2.imread(str(crop_path)) if crop_path is not None else None
    if image is None:
        return tile
    scale = size / max(image.shape[:2])
    height, width = (max(1, round(side * scale)) for side in image.shape[:2])
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    top, left = (size - height) // 2, (size - width) // 2
    tile[top : top + height, left : left + width] = resized
    return tile
