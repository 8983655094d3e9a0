"""Score fusion of several embedders as one vector, so the gallery stays one FAISS index.

Each member embeds the face with its own alignment; its unit vector is scaled by sqrt(w_i) and the
scaled vectors are concatenated. With weights summing to 1 the result is a unit vector, and the
inner product of two such vectors is sum_i w_i * cos_i: exactly the weighted score fusion, searched
by the same ``IndexFlatIP``. Z-normalising each member's cosine, (cos_i - mu_i) / sigma_i, only
changes the weights (w_i / sigma_i) and shifts the threshold, so it is folded into the weights.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from edge_daemon.config import EmbedderConfig
from edge_daemon.embedders.alignment import AlignedFace, create_aligner
from edge_daemon.embedders.base import Embedder, EmbedderError
from edge_daemon.embedders.calibration import calibrated_threshold


def fusion_scales(weights: list[float]) -> np.ndarray:
    """sqrt of the weights normalised to sum 1: the factor on each member's unit vector."""
    weights = np.asarray(weights, dtype=np.float64)
    if len(weights) < 2 or (weights <= 0).any():
        raise EmbedderError("a fused embedder needs two or more members with positive weights")
    return np.sqrt(weights / weights.sum()).astype(np.float32)


def fusion_version(members: list[tuple[str, str]], weights: list[float]) -> str:
    """The configuration name of a fusion of (backend, version) members with these weights."""
    normalised = fusion_scales(weights) ** 2
    return "fused(" + ",".join(f"{name}:{version}*{weight:.4f}" for (name, version), weight in zip(members, normalised)) + ")"


class FusedEmbedder:
    name = "fused"

    def __init__(self, members: list[Embedder], weights: list[float]):
        self.members = members
        self._scales = fusion_scales(weights)
        self.dim = sum(member.dim for member in members)
        self.version = fusion_version([(member.name, member.version) for member in members], weights)
        self.default_threshold, self.threshold_source = calibrated_threshold(self.name, self.version)
        self.aligner_spec = ("each", tuple(member.aligner_spec for member in members))
        self.aligner = create_aligner(self.aligner_spec)

    def embed(self, crops: list[AlignedFace]) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            member.embed([crop[i] for crop in crops]) * scale
            for i, (member, scale) in enumerate(zip(self.members, self._scales))
        ]
        return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)

    def close(self) -> None:
        for member in self.members:
            member.close()


def create(
    config: EmbedderConfig, threads: int, create_member: Callable[[EmbedderConfig, int], Embedder]
) -> FusedEmbedder:
    """The fusion of ``config.members``, each built by ``create_member`` (the registry's)."""
    members = [create_member(config.member_config(member), threads) for member in config.members]
    return FusedEmbedder(members, [member.weight for member in config.members])
