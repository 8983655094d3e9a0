"""Matcher: looks embeddings (faces, or track templates) up in the current gallery, with the open-set
thresholds derived for its number of people; the gallery can be swapped atomically."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge_daemon.config import GalleryConfig
from edge_daemon.logs import get_logger
from edge_daemon.recognition.gallery import META_FILE, Gallery, Match
from edge_daemon.recognition.thresholds import open_set_table

log = get_logger(__name__)


class Matcher:
    """Owns the gallery the daemon searches. ``reload()`` (on SIGHUP) builds the new gallery
    aside and swaps one reference, so in-flight lookups finish on the old one and no frame waits.
    ``on_change`` is told the gallery in use at start and after every swap, in the order of the swaps."""

    def __init__(self, config: GalleryConfig, embedder, on_change: Callable[[Gallery | None], None] | None = None):
        self._config = config
        self._embedder = embedder
        self._on_change = on_change
        self._lock = threading.Lock()  # serialises swaps, never lookups
        self.gallery: Gallery | None = None
        if config.path is not None and (config.sync == "off" or (Path(config.path) / META_FILE).exists()):
            self.gallery = self._load()
        self._changed()
        if self.gallery is None and config.sync != "off":
            log.warning("no gallery on disk yet: every face is unknown until one arrives from the broker")
        elif self.gallery is None:
            log.warning("no gallery configured: every face will be reported as unknown")

    def _load(self) -> Gallery:
        return self._prepared(Gallery.load(Path(self._config.path)), f"loaded from {self._config.path}")

    def _prepared(self, gallery: Gallery, origin: str) -> Gallery:
        """``gallery`` checked against the embedder, with its index built and its thresholds
        derived for its number of people, and logged."""
        gallery.check_embedder(self._embedder)
        gallery.use_approximate_index(self._config.approximate_from)
        use_thresholds(gallery, self._config)
        log.info(
            "gallery in use",
            origin=origin,
            version=gallery.version,
            people=len(gallery.identities()),
            embeddings=len(gallery.labels),
            index=gallery.index_kind,
            threshold=describe_threshold(gallery, self._config),
        )
        return gallery

    def reload(self) -> bool:
        """Re-read the gallery directory. On any error the current gallery stays in use."""
        if self._config.path is None:
            return False
        with self._lock:
            try:
                self.gallery = self._load()
            except Exception as exc:  # keep serving with the old gallery, say why
                log.error("gallery reload failed, keeping the current one", error=str(exc))
                return False
            self._changed()
        return True

    def adopt(self, gallery: Gallery) -> None:
        """Use ``gallery`` (a revision from the fleet's broker) from the next batch on."""
        gallery = self._prepared(gallery, "the fleet's broker")
        with self._lock:
            self.gallery = gallery
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.gallery)

    def match(
        self, vectors: np.ndarray, qualities: list[float], faces: list[float] | None = None
    ) -> tuple[list[Match], str | None]:
        """The gallery's answer for each row of ``vectors``: a face (or template of ``faces[i]``
        faces) of quality ``qualities[i]``."""
        gallery = self.gallery  # one read: the whole batch sees the same gallery
        if gallery is None:
            return [Match(None, 0.0, None) for _ in range(len(vectors))], None
        matches = gallery.match(vectors, self._config.threshold, self._config.top_k, qualities, faces)
        return matches, gallery.version


def use_thresholds(gallery: Gallery, config: GalleryConfig) -> None:
    """Give ``gallery`` the open-set thresholds of its embedder's table (the daemon and ``recognize``
    alike); without a table, or with a fixed ``config.threshold``, one threshold holds."""
    table = open_set_table(gallery.embedder, gallery.embedder_version) if config.threshold is None else None
    gallery.use_open_set(table, config.target_fpir, config.min_useful_tar)


def describe_threshold(gallery: Gallery, config: GalleryConfig) -> str | float:
    """For the log: the fixed threshold, or the open-set one for a good single face and a poor one."""
    point = gallery.operating_point
    if point is None:
        return gallery.threshold if config.threshold is None else config.threshold
    good, _ = point.threshold(1.0)
    poor, _ = point.threshold(0.0)
    return f"open-set for {point.identities} people at FPIR {point.fpir:g}: {good:.4f} (good face) to {poor:.4f} (poor)"
