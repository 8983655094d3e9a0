"""Threshold calibration and LFW-protocol fold logic on inputs with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from edge_daemon.evaluation.lfw import (
    best_accuracy_threshold,
    calibrate,
    read_pairs,
    threshold_at_far,
    verification_accuracy,
)


def test_threshold_at_far_on_a_known_distribution():
    impostor = np.arange(1000) / 1000.0  # 0.000 ... 0.999
    threshold = threshold_at_far(impostor, 0.01)
    assert 0.989 < threshold <= 0.9891  # exactly the 10 scores 0.990 ... 0.999 remain at or above it
    assert (impostor >= threshold).sum() == 10
    rng = np.random.default_rng(0)
    genuine = rng.normal(0.995, 0.003, 5000)
    result = calibrate(genuine, impostor, 0.01, "synthetic")
    assert result.far == pytest.approx(0.01)
    assert result.frr == pytest.approx((genuine < result.threshold).mean())
    assert 0.0 < result.frr < 0.05  # genuine mean sits 2 sd above the threshold
    assert calibrate(genuine, impostor, 0.0, "synthetic").far == 0.0


def test_best_accuracy_threshold_separates_separable_scores():
    scores = np.array([0.1, 0.2, 0.65, 0.7, 0.8, 0.9])
    same = np.array([False, False, False, True, True, True])
    assert best_accuracy_threshold(scores, same) == pytest.approx(0.675)


def write_pairs(path, folds, per_set):
    lines = [f"{folds}\t{per_set}"]
    for fold in range(folds):
        lines += [f"Same_{fold}_{i}\t1\t2" for i in range(per_set)]
        lines += [f"A_{fold}_{i}\t1\tB_{fold}_{i}\t1" for i in range(per_set)]
    path.write_text("\n".join(lines) + "\n")


def test_two_fold_accuracy_with_a_known_result(tmp_path):
    write_pairs(tmp_path / "pairs.txt", folds=2, per_set=3)
    pairs = read_pairs(tmp_path / "pairs.txt")
    assert pairs.folds == 2 and len(pairs.pairs) == 12
    assert [p.same for p in pairs.pairs[:6]] == [True] * 3 + [False] * 3
    scores = np.array(
        [0.9, 0.8, 0.7, 0.1, 0.2, 0.65,  # fold 0: separable at 0.675
         0.95, 0.85, 0.6, 0.3, 0.4, 0.5]  # fold 1: separable at 0.55
    )
    result = verification_accuracy(pairs, scores)
    # Fold 0 is judged at fold 1's threshold 0.55 (0.65 impostor accepted: 5/6) and fold 1 at
    # fold 0's 0.675 (0.6 genuine rejected: 5/6).
    assert result["fold_accuracies"] == pytest.approx([5 / 6, 5 / 6])
    assert result["accuracy"] == pytest.approx(5 / 6) and result["std"] == pytest.approx(0.0)
    assert result["threshold"] == pytest.approx((0.55 + 0.675) / 2)

    scores[0] = np.nan  # a face not found in fold 0
    counted = verification_accuracy(pairs, scores)
    skipped = verification_accuracy(pairs, scores, skip_missing=True)
    assert counted["fold_accuracies"][0] == pytest.approx(4 / 6) and counted["pairs"] == 12
    assert skipped["fold_accuracies"][0] == pytest.approx(4 / 5) and skipped["pairs"] == 11
    assert counted["missing_pairs"] == 1


def test_single_set_needs_threshold_pairs(tmp_path):
    (tmp_path / "dev.txt").write_text("2\nX\t1\t2\nY\t1\t2\nA\t1\tB\t1\nC\t1\tD\t1\n")
    pairs = read_pairs(tmp_path / "dev.txt")
    scores = np.array([0.9, 0.6, 0.5, 0.2])
    with pytest.raises(ValueError, match="threshold-pairs"):
        verification_accuracy(pairs, scores)
    other = (np.array([0.8, 0.7, 0.3, 0.1]), np.array([True, True, False, False]))  # best threshold 0.5
    assert verification_accuracy(pairs, scores, other)["accuracy"] == pytest.approx(3 / 4)


def test_malformed_pairs_files(tmp_path):
    (tmp_path / "short.txt").write_text("2\nX\t1\t2\n")
    with pytest.raises(ValueError, match="promises"):
        read_pairs(tmp_path / "short.txt")
    (tmp_path / "bad.txt").write_text("1\nX\t1\n Y 1 2 3 4\n")
    with pytest.raises(ValueError, match="cannot parse"):
        read_pairs(tmp_path / "bad.txt")
