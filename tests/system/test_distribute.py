"""The trainer under tf.distribute: two worker processes on loopback train one model, and only the
chief writes it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.support.paths import ROOT, tiny_dataset

keras = pytest.importorskip("keras", reason="the trainer needs TensorFlow (pip install '.[train]')")


CHIEF_ARTEFACTS = {
    "checkpoints", "classifier.keras", "embedder.json", "embedding.keras", "gallery", "labels.json",
    "model_card.json", "report", "threshold.json",
}


# One worker: train, and keep the final embedding model's weights as it exports them (the
# non-chief exports into a scratch directory it deletes, so this is the only way to see them),
# and the data it trained on, from the model card train() returns.
WORKER = """
import json
import sys
from pathlib import Path

import numpy as np

import edge_daemon.training.trainer as trainer

dataset, cache, out, weights = map(Path, sys.argv[1:])
export = trainer.save_vgg16_artefact


def export_and_keep_weights(model, *args, **kwargs):
    np.savez(weights, *model.get_weights())
    export(model, *args, **kwargs)


trainer.save_vgg16_artefact = export_and_keep_weights
card = trainer.train(trainer.TrainOptions(
    dataset=dataset, out=out, cache_dir=cache, input_size=64, init="none", epochs=2, fine_tune_epochs=1,
    batch_size=8, patience=10, distribute="multi-worker",
))
weights.with_suffix(".json").write_text(json.dumps({key: card[key] for key in ("identities", "images", "history")}))
"""


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def saved_weights(path) -> list[np.ndarray]:
    with np.load(path, allow_pickle=False) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


@pytest.mark.slow
def test_two_workers_train_one_model_and_only_the_chief_writes(tmp_path):
    # 3 x 17 images: 33 to train on, so the last global batch of 16 holds one image and one
    # worker's share of it is empty; 9 to validate on, shared out 5 and 4.
    dataset, cache, out = tiny_dataset(tmp_path / "data", identities=3, images=17), tmp_path / "cache", tmp_path / "model"
    # The face cache starts cold: both workers find faces into it at once.
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    (tmp_path / "tmp").mkdir()
    processes, logs = [], []
    try:
        for index in range(2):
            env = {
                **os.environ,
                "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}),
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "CUDA_VISIBLE_DEVICES": "",
                "TF_NUM_INTRAOP_THREADS": "1",  # the two workers share this machine's cores
                "TMPDIR": str(tmp_path / "tmp"),  # where the non-chief's scratch directory goes
            }
            logs.append((tmp_path / f"worker{index}.log").open("w"))
            args = [dataset, cache, out, tmp_path / f"weights{index}.npz"]
            processes.append(subprocess.Popen(
                [sys.executable, "-c", WORKER, *map(str, args)], cwd=ROOT, env=env, stdout=logs[-1], stderr=subprocess.STDOUT
            ))
        deadline = time.monotonic() + 240
        for process in processes:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        for process in processes:  # a failed or hung worker must not outlive the test
            if process.poll() is None:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
    for index, process in enumerate(processes):
        assert process.returncode == 0, f"worker {index}:\n" + (tmp_path / f"worker{index}.log").read_text()[-4000:]

    assert {p.name for p in out.iterdir()} == CHIEF_ARTEFACTS
    assert list(out.rglob("embedding.keras")) == [out / "embedding.keras"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cache", "data", "model", "tmp", "weights0.json", "weights0.npz", "weights1.json", "weights1.npz",
        "worker0.log", "worker1.log",
    ]
    # Only directories count: ONNX Runtime (1.32) leaves a session-id file, .ses, in TMPDIR on import.
    assert not [p for p in (tmp_path / "tmp").iterdir() if p.is_dir()], "the non-chief left its scratch directory behind"
    card = json.loads((out / "model_card.json").read_text())
    assert card["distribute"] == {"strategy": "multi-worker", "replicas": 2, "workers": 2, "global_batch_size": 16}

    # The same split on both workers, and the same (all-reduced) losses, so the same early-stopping calls.
    assert json.loads((tmp_path / "weights0.json").read_text()) == json.loads((tmp_path / "weights1.json").read_text())
    chief, other = saved_weights(tmp_path / "weights0.npz"), saved_weights(tmp_path / "weights1.npz")
    exported = keras.saving.load_model(out / "embedding.keras", compile=False).get_weights()
    assert len(chief) == len(other) == len(exported) > 0
    for a, b, c in zip(chief, other, exported):
        assert np.allclose(a, b, atol=1e-6) and np.allclose(a, c, atol=1e-6)
