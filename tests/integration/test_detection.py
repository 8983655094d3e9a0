"""Detectors against hand-drawn ground truth on real photos, and the template aligner on real
landmarks."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from edge_daemon.config import DetectorConfig
from edge_daemon.detectors import create_detector
from edge_daemon.embedders.alignment import TEMPLATE_112, TemplateAligner, similarity_transform
from edge_daemon.pipeline.regions import iou
from tests.support.paths import DATA, YUNET_ONNX, need


def recall_precision(detector, xml_path, min_iou=0.4):
    true_positive = false_positive = false_negative = 0
    for image_node in ET.parse(xml_path).getroot().iter("image"):
        image = cv2.imread(str(xml_path.parent / image_node.get("file")))
        truth = [tuple(float(box.get(k)) for k in ("left", "top", "width", "height")) for box in image_node.iter("box")]
        found = [d.bbox for d in detector.detect(image)]
        used: set[int] = set()
        for box in truth:
            overlap, best = max(((iou(box, f), j) for j, f in enumerate(found) if j not in used), default=(0.0, None))
            if overlap >= min_iou:
                true_positive += 1
                used.add(best)
            else:
                false_negative += 1
        false_positive += len(found) - len(used)
    return true_positive / (true_positive + false_negative), true_positive / max(true_positive + false_positive, 1)


# Measured here on testing.xml (25 faces in 5 PASCAL VOC photos), IoU >= 0.4, score >= 0.7:
# every detector finds 25/25 with no false positive.
@pytest.mark.parametrize(
    "config",
    [DetectorConfig(), DetectorConfig(backend="yuface"), DetectorConfig(backend="yunet_onnx", model_path=YUNET_ONNX)],
    ids=["yunet", "yuface", "yunet_onnx"],
)
def test_detector_recall_and_precision_on_dlib_boxes(config):
    xml_path = need(DATA / "photos" / "dlib_boxes" / "testing.xml")
    if config.backend == "yunet_onnx":
        need(YUNET_ONNX)
    if config.backend == "yuface":
        pytest.importorskip("yuface", reason="yuface has wheels for x86_64 CPython 3.10-3.11 only")
    recall, precision = recall_precision(create_detector(config, separate_process=False), xml_path)
    assert recall >= 0.96, recall
    assert precision >= 0.96, precision


def test_multiface_photo_finds_all_six(default_detector):
    image = cv2.imread(str(need(DATA / "photos" / "group" / "multiface.jpg")))
    detections = default_detector.detect(image)
    assert len(detections) == 6
    for detection in detections:
        x, y, w, h = detection.bbox
        assert 0 <= x and 0 <= y and x + w <= image.shape[1] + 5 and y + h <= image.shape[0] + 5
        eyes_y = detection.landmarks[:2, 1]
        mouth_y = detection.landmarks[3:, 1]
        assert eyes_y.max() < mouth_y.min()  # landmarks are in frame coordinates, eyes above mouth


def test_template_aligner_puts_landmarks_on_the_template(default_detector):
    image = cv2.imread(str(need(DATA / "photos" / "group" / "obama_and_biden.jpg")))
    detection = default_detector.detect(image)[0]
    aligner = TemplateAligner(64)
    crop = aligner.align(image, detection)
    assert crop.shape == (64, 64, 3)
    matrix = similarity_transform(detection.landmarks, aligner.template)
    mapped = np.c_[detection.landmarks, np.ones(5)] @ matrix.T
    assert np.abs(mapped - TEMPLATE_112 * 64 / 112).max() < 6  # a similarity fits real landmarks closely
