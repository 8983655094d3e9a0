"""Face crops as JPEG files (``events.crops_dir``), one per decision made on a face, named in the
event that the transports carry (``crop_path``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2

from edge_daemon.embedders.alignment import first_crop
from edge_daemon.logs import RepeatedFailure, get_logger
from edge_daemon.pipeline.sinks.base import Decided

log = get_logger(__name__)


class CropFiles:
    """Writes ``<crops_dir>/<camera>/<event_id>.jpg``; a crop that cannot be written is counted and
    logged (with counts, not once per crop) and the event goes on without it."""

    def __init__(self, crops_dir: Path):
        self._crops_dir = crops_dir
        self._failures = RepeatedFailure(log, "cannot save face crops: events go on without them", "face crops saved again")

    def take(self, decided: Decided) -> Decided:
        if decided.face is None:
            return decided
        event = decided.event.model_copy(update={"crop_path": self._save(decided)})
        return dataclasses.replace(decided, event=event)

    def _save(self, decided: Decided) -> str | None:
        event = decided.event
        path = self._crops_dir / event.camera / f"{event.event_id}.jpg"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), first_crop(decided.face.sample.crop)):
                raise OSError("imwrite failed")
        except (OSError, cv2.error) as exc:
            self._failures.failed(str(exc), path=str(path))
            return None
        self._failures.succeeded(crops_dir=str(self._crops_dir))
        return str(path)
