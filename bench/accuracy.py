"""LFW accuracy of every embedder configuration, and the thresholds the daemon ships for them.

Each LFW image of the View 1 dev pairs is detected once (the daemon's detector, the face nearest
the centre) and embedded once per member backend, together with its mirror image, so every
configuration -- each backend with and without flip averaging, and their fusion -- is scored from
the same faces:

- threshold: the unknown-threshold at FAR 1% on pairsDevTrain.txt (what the daemon ships in
  ``edge_daemon/embedders/calibration.py``);
- DevTest accuracy: View 1 protocol, the best-accuracy threshold of DevTrain applied to DevTest;
- 10-fold accuracy: all 3,200 dev pairs in 10 folds (matched and mismatched pairs dealt round-robin),
  each fold scored at the threshold best on the other nine.
Fusion weights are z-normalising: 1 / (std of the member's DevTrain impostor scores), normalised
and rounded to 2 decimals (the default weights in the configuration).

  .venv/bin/python -m bench.accuracy            # about 5 minutes here
  .venv/bin/python -m bench.accuracy --json
  .venv/bin/python -m bench.accuracy --precision int8   # the models with an int8 copy in int8
"""

from __future__ import annotations

import json
import sys

import numpy as np

from bench.common import LFW, argument_parser
from edge_daemon.config import DetectorConfig, EmbedderConfig
from edge_daemon.config.embedder import INT8_BACKENDS
from edge_daemon.detectors import create_detector
from edge_daemon.embedders import create_local_embedder
from edge_daemon.embedders.base import l2_normalise
from edge_daemon.embedders.fused import fusion_scales, fusion_version
from edge_daemon.evaluation.lfw import PairsFile, calibrate, lfw_subject, read_pairs, verification_accuracy
from edge_daemon.logs import configure_logging
from edge_daemon.progress import Progress

MEMBERS = ("dlib_onnx", "mobilefacenet")


def embed_images(keys, detector, embedders) -> dict[str, dict]:
    """Per backend: {image key: (embedding, mirror's embedding)} for every image where a face was found."""
    found: dict[str, dict] = {name: {} for name in embedders}
    progress = Progress(len(keys), "embedding LFW")
    for key in keys:
        image, face = lfw_subject(LFW, key, detector)
        if face is not None:
            for name, embedder in embedders.items():
                crop = embedder.aligner.align(image, face)
                found[name][key] = embedder.embed([crop, np.ascontiguousarray(crop[:, ::-1])])
        progress()
    return found


def member_vectors(found: dict, flip: bool) -> dict:
    if flip:
        return {key: l2_normalise(pair.sum(axis=0, keepdims=True))[0] for key, pair in found.items()}
    return {key: pair[0] for key, pair in found.items()}


def scores(pairs, vectors: dict) -> np.ndarray:
    out = np.full(len(pairs), np.nan)
    for i, pair in enumerate(pairs):
        if pair.first in vectors and pair.second in vectors:
            out[i] = float(np.dot(vectors[pair.first], vectors[pair.second]))
    return out


def ten_folds(pairs) -> tuple[PairsFile, np.ndarray]:
    """The pairs regrouped into 10 contiguous folds, matched then mismatched within each, and the order."""
    same = [i for i, pair in enumerate(pairs) if pair.same]
    different = [i for i, pair in enumerate(pairs) if not pair.same]
    order = []
    for fold in range(10):
        order += same[fold::10] + different[fold::10]
    order = np.array(order)
    return PairsFile(10, [pairs[i] for i in order]), order


def evaluate(train, test, train_scores, test_scores) -> dict:
    same_train = np.array([pair.same for pair in train.pairs])
    found = ~np.isnan(train_scores)
    calibration = calibrate(train_scores[found & same_train], train_scores[found & ~same_train], 0.01, "DevTrain")
    view1 = verification_accuracy(test, test_scores, (train_scores, same_train))
    everything = train.pairs + test.pairs
    folds, order = ten_folds(everything)
    tenfold = verification_accuracy(folds, np.concatenate([train_scores, test_scores])[order])
    return {
        "threshold_far1": calibration.threshold,
        "frr_at_far1": round(calibration.frr, 4),
        "devtest_accuracy": round(view1["accuracy"], 4),
        "tenfold_accuracy": round(tenfold["accuracy"], 4),
        "tenfold_std": round(tenfold["std"], 4),
    }


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--precision", choices=["float32", "int8"], default="float32",
                        help="int8: the members that have an int8 copy run it (as embedder.precision does)")
    args = parser.parse_args()
    configure_logging("info")  # progress of the long embedding pass
    if not LFW.is_dir():
        raise SystemExit(f"LFW not found at {LFW}")
    train = read_pairs(LFW / "_protocol" / "pairsDevTrain.txt")
    test = read_pairs(LFW / "_protocol" / "pairsDevTest.txt")
    keys = list(dict.fromkeys(key for pair in train.pairs + test.pairs for key in (pair.first, pair.second)))
    detector = create_detector(DetectorConfig(), separate_process=False)
    embedders = {
        name: create_local_embedder(
            EmbedderConfig(backend=name, flip=False, precision=args.precision if name in INT8_BACKENDS else "float32"), 2
        )
        for name in MEMBERS
    }
    found = embed_images(keys, detector, embedders)
    missing = len(keys) - len(found[MEMBERS[0]])

    rows = []

    def record(name: str, version: str, vectors: dict) -> dict:
        train_scores, test_scores = scores(train.pairs, vectors), scores(test.pairs, vectors)
        rows.append({"backend": name, "version": version, **evaluate(train, test, train_scores, test_scores)})
        return train_scores

    impostor_std = {}
    same_train = np.array([pair.same for pair in train.pairs])
    for flip in (False, True):
        member_sets = {}
        for name in MEMBERS:
            vectors = member_vectors(found[name], flip)
            member_sets[name] = vectors
            train_scores = record(name, f"{embedders[name].version}{'+flip' if flip else ''}", vectors)
            impostor_std[(name, flip)] = float(np.nanstd(train_scores[~same_train]))
        inverse = np.array([1 / impostor_std[(name, flip)] for name in MEMBERS])
        weights = np.round(inverse / inverse.sum(), 2)
        for member_weights, label in ((weights, "z-normalised"), (np.array([0.5, 0.5]), "equal")):
            versions = [(name, f"{embedders[name].version}{'+flip' if flip else ''}") for name in MEMBERS]
            scales = fusion_scales(list(member_weights))
            common = set.intersection(*(set(member_sets[name]) for name in MEMBERS))
            vectors = {
                key: np.concatenate([member_sets[name][key] * scale for name, scale in zip(MEMBERS, scales)])
                for key in common
            }
            record("fused", fusion_version(versions, list(member_weights)), vectors)
            rows[-1]["weights"] = f"{label} {member_weights.tolist()}"

    print(f"LFW View 1 dev pairs, {len(keys)} images, {missing} without a face (their pairs count as errors)")
    print(f"{'backend':<14} {'version':<105} {'thr FAR1%':>9} {'FRR':>6} {'DevTest':>8} {'10-fold':>15}")
    for row in rows:
        print(f"{row['backend']:<14} {row['version']:<105} {row['threshold_far1']:>9.6f} {row['frr_at_far1']:>6.3f} "
              f"{row['devtest_accuracy']:>8.2%} {row['tenfold_accuracy']:>8.2%} ± {row['tenfold_std']:.2%}")
    if args.json:
        print(json.dumps({"images": len(keys), "without_face": missing, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
