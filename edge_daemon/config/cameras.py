"""``[[cameras]]``: one table per stream to watch."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge_daemon.config.base import CAMERA_NAME_PATTERN, Section


class CameraConfig(Section):
    name: str = Field(
        title="Camera name",
        description="Unique name; used in events and MQTT topics (letters, digits, '_', '-', '.').",
        pattern=CAMERA_NAME_PATTERN,
    )
    url: str = Field(
        title="Source",
        description="A video file path, an 'rtsp://' / 'http://' URL, or 'usb:N' for a local capture device.",
        min_length=1,
    )
    detect_fps: float = Field(
        5.0, gt=0, le=60, title="Detection rate", description="Frames per second handed to face detection."
    )
    loop: bool = Field(False, title="Loop files", description="Restart a file source at its end (demos, benchmarks).")
    realtime: bool = Field(
        True,
        title="Pace files like a live camera",
        description=(
            "Files are read at their native frame rate and, like live cameras, drop the oldest frame when the "
            "pipeline is behind. False reads as fast as the pipeline takes frames and never drops one."
        ),
    )
    queue_size: int = Field(
        4, ge=1, le=256, title="Frame queue", description="Frames buffered between capture and detection."
    )
    reconnect_initial_s: float = Field(
        1.0, gt=0, title="First reconnect delay", description="Seconds before the first reconnect attempt."
    )
    reconnect_max_s: float = Field(
        30.0, gt=0, title="Longest reconnect delay", description="Upper bound of the exponential backoff."
    )
    decoder: Literal["auto", "opencv", "pyav"] = Field(
        "auto",
        title="Decoder",
        description="'pyav' decodes only the frames detection needs (skips B-frames, then non-reference frames, "
        "while the rest still cover detect_fps); 'opencv' decodes every frame and reads usb:N devices. "
        "'auto': pyav, except opencv for usb:N.",
    )
    deblocking: bool = Field(
        False,
        title="Deblocking filter",
        description="Run the codec's in-loop deblocking filter while decoding (decoder 'pyav'). Off by default: "
        "decoding costs less, and the frames differ from a full decode by a faint blockiness "
        "(docs/guide/cameras.md#deblocking). Turn it on for a stream with very long keyframe "
        "intervals, where that difference grows from one keyframe to the next.",
    )
    stall_timeout_s: float = Field(
        6.0,
        ge=1,
        le=600,
        title="Stall timeout",
        description="A network camera that delivers no frame for this long, with its connection still open, is "
        "marked 'stalled' and reopened; opening one gives up after this long too.",
    )
    idle_detect_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        title="Full detection every",
        description="Seconds (of video) between whole-frame detections when nothing moves: a person standing still "
        "makes no motion and is found within this time. Between them, frames with no motion and no live track "
        "skip detection; the others are detected in regions around what moves and what is tracked (motion.enabled). "
        "Each camera has its own point in this period (from its name), the first detection included, so cameras "
        "started together take turns; a file with realtime = false has its first frame detected whole.",
    )
    idle_keyframes_after_s: float = Field(
        0.0,
        ge=0,
        le=86400,
        title="Keyframes only after",
        description="Seconds (of video) with no motion and no live track after which the camera decodes only "
        "keyframes and looks for motion in them, until something moves: an idle camera then costs a fraction of "
        "its decoding. Someone walking in is found up to one keyframe interval later than with every frame "
        "decoded. 0: always decode every frame detection needs (a door that must react at once). Needs decoder "
        "'pyav' and motion.enabled; a file with realtime = false decodes every frame.",
    )
    motion_threshold: int = Field(
        15,
        ge=1,
        le=255,
        title="Motion threshold",
        description="Grey levels a pixel of the small motion frame must differ from the learnt background to count "
        "as moving; raise it for noisy night images.",
    )

    @property
    def is_file(self) -> bool:
        return not (self.url.startswith("usb:") or "://" in self.url)

    @model_validator(mode="after")
    def _pyav_reads_no_devices(self) -> CameraConfig:
        if self.decoder == "pyav" and self.url.startswith("usb:"):
            raise ValueError("decoder 'pyav' cannot read usb:N capture devices; use 'opencv' or 'auto'")
        return self
