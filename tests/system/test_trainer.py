"""The trainer end to end on a tiny dataset, its split and its failure messages."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edge_daemon.training.faceset import FaceItem, stratified_split
from tests.support.paths import DATA, ROOT, need, tiny_dataset

keras = pytest.importorskip("keras", reason="the trainer needs TensorFlow (pip install '.[train]')")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from edge_daemon.training.trainer import TrainOptions, train

    work = tmp_path_factory.mktemp("train")
    options = TrainOptions(
        dataset=tiny_dataset(work / "data"),
        out=work / "model",
        input_size=64,
        init="none",
        epochs=4,
        fine_tune_epochs=1,
        batch_size=16,
        patience=10,
    )
    return options, train(options)


pytestmark = pytest.mark.slow


def test_every_artefact_exists_and_loads(trained):
    from edge_daemon.embedders.vgg16 import Vgg16Embedder
    from edge_daemon.recognition.gallery import Gallery

    options, card = trained
    out = options.out
    for name in ("embedding.keras", "classifier.keras", "labels.json", "threshold.json", "model_card.json", "embedder.json"):
        assert (out / name).is_file(), name
    for name in ("index.md", "metrics.json", "classification_report.txt", "confusion_matrix.png",
                 "training_curves.png", "per_class.png", "open_set_roc.png"):
        assert (out / "report" / name).stat().st_size > 0, name
    assert (out / "report" / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = json.loads((out / "labels.json").read_text())["labels"]
    assert len(labels) == 4
    classifier = keras.saving.load_model(out / "classifier.keras", safe_mode=True)
    assert classifier.output_shape == (None, 4)
    threshold = json.loads((out / "threshold.json").read_text())
    assert -1 <= threshold["threshold"] <= 1 and len(threshold["curve"]["far"]) == len(threshold["curve"]["threshold"])

    embedder = Vgg16Embedder(out)  # what the daemon's vgg16 backend loads
    assert (embedder.input_size, embedder.dim) == (64, 256)
    gallery = Gallery.load(out / "gallery")
    gallery.check_embedder(embedder)  # built with the very model that was exported
    assert sorted(gallery.identities()) == labels
    card_counts = card["images"]
    assert sum(card_counts["train"].values()) + sum(card_counts["validation"].values()) == len(gallery.labels)
    for key in ("dataset", "init", "input_size", "epochs_run", "best_epoch", "versions", "wall_seconds", "metrics"):
        assert key in card
    assert card["init"] == "none" and len(card["dataset"]["sha256"]) == 64
    assert 0.0 <= card["metrics"]["accuracy"] <= 1.0
    assert set(card["metrics"]["per_class"]) == set(labels)


def test_daemon_serves_the_exported_model(trained, tmp_path):
    import cv2

    from edge_daemon.api import recognize
    from edge_daemon.config import DetectorConfig, EmbedderConfig
    from edge_daemon.detectors import create_detector
    from edge_daemon.embedders import create_embedder
    from edge_daemon.recognition.gallery import Gallery

    options, _ = trained
    embedder = create_embedder(EmbedderConfig(backend="vgg16", model_dir=options.out), separate_process=True)
    try:
        image = cv2.imread(str(need(DATA / "photos" / "group" / "multiface.jpg")))
        faces = recognize(image, create_detector(DetectorConfig(), separate_process=False), embedder, Gallery.load(options.out / "gallery"))
        assert len(faces) == 6 and all(-1.0 <= face.score <= 1.0001 for face in faces)
    finally:
        embedder.close()


def test_phase_one_loss_decreases(trained):
    _, card = trained
    losses = card["history"]["phase1"]["loss"]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert card["epochs_run"] == {"phase1": 4, "phase2": 1}


def test_split_is_stratified_deterministic_and_reports_small_identities():
    items = [FaceItem(f"p{i}", f"p{i}/{j}.jpg", None) for i in range(3) for j in range(20)]
    items += [FaceItem("tiny", f"tiny/{j}.jpg", None) for j in range(2)]
    first, again, other = (stratified_split(items, seed=s) for s in (7, 7, 8))
    assert [i.source for i in first.train] == [i.source for i in again.train]
    assert [i.source for i in first.train] != [i.source for i in other.train]
    assert first.too_few == {"tiny": 2}
    for part, expected in ((first.train, 14), (first.validation, 3), (first.test, 3)):
        counts = {}
        for item in part:
            counts[item.identity] = counts.get(item.identity, 0) + 1
        assert counts == {"p0": expected, "p1": expected, "p2": expected}
    assert not {i.source for i in first.train} & {i.source for i in first.test}


def test_imagenet_init_offline_fails_with_one_clear_message(tmp_path):
    data = tiny_dataset(tmp_path / "data", identities=2, images=3)
    result = subprocess.run(
        [sys.executable, "-m", "edge_daemon.cli", "train", str(data), "--out", str(tmp_path / "m"), "--init", "imagenet", "--input-size", "32"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    if result.returncode == 0:
        pytest.skip("this machine could download the ImageNet weights")
    assert result.returncode == 1
    assert "--init PATH" in result.stderr and "Traceback" not in result.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "edge_daemon.cli", "train", str(data), "--out", str(tmp_path / "m"), "--init", str(tmp_path / "w.h5")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert missing.returncode == 1 and "no such weights file" in missing.stderr


def test_tflite_runtimes_are_verified_before_use(trained, tmp_path):
    import shutil

    import cv2

    from edge_daemon.api import embed_faces, find_faces
    from edge_daemon.config import DetectorConfig
    from edge_daemon.detectors import create_detector
    from edge_daemon.embedders import EmbedderError
    from edge_daemon.embedders.vgg16 import Vgg16Embedder

    options, _ = trained
    model_dir = tmp_path / "model"
    shutil.copytree(options.out, model_dir)
    with pytest.raises(EmbedderError, match="not verified"):
        Vgg16Embedder(model_dir, runtime="tflite")
    result = subprocess.run([sys.executable, "-m", "edge_daemon.cli", "export-tflite", str(model_dir)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    check = json.loads(result.stdout.strip().splitlines()[-1])
    assert check["passed"] and check["min_cosine"] >= 0.999 and check["faces"] >= 10
    image = cv2.imread(str(need(DATA / "photos" / "group" / "multiface.jpg")))
    detections = find_faces(image, create_detector(DetectorConfig(), separate_process=False))
    keras_vectors = embed_faces(image, detections, Vgg16Embedder(model_dir))
    tflite_vectors = embed_faces(image, detections, Vgg16Embedder(model_dir, runtime="tflite"))
    assert np.min(np.sum(keras_vectors * tflite_vectors, axis=1)) >= 0.999
