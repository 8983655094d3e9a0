"""Models in child processes: same answers as in-process, clear start-up errors, restart after a crash."""

from __future__ import annotations

import os
import signal

import cv2
import numpy as np
import pytest

from edge_daemon.config import DetectorConfig, EmbedderConfig
from edge_daemon.detectors import create_detector, create_local_detector
from edge_daemon.embedders import EmbedderError, create_embedder
from edge_daemon.recognition.images import find_faces
from tests.support.paths import DATA, need


def test_process_detector_matches_in_process_and_survives_a_killed_child(default_detector):
    image = cv2.imread(str(need(DATA / "photos" / "group" / "multiface.jpg")))
    large = cv2.resize(image, None, fx=2, fy=2)  # exercises the downscale-before-the-pipe path
    detector = create_detector(DetectorConfig(), separate_process=True)
    try:
        expected = sorted(d.bbox for d in default_detector.detect(large))
        found = sorted(d.bbox for d in detector.detect(large))
        assert len(found) == len(expected) == 6
        np.testing.assert_allclose(found, expected, atol=1e-3)
        os.kill(detector._child._worker.process.pid, signal.SIGKILL)
        detector._child._worker.process.join(5)
        assert len(detector.detect(image)) == 6  # restarted transparently
    finally:
        detector.close()


def test_process_embedder_matches_in_process(default_embedder):
    image = cv2.imread(str(need(DATA / "photos" / "group" / "obama_and_biden.jpg")))
    detections = find_faces(image, create_local_detector(DetectorConfig()))
    crops = [default_embedder.aligner.align(image, d) for d in detections]
    embedder = create_embedder(EmbedderConfig(), separate_process=True)
    try:
        assert (embedder.name, embedder.dim, embedder.version) == (default_embedder.name, 128 + 192, default_embedder.version)
        np.testing.assert_allclose(embedder.embed(crops), default_embedder.embed(crops), atol=1e-6)
    finally:
        embedder.close()


def test_child_start_up_errors_are_the_backend_errors(tmp_path):
    with pytest.raises(EmbedderError, match="embedder.json missing"):
        create_embedder(EmbedderConfig(backend="vgg16", model_dir=tmp_path), separate_process=True)


def test_leaky_detector_process_is_recycled_without_failing_a_call():
    """yuface leaks ~36 KB per call; its process is replaced by a warm spare every N calls."""
    pytest.importorskip("yuface", reason="yuface has wheels for x86_64 CPython 3.10-3.11 only")
    image = cv2.imread(str(need(DATA / "photos" / "group" / "multiface.jpg")))
    detector = create_detector(DetectorConfig(backend="yuface", recycle_after=10), separate_process=True)
    try:
        first_pid = detector._child._worker.process.pid
        counts = []
        for _ in range(300):
            counts.append(len(detector.detect(image)))
            if detector._child.recycled >= 2:
                break
        assert detector._child.recycled >= 2
        assert set(counts) == {6}  # every call answered, before, during and after the swaps
        assert detector._child._worker.process.pid != first_pid
    finally:
        detector.close()
