"""``[motion]``: motion gating, and the regions detected around what moves and what is tracked."""

from __future__ import annotations

from pydantic import Field

from edge_daemon.config.base import Section


class MotionConfig(Section):
    enabled: bool = Field(
        True,
        title="Motion gating",
        description="Detect only what the scene needs: skip frames with no motion and no live track, detect "
        "regions around what moves, the whole frame every cameras.idle_detect_s. False detects every frame whole.",
    )
    width: int = Field(
        240, ge=16, le=1920, title="Motion frame width", description="Pixels of the small grey frame motion is found on."
    )
    min_area: int = Field(
        6, ge=1, title="Smallest motion", description="Small-frame pixels a moving blob needs (after dilation) to count."
    )
    dilate_px: int = Field(
        2,
        ge=0,
        le=32,
        title="Motion dilation",
        description="Small-frame pixels each moving pixel is grown by, joining the edges of one moving person into one blob.",
    )
    learning_rate: float = Field(
        0.05,
        gt=0,
        le=1,
        title="Background learning rate",
        description="Share of the background replaced by each frame; someone standing still fades into it within "
        "a few seconds (their track keeps a region on them).",
    )
    light_change: float = Field(
        0.5,
        gt=0,
        le=1,
        title="Light change",
        description="Share of the frame changing at once that is taken as light (lamps, day/night, exposure), not "
        "motion: the background is learnt again and the whole frame detected once.",
    )
    region_min_side: int = Field(
        64,
        ge=8,
        le=4096,
        multiple_of=8,
        title="Smallest region side",
        description="Frame pixels of a region's shortest side at least; a multiple of 8 (YuNet's finest stride).",
    )
    region_box_scale: float = Field(
        1.25, ge=1, le=8, title="Region size", description="A region's width and height per the box's it is around."
    )
    region_padding_px: int = Field(
        24,
        ge=0,
        le=1024,
        title="Region padding",
        description="Frame pixels kept around a box at least, so a face the motion box cuts is whole in its region.",
    )
    region_merge_overlap: float = Field(
        0.3,
        gt=0,
        le=1,
        title="Region merge overlap",
        description="Regions overlapping by this share of the smaller one become one region around both.",
    )
    duplicate_iou: float = Field(
        0.3,
        gt=0,
        le=1,
        title="Duplicate face overlap",
        description="A face found in two regions whose boxes overlap by this IoU is kept once.",
    )
    region_face_px: int = Field(
        40,
        ge=0,
        le=1024,
        title="Tracked face size",
        description="A region around a live track is shrunk until its face is this many pixels wide for the detector "
        "(never below the whole frame's own downscale, never enlarged), and so is a moving blob of that person's "
        "size around it; motion with no tracked face is detected at full size. 0: every region at full size.",
    )
    max_region_cost: float = Field(
        1.0,
        gt=0,
        le=16,
        title="Most region cost",
        description="When the regions would cost more than this times the whole frame (motion everywhere), the "
        "whole frame is detected instead. Costs are the detector's input pixels, a fixed cost per detector call and "
        "the shrinking of what is shrunk for it (the whole frame's downscale included).",
    )
