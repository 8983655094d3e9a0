"""Galleries through the command line: enrol, list, recognise, remove, and a build that reports
unusable images."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edge_daemon.recognition.gallery import Gallery
from tests.support.paths import DATA, HAMILTON, ROOT, need


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_daemon.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


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
