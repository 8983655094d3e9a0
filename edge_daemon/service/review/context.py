"""What the review pages work with, handed over by the service's runner: the daemon's history and
groups, its gallery on disk and how to make the running daemon take a changed gallery, and, for the
newer pages, how to find faces in an uploaded photo, the matcher the daemon decides with and what
each camera sees now. The pages read these; they never reach into the pipeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_daemon.history import FaceHistory, HistoryGroups, Reprocessed
from edge_daemon.pipeline.status import CameraView
from edge_daemon.recognition.matcher import Matcher
from edge_daemon.service.review.photos import PhotoFaces


@dataclass(frozen=True)
class ReviewContext:
    history: FaceHistory | None  # None: it could not be opened (the pages answer 503)
    groups: HistoryGroups | None  # None: tracks are not grouped (no groups are listed)
    gallery_path: Path | None  # gallery.path; None: nothing can be enrolled
    embedder_version: str  # only faces embedded by this version can be enrolled
    reload_gallery: Callable[[], None]  # after the pages changed the gallery on disk
    cameras: tuple[str, ...] = ()  # the configured cameras' names, for filters
    photo_faces: PhotoFaces | None = None  # the face in an uploaded photo; None: photos cannot be added
    share_gallery: Callable[[], None] | None = None  # hands a changed gallery on to the fleet (gallery.sync)
    camera_views: Callable[[str], CameraView | None] | None = None  # what a camera sees now, by name; None: no cameras view
    min_face_px: int | None = None  # detector.min_face_px, explained on the cameras view
    matcher: Matcher | None = None  # the matcher the daemon decides with (its gallery's people)
    # Decides the history's recent unnamed tracks again against the gallery in use (after every
    # change the pages make, and on request); None: no history to reprocess.
    reprocess: Callable[[], Reprocessed] | None = None
