"""Every change the review pages make to the gallery goes through ``change_gallery``: under the
gallery's lock, loaded, changed, saved (atomically), then taken by the running daemon at once and,
where the box shares its gallery over MQTT, handed on to the fleet, and the history's recent unnamed
tracks decided again against it (``context.reprocess``); logged with what changed. A change that
raises leaves the gallery on disk as it was."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edge_daemon.logs import get_logger
from edge_daemon.recognition.gallery import Gallery, locked
from edge_daemon.service.review.context import ReviewContext

log = get_logger(__name__)


def gallery_path(context: ReviewContext) -> Path:
    if context.gallery_path is None:
        raise ValueError("no gallery configured (gallery.path)")
    return Path(context.gallery_path)


def change_gallery(context: ReviewContext, change: Callable[[Gallery], None], what: str, **details) -> Gallery:
    """Apply ``change`` to the gallery on disk and make the daemon use the result; ``what`` and
    ``details`` are the log line. Returns the changed gallery."""
    path = gallery_path(context)
    with locked(path):
        gallery = Gallery.load(path)
        change(gallery)
        gallery.save(path)
    context.reload_gallery()
    if context.share_gallery is not None:
        context.share_gallery()
    log.info(f"review: {what}", gallery=gallery.version, **details)
    if context.reprocess is not None:
        try:
            context.reprocess()
        except Exception as exc:  # the change is saved and in use: a failed revision of the history must not hide it
            log.error("review: reprocessing the history after a gallery change failed", error=str(exc))
    return gallery
