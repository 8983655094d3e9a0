"""Face embedders: one module per backend, chosen by ``embedder.backend``.

  dlib_onnx      dlib's 128-d face ResNet converted to ONNX (ONNX Runtime)
  mobilefacenet  MobileFaceNet (ArcFace), 192-d, converted from TensorFlow.js to ONNX
  fused          two or more of the others, score-fused in one vector (see ``fused``)
  dlib_bin       dlib's ResNet on dlib's own runtime: the reference, 20x slower
  vgg16          a model from ``edge-daemon train`` (Keras or verified TFLite)
"""

from __future__ import annotations

from typing import Callable

from edge_daemon.config import EmbedderConfig
from edge_daemon.embedders import dlib_bin, dlib_onnx, fused, mobilefacenet, vgg16
from edge_daemon.embedders.base import Embedder, EmbedderError, l2_normalise
from edge_daemon.embedders.photometric import NormalisedEmbedder, Normaliser
from edge_daemon.embedders.process import ProcessEmbedder

__all__ = ["BACKENDS", "Embedder", "EmbedderError", "ProcessEmbedder", "create_embedder", "create_local_embedder", "l2_normalise"]

BACKENDS: dict[str, Callable[[EmbedderConfig, int], Embedder]] = {
    "dlib_onnx": dlib_onnx.create,
    "mobilefacenet": mobilefacenet.create,
    "fused": lambda config, threads: fused.create(config, threads, _create_backend),
    "dlib_bin": dlib_bin.create,
    "vgg16": vgg16.create,
}


def _create_backend(config: EmbedderConfig, threads: int) -> Embedder:
    return BACKENDS[config.backend](config, threads)


def create_local_embedder(config: EmbedderConfig, threads: int = 1) -> Embedder:
    """The configured backend in this process, with ``threads`` compute threads. Its faces are
    normalised here (``embedder.normalise``), the one place every path to an embedding passes:
    ``recognize``, gallery build and enrolment, and the daemon's embedder process."""
    embedder = _create_backend(config, threads)
    return embedder if config.normalise == "off" else NormalisedEmbedder(embedder, Normaliser(config.normalise))


def create_embedder(config: EmbedderConfig, separate_process: bool | None = None, threads: int = 1) -> Embedder:
    """The configured backend; in a child process (with ``threads`` compute threads) when
    ``separate_process`` (default: the config) says so."""
    if config.separate_process if separate_process is None else separate_process:
        return ProcessEmbedder(config, create_local_embedder, threads)
    return create_local_embedder(config, threads)
