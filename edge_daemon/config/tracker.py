"""``[tracker]``: how detections continue tracks, and how many faces of a track are embedded."""

from __future__ import annotations

from pydantic import Field, model_validator

from edge_daemon.config.base import Section


class TrackerConfig(Section):
    max_speed: float = Field(
        12.0,
        gt=0,
        le=100,
        title="Fastest face",
        description="Fastest a face is expected to move, in face widths per second (a face is about 16 cm wide, so a "
        "walker at 1.4 m/s moves about 9 widths/s at any distance); how far a new track's next detection may be.",
    )
    gate_sd: float = Field(
        3.0,
        gt=0,
        le=10,
        title="Match gate",
        description="A detection continues a track only when its centre is within this many standard deviations of "
        "the track's predicted centre; the deviation grows with the face's width and the time since it was seen.",
    )
    max_distance: float = Field(
        5.0,
        gt=0,
        le=50,
        title="Farthest jump",
        description="A detection continues a track only when its centre is within this many face widths of the "
        "track's predicted centre, however long the track was unseen: a face found far from where it should be is "
        "someone else (in a crowd, the gate alone would let a track that lost its face take a passer-by's).",
    )
    max_size_ratio: float = Field(
        1.5,
        gt=1,
        title="Size change",
        description="A detection continues a track only when its width is within this factor of the predicted width.",
    )
    min_appearance_similarity: float = Field(
        0.65,
        ge=-1,
        le=1,
        title="Appearance check",
        description="When a track and a detection both have an embedding, refuse the match below this cosine "
        "similarity (a swap of people); -1 turns the check off. For the default embedder on LFW dev pairs, the "
        "same person scores 0.79 or more and 29% of different people score below 0.65.",
    )
    max_missed_s: float = Field(
        1.5,
        gt=0,
        title="Track timeout",
        description="A track not seen for this many seconds has ended (at once when its predicted position has left "
        "the frame).",
    )
    max_attempts: int = Field(
        3, ge=1, le=50, title="Embeddings per track", description="Most faces of one track that are embedded."
    )
    uncertain_after: int = Field(
        3,
        ge=0,
        title="Uncertain after",
        description="A track detected this many times whose every face the quality gates refused (too small, "
        "blurred, turned away) is decided 'uncertain': someone is there, too poorly seen to say who (0: such "
        "tracks stay silent). A later face good enough to embed revises it ('updated').",
    )
    better_face_ratio: float = Field(
        1.3,
        ge=0,
        title="Clearly better face",
        description="Embed again only when a face's quality (area x sharpness) beats the best embedded one by this "
        "factor; 0 embeds every face of every frame (up to max_attempts).",
    )

    @model_validator(mode="before")
    @classmethod
    def _iou_options_removed(cls, data: object) -> object:
        # Refused rather than ignored: a box tuned for IoU matching must learn that its tuning no
        # longer applies, and what replaces it.
        removed = sorted({"iou_threshold", "iou_buffer"} & set(data)) if isinstance(data, dict) else []
        if removed:
            raise ValueError(
                f"no longer supported: {', '.join(removed)} (tracks follow predicted motion now; delete the "
                "line: max_speed, gate_sd, max_distance and max_size_ratio tune the matching)"
            )
        return data
