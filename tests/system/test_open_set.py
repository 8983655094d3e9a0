"""Open-set decisions on real faces: the face-quality score, calibration, the history's quality,
templates against voting, and ``recognize --json`` verdicts."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edge_daemon.comms.dispatcher import EventDispatcher
from edge_daemon.config import DecisionConfig, EmbedderConfig, GalleryConfig
from edge_daemon.evaluation.open_set import degrade
from edge_daemon.messages import FaceSample, Identification, Shutdown, TrackEnded
from edge_daemon.pipeline.decisions import DecisionMaker
from edge_daemon.pipeline.sinks import decision_sinks
from edge_daemon.recognition.gallery import Gallery
from edge_daemon.recognition.matcher import Matcher, use_thresholds
from edge_daemon.recognition.quality import face_features, face_quality
from edge_daemon.recognition.thresholds import OpenSetTable
from tests.support.open_set import DEFAULT_VERSION, run_decisions, ten_people_matcher, unit
from tests.support.paths import LFW, ROOT, need


def edge_daemon(*args: str, env: dict | None = None) -> list[dict]:
    """Run the command line; the JSON objects it printed one a line (none for pretty-printed output)."""
    done = subprocess.run(
        [sys.executable, "-m", "edge_daemon.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{") and line.endswith("}")]


def face(track_id, vector, quality, per_face=(None, 0.0, "unknown")) -> Identification:
    sample = FaceSample("door", track_id, (1, 2, 3, 4), quality, np.zeros((4, 4, 3), np.uint8), None, time.time())
    identity, score, verdict = per_face
    return Identification(sample, identity, score, "r1", time.time(), unit(vector), verdict)


# LFW View 1 DevTest (never calibrated on): the ten people of bench.distance's gallery of ten
# are enrolled (photo 1 each); Barry Williams, not enrolled, is seen at 32, 28, 24 and 20 px. Each face
# alone scores 0.78-0.82 against Alvaro Uribe, over the single pair threshold, so per-face voting
# names him; the template of the four scores higher still (0.834: averaging raises impostor
# scores) but stays under the template threshold for its quality and size with ten people (0.850).
ENROLLED = [
    "Abdullah_Gul", "Adrien_Brody", "Alvaro_Uribe", "Amelie_Mauresmo", "Ann_Veneman", "Ben_Affleck",
    "Bill_McBride", "Calista_Flockhart", "Carlos_Moya", "Condoleezza_Rice",
]


STRANGER = ("Barry_Williams", 1)


def test_quality_ranks_smaller_and_blurred_copies_of_a_face_lower(default_detector):
    import skimage.data

    from edge_daemon.recognition.images import face_nearest_centre, find_faces

    photo = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)

    def quality(image) -> float:
        face = face_nearest_centre(find_faces(image, default_detector), image)
        assert face is not None
        return face_quality(face_features(image, face))

    width = face_nearest_centre(find_faces(photo, default_detector), photo).bbox[2]
    native, at_32, at_20 = quality(photo), quality(degrade(photo, width, 32)), quality(degrade(photo, width, 20))
    blurred = quality(cv2.GaussianBlur(photo, (0, 0), 3))
    assert native > at_32 > at_20, (native, at_32, at_20)
    assert native > blurred, (native, blurred)
    assert 0.0 <= at_20 and native <= 1.0


def test_calibrate_round_trips_its_table(tmp_path):
    from edge_daemon.config import DetectorConfig
    from edge_daemon.detectors import create_detector
    from edge_daemon.embedders import create_local_embedder
    from edge_daemon.evaluation import open_set

    need(LFW)
    # A small View-1-like set: three people with six images, two mismatched pairs.
    people = [line.split() for line in (LFW / "_protocol" / "peopleDevTrain.txt").read_text().splitlines()[1:]]
    six = [name for name, count in people if int(count) >= 6][:3]
    (tmp_path / "peopleTiny.txt").write_text(f"{len(six)}\n" + "".join(f"{name}\t6\n" for name in six))
    pairs = [f"{six[0]}\t1\t2", f"{six[1]}\t1\t2", f"{six[0]}\t3\t{six[1]}\t3", f"{six[1]}\t4\t{six[2]}\t4"]
    (tmp_path / "pairsTiny.txt").write_text("2\n" + "\n".join(pairs) + "\n")
    printed = edge_daemon(
        "calibrate", "--pairs", str(tmp_path / "pairsTiny.txt"), "--images", str(LFW), "--open-set", "--people", "3",
        "--mismatched-pairs", "2", "--widths", "native,24", "--cache", str(tmp_path / "cache"),
        env={"EDGE_DETECTOR__BACKEND": "yuface"},  # the detector the shipped table was measured with
    )[-1]
    table = OpenSetTable.from_dict(printed["open_set"])
    assert table.as_dict() == printed["open_set"]  # what calibrate prints is what the daemon loads

    # The same faces (from the cache calibrate filled) fitted here give the same table.
    detector = create_detector(DetectorConfig(backend="yuface"), separate_process=False)
    embedder = create_local_embedder(EmbedderConfig(), 1)
    probes, gallery = open_set.calibration_keys(LFW, tmp_path / "pairsTiny.txt", 3, 2)
    sets = open_set.embed_lfw(probes, LFW, detector, embedder, (None, 24), tmp_path / "cache")
    clean = open_set.embed_lfw(gallery, LFW, detector, embedder, (None,), tmp_path / "cache")[None]
    again = open_set.fit_table(sets, clean, face_quality, table.source)
    assert again == table
    assert printed["threshold"] > 0 and len(table.quality_edges) == open_set.QUALITY_BANDS - 1


def test_history_keeps_each_faces_quality_and_upgrades_an_older_database(tmp_path):
    import sqlite3

    from edge_daemon.history import schema, store

    # A history written before face quality existed (schema 1: no quality column, no tracks).
    old_schema = schema.FACES_SCHEMA.replace(",\n    quality REAL,\n    track_ref INTEGER\n", "\n").replace(
        "CREATE INDEX faces_by_track ON faces (track_ref);\n", ""
    )
    assert "quality" not in old_schema and "track_ref" not in old_schema
    db = sqlite3.connect(tmp_path / schema.DB_FILE, isolation_level=None)
    db.executescript(f"BEGIN; {old_schema} PRAGMA user_version = 1; COMMIT;")
    db.execute(
        "INSERT INTO faces (ts, camera, box, track_id, event_type, identity, score, embedder, embedder_version, "
        "gallery_version, dim, embedding, crop) VALUES (?, 'door', 'box', 1, 'unknown', NULL, 0.5, 'fused', 'v1', "
        "'r1', 4, ?, '000000001.jpg')",
        (time.time() - 60, unit([1, 0, 0, 0]).tobytes()),  # recent: the age bound keeps it
    )
    db.close()

    history = store.FaceHistory(tmp_path)
    history.record(
        ts=time.time(), camera="door", box="box", track_id=2, event_type="unknown", identity=None, score=0.4, embedder="fused",
        embedder_version="v1", gallery_version="r1", embedding=unit([0, 1, 0, 0]), crop=np.zeros((8, 8, 3), np.uint8),
        quality=0.42,
    )
    rows = {row.track_id: row for row in history.faces()}
    tracks = history.tracks("v1")
    history.close()
    assert rows[1].quality is None and np.isclose(rows[2].quality, 0.42)
    assert [(t.track_id, t.quality) for t in tracks] == [(1, 0.0)]  # upgraded through schema 2 to tracks
    assert not list(tmp_path.glob("*.damaged-*")), "upgraded in place, not set aside as damaged"


def test_degraded_stranger_named_by_voting_is_left_unnamed_by_the_template(tmp_path, default_detector, default_embedder):
    from edge_daemon.evaluation.lfw import lfw_image_path
    from edge_daemon.evaluation.open_set import degraded_subject
    from edge_daemon.recognition.images import face_nearest_centre, find_faces, load_image

    need(LFW)
    gallery = Gallery.for_embedder(default_embedder)
    for name in ENROLLED:
        image = load_image(lfw_image_path(LFW, name, 1))
        subject = face_nearest_centre(find_faces(image, default_detector), image)
        gallery.add(name, default_embedder.embed([default_embedder.aligner.align(image, subject)]), [name])
    image = load_image(lfw_image_path(LFW, *STRANGER))
    subject = face_nearest_centre(find_faces(image, default_detector), image)
    faces = []
    for width in (32, 28, 24, 20):
        still, seen = degraded_subject(image, subject, width, default_detector)
        quality = face_quality(face_features(still, seen))
        faces.append((default_embedder.embed([default_embedder.aligner.align(still, seen)])[0], quality))

    def decide(config: GalleryConfig, mode: str, events: Path) -> list[dict]:
        use_thresholds(gallery, config)
        matcher = Matcher(config, None)
        matcher.gallery = gallery
        matches, _ = matcher.match(np.stack([v for v, _ in faces]), [q for _, q in faces])
        identifications = [
            face(1, vector, quality, (m.identity, m.score, m.verdict)) for (vector, quality), m in zip(faces, matches)
        ]
        return run_decisions(matcher, identifications, events, mode)[0]

    voting = decide(GalleryConfig(threshold=default_embedder.default_threshold), "vote", tmp_path / "vote.jsonl")
    assert voting[-1]["identity"] == "Alvaro_Uribe", voting
    templates = decide(GalleryConfig(), "template", tmp_path / "template.jsonl")
    assert all(e["identity"] is None for e in templates), templates
    assert templates[-1]["verdict"] in ("unknown", "uncertain") and templates[-1]["score"] > 0.8


def test_recognize_json_says_recognized_unknown_and_uncertain(tmp_path, default_detector):
    from edge_daemon.demo import demo_people, write_gallery_photos
    from edge_daemon.recognition.images import find_faces

    people = demo_people()
    write_gallery_photos(people, tmp_path / "photos")
    edge_daemon("gallery", "build", str(tmp_path / "photos"), "--out", str(tmp_path / "gallery"))
    stranger = next(person.image for person in people if person.name is None)
    width = find_faces(stranger, default_detector)[0].bbox[2]
    stills = {
        "enrolled.png": next(person.image for person in people if person.name == "eileen_collins"),
        "stranger.png": stranger,  # a sharp face of someone not enrolled: unknown
        "stranger-32px.png": degrade(stranger, width, 32),  # the same man further away: too poor to tell
    }
    for name, image in stills.items():
        cv2.imwrite(str(tmp_path / name), image)
    lines = edge_daemon("recognize", *(str(tmp_path / name) for name in stills), "--gallery", str(tmp_path / "gallery"), "--json")
    verdicts = {Path(line["image"]).name: [(f["identity"], f["verdict"]) for f in line["faces"]] for line in lines}
    assert verdicts == {
        "enrolled.png": [("eileen_collins", "recognized")],
        "stranger.png": [(None, "unknown")],
        "stranger-32px.png": [(None, "uncertain")],
    }
    assert all(0 <= face["quality"] <= 1 for line in lines for face in line["faces"])


def test_tracks_seen_together_are_never_grouped_by_the_daemons_decisions(tmp_path):
    """Twins (or a poster beside a person) seen together as two tracks, then one of them again: the
    decision maker records each ended track with its template, and the groups keep the two apart."""
    from edge_daemon.history import FaceHistory, GroupingRule, HistoryGroups

    rng = np.random.default_rng(2)
    matcher, _ = ten_people_matcher(rng)
    person = unit(rng.normal(size=64))
    history = FaceHistory(tmp_path / "history")
    groups = HistoryGroups(history, DEFAULT_VERSION, GroupingRule(None, 0.0, 0.6))
    inbox: queue.Queue = queue.Queue()
    dispatcher = EventDispatcher([])
    maker = DecisionMaker(inbox, decision_sinks(dispatcher, history=history, groups=groups), "fused", DEFAULT_VERSION, "box",
                          matcher, DecisionConfig())
    maker.start()
    now = time.time()
    spans = {1: (now - 30, now - 20), 2: (now - 29, now - 21), 3: (now - 10, now - 5)}  # 1 and 2 together
    for track_id, (first, last) in spans.items():
        for ts in (first, last):
            sample = FaceSample("door", track_id, (1, 2, 3, 4), 0.8, np.zeros((4, 4, 3), np.uint8),
                                np.full((8, 8, 3), 100, np.uint8), ts)
            vector = unit(person + rng.normal(scale=0.05, size=64))
            inbox.put(Identification(sample, None, 0.1, "r1", ts, vector, "unknown"))
        inbox.put(TrackEnded("door", track_id, (1, 2, 3, 4)))
    inbox.put(Shutdown())
    maker.join(5)
    tracks = {t.track_id: t for t in history.tracks(DEFAULT_VERSION)}
    clusters = groups.listing()
    history.close()
    assert sorted(tracks) == [1, 2, 3] and all(t.verdict == "unknown" for t in tracks.values())
    assert [(t.first_ts, t.last_ts) for t in tracks.values()] == list(spans.values())
    assert tracks[1].group_id != tracks[2].group_id, "two people seen together in one group"
    assert tracks[3].group_id in (tracks[1].group_id, tracks[2].group_id)
    assert sorted((c.size, c.tracks) for c in clusters) == [(1, 1), (2, 2)]  # a face per decision, one per track
