"""Every change the review pages make to the gallery goes through ``change_gallery``: under the
gallery's lock, loaded, changed, saved (atomically), then taken by the running daemon at once and,
where the box shares its gallery over MQTT, handed on to the fleet, and the history's recent unnamed
tracks decided again against it (``context.reprocess``); logged with what changed. A change that
raises leaves the gallery on disk as it was."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edge_daemon.logs import get_logger
from edge_daemon.recognition.enrolment import enrolment_from_history
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


def enrol_history_faces(context: ReviewContext, name: str, rows, crops_gone: str, what: str, **details) -> None:
    """Add history faces (``FaceRow``; their stored embeddings and crops) to ``name`` in the gallery
    and mark them enrolled; ``ValueError(crops_gone)`` when none of their crops is left."""
    enrolment = enrolment_from_history(rows)
    if not enrolment.vectors:
        raise ValueError(crops_gone)
    change_gallery(
        context,
        lambda gallery: gallery.add(name, enrolment.matrix(gallery.dim), enrolment.sources, enrolment.faces),
        what, identity=name, **details,
    )
    context.history.mark_enrolled([row.face_id for row in rows], name)
