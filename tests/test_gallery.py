"""Gallery files, enrolment and one-shot recognition through the CLI, including hostile input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edge_daemon.api import identity_from_folder
from edge_daemon.recognition.gallery import EMBEDDINGS_FILE, LABELS_FILE, META_FILE, Gallery, GalleryError, validate_identity
from tests.support.paths import DATA, HAMILTON, ROOT, need


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_daemon.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


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


@pytest.mark.slow
def test_enroll_list_recognize_remove(tmp_path):
    gallery = tmp_path / "gallery"
    obama = sorted((need(HAMILTON / "gallery" / "obama")).glob("obama*.jpg"))[:2]
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("hello")
    enrolled = cli("enroll", "--gallery", str(gallery), "Barack Obama", *map(str, obama), str(not_an_image))
    assert enrolled.returncode == 0, enrolled.stderr
    assert json.loads(enrolled.stdout)["enrolled"] == 2
    assert "notes.jpg is not a readable image" in enrolled.stderr

    refused = cli("enroll", "--gallery", str(gallery), "../../etc/passwd", str(obama[0]))
    assert refused.returncode == 2 and "path separator" in refused.stderr

    listed = cli("gallery", "list", "--gallery", str(gallery), "--json")
    assert json.loads(listed.stdout)["identities"] == {"Barack Obama": 2}

    group = need(DATA / "photos" / "group" / "obama_and_biden.jpg")
    missing = tmp_path / "missing.jpg"
    recognised = cli("recognize", str(group), str(missing), str(not_an_image), "--gallery", str(gallery), "--json")
    assert recognised.returncode == 0, recognised.stderr
    lines = [json.loads(line) for line in recognised.stdout.splitlines()]
    assert [line["image"] for line in lines] == [str(group), str(missing), str(not_an_image)]
    faces = lines[0]["faces"]
    # Obama, Biden and a child at the edge: only Obama is enrolled.
    assert len(faces) == 3
    assert sorted(face["identity"] or "" for face in faces) == ["", "", "Barack Obama"]
    assert all(len(face["bbox"]) == 4 and isinstance(face["score"], float) for face in faces)
    assert "error" in lines[1] and "faces" not in lines[1]
    assert "not a readable image" in lines[2]["error"]

    removed = cli("gallery", "remove", "--gallery", str(gallery), "Barack Obama")
    assert removed.returncode == 0 and json.loads(removed.stdout)["removed"] == 2
    again = cli("gallery", "remove", "--gallery", str(gallery), "Barack Obama")
    assert again.returncode == 1


@pytest.mark.slow
def test_gallery_build_reports_unusable_images(tmp_path):
    dataset = tmp_path / "people"
    (dataset / "pins_Obama").mkdir(parents=True)
    (dataset / "group").mkdir()
    for source in sorted(need(HAMILTON / "gallery" / "obama").glob("obama*.jpg"))[:2]:
        (dataset / "pins_Obama" / source.name).write_bytes(source.read_bytes())
    (dataset / "group" / "two.jpg").write_bytes(need(DATA / "photos" / "group" / "obama_and_biden.jpg").read_bytes())
    (dataset / "group" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    built = cli("gallery", "build", str(dataset), "--out", str(tmp_path / "g"))
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    assert summary["identities"] == 1 and summary["embeddings"] == 2
    reasons = {item["image"].rsplit("/", 1)[1]: item["reason"] for item in summary["skipped"]}
    assert reasons["two.jpg"] == "3 faces found, expected one"  # Obama, Biden, a child
    assert "not a readable image" in reasons["broken.jpg"]
    assert Gallery.load(tmp_path / "g").identities() == {"Obama": 2}
    refused = cli("gallery", "build", str(dataset), "--out", str(tmp_path / "g"))
    assert refused.returncode == 2 and "--force" in refused.stderr
