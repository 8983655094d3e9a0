"""``[detector]``: which face detector runs, and the faces it hands on to embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edge_daemon.config.base import Section
from edge_daemon.config.execution import ProviderName, openvino_device_field, provider_field


class DetectorConfig(Section):
    backend: Literal["yunet", "yuface", "yunet_onnx"] = Field(
        "yunet",
        title="Detector backend",
        description=(
            "'yunet' (the default): libfacedetection's YuNet on ONNX Runtime, its weights read from the yuface "
            "wheel and converted by 'edge-daemon models prepare' (yuface's boxes and landmarks, any CPU and Python). "
            "'yuface': libfacedetection's own compiled code (x86_64, CPython 3.10-3.11 only, optional). "
            "'yunet_onnx': OpenCV FaceDetectorYN with the YuNet ONNX file given in model_path."
        ),
    )
    model_path: Path | None = Field(
        None, title="YuNet ONNX file", description="Required for 'yunet_onnx' (OpenCV model zoo face_detection_yunet)."
    )
    model_cache: Path | None = Field(
        None,
        title="Converted model directory",
        description="Where 'yunet' finds its converted model (default: the directories 'edge-daemon models "
        "prepare' writes to; give the same directory as embedder.model_cache if you set that).",
    )
    provider: ProviderName = provider_field()
    openvino_device: str = openvino_device_field()
    score_threshold: float = Field(
        0.7, ge=0, le=1, title="Detection score", description="Detections scoring below are discarded."
    )
    max_side: int = Field(
        640, ge=64, le=4096, title="Detection size", description="Frames are downscaled to this longest side first."
    )
    separate_process: bool = Field(
        True,
        title="Own process",
        description="Run the model in a child process: it holds Python's GIL while it runs and would starve capture.",
    )
    recycle_after: int = Field(
        3000,
        ge=0,
        title="Recycle yuface after",
        description="Replace the yuface detector process after this many frames (0: never). yuface leaks memory "
        "on every call, so this bounds its growth (docs/guide/models.md); a spare takes over without a pause.",
    )
    min_face_px: int = Field(
        20,
        ge=0,
        title="Minimum face size",
        description="Faces narrower than this (frame pixels) are not embedded. Faces from 20 px up are evidence: "
        "their quality weights them in the track's template and the open-set thresholds for that quality decide, "
        "'uncertain' where they cannot tell. Below 20 px the detector misses too many faces to follow a walker "
        "(docs/guide/night.md#by-face-width).",
    )
    max_yaw: float = Field(
        0.8,
        ge=0,
        title="Most turned face",
        description=(
            "Frontalness from the 5 landmarks: horizontal nose offset from the eye midpoint divided by the eye "
            "distance (0 frontal, above 1 near profile). More turned faces are not embedded: their embeddings "
            "match the wrong people."
        ),
    )
    min_sharpness: float = Field(
        20.0,
        ge=0,
        title="Minimum sharpness",
        description="Variance of the Laplacian of the face crop; blurrier faces are not embedded.",
    )
    workers: int = Field(
        1,
        ge=1,
        le=16,
        title="Detection workers",
        description="Detector processes serving the one detection queue together, each with threads.model_process "
        "threads. On a 2-core box one is best (two raised p95 latency: the second competes with embedding and "
        "decoding); a box with cores to spare can detect bursts on many cameras in parallel.",
    )
    queue_max_age_s: float = Field(
        1.0,
        gt=0,
        le=60,
        title="Oldest frame detected",
        description="One detection worker serves every camera; a frame captured longer ago than this when its turn "
        "comes is skipped (counted as detect_stale) instead of detected late.",
    )
    queue_size: int = Field(
        2,
        ge=1,
        le=64,
        title="Detection queue per camera",
        description="Requests one camera may have waiting for the detection worker; a full queue drops its oldest "
        "(counted as detect_dropped).",
    )
    max_batch: int = Field(
        8,
        ge=1,
        le=64,
        title="Detection batch",
        description="Most requests (one per camera) in one detector call, for a detector that takes batches; the "
        "shipped detectors take one image a call.",
    )

    @model_validator(mode="after")
    def _onnx_needs_model(self) -> DetectorConfig:
        if self.backend == "yunet_onnx" and self.model_path is None:
            raise ValueError("backend 'yunet_onnx' needs detector.model_path (a YuNet .onnx file)")
        return self
