"""Matcher: looks embeddings up in the current gallery; the gallery can be swapped atomically."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from edge_daemon.config import GalleryConfig
from edge_daemon.gallery import META_FILE, Gallery, Match
from edge_daemon.logs import get_logger

log = get_logger(__name__)


class Matcher:
    """Owns the gallery the daemon searches. ``reload()`` (on SIGHUP) builds the new gallery
    aside and swaps one reference, so in-flight lookups finish on the old one and no frame waits."""

    def __init__(self, config: GalleryConfig, embedder):
        self._config = config
        self._embedder = embedder
        self._lock = threading.Lock()  # serialises reloads, never lookups
        self.gallery: Gallery | None = None
        if config.path is not None and (config.sync == "off" or (Path(config.path) / META_FILE).exists()):
            self.gallery = self._load()
        if self.gallery is None and config.sync != "off":
            log.warning("no gallery on disk yet: every face is unknown until one arrives from the broker")
        elif self.gallery is None:
            log.warning("no gallery configured: every face will be reported as unknown")

    def _load(self) -> Gallery:
        return self._prepared(Gallery.load(Path(self._config.path)), f"loaded from {self._config.path}")

    def _prepared(self, gallery: Gallery, origin: str) -> Gallery:
        """``gallery`` checked against the embedder, with its index built, and logged."""
        gallery.check_embedder(self._embedder)
        gallery.use_approximate_index(self._config.approximate_from)
        log.info(
            "gallery in use",
            origin=origin,
            version=gallery.version,
            people=len(gallery.identities()),
            embeddings=len(gallery.labels),
            index=gallery.index_kind,
            threshold=self.threshold_for(gallery),
        )
        return gallery

    def threshold_for(self, gallery: Gallery) -> float:
        return gallery.threshold if self._config.threshold is None else self._config.threshold

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
        return True

    def adopt(self, gallery: Gallery) -> None:
        """Use ``gallery`` (a revision from the fleet's broker) from the next batch on."""
        gallery = self._prepared(gallery, "the fleet's broker")
        with self._lock:
            self.gallery = gallery

    def match(self, vectors: np.ndarray) -> tuple[list[Match], str | None]:
        gallery = self.gallery  # one read: the whole batch sees the same gallery
        if gallery is None:
            return [Match(None, 0.0, None) for _ in range(len(vectors))], None
        return gallery.match(vectors, self.threshold_for(gallery), self._config.top_k), gallery.version
