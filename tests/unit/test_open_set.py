"""Open-set decisions without models: track templates, the shipped threshold table, and the verdict
(recognized / unknown / uncertain) in events."""

from __future__ import annotations

import time

import numpy as np

from edge_daemon.messages import FaceSample, Identification
from edge_daemon.recognition.gallery import Gallery
from edge_daemon.recognition.thresholds import OpenSetTable, open_set_table, template
from tests.support.open_set import DEFAULT_VERSION, run_decisions, ten_people_matcher, unit


def shipped_table() -> OpenSetTable:
    table = open_set_table("fused", DEFAULT_VERSION)
    assert table is not None, "the default embedder ships an open-set table"
    return table


def face(track_id, vector, quality, per_face=(None, 0.0, "unknown")) -> Identification:
    sample = FaceSample("door", track_id, (1, 2, 3, 4), quality, np.zeros((4, 4, 3), np.uint8), None, time.time())
    identity, score, verdict = per_face
    return Identification(sample, identity, score, "r1", time.time(), unit(vector), verdict)


def test_template_is_the_normalised_quality_weighted_mean():
    a, b = unit([1, 0, 0]), unit([0, 1, 0])
    vector, quality, faces = template(np.stack([a, b]), [0.8, 0.2])
    assert np.isclose(np.linalg.norm(vector), 1.0)
    assert np.allclose(vector, unit(0.8 * a + 0.2 * b), atol=1e-6)  # weights are the qualities
    assert np.isclose(quality, (0.8 * 0.8 + 0.2 * 0.2) / 1.0)
    assert np.isclose(faces, 1.0**2 / (0.8**2 + 0.2**2))  # effective faces: (sum w)^2 / sum w^2
    _, _, three = template(np.stack([a, a, a]), [0.5, 0.5, 0.5])
    assert np.isclose(three, 3.0)
    # A useless-looking face still counts a little (the weight floor), never zero or negative.
    poor, _, _ = template(np.stack([a, b]), [0.9, 0.0])
    assert 0 < float(np.dot(poor, b)) < 0.1


def test_template_is_searched_through_faiss_like_a_face():
    rng = np.random.default_rng(7)
    people = np.stack([unit(v) for v in rng.normal(size=(20, 64))])
    gallery = Gallery("test", "v1", 64, 0.5, "test")
    for i, vector in enumerate(people):
        gallery.add(f"p{i}", vector[None, :], [f"p{i}.jpg"])
    noisy = np.stack([unit(people[13] + rng.normal(scale=0.4, size=64)) for _ in range(5)])
    vector, quality, faces = template(noisy, [0.9, 0.7, 0.5, 0.3, 0.1])
    match = gallery.match(vector[None, :], qualities=[quality], faces=[faces])[0]
    assert match.identity == "p13" and match.verdict == "recognized"
    assert np.isclose(match.score, float(np.max(people @ vector)), atol=1e-5)
    # The template is closer to the person than its typical face: averaging cancels the noise.
    assert match.score > float(np.mean(noisy @ people[13]))


def test_shipped_threshold_table_is_monotone():
    table = shipped_table()
    thresholds = np.array(table.thresholds)  # [band][size][far]
    assert (np.diff(thresholds, axis=2) >= 0).all(), "lower FAR, higher threshold"
    assert (np.diff(thresholds, axis=1) >= 0).all(), "more faces in a template, higher threshold"
    assert (np.diff(thresholds, axis=0) <= 0).all(), "better face, lower threshold"
    for quality in (0.1, 0.5, 0.9):
        for faces in (1, 3, 5):
            by_size = [table.operating_point(n, 0.01, 0.8).threshold(quality, faces)[0] for n in (1, 10, 100, 1000, 10000)]
            assert by_size == sorted(by_size) and by_size[0] < by_size[-1], by_size


def test_verdicts_in_events_recognized_unknown_and_uncertain(tmp_path):
    rng = np.random.default_rng(11)
    matcher, people = ten_people_matcher(rng)
    stranger = rng.normal(size=64)
    events, drops = run_decisions(
        matcher,
        [
            face(1, people[4], 0.95),  # an enrolled person, a good face
            face(2, stranger, 0.95),  # a stranger, a good face: someone we do not know
            face(3, stranger, 0.01),  # a useless face: dropped, and we could not see who it was
            face(4, people[2] + rng.normal(scale=0.05, size=64), 0.2),  # a poor face of an enrolled person
        ],
        tmp_path / "events.jsonl",
    )
    decided = {e["track_id"]: (e["type"], e["identity"], e["verdict"]) for e in events}
    assert decided[1] == ("recognized", "p4", "recognized")
    assert decided[2] == ("unknown", None, "unknown")
    assert decided[3] == ("unknown", None, "uncertain")
    assert decided[4][1:] in {("p2", "recognized"), (None, "uncertain")}  # never unknown, never someone else
    assert drops["faces_dropped_useless"] == 1
    assert all(0 <= e["quality"] <= 1 for e in events)


def test_poor_face_below_the_threshold_is_uncertain_not_unknown(tmp_path):
    rng = np.random.default_rng(5)
    matcher, people = ten_people_matcher(rng)
    point = matcher.gallery.operating_point
    poor_threshold, poor_tar = point.threshold(0.0)
    assert poor_tar < point.min_useful_tar, "the table's poorest band cannot hold 1% for 10 people usefully"
    # A face scoring just under the poor-face threshold against p0.
    other = rng.normal(size=64)
    across = unit(other - np.dot(other, people[0]) * people[0])  # orthogonal to p0
    score = poor_threshold - 0.01
    probe = score * people[0] + np.sqrt(1 - score**2) * across
    events, _ = run_decisions(matcher, [face(1, probe, 0.05)], tmp_path / "events.jsonl")
    assert [(e["identity"], e["verdict"]) for e in events] == [(None, "uncertain")]


def test_template_decision_is_revised_as_better_faces_arrive(tmp_path):
    rng = np.random.default_rng(13)
    matcher, people = ten_people_matcher(rng)
    blurred = unit(people[6] + rng.normal(scale=0.15, size=64))  # scores about 0.7: too low to name
    sharp = unit(people[6] + rng.normal(scale=0.03, size=64))
    events, _ = run_decisions(
        matcher, [face(1, blurred, 0.1), face(1, sharp, 0.9), face(1, sharp, 0.9)], tmp_path / "events.jsonl"
    )
    assert [(e["type"], e["identity"], e["verdict"]) for e in events] == [
        ("unknown", None, "uncertain"),  # one poor face: we could not see who it was
        ("updated", "p6", "recognized"),  # a good face joins the template: now named, once
    ]
    assert events[1]["attempts"] == 2 and events[1]["quality"] > events[0]["quality"]
