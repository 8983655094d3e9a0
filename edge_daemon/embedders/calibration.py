"""Calibrated unknown-thresholds, one per embedder configuration (backend and version, which names
the model, flip averaging, and for a fusion its members and weights).

Each is the lowest cosine threshold with at most 1% false accepts on the 1,100 impostor pairs of LFW
View 1 ``pairsDevTrain.txt``, with the daemon's detector and alignment, measured by
``bench/accuracy.py`` (README, "Embedders"). A configuration not listed here has no calibrated
threshold: ``edge-daemon calibrate`` measures one, and ``gallery.threshold`` sets it.
"""

from __future__ import annotations

SOURCE = "LFW View 1 pairsDevTrain.txt, FAR 1% (bench/accuracy.py)"

THRESHOLDS: dict[tuple[str, str], float] = {}


def calibrated_threshold(name: str, version: str) -> tuple[float | None, str]:
    threshold = THRESHOLDS.get((name, version))
    if threshold is None:
        return None, f"not calibrated for {name} {version}: run 'edge-daemon calibrate' and set gallery.threshold"
    return threshold, SOURCE
