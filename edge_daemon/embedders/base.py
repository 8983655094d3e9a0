"""What every embedder is: aligned face crops in, L2-normalised vectors out."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from edge_daemon.embedders.alignment import AlignedFace, Aligner
from edge_daemon.models.onnx import ON_CPU, Provider, onnx_session


class EmbedderError(RuntimeError):
    """The embedder cannot be loaded (missing, corrupt or foreign model files)."""


class Embedder(Protocol):
    name: str  # the backend
    version: str  # the whole configuration (model, flip, members, weights): galleries are tied to it
    dim: int
    default_threshold: float | None  # calibrated unknown-threshold; None: this configuration is not calibrated
    threshold_source: str
    aligner_spec: tuple  # how to build the aligner in any process (see alignment.create_aligner)
    aligner: Aligner

    def embed(self, crops: list[AlignedFace]) -> np.ndarray:
        """An (N, dim) float32 array of L2-normalised embeddings for N aligned BGR crops."""
        ...

    def close(self) -> None: ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def with_mirrors(batch: np.ndarray) -> np.ndarray:
    """The (N, H, W, C) batch followed by its N horizontal mirrors."""
    return np.concatenate([batch, batch[:, :, ::-1]])


def fold_mirrors(vectors: np.ndarray) -> np.ndarray:
    """Embeddings of ``with_mirrors(batch)`` -> one per face: the sum of the face's and its mirror's
    (normalised), which is steadier than either alone."""
    half = len(vectors) // 2
    return l2_normalise(l2_normalise(vectors[:half]) + l2_normalise(vectors[half:]))


class OnnxEmbedder:
    """A face model converted to ONNX, run by ONNX Runtime on batches. Its graph takes RGB NHWC
    float32 pixels (0..255) and does its own normalisation (see ``edge_daemon.models.prepare.converters``)."""

    name: str
    model_version: str
    dim: int
    input_size: int

    def __init__(
        self, model_path: Path, threads: int = 1, flip: bool = True, provider: Provider = ON_CPU, precision: str = "float32"
    ):
        try:
            self._session = onnx_session(model_path, threads, provider, label=self.name)
        except Exception as exc:  # onnxruntime raises its own types for unreadable graphs
            raise EmbedderError(f"cannot load ONNX model {model_path}: {exc}") from None
        self.flip = flip
        # int8 embeddings differ a little from float ones: a gallery (and its thresholds) belongs to one
        self.version = f"{self.model_version}{'+int8' if precision == 'int8' else ''}{'+flip' if flip else ''}"

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = np.stack(crops)[:, :, :, ::-1].astype(np.float32)  # BGR -> RGB
        if self.flip:
            return fold_mirrors(self._run(with_mirrors(batch)))
        return l2_normalise(self._run(batch))

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(["embedding"], {"image": np.ascontiguousarray(batch)})[0]

    def close(self) -> None:
        pass
