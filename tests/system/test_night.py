"""Night vision through the public API: frames of the Hamilton clip as an infrared camera shows
them (grey, flat, noisy, strongly compressed; edge_daemon.evaluation.conditions), recognised by
``edge_daemon.api.recognize`` with the default configuration against the Hamilton gallery, enrolled
from colour photos."""

from __future__ import annotations

import cv2
import pytest

from edge_daemon.embedders.photometric import looks_infrared
from edge_daemon.evaluation.conditions import photo_rng, render
from tests.support.paths import HAMILTON_CLIP, need

pytestmark = pytest.mark.slow

EVERY = 25  # frames apart: a handful of different poses of the stage scene


@pytest.fixture(scope="module")
def frames():
    capture = cv2.VideoCapture(str(need(HAMILTON_CLIP)))
    found, number = [], 0
    while True:
        read, frame = capture.read()
        if not read:
            break
        if number % EVERY == 0:
            found.append((number, frame))
        number += 1
    capture.release()
    return found


def named(image, detector, embedder, gallery) -> set[str]:
    from edge_daemon.api import recognize

    return {face.identity for face in recognize(image, detector, embedder, gallery) if face.identity is not None}


def test_grey_low_contrast_frames_of_an_enrolled_person_are_recognised(frames, hamilton_gallery, default_detector, default_embedder):
    from edge_daemon.recognition.gallery import Gallery

    gallery = Gallery.load(hamilton_gallery)
    # The frames where daylight recognition names him: there the night picture is the only change.
    his = [(number, frame) for number, frame in frames
           if named(frame, default_detector, default_embedder, gallery) == {"lin_manuel_miranda"}]
    assert len(his) >= 4
    nights = [render(frame, "infrared", photo_rng(0, f"hamilton-{number}")) for number, frame in his]
    assert all(looks_infrared(night) for night in nights)
    seen = [named(night, default_detector, default_embedder, gallery) for night in nights]
    assert all(names <= {"lin_manuel_miranda"} for names in seen), seen  # nobody else is ever named
    assert sum(names == {"lin_manuel_miranda"} for names in seen) >= len(his) / 2, seen
