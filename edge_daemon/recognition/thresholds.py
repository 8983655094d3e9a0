"""Open-set identification thresholds: how high the unknown-threshold must be so that at most a
target share of strangers is named, for a gallery of N people, a face of a given quality and a track
template of k faces (``edge_daemon.evaluation.open_set`` measures the table; ``edge-daemon calibrate`` runs it).

A stranger is named when *any* of the gallery's N identities scores at or above the threshold. If
each comparison falsely accepts with probability p, at most 1 - (1 - p)^N of strangers are named
(scores of one probe against many people are positively associated, so this bound is
conservative), and the per-comparison false-accept rate that holds a false-positive identification
rate (FPIR) is p = 1 - (1 - FPIR)^(1/N). The table holds, per quality band and template size, the
impostor score quantile at a grid of p (and the true-accept rate there); the operating threshold
for (N, quality, k) is read off it. Small, blurred faces score higher against strangers, and the
mean of several faces higher still, so the bands and sizes carry their own thresholds.

Where holding the target leaves a true-accept rate below a useful floor, a face below the threshold
is ``uncertain`` (we could not see who it was), not ``unknown`` (someone we do not know).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge_daemon.embedders.calibration import OPEN_SET

MIN_TEMPLATE_WEIGHT = 0.05


def template_weight(quality: float) -> float:
    """A face's weight in its track's template: its quality, with a floor so that a poor face
    still counts a little (a face not worth even that is dropped before it gets here)."""
    return max(float(quality), MIN_TEMPLATE_WEIGHT)


def template(vectors: np.ndarray, qualities) -> tuple[np.ndarray, float, float]:
    """The track template of faces ``vectors`` (L2-normalised rows) with ``qualities``: the
    normalised, quality-weighted mean, its quality (the weighted mean of the faces') and its
    effective number of faces, (sum w)^2 / sum w^2 (k equal faces count k; one good face and
    many poor ones count little more than one)."""
    weights = np.array([template_weight(q) for q in qualities])
    mean = (np.asarray(vectors, np.float64) * weights[:, None]).sum(axis=0)
    mean /= max(np.linalg.norm(mean), 1e-12)
    quality = float(np.dot(weights, qualities) / weights.sum())
    return mean.astype(np.float32), quality, float(weights.sum() ** 2 / (weights**2).sum())


def per_comparison_far(fpir: float, identities: int) -> float:
    """The false-accept rate per comparison at which a probe compared with ``identities`` people
    is falsely named with probability at most ``fpir`` (see the module docstring)."""
    return 1.0 - (1.0 - fpir) ** (1.0 / max(identities, 1))


@dataclass(frozen=True)
class OperatingPoint:
    """The thresholds in force for one gallery size and target FPIR; a face below its threshold is
    uncertain rather than unknown where the true-accept rate there is below ``min_useful_tar``."""

    table: OpenSetTable
    identities: int
    fpir: float
    min_useful_tar: float

    def threshold(self, quality: float, faces: float = 1.0) -> tuple[float, float]:
        """(threshold, true-accept rate there) for this gallery size."""
        return self.table.threshold(per_comparison_far(self.fpir, self.identities), quality, faces)


@dataclass(frozen=True)
class OpenSetTable:
    """Impostor-score quantiles (``thresholds``) and true-accept rates there (``tar``), indexed
    [quality band][template size][per-comparison FAR]. Bands are split at ``quality_edges``; the
    sizes are ``template_sizes``, the FARs ``far``."""

    quality_edges: tuple[float, ...]
    template_sizes: tuple[int, ...]
    far: tuple[float, ...]
    thresholds: tuple[tuple[tuple[float, ...], ...], ...]
    tar: tuple[tuple[tuple[float, ...], ...], ...]
    source: str

    def threshold(self, far: float, quality: float, faces: float = 1.0) -> tuple[float, float]:
        """(threshold, TAR) at per-comparison ``far`` for a face or template of ``quality`` and
        ``faces`` (effective) faces: the band the quality falls in, the smallest tabled template
        size at or above ``faces`` (impostor scores rise with the size, so rounding up is safe;
        beyond the largest size, the largest), interpolated in log(FAR) -- and extrapolated
        linearly below the smallest tabled FAR, for galleries beyond its reach."""
        band = int(np.searchsorted(self.quality_edges, quality, side="right"))
        size = next((i for i, k in enumerate(self.template_sizes) if k >= faces - 1e-6), len(self.template_sizes) - 1)
        logs = np.log(self.far)[::-1]  # ascending
        x = math.log(min(max(far, 1e-12), self.far[0]))
        thresholds = np.array(self.thresholds[band][size])[::-1]
        tars = np.array(self.tar[band][size])[::-1]
        if x < logs[0]:
            step = x - logs[0]
            threshold = thresholds[0] + (thresholds[1] - thresholds[0]) / (logs[1] - logs[0]) * step
            tar = tars[0] + (tars[1] - tars[0]) / (logs[1] - logs[0]) * step
            return float(min(threshold, 1.0)), float(np.clip(tar, 0.0, 1.0))
        return float(np.interp(x, logs, thresholds)), float(np.interp(x, logs, tars))

    def operating_point(self, identities: int, fpir: float, min_useful_tar: float) -> OperatingPoint:
        return OperatingPoint(self, identities, fpir, min_useful_tar)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "quality_edges": list(self.quality_edges),
            "template_sizes": list(self.template_sizes),
            "far": list(self.far),
            "thresholds": [[list(row) for row in band] for band in self.thresholds],
            "tar": [[list(row) for row in band] for band in self.tar],
        }

    @classmethod
    def from_dict(cls, data: dict) -> OpenSetTable:
        def nested(rows) -> tuple:
            return tuple(tuple(tuple(float(v) for v in row) for row in band) for band in rows)

        table = cls(
            quality_edges=tuple(float(v) for v in data["quality_edges"]),
            template_sizes=tuple(int(v) for v in data["template_sizes"]),
            far=tuple(float(v) for v in data["far"]),
            thresholds=nested(data["thresholds"]),
            tar=nested(data["tar"]),
            source=str(data["source"]),
        )
        shape = (len(table.quality_edges) + 1, len(table.template_sizes), len(table.far))
        if np.shape(table.thresholds) != shape or np.shape(table.tar) != shape:
            raise ValueError(f"threshold table has shape {np.shape(table.thresholds)}, expected {shape}")
        return table


def open_set_table(name: str, version: str) -> OpenSetTable | None:
    """The shipped open-set table of an embedder configuration, or None where it has none."""
    data = OPEN_SET.get((name, version))
    return None if data is None else OpenSetTable.from_dict(data)
