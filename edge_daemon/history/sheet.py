"""The contact sheet: one PNG row of crops per cluster, for a person to look at."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_daemon.history.queries import Cluster

LABEL_HEIGHT = 24  # pixels above each contact-sheet row for its label


def contact_sheet(clusters: list[Cluster], out: Path, per_row: int = 8, size: int = 96) -> None:
    """Write a PNG with one row per cluster: its label ("cluster N: M faces") above up to
    ``per_row`` crops, best first, each fitted into ``size`` x ``size`` pixels. A face whose crop is
    missing shows as a grey square. Height: len(clusters) * (size + LABEL_HEIGHT)."""
    if not clusters:
        raise ValueError("no clusters to draw")
    labels = [f"cluster {cluster.cluster_id}: {cluster.size} face{'s' if cluster.size != 1 else ''}" for cluster in clusters]
    label_width = max(cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0] for label in labels) + 8
    row_height = size + LABEL_HEIGHT
    sheet = np.full((len(clusters) * row_height, max(per_row * size, label_width), 3), 255, dtype=np.uint8)
    for number, (cluster, label) in enumerate(zip(clusters, labels)):
        top = number * row_height
        cv2.putText(sheet, label, (4, top + 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        for column, crop_path in enumerate(cluster.crop_paths(per_row)):
            tile = _fitted_tile(crop_path, size)
            sheet[top + LABEL_HEIGHT : top + row_height, column * size : (column + 1) * size] = tile
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), sheet):
        raise OSError(f"cannot write the contact sheet {out}")


def _fitted_tile(crop_path: Path | None, size: int) -> np.ndarray:
    """The crop scaled to fit ``size`` x ``size`` without distortion, centred on grey."""
    tile = np.full((size, size, 3), 200, dtype=np.uint8)
    image = cv2.imread(str(crop_path)) if crop_path is not None else None
    if image is None:
        return tile
    scale = size / max(image.shape[:2])
    height, width = (max(1, round(side * scale)) for side in image.shape[:2])
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    top, left = (size - height) // 2, (size - width) // 2
    tile[top : top + height, left : left + width] = resized
    return tile
