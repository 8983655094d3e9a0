"""The open-set threshold follows the gallery's size as it grows or shrinks."""

from __future__ import annotations

import numpy as np

from edge_daemon.config import GalleryConfig
from edge_daemon.recognition.gallery import Gallery
from edge_daemon.recognition.matcher import Matcher
from tests.support.open_set import DEFAULT_VERSION, unit


class _Named:
    """What the matcher checks a gallery against: an embedder's name and version."""

    def __init__(self, name, version):
        self.name, self.version = name, version


def test_threshold_is_rederived_when_the_gallery_grows_or_shrinks(tmp_path):
    rng = np.random.default_rng(3)
    gallery = Gallery("fused", DEFAULT_VERSION, 32, 0.79, "test")
    gallery.add("p0", unit(rng.normal(size=32))[None, :], ["p0.jpg"])
    gallery.save(tmp_path / "gallery")
    matcher = Matcher(GalleryConfig(path=tmp_path / "gallery"), _Named("fused", DEFAULT_VERSION))
    one = matcher.gallery.operating_point
    assert one.identities == 1

    for i in range(1, 100):  # enrolled on disk (``edge-daemon enroll``), then SIGHUP
        gallery.add(f"p{i}", unit(rng.normal(size=32))[None, :], [f"p{i}.jpg"])
    gallery.save(tmp_path / "gallery")
    assert matcher.reload()
    hundred = matcher.gallery.operating_point
    assert hundred.identities == 100
    assert hundred.threshold(0.9)[0] > one.threshold(0.9)[0]

    live = matcher.gallery
    live.remove("p5")  # changed in memory: re-derived at once
    assert live.operating_point.identities == 99

    gallery.add("p100", unit(rng.normal(size=32))[None, :], ["p100.jpg"])  # a revision from the fleet's broker
    matcher.adopt(gallery)
    assert matcher.gallery.operating_point.identities == 101
