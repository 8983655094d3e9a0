"""The trainer under tf.distribute refuses a bad TF_CONFIG or strategy before any work."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("tf_config", "message"),
    [
        (None, "needs the TF_CONFIG environment variable"),
        ("{not json", "TF_CONFIG is not of the form"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}}', "TF_CONFIG is not of the form"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "TF_CONFIG: task.index"),
        ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}', "TF_CONFIG: cluster.worker"),
        ('{"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "chief", "index": 0}}',
         "TF_CONFIG: only 'worker' tasks"),
    ],
)
def test_multi_worker_needs_a_valid_tf_config_before_any_work(tmp_path, monkeypatch, tf_config, message):
    from edge_daemon.training.trainer import TrainerError, TrainOptions, train

    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    options = TrainOptions(dataset=tmp_path / "data", out=tmp_path / "model", distribute="multi-worker")
    with pytest.raises(TrainerError, match=message):
        train(options)
    assert not options.out.exists()


def test_unknown_distribute_is_refused(tmp_path):
    from edge_daemon.training.trainer import TrainerError, TrainOptions, train

    with pytest.raises(TrainerError, match="expected none, mirrored or multi-worker"):
        train(TrainOptions(dataset=tmp_path / "data", out=tmp_path / "model", distribute="horovod"))
