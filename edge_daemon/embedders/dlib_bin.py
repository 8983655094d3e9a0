"""dlib's face ResNet on dlib's own CPU runtime (``dlib-bin``): the reference that the ONNX
conversion is checked against. Several times slower than ``dlib_onnx``, which the daemon uses
(docs/guide/models.md)."""

from __future__ import annotations

import numpy as np

from edge_daemon.config import EmbedderConfig
from edge_daemon.embedders.alignment import create_aligner
from edge_daemon.embedders.base import fold_mirrors, l2_normalise, with_mirrors
from edge_daemon.embedders.calibration import calibrated_threshold

DLIB_MODEL_VERSION = "dlib_face_recognition_resnet_model_v1"


def dlib_chip_aligner_spec() -> tuple:
    """dlib's 5-point shape predictor and 150x150 face chip (both dlib ResNet backends use it)."""
    import face_recognition_models

    return ("dlib_chip", face_recognition_models.pose_predictor_five_point_model_location())


class DlibBinEmbedder:
    name = "dlib_bin"
    dim = 128

    def __init__(self, flip: bool = False):
        import dlib
        import face_recognition_models

        self._net = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
        self.flip = flip
        self.version = f"{DLIB_MODEL_VERSION}{'+flip' if flip else ''}"
        self.default_threshold, self.threshold_source = calibrated_threshold(self.name, self.version)
        self.aligner_spec = dlib_chip_aligner_spec()
        self.aligner = create_aligner(self.aligner_spec)

    def descriptors(self, rgb_chips: np.ndarray) -> np.ndarray:
        """dlib's raw descriptors of RGB 150x150 chips. One call per face: dlib holds the GIL for the
        whole call, and its batch call is no faster on CPU."""
        return np.array([self._net.compute_face_descriptor(np.ascontiguousarray(chip)) for chip in rgb_chips], np.float32)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = np.stack(crops)[:, :, :, ::-1]
        if self.flip:
            return fold_mirrors(self.descriptors(with_mirrors(batch)))
        return l2_normalise(self.descriptors(batch))

    def close(self) -> None:
        pass


def create(config: EmbedderConfig, threads: int) -> DlibBinEmbedder:
    return DlibBinEmbedder(flip=config.flip_for("dlib_bin"))
