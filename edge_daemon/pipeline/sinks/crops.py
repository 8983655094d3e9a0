"""Face crops as JPEG files (``events.crops_dir``), one per decision made on a face, named in the
event that the transports carry (``crop_path``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2

from edge_daemon.embedders.alignment import first_crop
from edge_daemon.logs import get_logger
from edge_daemon.pipeline.sinks.base import Decided

log = get_logger(__name__)


class CropFiles:
    """Writes ``<crops_dir>/<camera>/<event_id>.jpg``; a crop that cannot be written is logged and
    the event goes on without it."""

    def __init__(self, crops_dir: Path):
        self._crops_dir = crops_dir

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
            log.warning("cannot save face crop", path=str(path), error=str(exc))
            return None
        return str(path)
