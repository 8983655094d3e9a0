"""The trainer under tf.distribute's MirroredStrategy trains on this machine's devices."""

from __future__ import annotations

import json

import pytest

from tests.support.paths import tiny_dataset

keras = pytest.importorskip("keras", reason="the trainer needs TensorFlow (pip install '.[train]')")


CHIEF_ARTEFACTS = {
    "checkpoints", "classifier.keras", "embedder.json", "embedding.keras", "gallery", "labels.json",
    "model_card.json", "report", "threshold.json",
}


@pytest.mark.slow
def test_mirrored_trains_on_the_local_devices(tmp_path):
    import tensorflow as tf

    from edge_daemon.training.trainer import TrainOptions, train

    options = TrainOptions(
        dataset=tiny_dataset(tmp_path / "data"), out=tmp_path / "model", input_size=64, init="none",
        epochs=2, fine_tune_epochs=1, batch_size=8, patience=10, distribute="mirrored",
    )
    card = train(options)
    replicas = max(1, len(tf.config.list_logical_devices("GPU")))  # 1 on a CPU-only machine
    expected = {"strategy": "mirrored", "replicas": replicas, "workers": 1, "global_batch_size": 8 * replicas}
    assert card["distribute"] == expected
    assert json.loads((options.out / "model_card.json").read_text())["distribute"] == expected
    assert {p.name for p in options.out.iterdir()} == CHIEF_ARTEFACTS
    assert card["epochs_run"] == {"phase1": 2, "phase2": 1}
