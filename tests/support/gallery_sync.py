"""What the gallery-sync tests of several tiers share: a next revision of a gallery."""

from __future__ import annotations

import shutil

from edge_daemon.recognition.gallery import Gallery


def newer_revision(gallery_dir, target):
    """A copy of the gallery with one more person (a next revision)."""
    shutil.copytree(gallery_dir, target)
    gallery = Gallery.load(target)
    gallery.add("understudy", gallery.vectors[:1] * 0.99 + 0.01, ["understudy.jpg"])
    gallery.save(target)
    return target
