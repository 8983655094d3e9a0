"""The recognition event: one pydantic model, the same JSON in JSON lines and over MQTT."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge_daemon.messages import Verdict

EventType = Literal["recognized", "unknown", "updated", "ended"]


def utc_iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex, description="Unique id; consumers dedupe on it.")
    type: EventType = Field(description="recognized / unknown: first decision for a track; updated: it changed; ended.")
    box: str = Field(description="The box (service.box) whose camera saw the face.")
    camera: str
    track_id: int = Field(description="Per-camera track number; one person walking through keeps one id.")
    identity: str | None = Field(description="Enrolled name, or null when unknown.")
    score: float = Field(allow_inf_nan=False, description="Cosine similarity to the best gallery match behind the decision.")
    verdict: Verdict = Field(
        description="recognized: named; unknown: seen well enough to say it is nobody enrolled; uncertain: the face (or "
        "track) was too poor to tell a stranger from an enrolled person at the target rate of strangers named."
    )
    quality: float | None = Field(
        None, allow_inf_nan=False, description="Face-quality score (0-1) of the face or track template behind the decision."
    )
    bbox: tuple[float, float, float, float] = Field(description="[x, y, w, h] in frame pixels.")
    ts: str = Field(description="When the event was made, ISO 8601 UTC.")
    frame_ts: str = Field(description="When the frame behind the decision was captured, ISO 8601 UTC.")
    attempts: int = Field(description="Faces of this track embedded so far.")
    embedder: str
    embedder_version: str
    gallery_version: str | None
    crop_path: str | None = Field(None, description="JPEG of the face behind the decision, when crops are saved.")

    @model_validator(mode="before")
    @classmethod
    def _verdict_from_identity(cls, data):
        """An event made without a verdict (older code, other producers) has the two-way one."""
        if isinstance(data, dict) and "verdict" not in data:
            data = {**data, "verdict": "recognized" if data.get("identity") is not None else "unknown"}
        return data

    def to_json(self) -> str:
        return self.model_dump_json()
