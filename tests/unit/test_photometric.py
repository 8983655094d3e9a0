"""Photometric normalisation of aligned faces and the infrared-mode check (edge_daemon.embedders.photometric)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_daemon.embedders.photometric import Normaliser, face_contrast, looks_infrared, normalise_face
from edge_daemon.evaluation.conditions import photo_rng, render
from edge_daemon.recognition.images import find_faces, load_image
from tests.support.paths import HAMILTON, need


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_image(need(HAMILTON / "gallery" / "obama" / "obama.jpg"))


@pytest.fixture(scope="module")
def aligned(photo, default_detector, default_embedder):
    """The photo's face as the default embedder aligns it (one crop per fused member)."""
    return default_embedder.aligner.align(photo, find_faces(photo, default_detector)[0])


def test_auto_leaves_a_well_exposed_face_as_it_is_embedded(aligned, default_embedder):
    plain, normalised = default_embedder.embed([aligned, Normaliser("auto")(aligned)])
    assert float(np.dot(plain, normalised)) >= 0.99


def test_a_flat_face_is_normalised_and_gains_contrast(aligned):
    flat = tuple((crop.astype(np.float32) * 0.35 + 110).astype(np.uint8) for crop in aligned)
    normaliser = Normaliser("auto")
    assert normaliser.wanted(flat[0])
    done = normaliser(flat)
    assert all(face_contrast(after) > 1.3 * face_contrast(before) for before, after in zip(flat, done))
    assert face_contrast(normalise_face(flat[0])) == face_contrast(done[0])


def test_off_never_normalises(aligned):
    flat = tuple((crop.astype(np.float32) * 0.35 + 110).astype(np.uint8) for crop in aligned)
    assert Normaliser("off")(flat) is flat


def test_looks_infrared_on_colour_grey_and_night_frames(photo):
    assert not looks_infrared(photo)
    grey = np.repeat(photo.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    assert looks_infrared(grey)
    assert looks_infrared(render(photo, "infrared", photo_rng(0, "obama")))
    assert not looks_infrared(render(photo, "low_bitrate", photo_rng(0, "obama")))
