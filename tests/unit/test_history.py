"""The face history: storage, bounds, damage and failures, and the queries over it (real files, no mocks)."""

from __future__ import annotations

import sqlite3
import threading
import time

import cv2
import numpy as np
import pytest

from edge_daemon.history import (
    CROPS_DIR,
    DB_FILE,
    LABEL_HEIGHT,
    FaceHistory,
    FaceRow,
    GroupingRule,
    HistoryGroups,
    contact_sheet,
    search_faces,
)

DIM = 64


def unit_vectors(rng: np.random.Generator, count: int, dim: int = DIM) -> np.ndarray:
    vectors = rng.normal(size=(count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def face_crop(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)


def record(history: FaceHistory, embedding: np.ndarray, **fields) -> int | None:
    values = dict(
        ts=time.time(),
        camera="door",
        box="gatehouse",
        track_id=1,
        event_type="unknown",
        identity=None,
        score=0.5,
        embedder="fused",
        embedder_version="v1",
        gallery_version="r1-abc",
        crop=face_crop(0),
    )
    values.update(fields)
    return history.record(embedding=embedding, **values)


def test_faces_are_stored_and_read_back_exactly(tmp_path):
    rng = np.random.default_rng(0)
    vectors = unit_vectors(rng, 3)
    history = FaceHistory(tmp_path / "history")
    now = time.time()
    ids = [
        record(history, vectors[0], ts=now - 2, track_id=7, crop=face_crop(1, 112)),
        record(history, vectors[1], ts=now - 1, identity="ana", event_type="recognized", score=np.float32(0.91)),
        record(history, vectors[2] * 3.0, ts=now, camera="yard", gallery_version=None),
    ]
    assert all(isinstance(face_id, int) for face_id in ids) and len(set(ids)) == 3
    rows = history.faces()
    assert [row.face_id for row in rows] == ids[::-1]  # newest first
    oldest = history.face(ids[0])
    assert oldest.embedding.dtype == np.float32 and oldest.embedding.tobytes() == vectors[0].tobytes()
    assert (oldest.ts, oldest.camera, oldest.box, oldest.track_id, oldest.identity) == (now - 2, "door", "gatehouse", 7, None)
    assert cv2.imread(str(oldest.crop_path)).shape == (112, 112, 3)
    assert oldest.crop_path.parent == tmp_path / "history" / CROPS_DIR and oldest.crop_path.name == f"{ids[0]:09d}.jpg"
    recognized = history.face(ids[1])
    assert (recognized.identity, recognized.event_type, recognized.enrolled_as) == ("ana", "recognized", None)
    assert recognized.score == pytest.approx(0.91, abs=1e-6)
    scaled = history.face(ids[2])
    assert np.allclose(scaled.embedding, vectors[2], atol=1e-6) and scaled.gallery_version is None  # stored unit length
    assert history.face(10_000) is None
    assert history.disk_bytes() > 0
    history.close()
    reopened = FaceHistory(tmp_path / "history")
    assert [row.face_id for row in reopened.faces()] == ids[::-1]
    reopened.close()


def test_filters_and_enrolment(tmp_path):
    rng = np.random.default_rng(1)
    history = FaceHistory(tmp_path)
    now = time.time()
    old_door = record(history, unit_vectors(rng, 1)[0], ts=now - 100)
    yard_known = record(history, unit_vectors(rng, 1)[0], ts=now - 10, camera="yard", identity="bo", event_type="recognized")
    other_embedder = record(history, unit_vectors(rng, 1, dim=32)[0], ts=now - 5, embedder_version="v2")
    new_door = record(history, unit_vectors(rng, 1)[0], ts=now)

    def ids(**filters) -> list[int]:
        return [row.face_id for row in history.faces(**filters)]

    assert ids() == [new_door, other_embedder, yard_known, old_door]
    assert ids(since=now - 10) == [new_door, other_embedder, yard_known]
    assert ids(camera="yard") == [yard_known]
    assert ids(unknown_only=True) == [new_door, other_embedder, old_door]
    assert ids(embedder_version="v2") == [other_embedder]
    assert ids(camera="door", unknown_only=True, embedder_version="v1", since=now - 50) == [new_door]

    assert history.mark_enrolled([old_door, new_door, 99_999], "carla") == 2
    assert history.face(old_door).enrolled_as == "carla"
    assert ids(not_enrolled=True) == [other_embedder, yard_known]
    with pytest.raises(ValueError):
        history.mark_enrolled([yard_known], "../carla")
    assert history.face(yard_known).enrolled_as is None
    history.close()


def test_count_bound_drops_the_oldest_faces_and_their_crops(tmp_path):
    rng = np.random.default_rng(2)
    history = FaceHistory(tmp_path, max_faces=50)
    now = time.time()
    ids = [record(history, vector, ts=now - 80 + i) for i, vector in enumerate(unit_vectors(rng, 80))]
    assert history.dropped == 30
    assert sorted(row.face_id for row in history.faces()) == ids[30:]
    assert sorted(path.name for path in (tmp_path / CROPS_DIR).iterdir()) == [f"{face_id:09d}.jpg" for face_id in ids[30:]]
    assert record(history, unit_vectors(rng, 1)[0]) > max(ids)  # ids are never reused
    history.close()


def test_age_bound_drops_old_faces(tmp_path):
    rng = np.random.default_rng(3)
    history = FaceHistory(tmp_path, max_age_days=1)
    now = time.time()
    old = [record(history, vector, ts=now - 2 * 86_400 + i) for i, vector in enumerate(unit_vectors(rng, 5))]
    fresh = [record(history, vector, ts=now - 3600 + i) for i, vector in enumerate(unit_vectors(rng, 5))]
    assert sorted(row.face_id for row in history.faces()) == fresh
    assert history.dropped == len(old)
    assert not any((tmp_path / CROPS_DIR / f"{face_id:09d}.jpg").exists() for face_id in old)
    history.close()


def write_garbage(path):
    path.write_bytes(b"this is not a database " * 200)


def write_foreign_schema(path):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE faces (face_id INTEGER PRIMARY KEY, name TEXT)")
    db.close()


def write_corrupt_pages(path):
    history = FaceHistory(path.parent)
    for vector in unit_vectors(np.random.default_rng(4), 40):
        record(history, vector)
    history.close()
    data = bytearray(path.read_bytes())
    data[4096 * 2 : 4096 * 5] = b"\xa5" * (4096 * 3)  # pages 3-5: table and index pages
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [write_garbage, write_foreign_schema, write_corrupt_pages])
def test_damaged_database_is_set_aside_and_a_new_one_started(tmp_path, damage):
    damage(tmp_path / DB_FILE)
    history = FaceHistory(tmp_path)
    set_aside = list(tmp_path.glob(f"{DB_FILE}.damaged-*"))
    assert [path.name for path in set_aside if not path.name.endswith(("-wal", "-shm"))], set_aside
    assert history.faces() == []
    face_id = record(history, unit_vectors(np.random.default_rng(5), 1)[0])
    assert face_id is not None and history.face(face_id).crop_path.exists()
    history.close()


def test_recording_failures_are_counted_never_raised(tmp_path):
    rng = np.random.default_rng(6)
    history = FaceHistory(tmp_path)
    kept = record(history, unit_vectors(rng, 1)[0])
    crops = tmp_path / CROPS_DIR
    for crop in crops.iterdir():
        crop.unlink()
    crops.rmdir()
    crops.write_bytes(b"a file where the crops directory was")  # every crop write now fails

    assert record(history, unit_vectors(rng, 1)[0]) is None
    assert record(history, unit_vectors(rng, 1)[0]) is None
    assert record(history, np.zeros(DIM)) is None  # not an embedding
    assert record(history, unit_vectors(rng, 1)[0], crop=np.zeros((0, 0, 3), np.uint8)) is None  # not an image
    assert history.failures == 4
    assert [row.face_id for row in history.faces()] == [kept]  # no row without its crop

    crops.unlink()
    crops.mkdir()
    assert record(history, unit_vectors(rng, 1)[0]) is not None  # recovers by itself
    history.close()
    assert record(history, unit_vectors(rng, 1)[0]) is None and history.failures == 5


def test_several_threads_record_at_once(tmp_path):
    history = FaceHistory(tmp_path)
    vectors = unit_vectors(np.random.default_rng(7), 80)
    ids: list[int | None] = []

    def worker(part: np.ndarray) -> None:
        ids.extend(record(history, vector) for vector in part)

    threads = [threading.Thread(target=worker, args=(part,)) for part in np.split(vectors, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert None not in ids and len(set(ids)) == 80 and len(history.faces()) == 80
    history.close()


def people_with_a_bridge(rng: np.random.Generator, people: int = 4, faces_each: int = 15):
    """Tight clusters around random centres (cosine to the centre about 0.9), a face halfway between
    person 0 and person 1, and three random outliers. Returns (vectors, person per vector), the bridge
    labelled -1 and outliers -2."""
    centres = unit_vectors(rng, people)
    noise = np.sqrt((1 / 0.9**2 - 1) / DIM)
    vectors, owners = [], []
    for person, centre in enumerate(centres):
        members = centre + noise * rng.normal(size=(faces_each, DIM))
        vectors += list(members / np.linalg.norm(members, axis=1, keepdims=True))
        owners += [person] * faces_each
    bridge = centres[0] + centres[1]
    vectors.append(bridge / np.linalg.norm(bridge))
    owners.append(-1)
    vectors += list(unit_vectors(rng, 3))
    owners += [-2] * 3
    return np.array(vectors, dtype=np.float32), np.array(owners)


def record_track(groups: HistoryGroups, embedding: np.ndarray, start: float, seconds: float = 2.0,
                 camera: str = "door", verdict: str = "unknown", identity: str | None = None, quality: float = 0.8,
                 faces: float = 3.0, track_id: int = 1) -> tuple[int, int]:
    """One ended track through ``groups``: its face recorded, then the track. Returns (face id, track_ref)."""
    face_id = record(groups.history, embedding, ts=start, camera=camera, identity=identity, track_id=track_id,
                     crop=face_crop(int(start) % 1000, 48), quality=quality)
    track_ref = groups.record_track(
        first_ts=start, last_ts=start + seconds, camera=camera, box="gatehouse", track_id=track_id, identity=identity,
        verdict=verdict, quality=quality, faces=faces, embedding=embedding, face_ids=[face_id],
    )
    return face_id, track_ref


FIXED = GroupingRule(None, 0.0, 0.6)


@pytest.fixture
def grouped_history(tmp_path):
    """The people above seen as tracks in shuffled order, the bridge first (the worst case for
    grouping online), one track every 10 s on one of three cameras."""
    rng = np.random.default_rng(8)
    vectors, owners = people_with_a_bridge(rng)
    order = np.concatenate([[np.flatnonzero(owners == -1)[0]], rng.permutation(np.flatnonzero(owners != -1))])
    history = FaceHistory(tmp_path / "history")
    groups = HistoryGroups(history, "v1", FIXED)
    start = time.time() - 1000
    owner_of = {}
    for step, position in enumerate(order):
        face_id, _ = record_track(groups, vectors[position], start + 10 * step, camera=f"cam{step % 3}", track_id=step)
        owner_of[face_id] = owners[position]
    yield groups, owner_of
    history.close()


def test_groups_are_people_and_a_bridge_does_not_join_two(grouped_history):
    groups, owner_of = grouped_history
    rows = groups.history.faces()
    by_id = {row.face_id: row for row in rows}
    bridge = next(row for row in rows if owner_of[row.face_id] == -1)
    for person in (0, 1):  # single linkage would join persons 0 and 1 through the bridge
        assert max(float(bridge.embedding @ by_id[i].embedding) for i in owner_of if owner_of[i] == person) >= 0.6

    clusters = groups.listing()
    assert [c for c in clusters if c.size > 1] and len([c for c in clusters if c.size > 1]) == 4
    for cluster in (c for c in clusters if c.size > 1):
        people = {owner_of[face_id] for face_id in cluster.face_ids} - {-1}
        assert len(people) == 1  # purity 1.0, the bridge aside
        person = people.pop()
        assert {i for i in owner_of if owner_of[i] == person} <= set(cluster.face_ids)  # and the whole person
        assert cluster.tracks == cluster.size  # a face a track here
    assert [c.cluster_id for c in clusters] == list(range(1, len(clusters) + 1))
    sizes = [c.size for c in clusters]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == len(rows)
    singletons = {c.face_ids[0] for c in clusters if c.size == 1}
    assert {i for i in owner_of if owner_of[i] == -2} <= singletons  # the outliers, last
    for cluster in clusters:
        members = [by_id[face_id] for face_id in cluster.face_ids]
        assert cluster.representative == cluster.face_ids[0] and cluster.representative_crop.exists()
        assert (cluster.first_seen, cluster.last_seen) == (min(m.ts for m in members), max(m.ts for m in members))
        assert cluster.cameras == tuple(sorted({m.camera for m in members})) and cluster.size == len(members)


def test_the_largest_groups_alone_as_the_review_page_asks(grouped_history):
    groups, _ = grouped_history
    everything = groups.listing()
    largest = groups.history.unknown_groups("v1", min_faces=2, limit=3)
    assert [c.face_ids for c in largest] == [c.face_ids for c in everything[:3]]
    assert [c.cluster_id for c in largest] == [1, 2, 3] and all(c.size >= 2 for c in largest)
    assert all(c.size >= 2 for c in groups.history.unknown_groups("v1", min_faces=2))
    assert len(groups.history.unknown_groups("v1", min_faces=2)) == 4
    assert groups.history.unknown_groups("v1", since=time.time()) == []  # nothing seen since now


def test_groups_are_kept_and_grown_across_restarts(grouped_history):
    groups, owner_of = grouped_history
    before = {frozenset(c.face_ids) for c in groups.listing()}
    stored = {t.track_ref: t.group_id for t in groups.history.tracks("v1")}
    reopened = HistoryGroups(groups.history, "v1", FIXED)  # a restart: means rebuilt from the stored tracks
    assert {frozenset(c.face_ids) for c in reopened.listing()} == before
    assert len(reopened) == len(groups)
    person_0 = next(c for c in groups.listing() if c.size > 1 and owner_of[c.face_ids[0]] == 0)
    vector = groups.history.face(person_0.face_ids[0]).embedding
    face_id, track_ref = record_track(reopened, vector, time.time())
    joined = {t.track_ref: t.group_id for t in groups.history.tracks("v1")}
    assert joined[track_ref] == stored[groups.history.face(person_0.face_ids[0]).track_ref]
    assert face_id in next(c for c in reopened.listing() if person_0.face_ids[0] in c.face_ids).face_ids


def test_tracks_seen_together_are_never_one_group(tmp_path):
    """Two tracks on one camera at the same time are two people, however alike; the same face
    later, or on another camera at the same time, joins."""
    history = FaceHistory(tmp_path)
    groups = HistoryGroups(history, "v1", FIXED)
    face = unit_vectors(np.random.default_rng(3), 1)[0]
    start = time.time() - 100
    first, _ = record_track(groups, face, start, seconds=5)
    together, _ = record_track(groups, face, start + 4, seconds=5, track_id=2)  # overlaps [start, start + 5]
    later, _ = record_track(groups, face, start + 20, seconds=5, track_id=3)
    elsewhere, _ = record_track(groups, face, start + 4, seconds=5, camera="yard", track_id=4)
    by_face = {face_id: c.cluster_id for c in groups.listing() for face_id in c.face_ids}
    assert by_face[first] != by_face[together]
    assert by_face[later] in (by_face[first], by_face[together])
    assert by_face[elsewhere] in (by_face[first], by_face[together])
    history.close()


def test_only_unknown_tracks_are_grouped(tmp_path):
    history = FaceHistory(tmp_path)
    groups = HistoryGroups(history, "v1", FIXED)
    face = unit_vectors(np.random.default_rng(4), 1)[0]
    start = time.time() - 100
    record_track(groups, face, start)
    poor, _ = record_track(groups, face, start + 10, verdict="uncertain", quality=0.05)
    record_track(groups, face, start + 20, verdict="recognized", identity="ada")
    record_track(groups, face, start + 30)
    tracks = history.tracks("v1")
    assert [t.verdict for t in tracks] == ["unknown", "uncertain", "recognized", "unknown"]
    assert tracks[0].group_id == tracks[3].group_id is not None and tracks[1].group_id is None is tracks[2].group_id
    sizes = sorted(c.size for c in groups.listing())  # the recognised face is not an unknown face at all
    assert sizes == [1, 2] and any(c.face_ids == (poor,) for c in groups.listing())
    history.close()


def test_a_track_too_poor_to_group_stays_on_its_own(tmp_path):
    """Below the rule's min_quality a track neither joins a group nor starts one."""
    history = FaceHistory(tmp_path)
    groups = HistoryGroups(history, "v1", GroupingRule(None, 0.0, 0.6, min_quality=0.35))
    face = unit_vectors(np.random.default_rng(7), 1)[0]
    start = time.time() - 100
    record_track(groups, face, start, quality=0.3)  # would start a group
    record_track(groups, face, start + 10, quality=0.8)
    record_track(groups, face, start + 20, quality=0.2)  # would join it
    record_track(groups, face, start + 30, quality=0.9)
    assert [t.group_id is not None for t in history.tracks("v1")] == [False, True, False, True]
    assert sorted(c.size for c in groups.listing()) == [1, 1, 2]
    history.close()


def test_the_grouping_threshold_follows_quality_and_template_size():
    """With the shipped table, a poor face or a template of many faces must score higher to join."""
    from edge_daemon.embedders.calibration import OPEN_SET
    from edge_daemon.recognition.thresholds import OpenSetTable

    table = OpenSetTable.from_dict(next(iter(OPEN_SET.values())))
    rule = GroupingRule(table, 0.01)
    assert rule.threshold(0.1, 3) > rule.threshold(0.9, 3)
    assert rule.threshold(0.9, 5) > rule.threshold(0.9, 1)
    assert GroupingRule(table, 0.001).threshold(0.9, 1) > rule.threshold(0.9, 1)
    assert rule.threshold(0.9, 1, groups=1000) > rule.threshold(0.9, 1, groups=10)  # more groups, more to fall into
    with pytest.raises(ValueError, match="no threshold"):
        GroupingRule(None, 1e-4).threshold(0.9, 1)


def test_a_history_of_faces_only_is_migrated_and_its_faces_grouped(tmp_path):
    """A schema-2 history (faces, no tracks): each face becomes a track of one face, grouped when
    the groups are made; two faces of one frame stay apart."""
    path = tmp_path / "history"
    history = FaceHistory(path)
    rng = np.random.default_rng(5)
    person = unit_vectors(rng, 1)[0]
    now = time.time() - 100
    ids = [record(history, person, ts=now + i) for i in range(3)] + [record(history, person, ts=now + 2, camera="door")]
    history.close()
    db = sqlite3.connect(path / DB_FILE)
    db.executescript(
        "DROP TABLE tracks; DROP INDEX faces_by_track; ALTER TABLE faces DROP COLUMN track_ref; PRAGMA user_version = 2;"
    )
    db.close()
    history = FaceHistory(path)
    assert [t.track_ref for t in history.tracks("v1")] == ids and all(t.faces == 1 for t in history.tracks("v1"))
    assert all(row.track_ref == row.face_id for row in history.faces())
    clusters = HistoryGroups(history, "v1", FIXED).listing()
    assert sorted(c.size for c in clusters) == [1, 3]  # faces 2 and 3 were seen in one frame
    assert all(t.group_id is not None for t in history.tracks("v1"))  # and the groups were stored
    history.close()


def test_tracks_are_bounded_like_faces(tmp_path):
    history = FaceHistory(tmp_path, max_faces=3)
    groups = HistoryGroups(history, "v1", FIXED)
    vectors = unit_vectors(np.random.default_rng(6), 5)
    for i, vector in enumerate(vectors):
        record_track(groups, vector, time.time() - 100 + 10 * i, track_id=i)
    assert len(history.tracks("v1")) == 3 and len(history.faces()) == 3
    history.close()


def test_search_refuses_mixed_embedders(tmp_path):
    history = FaceHistory(tmp_path)
    rng = np.random.default_rng(9)
    record(history, unit_vectors(rng, 1)[0], embedder_version="v1")
    record(history, unit_vectors(rng, 1)[0], embedder_version="v2")
    with pytest.raises(ValueError, match="embedder versions"):
        search_faces(history.faces(), unit_vectors(rng, 1)[0])
    history.close()


def synthetic_rows(tmp_path, vectors: np.ndarray) -> list[FaceRow]:
    return [
        FaceRow(i, float(i), "door", "box", i, "unknown", None, 0.5, "fused", "v1", "r1", vector, tmp_path / f"{i}.jpg", None)
        for i, vector in enumerate(vectors)
    ]


def test_search_finds_the_face_itself_exactly_and_approximately(tmp_path):
    rng = np.random.default_rng(10)
    rows = synthetic_rows(tmp_path, unit_vectors(rng, 2000))
    for wanted in (0, 777, 1999):
        query = rows[wanted].embedding + 0.05 * unit_vectors(rng, 1)[0]
        exact = search_faces(rows, query, top=5)
        approximate = search_faces(rows, query, top=5, approximate_from=10)
        assert len(exact) == 5 and exact[0][0].face_id == wanted and exact[0][1] > 0.99
        assert [score for _, score in exact] == sorted((score for _, score in exact), reverse=True)
        assert approximate[0][0].face_id == wanted and approximate[0][1] == pytest.approx(exact[0][1], abs=1e-5)
    assert search_faces([], rows[0].embedding) == []
    with pytest.raises(ValueError, match="dimensions"):
        search_faces(rows, np.ones(DIM + 1))


def test_contact_sheet_is_a_readable_png(grouped_history, tmp_path):
    groups, _ = grouped_history
    clusters = groups.listing()
    out = tmp_path / "sheets" / "unknowns.png"
    contact_sheet(clusters, out, per_row=6, size=64)
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[0] == len(clusters) * (64 + LABEL_HEIGHT) and sheet.shape[1] >= 6 * 64
    first_tile = sheet[LABEL_HEIGHT : LABEL_HEIGHT + 64, :64]
    assert first_tile.std() > 20  # a face crop (noise here), not the blank background
    with pytest.raises(ValueError):
        contact_sheet([], out)
