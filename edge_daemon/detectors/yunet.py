"""YuNet on ONNX Runtime: libfacedetection's network and weights (read from the ``yuface`` wheel and
converted at ``edge-daemon models prepare``), decoded as libfacedetection decodes it, so its boxes
and landmarks are yuface's without yuface's compiled code."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_daemon.config import DetectorConfig
from edge_daemon.detectors.base import DetectorError, as_bgr, downscale, rows_to_detections
from edge_daemon.messages import Detection
from edge_daemon.models.files import ModelFileError, prepared_model
from edge_daemon.models.onnx import ON_CPU, Provider, configured_provider, onnx_session

MODEL = "yunet"  # its name in models/manifest.json
# The converted graph (edge_daemon.models.prepare.converters.libfacedetection): its input, and per stride the raw
# maps of each head with their channel counts.
INPUT_NAME = "image"
STRIDES = (8, 16, 32)
HEADS = {"cls": 1, "obj": 1, "bbox": 4, "kps": 10}
# libfacedetection's detection_output: candidates from this score, the best this many, NMS IoU.
CANDIDATE_SCORE = 0.2
TOP_K = 1000
NMS_IOU = 0.45
KEEP_TOP_K = 512
# sigmoid's input clamp in libfacedetection (float exp overflow)
LOGIT_LIMIT = 88.3762626647949


def output_names() -> list[str]:
    """The graph's outputs, NCHW, in this order."""
    return [f"{head}_{stride}" for stride in STRIDES for head in HEADS]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -LOGIT_LIMIT, LOGIT_LIMIT)))


def decode(maps: list[np.ndarray], score_threshold: float) -> np.ndarray:
    """The network's raw maps (``output_names()`` order) -> rows of (x, y, w, h, 10 landmark
    coordinates, score), best first, after libfacedetection's NMS, truncated as libfacedetection
    reports them (whole pixels, hundredths of a score): the embedders' alignment and their shipped
    thresholds were calibrated on those numbers (float coordinates change LFW results slightly).

    Scores come first and boxes and landmarks only for the anchors that pass, with the same
    arithmetic: what libfacedetection's decoding gives, at a fraction of the cost (most anchors of a
    frame hold no face; decoding them all was a large share of each small region's detection)."""
    heads = len(HEADS)
    levels = []  # per stride: (its maps as channels x anchors, columns of its grid)
    for level in range(len(STRIDES)):
        level_maps = maps[level * heads:(level + 1) * heads]
        levels.append(([m[0].reshape(m.shape[1], -1) for m in level_maps], level_maps[0].shape[3]))
    score = np.concatenate([np.sqrt(_sigmoid(cls[0]) * _sigmoid(obj[0])) for (cls, obj, _, _), _ in levels])
    # libfacedetection: candidates from CANDIDATE_SCORE, the best TOP_K, then the caller's threshold;
    # the threshold's candidates are a prefix of that ranking, so both cuts come to this one.
    candidates = np.flatnonzero(score >= max(CANDIDATE_SCORE, score_threshold))
    order = candidates[np.argsort(-score[candidates], kind="stable")][:TOP_K]
    box = np.empty((len(order), 4), np.float32)
    landmark = np.empty((len(order), 10), np.float32)
    first = 0
    for ((_, _, bbox, kps), columns), stride in zip(levels, STRIDES):
        anchors = bbox.shape[1]
        rows_here = np.flatnonzero((order >= first) & (order < first + anchors))
        local = order[rows_here] - first
        first += anchors
        prior = np.stack([local % columns, local // columns], axis=1).astype(np.float32) * stride
        offsets = bbox[:, local].T
        centre = offsets[:, :2] * stride + prior
        size = np.exp(offsets[:, 2:]) * stride
        box[rows_here] = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        landmark[rows_here] = (kps[:, local].T.reshape(-1, 5, 2) * stride + prior[:, None, :]).reshape(-1, 10)
    keep = _nms(box)[:KEEP_TOP_K]
    box, landmark, score = box[keep], landmark[keep], score[order][keep]
    size = np.trunc(box[:, 2:] - box[:, :2])
    rows = np.concatenate([np.trunc(box[:, :2]), size, np.trunc(landmark), np.trunc(score[:, None] * 100) / 100], axis=1)
    return rows.astype(np.float32)


def _nms(boxes: np.ndarray) -> list[int]:
    """Greedy NMS over boxes sorted best first: a box overlapping a kept one by IoU > NMS_IOU goes.
    The overlaps of every pair first, in the float32 arithmetic of one pair at a time (a box
    overlapping only boxes that went itself stays)."""
    x0, y0, x1, y1 = boxes.T
    area = (x1 - x0) * (y1 - y0)
    width = np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :])
    height = np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :])
    overlap = np.where((width > 0) & (height > 0), width * height, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):  # two empty boxes: 0/0, no overlap
        too_close = overlap / (area[:, None] + area[None, :] - overlap) > NMS_IOU
    kept: list[int] = []
    gone = np.zeros(len(boxes), dtype=bool)
    for index in range(len(boxes)):
        if not gone[index]:
            kept.append(index)
            gone |= too_close[index]
    return kept


class YuNetDetector:
    """YuNet converted to ONNX, run by ONNX Runtime on one compute thread (as every detector process
    has one)."""

    name = "yunet"

    def __init__(self, model_path: Path, score_threshold: float = 0.7, max_side: int = 640, provider: Provider = ON_CPU):
        model_path = Path(model_path)
        if not model_path.is_file():
            raise DetectorError(f"the YuNet model {model_path} is missing: run 'edge-daemon models prepare'")
        try:
            self._session = onnx_session(model_path, 1, provider, label=MODEL)
        except Exception as exc:  # onnxruntime raises its own types for unreadable graphs
            raise DetectorError(f"cannot load the YuNet model {model_path} ({exc}): run 'edge-daemon models prepare'") from None
        self._threshold = score_threshold
        self._max_side = max_side
        self._outputs = output_names()

    def rows(self, image: np.ndarray) -> np.ndarray:
        """Rows of (x, y, w, h, 10 landmark coordinates, score) for a BGR image at its own scale."""
        height, width = image.shape[:2]
        padded = np.zeros((1, -(-height // 32) * 32, -(-width // 32) * 32, 3), dtype=np.float32)
        padded[0, :height, :width] = image
        return decode(self._session.run(self._outputs, {INPUT_NAME: padded}), self._threshold)

    def detect(self, image: np.ndarray) -> list[Detection]:
        small, scale = downscale(as_bgr(image), self._max_side)
        return rows_to_detections(self.rows(small), scale)

    def close(self) -> None:
        pass


def create(config: DetectorConfig) -> YuNetDetector:
    """The converted model from the model directories, never converted here: that is ``edge-daemon
    models prepare``'s (model_store, which uses detectors to verify the embedders, sits above)."""
    try:
        path = prepared_model(MODEL, config.model_cache)
    except ModelFileError as exc:
        raise DetectorError(str(exc)) from None
    return YuNetDetector(path, config.score_threshold, config.max_side, configured_provider(config))
