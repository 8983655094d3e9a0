"""``edge-daemon train``, ``eval lfw``, ``calibrate`` and ``export-tflite``: make and measure an embedder."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

from edge_daemon.cli.common import ParentParsers, UsageError, in_process_models, settings_from
from edge_daemon.config import EmbedderBackend
from edge_daemon.logs import get_logger

log = get_logger(__name__)
EMBEDDER_BACKENDS = EmbedderBackend.__args__


def cmd_train(args: argparse.Namespace) -> int:
    from edge_daemon.training.trainer import TrainerError, TrainOptions, train

    settings_from(args)
    options = TrainOptions(
        dataset=args.dataset,
        out=args.out,
        input_size=args.input_size,
        init=args.init,
        epochs=args.epochs,
        fine_tune_epochs=args.fine_tune_epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        fine_tune_learning_rate=args.fine_tune_lr,
        seed=args.seed,
        embedding_dim=args.embedding_dim,
        unfreeze_blocks=args.unfreeze_blocks,
        patience=args.patience,
        far=args.far,
        cache_dir=args.cache_dir,
        distribute=args.distribute,
    )
    if not args.dataset.is_dir():
        raise UsageError(f"dataset directory not found: {args.dataset}")
    try:
        card = train(options)
    except TrainerError as exc:
        print(f"edge-daemon: {exc}", file=sys.stderr)
        return 1
    summary = {k: card[k] for k in ("wall_seconds", "epochs_run", "best_epoch", "threshold")}
    print(json.dumps({"out": str(args.out), "test_accuracy": card["metrics"]["accuracy"], **summary}, indent=2))
    return 0


def cmd_eval_lfw(args: argparse.Namespace) -> int:
    import numpy as np

    from edge_daemon.evaluation.lfw import pair_scores, read_pairs, verification_accuracy

    embedder_overrides = {"backend": args.embedder} if args.embedder else {}
    if args.model:
        embedder_overrides["model_dir"] = str(args.model)
    settings = settings_from(args, **({"embedder": embedder_overrides} if embedder_overrides else {}))
    detector, embedder = in_process_models(settings)

    def scores_for(path: Path):
        pairs = read_pairs(path)
        scores, missing = pair_scores(pairs.pairs, args.images, detector, embedder, f"embedding {path.name}")
        return pairs, scores, missing

    pairs, scores, missing = scores_for(args.pairs)
    threshold_scores = None
    if args.threshold_pairs is not None:
        other, other_scores, _ = scores_for(args.threshold_pairs)
        threshold_scores = (other_scores, np.array([pair.same for pair in other.pairs]))
    try:
        result = verification_accuracy(pairs, scores, threshold_scores, args.skip_missing)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    result.update(
        embedder=embedder.name,
        embedder_version=embedder.version,
        detector=settings.detector.backend,
        missing=missing,
        missing_counted_as="skipped" if args.skip_missing else "errors",
        pairs_file=str(args.pairs),
    )
    if not args.json:
        print(
            f"{embedder.name}: accuracy {result['accuracy']:.2%} ± {result['std']:.2%} over {result['folds']} fold(s), "
            f"{result['pairs']} pairs, threshold {result['threshold']:.4f}, {missing} image(s) without a face "
            f"({result['missing_pairs']} pairs, counted as {result['missing_counted_as']})"
        )
    print(json.dumps(result))
    return 0


def cmd_export_tflite(args: argparse.Namespace) -> int:
    import numpy as np

    from edge_daemon.detectors import create_detector
    from edge_daemon.embedders.alignment import TemplateAligner
    from edge_daemon.embedders.vgg16 import Vgg16Embedder
    from edge_daemon.recognition.gallery import Gallery
    from edge_daemon.recognition.images import one_face_crops
    from edge_daemon.training.tflite_export import export_tflite

    settings = settings_from(args)
    embedder = Vgg16Embedder(args.model_dir)
    if args.faces is not None:
        sources = sorted(p for p in Path(args.faces).rglob("*") if p.is_file())
    else:
        sources = [Path(p) for p in Gallery.load(args.model_dir / "gallery").sources]
    detector = create_detector(settings.detector, separate_process=False)
    aligner = TemplateAligner(embedder.input_size)
    crops = list(itertools.islice(one_face_crops(sources, detector, aligner), args.count))
    if not crops:
        raise UsageError("no real faces to check the conversion with: pass --faces DIR")
    runtime = "tflite_int8" if args.int8 else "tflite"
    check = export_tflite(args.model_dir, np.stack(crops), runtime)
    print(json.dumps({"runtime": runtime, **check}))
    if not check["passed"]:
        log.error("conversion does not match Keras closely enough: the runtime stays disabled", runtime=runtime, min_cosine=check["min_cosine"])
        return 1
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    import numpy as np

    from edge_daemon.evaluation import open_set
    from edge_daemon.evaluation.lfw import calibrate, pair_scores, read_pairs

    settings = settings_from(args)
    detector, embedder = in_process_models(settings)
    pairs = read_pairs(args.pairs).pairs
    scores, missing = pair_scores(pairs, args.images, detector, embedder)
    same = np.array([pair.same for pair in pairs])
    found = ~np.isnan(scores)
    result = calibrate(scores[found & same], scores[found & ~same], args.far, f"{Path(args.pairs).name}, FAR {args.far:g}")
    output = {**result.as_dict(), "embedder": embedder.name, "embedder_version": embedder.version, "images_without_face": missing}
    if args.open_set:
        widths = tuple(None if width == "native" else int(width) for width in args.widths.split(","))
        sizes = {"people": args.people, "mismatched_pairs": args.mismatched_pairs}
        table, model = open_set.calibrate_open_set(
            args.images, args.pairs, detector, embedder, widths, cache=args.cache, fit_quality=args.fit_quality,
            **{name: value for name, value in sizes.items() if value is not None},
        )
        output.update(open_set=table.as_dict(), quality_model=model)
    print(json.dumps(output))
    return 0


def add_commands(commands: argparse._SubParsersAction, parents: ParentParsers) -> None:
    """``train``, ``eval`` and ``export-tflite``; ``calibrate`` is added on its own, after ``demo``."""
    trainer = commands.add_parser("train", parents=[parents.config], help="fine-tune VGG16 on <identity>/<image> folders")
    trainer.add_argument("dataset", type=Path)
    trainer.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR")
    trainer.add_argument("--input-size", type=int, default=224)
    trainer.add_argument("--init", default="imagenet", help="imagenet (download), none (from scratch) or a VGG16 no-top weights file")
    trainer.add_argument("--epochs", type=int, default=30, help="phase 1 (frozen base) epochs at most")
    trainer.add_argument("--fine-tune-epochs", type=int, default=15, help="phase 2 epochs at most")
    trainer.add_argument("--learning-rate", type=float, default=1e-3, help="phase 1 (head) learning rate")
    trainer.add_argument("--fine-tune-lr", type=float, default=1e-5, help="phase 2 learning rate")
    trainer.add_argument("--batch-size", type=int, default=32)
    trainer.add_argument("--seed", type=int, default=1337)
    trainer.add_argument("--embedding-dim", type=int, default=256)
    trainer.add_argument("--unfreeze-blocks", type=int, choices=range(0, 6), help="VGG16 blocks trained in phase 2")
    trainer.add_argument("--patience", type=int, default=5, help="early-stopping patience (epochs)")
    trainer.add_argument("--far", type=float, default=0.01, help="false-accept rate for the unknown-threshold")
    trainer.add_argument("--cache-dir", type=Path, help="face-crop cache (default: MODEL_DIR/../.face-cache)")
    trainer.add_argument(
        "--distribute", choices=["none", "mirrored", "multi-worker"], default="none",
        help="tf.distribute: mirrored (the GPUs of this machine) or multi-worker (machines listed in TF_CONFIG)",
    )
    trainer.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser("eval", help="evaluate an embedder").add_subparsers(dest="action", required=True)
    lfw = evaluate.add_parser("lfw", parents=[parents.config], help="LFW-protocol verification accuracy")
    lfw.add_argument("--pairs", type=Path, required=True)
    lfw.add_argument("--images", type=Path, required=True)
    lfw.add_argument("--embedder", choices=sorted(EMBEDDER_BACKENDS), help="override embedder.backend")
    lfw.add_argument("--model", type=Path, metavar="MODEL_DIR", help="the trainer's output (for --embedder vgg16)")
    lfw.add_argument("--threshold-pairs", type=Path, help="pairs file to pick the threshold on (for single-set files)")
    lfw.add_argument("--skip-missing", action="store_true", help="leave out pairs with an image where no face was found")
    lfw.add_argument("--json", action="store_true", help="only the JSON result line")
    lfw.set_defaults(handler=cmd_eval_lfw)

    export = commands.add_parser("export-tflite", parents=[parents.config], help="convert a trained VGG16 to TFLite and verify it")
    export.add_argument("model_dir", type=Path)
    export.add_argument("--int8", action="store_true", help="dynamic-range int8 weights")
    export.add_argument("--faces", type=Path, help="images to check with (default: the model's gallery photos)")
    export.add_argument("--count", type=int, default=64, help="faces to check (default 64)")
    export.set_defaults(handler=cmd_export_tflite)


def add_calibrate_command(commands: argparse._SubParsersAction, parents: ParentParsers) -> None:
    calibrate = commands.add_parser(
        "calibrate", parents=[parents.config], help="unknown-threshold and open-set threshold table from LFW-style pairs"
    )
    calibrate.add_argument("--pairs", type=Path, required=True, help="e.g. LFW's _protocol/pairsDevTrain.txt")
    calibrate.add_argument("--images", type=Path, required=True, help="LFW's image folders (<name>/<name>_NNNN.jpg)")
    calibrate.add_argument("--far", type=float, default=0.01, help="target false-accept rate (default 0.01)")
    calibrate.add_argument(
        "--open-set", action="store_true",
        help="also measure the open-set table (degraded copies of the people in the pairs' people file, templates)",
    )
    calibrate.add_argument("--widths", default="native,48,32,24,20", help="face widths of the degraded copies, in pixels")
    # The defaults live in edge_daemon.evaluation.open_set, which is too heavy to import for --help.
    calibrate.add_argument("--people", type=int, help="people with six images or more to use as probes (default 50)")
    calibrate.add_argument(
        "--mismatched-pairs", type=int, help="mismatched pairs whose images join the gallery (default 1100)"
    )
    calibrate.add_argument("--fit-quality", action="store_true", help="refit the face-quality model and use it")
    calibrate.add_argument("--cache", type=Path, help="keep each image's embeddings here, so a rerun only embeds what is new")
    calibrate.set_defaults(handler=cmd_calibrate)
