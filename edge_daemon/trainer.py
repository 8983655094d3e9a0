"""Offline trainer: fine-tune VGG16 on a folder-per-identity dataset and export what the daemon needs.

The recipe (transfer learning, as in the Pins Face Recognition notebooks):
  phase 1  VGG16 convolutional base frozen; a new head (Dense + BatchNorm + LeakyReLU + Dropout ->
           L2-normalised embedding -> softmax) is trained on the base's features. The base's output
           for un-augmented crops is computed once and cached in memory, so no epoch re-runs it.
  phase 2  the last convolutional block(s) are unfrozen and the whole network is trained end to end
           at a lower learning rate, with augmentation (flip, small rotation/zoom, brightness).
Both phases stop early on validation loss (best weights restored) and reduce the learning rate
on plateaus; the best weights of each phase are checkpointed.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge_daemon.config import DetectorConfig
from edge_daemon.embedders.vgg16 import Vgg16Embedder, save_vgg16_artefact, vgg16_preprocess
from edge_daemon.faceset import dataset_digest, load_crops, prepare_faces, stratified_split
from edge_daemon.gallery import Gallery
from edge_daemon.logs import get_logger
from edge_daemon.report import classification_metrics, write_report
from edge_daemon.verification import calibrate, roc_curve

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
    batch_size: int = 32
    seed: int = 1337
    embedding_dim: int = 256
    learning_rate: float = 1e-3
    fine_tune_learning_rate: float = 1e-5
    unfreeze_blocks: int | None = None  # default: 1 with pretrained weights, all 5 from scratch
    patience: int = 5
    far: float = 0.01
    cache_dir: Path | None = None

    @property
    def blocks_to_unfreeze(self) -> int:
        if self.unfreeze_blocks is not None:
            return self.unfreeze_blocks
        return VGG16_BLOCKS if self.init == "none" else 1


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


def build_head(feature_dim: int, classes: int, embedding_dim: int):
    """Features -> (embedding model, classifier model), sharing layers."""
    import keras
    from keras import layers

    features = keras.Input((feature_dim,), name="features")
    x = layers.Dense(512)(features)
    x = layers.BatchNormalization()(x)
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


def image_dataset(crops: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, augment: bool):
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((crops, labels))
    if augment:
        dataset = dataset.shuffle(len(crops), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    augmentation = augmenter(seed) if augment else None
    mean = tf.constant([103.939, 116.779, 123.68])  # the same BGR means as vgg16_preprocess

    def prepare(images, y):
        images = tf.cast(images, tf.float32)
        if augmentation is not None:
            images = augmentation(images, training=True)
        return images - mean, y

    return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


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
    import faiss
    import keras
    import tensorflow as tf

    started = time.monotonic()
    keras.utils.set_random_seed(options.seed)
    out = Path(options.out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    verbose = 1 if sys.stdout.isatty() else 2

    # --- data -------------------------------------------------------------------------
    base = vgg16_base(options.init, options.input_size)  # fail fast, before any slow work
    cache_dir = options.cache_dir or out.parent / ".face-cache"
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
    feature_extractor = keras.Sequential([base, keras.layers.GlobalAveragePooling2D()], name="features")
    features = {
        name: feature_extractor.predict(vgg16_preprocess(x), batch_size=options.batch_size, verbose=verbose)
        for name, (x, _) in arrays.items()
        if name != "test"
    }
    embedding_head, head = build_head(features["train"].shape[1], len(identities), options.embedding_dim)
    head.compile(keras.optimizers.Adam(options.learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    phase1 = head.fit(
        features["train"],
        arrays["train"][1],
        validation_data=(features["validation"], arrays["validation"][1]),
        epochs=options.epochs,
        batch_size=options.batch_size,
        callbacks=callbacks(options, out / "checkpoints" / "phase1_head.keras"),
        verbose=verbose,
    )
    phase1_seconds = time.monotonic() - phase1_started

    # --- phase 2: unfreeze the last block(s), fine-tune end to end ------------------------
    phase2_started = time.monotonic()
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
        classifier.compile(
            keras.optimizers.Adam(options.fine_tune_learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        phase2 = classifier.fit(
            image_dataset(*arrays["train"], options.batch_size, options.seed, augment=True),
            validation_data=image_dataset(*arrays["validation"], options.batch_size, options.seed, augment=False),
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
        return embedding_model.predict(vgg16_preprocess(x), batch_size=options.batch_size, verbose=0)

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
    predicted = classifier.predict(vgg16_preprocess(test_x), batch_size=options.batch_size, verbose=0).argmax(axis=1)
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
