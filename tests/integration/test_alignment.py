"""dlib's alignment from a crop around the face gives the very chip the whole frame gave."""

from __future__ import annotations

import cv2
import numpy as np

from edge_daemon.embedders.alignment import DlibChipAligner
from tests.support.paths import DATA, need


def whole_frame_chip(aligner: DlibChipAligner, image: np.ndarray, detection) -> np.ndarray:
    """The chip as it was made before: the whole frame turned RGB for every face."""
    import dlib

    x, y, w, h = detection.bbox
    rect = dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
    rgb = np.ascontiguousarray(image[:, :, ::-1])
    chip = dlib.get_face_chip(rgb, aligner._predictor(rgb, rect), size=aligner.size, padding=0.25)
    return np.ascontiguousarray(chip[:, :, ::-1])


def test_chip_from_a_crop_is_the_chip_from_the_whole_frame(default_detector):
    import face_recognition_models

    aligner = DlibChipAligner(face_recognition_models.pose_predictor_five_point_model_location())
    images = [cv2.imread(str(path)) for path in sorted(need(DATA / "photos" / "group").iterdir())]
    capture = cv2.VideoCapture(str(need(DATA / "video" / "crowd" / "crowd_1080p.mp4")))
    for _ in range(3):
        images.append(capture.read()[1])
        for _ in range(30):
            capture.grab()
    capture.release()
    faces = 0
    for image in images:
        height, width = image.shape[:2]
        for detection in default_detector.detect(image):
            assert np.array_equal(aligner.align(image, detection), whole_frame_chip(aligner, image, detection))
            faces += 1
        # A face cut by the frame's edge: the same frame shifted so the first face leaves it by half.
        found = default_detector.detect(image)
        if found:
            x, y, w, h = found[0].bbox
            shifted = np.ascontiguousarray(image[:, int(x + w / 2):])
            for detection in default_detector.detect(shifted):
                assert np.array_equal(aligner.align(shifted, detection), whole_frame_chip(aligner, shifted, detection))
                faces += 1
    assert faces >= 20
