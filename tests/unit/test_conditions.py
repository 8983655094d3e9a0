"""The difficult-light renderers of the conditions benchmark (edge_daemon.evaluation.conditions)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_daemon.evaluation.conditions import CONDITIONS, photo_rng, render
from edge_daemon.recognition.images import load_image
from tests.support.paths import HAMILTON, need


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_image(need(HAMILTON / "gallery" / "obama" / "obama.jpg"))


@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_every_condition_keeps_the_photo_shape_and_is_repeatable_with_a_seed(photo, condition):
    first = render(photo, condition, photo_rng(7, "obama"))
    assert first.shape == photo.shape and first.dtype == np.uint8
    assert np.array_equal(first, render(photo, condition, photo_rng(7, "obama")))


def test_photos_and_seeds_draw_different_nights(photo):
    one = render(photo, "infrared", photo_rng(0, "obama"))
    assert not np.array_equal(one, render(photo, "infrared", photo_rng(1, "obama")))
    assert not np.array_equal(one, render(photo, "infrared", photo_rng(0, "biden")))


def test_video_frames_keep_the_cameras_settings_with_fresh_noise(photo):
    """Two frames of one camera: the same settings (one generator made afresh from one seed), their
    own sensor noise (one running generator): they differ pixel by pixel, not in level or contrast."""
    noise = np.random.default_rng(0)
    first, second = (render(photo, "infrared", photo_rng(0, "walk-3"), noise) for _ in range(2))
    assert not np.array_equal(first, second)
    assert abs(float(first.mean()) - float(second.mean())) < 1.0
    assert abs(float(first.std()) - float(second.std())) < 1.0
    other_night = render(photo, "infrared", photo_rng(0, "walk-4"), noise)
    assert abs(float(first.mean()) - float(other_night.mean())) > 1.0 or abs(float(first.std()) - float(other_night.std())) > 1.0


def test_infrared_has_no_chroma_and_less_contrast(photo):
    night = render(photo, "infrared", photo_rng(0, "obama"))
    assert np.array_equal(night[:, :, 0], night[:, :, 1]) and np.array_equal(night[:, :, 1], night[:, :, 2])
    assert np.percentile(night, 95) - np.percentile(night, 5) < np.percentile(photo, 95) - np.percentile(photo, 5)


def test_an_unknown_condition_is_refused(photo):
    with pytest.raises(ValueError, match="unknown condition"):
        render(photo, "fog", photo_rng(0, "obama"))
