"""Gallery files on their own: hostile names refused, folder names mapped, a round trip, damaged
galleries as clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from edge_daemon.api import identity_from_folder
from edge_daemon.recognition.gallery import EMBEDDINGS_FILE, LABELS_FILE, META_FILE, Gallery, GalleryError, validate_identity


@pytest.mark.parametrize("name", ["", "   ", "a/b", "..", "back\\slash", "new\nline", "nul\x00", "x" * 10_000, "rtl\u202eevil"])
def test_hostile_identity_names_are_refused(name):
    with pytest.raises(ValueError):
        validate_identity(name)


def test_pins_folder_names_map_to_identities():
    assert identity_from_folder("pins_Robert Downey Jr") == "Robert Downey Jr"
    assert identity_from_folder("obama") == "obama"


def test_gallery_round_trip_and_match(tmp_path):
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(4, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    gallery = Gallery("test", "v1", 8, 0.5, "unit test")
    gallery.add("ana", vectors[:2], ["a1", "a2"])
    gallery.add("bo", vectors[2:3], ["b1"])
    gallery.save(tmp_path / "g")
    loaded = Gallery.load(tmp_path / "g")
    assert loaded.version == gallery.version and loaded.identities() == {"ana": 2, "bo": 1}
    matches = loaded.match(np.vstack([vectors[2], vectors[3]]))
    assert matches[0].identity == "bo" and matches[0].score == pytest.approx(1.0, abs=1e-5)
    assert matches[1].identity is None or matches[1].score >= 0.5
    assert loaded.remove("ana") == 2 and loaded.identities() == {"bo": 1}
    assert loaded.version != gallery.version


@pytest.mark.parametrize(
    "damage",
    [
        lambda g: (g / EMBEDDINGS_FILE).write_bytes(b"garbage"),
        lambda g: (g / LABELS_FILE).write_text('{"labels": ["a"], "sources": []}'),
        lambda g: (g / META_FILE).write_text("{not json"),
        lambda g: (g / META_FILE).write_text('{"format": "edge-daemon-gallery"}'),
        lambda g: np.save(g / EMBEDDINGS_FILE, np.zeros((3, 8), np.float32)),
        lambda g: np.save(g / EMBEDDINGS_FILE, np.array([{"evil": 1}], dtype=object), allow_pickle=True),
    ],
    ids=["garbage-npy", "labels-mismatch", "meta-not-json", "meta-incomplete", "shape-mismatch", "pickled-object"],
)
def test_damaged_galleries_are_clear_errors(tmp_path, damage):
    gallery = Gallery("test", "v1", 8, 0.5, "unit test")
    gallery.add("ana", np.eye(8, dtype=np.float32)[:2], ["a1", "a2"])
    gallery.save(tmp_path / "g")
    damage(tmp_path / "g")
    with pytest.raises(GalleryError):
        Gallery.load(tmp_path / "g")
