"""Offline trainer: fine-tune VGG16 on a folder-per-identity dataset and export what the daemon needs.

The recipe (transfer learning, as in the Pins Face Recognition notebooks):
  phase 1  VGG16 convolutional base frozen; a new head (Dense + BatchNorm + LeakyReLU + Dropout ->
           L2-normalised embedding -> softmax) is trained on the base's features. The base's output
           for un-augmented crops is computed once and cached in memory, so no epoch re-runs it.
  phase 2  the last convolutional block(s) are unfrozen and the whole network is trained end to end
           at a lower learning rate, with augmentation (flip, small rotation/zoom, brightness).
Both phases stop early on validation loss (best weights restored) and reduce the learning rate
on plateaus; the best weights of each phase are checkpointed.

Distribution (``TrainOptions.distribute``), with tf.distribute:
  none          one process, TensorFlow's default device placement.
  mirrored      MirroredStrategy: one process, one replica per local GPU (the CPU when there is none).
  multi-worker  MultiWorkerMirroredStrategy: one process per machine, the cluster read from the
                TF_CONFIG environment variable (worker 0 is the chief).
Both phases (and the feature and evaluation predictions) run under the strategy; gradients are
all-reduced, so every replica holds the same weights. ``batch_size`` is per replica: the global
batch is ``batch_size x replicas``. The learning rates are used as given, not scaled with the
replica count (the linear scaling rule is an SGD rule; Adam copes with larger batches): raise
them yourself if a large global batch trains too slowly. A last batch too small to give every
replica a share is padded for predictions and left out of training and validation (at most
replicas - 1 images). Every worker runs every step (fit and predict are collective) but only the
chief writes into ``out``; the others write into a temporary directory they delete (Keras'
multi-worker pattern). The face cache and the split depend only on the dataset, the detector
settings and the seed, so every worker sees the same data.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge_daemon.config import DetectorConfig
from edge_daemon.embedders.vgg16 import Vgg16Embedder, save_vgg16_artefact, vgg16_preprocess
from edge_daemon.evaluation.lfw import calibrate, roc_curve
from edge_daemon.logs import get_logger
from edge_daemon.recognition.gallery import Gallery
from edge_daemon.training.faceset import dataset_digest, load_crops, prepare_faces, stratified_split
from edge_daemon.training.report import classification_metrics, write_report

log = get_logger(__name__)

VGG16_BLOCKS = 5


class TrainerError(RuntimeError):
    """Training cannot start or go on; the message says what to do."""


@dataclass
class TrainOptions:
    dataset: Path
    out: Path
    input_size: int = 224
    init: str = "imagenet"  # "imagenet", "none" or a path to VGG16 no-top weights (.h5)
    epochs: int = 30
    fine_tune_epochs: int = 15
    batch_size: int = 32  # per replica: the global batch is batch_size x replicas
    seed: int = 1337
    embedding_dim: int = 256
    learning_rate: float = 1e-3
    fine_tune_learning_rate: float = 1e-5
    unfreeze_blocks: int | None = None  # default: 1 with pretrained weights, all 5 from scratch
    patience: int = 5
    far: float = 0.01
    cache_dir: Path | None = None
    distribute: str = "none"  # "none", "mirrored" or "multi-worker" (cluster from TF_CONFIG)

    @property
    def blocks_to_unfreeze(self) -> int:
        if self.unfreeze_blocks is not None:
            return self.unfreeze_blocks
        return VGG16_BLOCKS if self.init == "none" else 1


TF_CONFIG_EXAMPLE = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'


def cluster_from_tf_config() -> tuple[int, bool]:
    """(workers, this process is the chief) from TF_CONFIG, checked here because
    MultiWorkerMirroredStrategy would silently train alone without it."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise TrainerError(
            "--distribute multi-worker needs the TF_CONFIG environment variable on every machine, e.g. "
            f"TF_CONFIG='{TF_CONFIG_EXAMPLE}' (the same worker list everywhere; index: this machine's place in it)"
        )
    try:
        config = json.loads(raw)
        workers, task_type, index = config["cluster"]["worker"], config["task"]["type"], config["task"]["index"]
    except (ValueError, KeyError, TypeError) as exc:
        raise TrainerError(f"TF_CONFIG is not of the form {TF_CONFIG_EXAMPLE} ({exc!r})") from None
    if set(config["cluster"]) != {"worker"} or task_type != "worker":
        raise TrainerError(f"TF_CONFIG: only 'worker' tasks are supported (worker 0 is the chief), e.g. {TF_CONFIG_EXAMPLE}")
    if not (isinstance(workers, list) and workers and all(isinstance(w, str) and ":" in w for w in workers)):
        raise TrainerError(f"TF_CONFIG: cluster.worker must be a list of 'host:port', got {workers!r}")
    if not (isinstance(index, int) and 0 <= index < len(workers)):
        raise TrainerError(f"TF_CONFIG: task.index must be 0..{len(workers) - 1}, got {index!r}")
    return len(workers), index == 0


