"""The default detector: libfacedetection's YuNet converted to ONNX gives yuface's detections on
real photos, and its checks refuse altered or mismatched files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_daemon.config import DetectorConfig
from edge_daemon.detectors import DetectorError, create_local_detector
from edge_daemon.detectors.base import downscale
from edge_daemon.detectors.yunet import MODEL, YuNetDetector
from edge_daemon.embedders import EmbedderError
from edge_daemon.models.files import MANIFEST_FILE
from edge_daemon.models.prepare.converters.libfacedetection import build_onnx, read_yunet
from edge_daemon.models.prepare.store import ModelStore
from edge_daemon.models.prepare.verify import VERIFIERS, verification_images
from tests.support.paths import DATA, need


@pytest.fixture(scope="module")
def store() -> ModelStore:
    return ModelStore()


@pytest.fixture(scope="module")
def yunet_model(store) -> Path:
    return store.path(MODEL)


def real_photos() -> list[np.ndarray]:
    """The shared photos (groups and PASCAL VOC scenes) and the registry photos, at the daemon's 640 px."""
    paths = sorted((DATA / "photos" / "group").glob("*.jpg")) + sorted((DATA / "photos" / "dlib_boxes").glob("*.jpg"))
    images = [cv2.imread(str(path)) for path in paths] + verification_images()
    return [np.ascontiguousarray(downscale(image, 640)[0]) for image in images]


def test_converted_model_gives_yuface_detections_on_real_photos(yunet_model):
    yuface = pytest.importorskip("yuface", reason="the reference, yuface, has wheels for x86_64 CPython 3.10-3.11 only")
    need(DATA / "photos" / "dlib_boxes")
    detector = YuNetDetector(yunet_model, score_threshold=0.5)
    found_rows, expected_rows = [], []
    for image in real_photos():
        raw = yuface.c_detect(image).astype(np.float32)
        expected = raw[raw[:, 0] >= 50]
        found = detector.rows(image)
        assert len(found) == len(expected)
        found_rows.append(np.column_stack([found[:, :14], np.round(found[:, 14] * 100)]))
        expected_rows.append(np.column_stack([expected[:, 1:15], expected[:, 0]]))
    found, expected = np.concatenate(found_rows), np.concatenate(expected_rows)
    assert len(found) >= 90  # 73 faces in the shared photos, 16 in the registry photos, measured
    # Measured: every number identical. A float summed in another order may cross a whole pixel.
    assert np.abs(found - expected).max() <= 1.0
    assert (found == expected).mean() >= 0.99


def test_verification_uses_the_configured_detector(tmp_path):
    store = ModelStore(tmp_path, detector=DetectorConfig(backend="yunet_onnx", model_path=tmp_path / "zoo.onnx"))
    with pytest.raises(DetectorError, match="zoo.onnx"):
        store.verification_detector()


def test_check_refuses_a_model_with_altered_weights(tmp_path, store, yunet_model):
    pytest.importorskip("yuface", reason="the reference, yuface, has wheels for x86_64 CPython 3.10-3.11 only")
    sources = store.source_files(MODEL)
    weights = read_yunet(next(iter(sources.values())))
    weights["bbox_head__multi_level_bbox__0_pw_bias"] = weights["bbox_head__multi_level_bbox__0_pw_bias"] + 0.05
    altered = tmp_path / "yunet.onnx"
    altered.write_bytes(build_onnx(weights).SerializeToString())
    check = VERIFIERS[MODEL](sources, altered, store)
    assert not check["passed"], check
    assert VERIFIERS[MODEL](sources, yunet_model, store)["passed"]


def test_a_converted_file_that_differs_from_the_manifest_is_not_used(tmp_path, yunet_model):
    shutil.copy(yunet_model, tmp_path / yunet_model.name)
    shutil.copy(yunet_model.with_suffix(".check.json"), tmp_path / yunet_model.with_suffix(".check.json").name)
    assert ModelStore(tmp_path).find(MODEL) == tmp_path / yunet_model.name
    data = bytearray((tmp_path / yunet_model.name).read_bytes())
    data[-100] ^= 0x01  # one bit of one weight
    (tmp_path / yunet_model.name).write_bytes(bytes(data))
    assert ModelStore(tmp_path).find(MODEL) is None


def test_missing_model_names_models_prepare(tmp_path):
    with pytest.raises(DetectorError, match="run 'edge-daemon models prepare'"):
        YuNetDetector(tmp_path / "yunet.onnx")
    with pytest.raises(DetectorError, match=f"the yunet model is not prepared in {tmp_path}: run 'edge-daemon models prepare'"):
        create_local_detector(DetectorConfig(model_cache=tmp_path))
    # a store where the model is neither converted nor its source at hand (a yuface version not installed)
    manifest = json.loads(MANIFEST_FILE.read_text())
    manifest["models"][MODEL]["source"]["version"] = "0.0.0"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EmbedderError, match=r"yuface@0\.0\.0.*run 'edge-daemon models prepare' once \(it fetches them with pip from PyPI\)"):
        ModelStore(tmp_path / "models", manifest=tmp_path / "manifest.json").path(MODEL)
