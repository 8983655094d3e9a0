"""The gallery edits of the people page: rename a person, remove one photo, and when each row was
added; the gallery's invariants kept (rows, faces, rejections, revision, files)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_daemon.recognition.gallery import FACES_DIR, LABELS_FILE, Gallery
from tests.support.paths import HAMILTON, need


def unit_rows(count: int, seed: int = 3) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, 8)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def face(value: int) -> np.ndarray:
    return np.full((32, 32, 3), value, np.uint8)


@pytest.fixture
def gallery() -> Gallery:
    vectors = unit_rows(5)
    gallery = Gallery("test", "v1", 8, 0.5, "unit test")
    gallery.add("ana", vectors[:3], ["a1", "a2", "a3"], [face(10), face(20), face(30)])
    gallery.add("bo", vectors[3:4], ["b1"], [face(40)])
    gallery.reject("ana", vectors[4], "history:7")
    return gallery


def test_rename_carries_rows_and_rejections(gallery, tmp_path):
    before = (gallery.revision, gallery.version, list(gallery.faces))
    assert gallery.rename("ana", "Ana María") == 3
    assert gallery.identities() == {"Ana María": 3, "bo": 1}
    assert gallery.rejected == [{"identity": "Ana María", "source": "history:7"}]
    assert gallery.revision == before[0] + 1 and gallery.version != before[1] and gallery.faces == before[2]
    match = gallery.match(unit_rows(5)[:1])[0]
    assert match.identity == "Ana María"
    gallery.save(tmp_path / "g")
    assert Gallery.load(tmp_path / "g").identities() == {"Ana María": 3, "bo": 1}


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [("nobody", "x", "not enrolled"), ("ana", "bo", "already enrolled"), ("ana", "ana", "already their name"),
     ("ana", "../x", "path separator"), ("ana", "<script>", "markup"), ("ana", "", "empty")],
)
def test_rename_refusals_change_nothing(gallery, old, new, reason):
    before = (gallery.version, gallery.revision, list(gallery.labels))
    with pytest.raises(ValueError, match=reason):
        gallery.rename(old, new)
    assert (gallery.version, gallery.revision, gallery.labels) == before


def test_remove_one_photo_keeps_rows_consistent_and_deletes_its_face(gallery, tmp_path):
    gallery.save(tmp_path / "g")
    removed_face, revision = gallery.faces[1], gallery.revision
    gallery.remove_row(1, "ana")
    assert gallery.labels == ["ana", "ana", "bo"] and gallery.sources == ["a1", "a3", "b1"]
    assert removed_face not in gallery.faces and len(gallery.added) == len(gallery.vectors) == 3
    assert gallery.revision == revision + 1
    assert gallery.match(unit_rows(5)[3:4])[0].identity == "bo"  # the index follows the rows
    gallery.save(tmp_path / "g")
    assert not (tmp_path / "g" / FACES_DIR / removed_face).exists()
    assert sorted(p.name for p in (tmp_path / "g" / FACES_DIR).iterdir()) == sorted(gallery.faces)


def test_removing_the_last_photo_removes_the_person_and_their_rejections(gallery):
    gallery.remove_row(3, "bo")
    assert gallery.identities() == {"ana": 3}
    gallery.remove_row(0, "ana")
    gallery.remove_row(0, "ana")
    gallery.remove_row(0, "ana")
    assert gallery.labels == [] and gallery.rejected == [] and gallery.rejected_vectors.shape == (0, 8)


@pytest.mark.parametrize(("row", "identity"), [(3, "ana"), (9, "ana"), (-1, "ana"), (0, "nobody")])
def test_removing_a_photo_of_someone_else_is_refused(gallery, row, identity):
    version = gallery.version
    with pytest.raises(ValueError, match="is not one of"):
        gallery.remove_row(row, identity)
    assert gallery.version == version and len(gallery.labels) == 4


def test_each_row_records_when_it_was_added_and_older_galleries_load(gallery, tmp_path):
    assert all(when.endswith("+00:00") for when in gallery.added)
    gallery.save(tmp_path / "g")
    assert Gallery.load(tmp_path / "g").added == gallery.added
    labels = json.loads((tmp_path / "g" / LABELS_FILE).read_text())
    del labels["added"]  # a gallery written before rows had a time
    (tmp_path / "g" / LABELS_FILE).write_text(json.dumps(labels))
    assert Gallery.load(tmp_path / "g").added == ["", "", "", ""]


def test_a_rebuilt_gallery_keeps_when_each_row_was_added(tmp_path, default_detector, default_embedder):
    from edge_daemon.recognition.enrolment import rebuild_gallery

    photo = need(HAMILTON / "gallery" / "lin_manuel_miranda" / "lin-manuel-miranda.png")
    old = Gallery.for_embedder(default_embedder)
    old.add("lin", np.zeros((1, default_embedder.dim), np.float32), [str(photo)], added=["2020-01-02T03:04:05+00:00"])
    rebuilt, skipped = rebuild_gallery(old, tmp_path, default_detector, default_embedder)
    assert skipped == [] and rebuilt.added == ["2020-01-02T03:04:05+00:00"]
