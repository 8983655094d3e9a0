"""Reprocessing the history after the gallery changed (``history.reprocess``), and the schema
upgrade that made room for it: real files, a real gallery and matcher with the shipped open-set
table, no mocks."""

from __future__ import annotations

import sqlite3
import time
from types import SimpleNamespace

import cv2
import numpy as np

from edge_daemon.config import GalleryConfig
from edge_daemon.embedders.calibration import OPEN_SET
from edge_daemon.history import DB_FILE, FaceHistory, Revision, reprocess
from edge_daemon.history.schema import SCHEMA_VERSION
from edge_daemon.recognition.gallery import Gallery
from edge_daemon.recognition.matcher import Matcher
from tests.support.import_graph import import_graph
from tests.support.paths import ROOT

DIM = 64
EMBEDDER = SimpleNamespace(name=next(iter(OPEN_SET))[0], version=next(iter(OPEN_SET))[1])  # with a shipped table


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def at_cosine(base: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at exactly ``cosine`` to the unit vector ``base``."""
    other = rng.normal(size=base.size)
    other = unit(other - other.dot(base) * base)
    return unit(cosine * base + np.sqrt(1 - cosine**2) * other)


def ended_track(history: FaceHistory, vector: np.ndarray, track_id: int, verdict: str = "unknown",
                identity: str | None = None, faces: float = 3.0, quality: float = 0.9) -> int:
    """One ended track with one recorded face: the face, then the track (template ``vector``)."""
    start = time.time() - 600 + track_id
    crop = np.full((32, 32, 3), track_id % 256, np.uint8)
    face_id = history.record(
        ts=start, camera="door", box="gatehouse", track_id=track_id, event_type="recognized" if identity else "unknown",
        identity=identity, score=0.3, embedder=EMBEDDER.name, embedder_version=EMBEDDER.version,
        gallery_version="r0", embedding=vector, crop=crop, quality=quality,
    )
    return history.record_track(
        first_ts=start, last_ts=start + 2, camera="door", box="gatehouse", track_id=track_id, identity=identity,
        verdict=verdict, quality=quality, faces=faces, embedder_version=EMBEDDER.version, embedding=vector,
        face_ids=[face_id],
    )


def matcher_over(path, people: dict[str, np.ndarray]) -> Matcher:
    """A gallery of ``people`` saved at ``path``, and the daemon's matcher over it (the open-set
    thresholds of the shipped table, as the daemon derives them)."""
    gallery = Gallery(EMBEDDER.name, EMBEDDER.version, DIM, 0.5, "unit test")
    for name, vector in people.items():
        face = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
        gallery.add(name, vector[None, :], [f"{name}.jpg"], [face])
    gallery.save(path)
    return Matcher(GalleryConfig(path=path), EMBEDDER)


def test_an_unknown_track_of_a_person_enrolled_later_is_named_and_a_stranger_stays_unknown(tmp_path):
    rng = np.random.default_rng(1)
    lin, stranger = unit(rng.normal(size=DIM)), unit(rng.normal(size=DIM))
    history = FaceHistory(tmp_path / "history")
    lin_track = ended_track(history, at_cosine(lin, 0.95, rng), 1)
    unsure_track = ended_track(history, at_cosine(lin, 0.93, rng), 2, verdict="uncertain")
    stranger_track = ended_track(history, stranger, 3)
    named_track = ended_track(history, stranger, 4, verdict="recognized", identity="someone")
    faces_before = [(row.face_id, row.identity, row.score, row.event_type) for row in history.faces()]

    nobody = reprocess(history, matcher_over(tmp_path / "empty", {}), EMBEDDER.version)
    assert (nobody.checked, nobody.changed) == (3, (unsure_track,))  # named tracks are not decided again
    assert history.revised_tracks()[0].revision.verdict == "unknown"  # uncertain before: seen well enough now

    matcher = matcher_over(tmp_path / "gallery", {"Lin-Manuel Miranda": lin})
    result = reprocess(history, matcher, EMBEDDER.version)
    assert set(result.changed) == {lin_track, unsure_track} and result.named == 2
    assert result.gallery_version == matcher.gallery.version
    tracks = {track.track_ref: track for track in history.tracks(EMBEDDER.version)}
    for track_ref in (lin_track, unsure_track):
        revision = tracks[track_ref].revision
        assert (revision.identity, revision.verdict, revision.gallery_version) == (
            "Lin-Manuel Miranda", "recognized", matcher.gallery.version
        )
        assert revision.score > 0.9 and abs(revision.at - time.time()) < 60
    assert (tracks[lin_track].identity, tracks[lin_track].verdict) == (None, "unknown")  # what was decided then stays
    assert tracks[unsure_track].verdict == "uncertain"
    assert tracks[stranger_track].revision is None and tracks[named_track].revision is None
    assert [(row.face_id, row.identity, row.score, row.event_type) for row in history.faces()] == faces_before

    person = history.decisions(person="Lin-Manuel Miranda")
    assert {row.revision.identity for row in person} == {"Lin-Manuel Miranda"} and len(person) == 2
    assert [row.track_ref for row in history.revised_tracks()][:2] in ([lin_track, unsure_track], [unsure_track, lin_track])

    again = reprocess(history, matcher, EMBEDDER.version)
    assert again.changed == () and again.checked == 3  # the same gallery, the same answers: nothing rewritten
    history.close()


def test_the_template_is_held_to_the_threshold_for_its_size(tmp_path):
    """The open-set rule as the daemon applies it to templates: the mean of many faces scores
    higher against strangers, so the same score names a one-face template and not an eight-face one."""
    rng = np.random.default_rng(2)
    person = unit(rng.normal(size=DIM))
    matcher = matcher_over(tmp_path / "gallery", {"someone": person})
    one_face, eight_faces = matcher.gallery.operating_point.threshold(0.9, 1), matcher.gallery.operating_point.threshold(0.9, 8)
    score = (one_face[0] + eight_faces[0]) / 2
    history = FaceHistory(tmp_path / "history")
    vector = at_cosine(person, score, rng)
    single = ended_track(history, vector, 1, faces=1.0)
    many = ended_track(history, vector, 2, faces=8.0)
    assert reprocess(history, matcher, EMBEDDER.version).changed == (single,)
    assert {track.track_ref: track.revision for track in history.tracks(EMBEDDER.version)}[many] is None
    history.close()


def test_removing_the_person_again_revises_the_track_back_to_unknown_and_to_the_unknown_groups(tmp_path):
    rng = np.random.default_rng(3)
    person = unit(rng.normal(size=DIM))
    history = FaceHistory(tmp_path / "history")
    track = ended_track(history, at_cosine(person, 0.95, rng), 1)
    assert len(history.unknown_groups(EMBEDDER.version)) == 1
    reprocess(history, matcher_over(tmp_path / "gallery", {"someone": person}), EMBEDDER.version)
    assert history.unknown_groups(EMBEDDER.version) == []  # named now: no longer offered for enrolment
    result = reprocess(history, matcher_over(tmp_path / "empty", {}), EMBEDDER.version)
    assert result.changed == (track,) and result.named == 0
    assert len(history.unknown_groups(EMBEDDER.version)) == 1  # unknown again: back among the groups
    revision = history.tracks(EMBEDDER.version)[0].revision
    assert (revision.identity, revision.verdict) == (None, "unknown")
    history.close()


def test_reprocessing_cannot_send_an_event():
    """No old event is sent again: nothing reprocessing imports, directly or not, reaches the
    transports or the pipeline that hands events to them."""
    graph = import_graph(ROOT / "edge_daemon")
    reached, todo = set(), ["edge_daemon.history.reprocess"]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo += graph.get(module, ())
    assert not [m for m in reached if m.startswith(("edge_daemon.comms", "edge_daemon.pipeline", "edge_daemon.service"))]


def test_a_schema_3_history_is_upgraded_with_its_rows_kept(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "history"
    history = FaceHistory(path)
    tracks = [ended_track(history, unit(rng.normal(size=DIM)), i) for i in range(3)]
    faces = [(row.face_id, row.ts, row.embedding.tobytes(), row.track_ref) for row in history.faces()]
    history.close()
    db = sqlite3.connect(path / DB_FILE)
    db.executescript(
        "DROP INDEX faces_by_camera; DROP INDEX tracks_by_revised_at; "
        + " ".join(f"ALTER TABLE tracks DROP COLUMN {column};" for column in
                   ("revised_identity", "revised_verdict", "revised_score", "revised_at", "revised_gallery"))
        + " PRAGMA user_version = 3;"
    )
    db.close()

    history = FaceHistory(path)
    assert [(row.face_id, row.ts, row.embedding.tobytes(), row.track_ref) for row in history.faces()] == faces
    assert [track.track_ref for track in history.tracks(EMBEDDER.version)] == tracks
    assert all(track.revision is None for track in history.tracks(EMBEDDER.version))
    history.close()
    db = sqlite3.connect(path / DB_FILE)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"faces_by_camera", "tracks_by_revised_at"} <= indexes
    db.close()


def test_the_decisions_are_listed_newest_first_and_filtered(tmp_path):
    """The review page's listing: camera, person (named then, or revised since) and verdict (named,
    else the ended track's), all in SQL."""
    rng = np.random.default_rng(5)
    history = FaceHistory(tmp_path / "history")
    lin = unit(rng.normal(size=DIM))
    unknown = ended_track(history, at_cosine(lin, 0.95, rng), 1)
    ended_track(history, unit(rng.normal(size=DIM)), 2, verdict="uncertain")
    ended_track(history, lin, 3, verdict="recognized", identity="Lin")
    live = history.record(
        ts=time.time(), camera="hall", box="gatehouse", track_id=4, event_type="unknown", identity=None, score=0.2,
        embedder=EMBEDDER.name, embedder_version=EMBEDDER.version, gallery_version="r0", embedding=lin,
        crop=np.zeros((8, 8, 3), np.uint8),
    )
    assert [row.track_id for row in history.decisions()] == [4, 3, 2, 1]
    assert [row.face_id for row in history.decisions(camera="hall")] == [live]
    assert [row.verdict for row in history.decisions()] == ["unknown", "recognized", "uncertain", "unknown"]
    assert [row.track_id for row in history.decisions(verdict="uncertain")] == [2]
    assert [row.track_id for row in history.decisions(person="Lin")] == [3]
    history.revise({unknown: Revision("Lin", "recognized", 0.95, time.time(), "r1")})
    assert [row.track_id for row in history.decisions(person="Lin")] == [3, 1]
    assert [row.track_id for row in history.decisions(limit=2)] == [4, 3]
    history.close()
