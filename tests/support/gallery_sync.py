"""What the gallery-sync tests of several tiers share: a sync under test, a gallery's embedder, a next revision."""

from __future__ import annotations

import shutil

from edge_daemon.comms.gallery_sync import GallerySync
from edge_daemon.config import MqttConfig
from edge_daemon.recognition.gallery import Gallery

PREFIX = "fleet"


def embedder_of(gallery_dir) -> tuple[str, str]:
    gallery = Gallery.load(gallery_dir)
    return gallery.embedder, gallery.embedder_version


def start_sync(broker, directory, embedder, current=None, incomplete_after_s=60.0):
    adopted: list[Gallery] = []
    sync = GallerySync(MqttConfig(url=broker.url), PREFIX, f"test-{directory.name}", embedder, directory, current,
                       adopted.append, incomplete_after_s)
    return sync, adopted


def newer_revision(gallery_dir, target):
    """A copy of the gallery with one more person (a next revision)."""
    shutil.copytree(gallery_dir, target)
    gallery = Gallery.load(target)
    gallery.add("understudy", gallery.vectors[:1] * 0.99 + 0.01, ["understudy.jpg"])
    gallery.save(target)
    return target