def distribution_strategy(distribute: str):
    """(strategy, workers, is chief) for TrainOptions.distribute."""
    import tensorflow as tf

    class KerasReduce:
        """Answers two ``reduce`` calls of Keras 3's fit that tf.distribute rejects once there is
        more than one replica (keras-team/keras#20585, tensorflow/tensorflow#72388)."""

        def reduce(self, reduce_op, value, axis=None):
            if tf.nest.is_nested(value):
                # A whole (x, y) batch, reduced only to learn its shapes before building: the
                # replicas' shares of a small first batch differ in size, so take this one's.
                return tf.nest.map_structure(lambda v: self.experimental_local_results(v)[0], value)
            if self.experimental_local_results(value)[0].shape.rank == 0:
                axis = None  # a scalar log (loss, accuracy), averaged "along axis 0"
            return super().reduce(reduce_op, value, axis)

    class MirroredStrategy(KerasReduce, tf.distribute.MirroredStrategy):
        pass

    class MultiWorkerMirroredStrategy(KerasReduce, tf.distribute.MultiWorkerMirroredStrategy):
        pass

    if distribute == "none":
        return tf.distribute.get_strategy(), 1, True
    if distribute == "mirrored":
        return MirroredStrategy(), 1, True
    if distribute == "multi-worker":
        workers, chief = cluster_from_tf_config()
        return MultiWorkerMirroredStrategy(), workers, chief
    raise TrainerError(f"--distribute {distribute}: expected none, mirrored or multi-worker")


def vgg16_base(init: str, input_size: int):
    """VGG16 without its classifier, initialised as asked. ImageNet weights need a download."""
    import keras

    shape = (input_size, input_size, 3)
    if init == "none":
        log.warning("TRAINING VGG16 FROM SCRATCH (--init none): no pretrained features; expect far lower accuracy")
        return keras.applications.VGG16(include_top=False, weights=None, input_shape=shape)
    if init == "imagenet":
        try:
            return keras.applications.VGG16(include_top=False, weights="imagenet", input_shape=shape)
        except Exception as exc:
            raise TrainerError(
                f"cannot get the ImageNet VGG16 weights ({exc}). Offline, pass --init PATH with a local "
                "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5, or --init none to train from scratch."
            ) from None
    path = Path(init)
    if not path.is_file():
        raise TrainerError(f"--init {init}: no such weights file (expected VGG16 no-top weights, .h5)")
    try:
        return keras.applications.VGG16(include_top=False, weights=str(path), input_shape=shape)
    except Exception as exc:
        raise TrainerError(f"--init {init}: cannot load VGG16 no-top weights from it ({exc})") from None


def build_head(feature_dim: int, classes: int, embedding_dim: int, replicas: int = 1):
    """Features -> (embedding model, classifier model), sharing layers."""
    import keras
    from keras import layers

    features = keras.Input((feature_dim,), name="features")
    x = layers.Dense(512)(features)
    # With several replicas, batch statistics over the global batch: each replica updating the
    # moving mean and variance with its own share would leave the workers' weights different.
    x = layers.BatchNormalization(synchronized=replicas > 1)(x)
    x = layers.LeakyReLU(negative_slope=0.1)(x)
    x = layers.Dropout(0.4)(x)
    x = layers.Dense(embedding_dim)(x)
    embedding = layers.UnitNormalization(name="embedding")(x)
    probabilities = layers.Dense(classes, activation="softmax", name="identity")(embedding)
    return keras.Model(features, embedding, name="embedding_head"), keras.Model(features, probabilities, name="head")


