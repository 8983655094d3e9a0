"""``[embedder]``: the face embedding model, its batches, and the members of a fused embedder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edge_daemon.config.base import Section
from edge_daemon.config.execution import ProviderName, openvino_device_field, provider_field

EmbedderBackend = Literal["dlib_onnx", "mobilefacenet", "fused", "dlib_bin", "vgg16"]
Precision = Literal["float32", "int8"]
# The backends whose model has an int8 copy (made by 'models prepare'). MobileFaceNet's int8 loses too
# much and YuNet's is slower: docs/guide/models.md#int8.
INT8_BACKENDS = ("dlib_onnx",)
# Flip averaging by default where it was calibrated with it: the ONNX face models, where it gains
# accuracy on LFW; the trainer's VGG16 threshold and the dlib-bin reference are single-crop.
FLIP_BY_DEFAULT = {"dlib_onnx": True, "mobilefacenet": True, "dlib_bin": False, "vgg16": False}


class FusionMember(Section):
    backend: Literal["dlib_onnx", "mobilefacenet", "dlib_bin", "vgg16"] = Field(
        title="Member backend", description="An embedder backend whose cosine is part of the fused score."
    )
    weight: float = Field(
        gt=0, title="Weight", description="Its share of the fused score (weights are normalised to sum 1)."
    )
    flip: bool | None = Field(
        None, title="Flip averaging", description="Embed the crop and its mirror and average; unset: the backend's default."
    )
    provider: ProviderName | None = Field(
        None, title="Execution provider", description="This member's embedder.provider; unset: the embedder's."
    )
    precision: Precision | None = Field(
        None, title="Precision", description="This member's embedder.precision; unset: the embedder's."
    )


class EmbedderConfig(Section):
    backend: EmbedderBackend = Field(
        "fused",
        title="Embedder backend",
        description="'fused' (default: dlib_onnx and mobilefacenet score-fused, the most accurate at >= 50 faces/s "
        "here), 'dlib_onnx' (dlib's 128-d ResNet on ONNX Runtime), 'mobilefacenet' (ArcFace MobileFaceNet, 192-d), "
        "'dlib_bin' (dlib's own runtime, the slow reference), 'vgg16' (a model from 'edge-daemon train').",
    )
    flip: bool | None = Field(
        None,
        title="Flip averaging",
        description="Embed each face and its mirror image and average the two (twice the compute, steadier). "
        "Unset: on for dlib_onnx and mobilefacenet, off for dlib_bin and vgg16.",
    )
    members: list[FusionMember] = Field(
        default_factory=lambda: [
            FusionMember(backend="dlib_onnx", weight=0.81, flip=False),
            FusionMember(backend="mobilefacenet", weight=0.19, flip=False),
        ],
        title="Fused members",
        description="For 'fused': the member backends, their weights and flip averaging. The default is the most "
        "accurate calibrated fusion on LFW (DevTest 99.4%): z-normalising weights (1 / spread of each member's "
        "impostor scores on LFW DevTrain), no flip averaging.",
    )
    normalise: Literal["off", "auto"] = Field(
        "off",
        title="Photometric normalisation",
        description="'auto': stretch the lightness of faces that are flat or have no colour -- an infrared "
        "camera's night picture -- before they are embedded; well-exposed colour faces are embedded as they are, "
        "so galleries stay valid. 'off' (default): never; measured, 'auto' does not help night faces overall. "
        "docs/guide/night.md.",
    )
    model_cache: Path | None = Field(
        None,
        title="Model cache",
        description="Directory of converted ONNX models and their sources. Unset: $CACHE_DIRECTORY/models under "
        "systemd, else the checkout's models/ when run from one, else ~/.cache/edge-daemon/models; every one of "
        "these is searched for a verified file. 'edge-daemon models prepare' fills it.",
    )
    precision: Precision = Field(
        "float32",
        title="Precision",
        description="'float32', or 'int8': the int8 copies of the models that have one (dlib_onnx's; in a fusion the "
        "other members stay float32), made and checked against the float models by 'edge-daemon models prepare'. "
        "A gallery is tied to the precision it was built with. What int8 gains and loses: docs/guide/models.md#int8.",
    )
    provider: ProviderName = provider_field()
    openvino_device: str = openvino_device_field()
    model_dir: Path | None = Field(
        None, title="Model directory", description="Required for 'vgg16': the trainer's output directory."
    )
    separate_process: bool = Field(
        True,
        title="Own process",
        description="Run the model in a child process, so its compute never competes with capture for Python's GIL.",
    )
    runtime: Literal["keras", "tflite", "tflite_int8"] = Field(
        "keras",
        title="VGG16 runtime",
        description="'keras' (reference) or TFLite float32 / dynamic-range int8, allowed only after "
        "'edge-daemon export-tflite' verified cosine >= 0.999 against Keras on real faces.",
    )
    runtime_threads: int = Field(1, ge=1, le=64, title="TFLite threads", description="XNNPACK threads of the TFLite runtime.")
    max_batch: int | None = Field(
        None,
        ge=1,
        le=256,
        title="Batch size",
        description="Most faces embedded in one call. Unset: 1 for dlib_bin (its batches are no faster, "
        "and a face need not wait for others) and 8 for the others.",
    )
    queue_size: int = Field(
        16,
        ge=1,
        le=4096,
        title="Faces waiting",
        description="Faces queued for the embedder; when full, new faces are deferred to a later frame instead of "
        "waiting to go stale (bounds capture-to-event latency under overload).",
    )
    max_wait_ms: float = Field(
        30.0, ge=0, le=5000, title="Batch wait", description="Longest a face waits for others to fill a batch."
    )

    @property
    def batch_size(self) -> int:
        if self.max_batch is not None:
            return self.max_batch
        return 1 if self.backend == "dlib_bin" else 8

    def flip_for(self, backend: str) -> bool:
        return FLIP_BY_DEFAULT[backend] if self.flip is None else self.flip

    def member_config(self, member: FusionMember) -> EmbedderConfig:
        """The configuration of one member of a fused embedder."""
        flip = self.flip if member.flip is None else member.flip
        provider = self.provider if member.provider is None else member.provider
        if member.precision is not None:
            precision = member.precision
        else:
            precision = self.precision if member.backend in INT8_BACKENDS else "float32"
        return self.model_copy(
            update={"backend": member.backend, "flip": flip, "provider": provider, "precision": precision, "members": []}
        )

    @model_validator(mode="after")
    def _backend_needs(self) -> EmbedderConfig:
        uses_vgg16 = self.backend == "vgg16" or (
            self.backend == "fused" and any(member.backend == "vgg16" for member in self.members)
        )
        if uses_vgg16 and self.model_dir is None:
            raise ValueError("backend 'vgg16' needs embedder.model_dir (the output of 'edge-daemon train')")
        if self.backend == "fused" and len(self.members) < 2:
            raise ValueError("backend 'fused' needs two or more embedder.members")
        if self.backend == "fused":
            int8 = [member.backend for member in self.members if member.precision == "int8"]
        else:
            int8 = [self.backend] if self.precision == "int8" else []
        for backend in int8:
            if backend not in INT8_BACKENDS:
                raise ValueError(f"precision 'int8' is offered for {', '.join(INT8_BACKENDS)} only, not {backend}")
        return self
