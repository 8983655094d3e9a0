"""What the cameras saw, for an operator: the face history of a real run of the Hamilton clip, its
unknown faces grouped by person, enrolment from a group, search by face, and "not this person"."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from edge_daemon.recognition.gallery import Gallery
from tests.support.paths import DATA, HAMILTON, HAMILTON_CLIP, ROOT, need

pytestmark = pytest.mark.slow
LIN = "lin_manuel_miranda"


def cli(*args: str, config=None, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "edge_daemon.cli", *args]
    if config is not None:
        command += ["--config", str(config)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def run_clip(config, gallery=None) -> list[dict]:
    """The daemon over the Hamilton clip (every frame taken: nothing dropped under test load)."""
    events = config.parent / f"events-{gallery.name if gallery else 'none'}.jsonl"
    args = ["run", "--camera", f"stage={need(HAMILTON_CLIP)}", "--events-out", str(events)]
    cli(*args, *(["--gallery", str(gallery)] if gallery else []), config=config)
    return [json.loads(line) for line in events.read_text().splitlines()]


@pytest.fixture(scope="module")
def seen(tmp_path_factory, hamilton_gallery):
    """A run with an empty gallery: every face unknown, all in the history. Each history face is
    labelled by the Hamilton gallery (the reference) to measure the clusters against."""
    from edge_daemon.history import FaceHistory

    work = tmp_path_factory.mktemp("review")
    config = work / "config.toml"
    config.write_text(f'[history]\npath = "{work / "history"}"\n')
    run_clip(config)
    history = FaceHistory(work / "history")
    rows = history.faces()
    history.close()
    reference = Gallery.load(hamilton_gallery)
    labels = {row.face_id: match.identity for row, match in zip(rows, reference.match([row.embedding for row in rows]))}
    return work, config, rows, labels


def test_the_unknown_faces_of_a_run_group_by_person_and_the_group_can_be_enrolled(seen, tmp_path):
    work, config, rows, labels = seen
    assert rows and all(row.identity is None for row in rows)
    lin_faces = {face_id for face_id, label in labels.items() if label == LIN}
    assert len(lin_faces) >= 2, Counter(labels.values())

    listing = json.loads(cli("unknowns", "--since", "1d", "--json", "--sheet", str(tmp_path / "sheet.png"), config=config).stdout)
    clusters = listing["clusters"]
    assert listing["faces"] == len(rows) and (tmp_path / "sheet.png").stat().st_size > 0
    lin_cluster = max(clusters, key=lambda c: len(lin_faces & set(c["face_ids"])))
    in_lin_cluster = lin_faces & set(lin_cluster["face_ids"])
    purity = len(in_lin_cluster) / lin_cluster["faces"]
    print(f"clusters {len(clusters)}, Lin faces {len(lin_faces)}, in his cluster {len(in_lin_cluster)}, purity {purity:.2f}")
    assert len(in_lin_cluster) >= 0.8 * len(lin_faces)  # not split over many clusters
    assert purity >= 0.9  # and nobody else in it

    gallery = tmp_path / "gallery"
    enrolled = json.loads(cli("enroll", "--gallery", str(gallery), LIN, "--from-cluster", str(lin_cluster["cluster"]),
                              "--since", "1d", config=config).stdout)
    assert enrolled["enrolled"] == lin_cluster["faces"]
    again = json.loads(cli("unknowns", "--since", "1d", "--json", config=config).stdout)
    assert again["faces"] == len(rows) - lin_cluster["faces"]  # marked enrolled

    events = run_clip(config, gallery)
    assert {e["identity"] for e in events if e["type"] == "recognized"} == {LIN}


def test_search_by_a_photo_finds_his_appearances(seen):
    work, config, rows, labels = seen
    photo = sorted((need(HAMILTON / "gallery") / LIN).iterdir())[0]
    found = json.loads(cli("search", str(photo), "--since", "1d", "--top", "2", "--json", config=config).stdout)
    assert found["searched"] >= len(rows)  # and the faces of the second run, when the enrolment test ran first
    assert all(labels.get(item["face"]) == LIN or item["identity"] == LIN for item in found["results"]), found


def test_not_this_person_turns_a_bystander_unknown_and_keeps_the_person(tmp_path, default_detector, default_embedder):
    """George W. Bush is enrolled; at a deliberately low threshold Colin Powell matches him. One
    rejection of a Powell photo makes Powell's other photos unknown; Bush's still match."""
    from edge_daemon.api import build_gallery, embed_faces, face_nearest_centre, find_faces, load_image

    lfw = need(DATA / "eval" / "lfw")
    people = tmp_path / "people"
    (people / "bush").mkdir(parents=True)
    for number in (1, 2, 3):
        (people / "bush" / f"{number}.jpg").symlink_to(lfw / "George_W_Bush" / f"George_W_Bush_{number:04d}.jpg")
    gallery, _ = build_gallery(people, default_detector, default_embedder, threshold=0.2)
    gallery.save(tmp_path / "gallery")

    def identity_of(path) -> str | None:
        image = load_image(path)
        face = face_nearest_centre(find_faces(image, default_detector), image)
        vector = embed_faces(image, [face], default_embedder)
        return Gallery.load(tmp_path / "gallery").match(vector)[0].identity

    powell = [lfw / "Colin_Powell" / f"Colin_Powell_{n:04d}.jpg" for n in range(1, 7)]
    bush = [lfw / "George_W_Bush" / f"George_W_Bush_{n:04d}.jpg" for n in range(4, 10)]
    assert sum(identity_of(path) == "bush" for path in powell) >= 4  # the threshold lets him through
    cli("gallery", "reject", "--gallery", str(tmp_path / "gallery"), "bush", "--face", str(powell[0]))
    assert [identity_of(path) for path in powell[1:]] == [None] * 5
    assert [identity_of(path) for path in bush] == ["bush"] * 6
    assert Gallery.load(tmp_path / "gallery").rejected == [{"identity": "bush", "source": str(powell[0])}]


def test_a_history_that_cannot_be_written_never_stops_the_events(tmp_path):
    history = tmp_path / "history"
    history.mkdir()
    (history / "crops").write_text("a file where the crops directory should be: every crop write fails")
    config = tmp_path / "config.toml"
    config.write_text(f'[history]\npath = "{history}"\n')
    events = run_clip(config)
    assert [e for e in events if e["type"] in ("recognized", "unknown")]
    assert sum(e["type"] == "ended" for e in events) == sum(e["type"] in ("recognized", "unknown") for e in events)