def augmenter(seed: int):
    import keras
    from keras import layers

    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.04, fill_mode="nearest", seed=seed),
            layers.RandomZoom(0.1, fill_mode="nearest", seed=seed),
            layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed),
        ],
        name="augmentation",
    )


def image_dataset(crops: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, augment: bool, replicas: int = 1):
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((crops, labels))
    if augment:
        dataset = dataset.shuffle(len(crops), seed=seed, reshuffle_each_iteration=True)
    # A last batch with fewer images than replicas would leave one of them an empty share, on
    # which oneDNN's convolutions fail: leave it out (at most replicas - 1 images an epoch).
    whole, rest = divmod(len(crops), batch_size)
    dataset = dataset.batch(batch_size).take(whole + (rest >= replicas))
    # In-memory tensors have no files to shard by: each worker keeps its share of every batch.
    sharding = tf.data.Options()
    sharding.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.with_options(sharding)
    augmentation = augmenter(seed) if augment else None
    mean = tf.constant([103.939, 116.779, 123.68])  # the same BGR means as vgg16_preprocess

    def prepare(images, y):
        images = tf.cast(images, tf.float32)
        if augmentation is not None:
            images = augmentation(images, training=True)
        return images - mean, y

    return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def predict(model, x: np.ndarray, batch_size: int, replicas: int, verbose=0) -> np.ndarray:
    """``model.predict`` with the inputs padded (wrapping round) to a multiple of the replica count,
    the padding's outputs dropped: an empty share of the last batch fails in oneDNN's convolutions."""
    padded = x[np.arange(-(-len(x) // replicas) * replicas) % len(x)]
    return model.predict(padded, batch_size=batch_size, verbose=verbose)[: len(x)]


def callbacks(options: TrainOptions, checkpoint: Path):
    import keras

    return [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=options.patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=max(1, options.patience // 2), min_lr=1e-7),
        keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True),
    ]


def pair_scores_by_label(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of every pair of rows: (genuine: same label, impostor: different labels)."""
    scores = embeddings @ embeddings.T
    upper = np.triu_indices(len(labels), k=1)
    same = labels[upper[0]] == labels[upper[1]]
    return scores[upper][same], scores[upper][~same]


def train(options: TrainOptions) -> dict:
    # First of all: MultiWorkerMirroredStrategy must be created before any other TensorFlow op.
    strategy, workers, chief = distribution_strategy(options.distribute)
    if chief:
        return _train(options, strategy, workers, Path(options.out))
    with tempfile.TemporaryDirectory(prefix="edge-daemon-worker-") as scratch:
        return _train(options, strategy, workers, Path(scratch))


def _train(options: TrainOptions, strategy, workers: int, out: Path) -> dict:
    """Every worker runs this; ``out`` is options.out on the chief, a scratch directory elsewhere."""
    import faiss
    import keras
    import tensorflow as tf

    started = time.monotonic()
    keras.utils.set_random_seed(options.seed)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    verbose = 1 if sys.stdout.isatty() else 2
    replicas = strategy.num_replicas_in_sync
    batch_size = options.batch_size * replicas  # global: split across the replicas
    distribute = {
        "strategy": options.distribute,
        "replicas": replicas,
        "workers": workers,
        "global_batch_size": batch_size,
    }
    log.info("distribution", **distribute)

    # --- data -------------------------------------------------------------------------
    # Variables made in the scope are mirrored on every replica (with multi-worker, worker 0's
    # initial values are broadcast), and so are models and optimizers built in it below.
    with strategy.scope():
        base = vgg16_base(options.init, options.input_size)  # fail fast, before any slow work
    cache_dir = options.cache_dir or Path(options.out).parent / ".face-cache"
    faces = prepare_faces(options.dataset, cache_dir, options.input_size, DetectorConfig())
    split = stratified_split(faces.items, seed=options.seed)
    identities = sorted({item.identity for item in split.train})
    if len(identities) < 2:
        raise TrainerError(f"need at least 2 identities with 3+ usable faces, found {len(identities)}")
    for identity, count in split.too_few.items():
        log.warning("identity left out: too few usable faces for a train/validation/test split", identity=identity, faces=count)
    index = {identity: i for i, identity in enumerate(identities)}
    arrays = {}
    for name, items in (("train", split.train), ("validation", split.validation), ("test", split.test)):
        arrays[name] = (load_crops(items), np.array([index[item.identity] for item in items]))
    log.info(
        "dataset ready",
        identities=len(identities),
        train=len(split.train),
        validation=len(split.validation),
        test=len(split.test),
        skipped=len(faces.skipped),
        cache_hits=faces.cache_hits,
    )
    data_seconds = time.monotonic() - started

    # --- phase 1: frozen base, cached features ----------------------------------------------
    phase1_started = time.monotonic()
    base.trainable = False
    with strategy.scope():
        feature_extractor = keras.Sequential([base, keras.layers.GlobalAveragePooling2D()], name="features")
        embedding_head, head = build_head(base.output_shape[-1], len(identities), options.embedding_dim, replicas)
        head.compile(keras.optimizers.Adam(options.learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    features = {  # predict shares the batches out and gathers the results: every worker gets them all
        name: predict(feature_extractor, vgg16_preprocess(x), batch_size, replicas, verbose)
        for name, (x, _) in arrays.items()
        if name != "test"
    }
    phase1 = head.fit(
        features["train"],
        arrays["train"][1],
        validation_data=(features["validation"], arrays["validation"][1]),
        epochs=options.epochs,
        batch_size=batch_size,
        callbacks=callbacks(options, out / "checkpoints" / "phase1_head.keras"),
        verbose=verbose,
    )
    phase1_seconds = time.monotonic() - phase1_started

    # --- phase 2: unfreeze the last block(s), fine-tune end to end ------------------------
    phase2_started = time.monotonic()
    with strategy.scope():
        image = keras.Input((options.input_size, options.input_size, 3), name="image")
        pooled = keras.layers.GlobalAveragePooling2D()(base(image))
        classifier = keras.Model(image, head(pooled), name="vgg16_face_classifier")
        embedding_model = keras.Model(image, embedding_head(pooled), name="vgg16_face_embedding")
    base.trainable = True
    unfrozen = {f"block{b}" for b in range(VGG16_BLOCKS - options.blocks_to_unfreeze + 1, VGG16_BLOCKS + 1)}
    for layer in base.layers:
        layer.trainable = layer.name.split("_")[0] in unfrozen
    phase2_history: dict[str, list[float]] = {}
    phase1_weights = classifier.get_weights()
    phase1_best = float(min(phase1.history["val_loss"]))
    kept_phase = "phase2"
    if options.fine_tune_epochs > 0:
        with strategy.scope():
            classifier.compile(
                keras.optimizers.Adam(options.fine_tune_learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"]
            )
        phase2 = classifier.fit(
            image_dataset(*arrays["train"], batch_size, options.seed, augment=True, replicas=replicas),
            validation_data=image_dataset(*arrays["validation"], batch_size, options.seed, augment=False, replicas=replicas),
            epochs=options.fine_tune_epochs,
            callbacks=callbacks(options, out / "checkpoints" / "phase2_classifier.keras"),
            verbose=verbose,
        )
        phase2_history = phase2.history
        if min(phase2_history["val_loss"]) >= phase1_best:
            # Early stopping restored phase 2's best, which is still worse than where it started.
            log.warning(
                "fine-tuning did not improve validation loss; keeping the phase 1 weights",
                phase1_val_loss=round(phase1_best, 4),
                phase2_best_val_loss=round(float(min(phase2_history["val_loss"])), 4),
            )
            classifier.set_weights(phase1_weights)
            kept_phase = "phase1"
    else:
        kept_phase = "phase1"
    phase2_seconds = time.monotonic() - phase2_started

    # --- threshold, export, gallery ---------------------------------------------------------
    def embed(x: np.ndarray) -> np.ndarray:
        return predict(embedding_model, vgg16_preprocess(x), batch_size, replicas)

    genuine, impostor = pair_scores_by_label(embed(arrays["validation"][0]), arrays["validation"][1])
    calibration = calibrate(genuine, impostor, options.far, f"validation pairs of {options.dataset}, FAR {options.far:g}")
    threshold = {**calibration.as_dict(), "curve": roc_curve(genuine, impostor)}
    save_vgg16_artefact(
        embedding_model,
        out,
        threshold,
        extra={"identities": len(identities), "init": options.init, "trained_on": str(options.dataset)},
    )
    classifier.save(out / "classifier.keras")
    (out / "labels.json").write_text(json.dumps({"labels": identities}, indent=2, ensure_ascii=False), encoding="utf-8")

    embedder = Vgg16Embedder(out)  # what the daemon will load: the gallery must come from it
    gallery = Gallery.for_embedder(embedder)
    for identity in identities:
        members = [item for item in split.train + split.validation if item.identity == identity]
        gallery.add(identity, embedder.embed(list(load_crops(members))), [item.source for item in members])
    gallery.save(out / "gallery")

    # --- evaluation and report -----------------------------------------------------------------
    test_x, test_y = arrays["test"]
    predicted = predict(classifier, vgg16_preprocess(test_x), batch_size, replicas).argmax(axis=1)
    metrics = classification_metrics(test_y, predicted, identities)
    test_genuine, test_impostor = pair_scores_by_label(embed(test_x), test_y)
    metrics["open_set"] = {
        "threshold": calibration.threshold,
        "test_far": float((test_impostor >= calibration.threshold).mean()) if len(test_impostor) else None,
        "test_frr": float((test_genuine < calibration.threshold).mean()) if len(test_genuine) else None,
    }
    history = {
        "phase1": {k: [float(v) for v in values] for k, values in phase1.history.items() if k != "learning_rate"},
        "phase2": {k: [float(v) for v in values] for k, values in phase2_history.items() if k != "learning_rate"},
    }
    write_report(out / "report", metrics, history, identities, test_genuine, test_impostor, calibration.threshold)

    card = {
        "dataset": {"path": str(options.dataset), "sha256": dataset_digest(options.dataset)},
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "init": options.init,
        "input_size": options.input_size,
        "unfrozen_blocks": sorted(unfrozen),
        "distribute": distribute,
        "weights_from": kept_phase,
        "identities": identities,
        "images": {
            "train": _counts(split.train),
            "validation": _counts(split.validation),
            "test": _counts(split.test),
        },
        "left_out_identities": split.too_few,
        "skipped_images": faces.skipped,
        "epochs_run": {"phase1": len(phase1.history["loss"]), "phase2": len(phase2_history.get("loss", []))},
        "best_epoch": {
            "phase1": int(np.argmin(phase1.history["val_loss"])) + 1,
            "phase2": int(np.argmin(phase2_history["val_loss"])) + 1 if phase2_history else None,
        },
        "wall_seconds": {
            "data": round(data_seconds, 1),
            "phase1": round(phase1_seconds, 1),
            "phase2": round(phase2_seconds, 1),
            "total": round(time.monotonic() - started, 1),
        },
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "faiss": faiss.__version__,
            "python": platform.python_version(),
        },
        "embedder_version": embedder.version,
        "gallery_version": gallery.version,
        "threshold": calibration.as_dict(),
        "history": history,
        "metrics": metrics,
    }
    (out / "model_card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False), encoding="utf-8")
    log.info(
        "training finished",
        test_accuracy=round(metrics["accuracy"], 4),
        threshold=calibration.threshold,
        wall_s=card["wall_seconds"]["total"],
        out=str(out),
    )
    return card


def _counts(items) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.identity] = counts.get(item.identity, 0) + 1
    return dict(sorted(counts.items()))
