"""``edge-daemon gallery build/list/remove/publish/rebuild`` and ``edge-daemon enroll``: make and edit
a gallery (``gallery reject`` is in the review module)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_daemon.cli.common import (
    ParentParsers,
    UsageError,
    enrol_directory,
    gallery_path,
    in_process_models,
    mqtt_override,
    publish_to_fleet,
    report_change,
    report_skipped,
    settings_from,
)
from edge_daemon.cli.history import history_selection
from edge_daemon.logs import get_logger

log = get_logger(__name__)


def cmd_gallery_build(args: argparse.Namespace) -> int:
    from edge_daemon.recognition.gallery import META_FILE, locked

    settings = settings_from(args)
    if (args.out / META_FILE).exists() and not args.force:
        raise UsageError(f"{args.out} already holds a gallery; pass --force to replace it")
    gallery, skipped = enrol_directory(args.directory, *in_process_models(settings), settings.gallery.threshold)
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
    from edge_daemon.recognition.gallery import META_FILE, Gallery, locked, validate_identity

    settings = settings_from(args, **mqtt_override(args))
    try:
        name = validate_identity(args.name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    path = gallery_path(args, settings)
    if bool(args.images) == bool(args.from_cluster or args.from_face):
        raise UsageError("give either IMAGE... or --from-cluster ID / --from-face ID...")
    detector, embedder = in_process_models(settings)
    history_rows = []
    if args.images:
        enrolment = enrolment_embeddings([Path(p) for p in args.images], detector, embedder)
    else:
        history, history_rows = history_selection(args, settings, embedder)
        enrolment = enrolment_from_history(history_rows)
    report_skipped(enrolment.skipped)
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
    return report_change(args, settings, path, {**summary, "version": gallery.version})


def cmd_gallery_rebuild(args: argparse.Namespace) -> int:
    import shutil

    from edge_daemon.api import rebuild_gallery
    from edge_daemon.recognition.gallery import FACES_DIR, Gallery, locked

    settings = settings_from(args)
    path = gallery_path(args, settings)
    detector, embedder = in_process_models(settings)
    with locked(path):
        old = Gallery.load(path)
        gallery, skipped = rebuild_gallery(old, path, detector, embedder, settings.gallery.threshold)
        report_skipped(skipped)
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


def cmd_gallery_publish(args: argparse.Namespace) -> int:
    settings = settings_from(args, **mqtt_override(args))
    print(json.dumps(publish_to_fleet(args, settings, gallery_path(args, settings))))
    return 0


def cmd_gallery_list(args: argparse.Namespace) -> int:
    from edge_daemon.recognition.gallery import Gallery

    gallery = Gallery.load(gallery_path(args, settings_from(args)))
    if args.json:
        print(json.dumps({"version": gallery.version, "embedder": gallery.embedder, "identities": gallery.identities()}))
    else:
        print(f"gallery {gallery.version}  embedder {gallery.embedder}  threshold {gallery.threshold}")
        for identity, count in gallery.identities().items():
            print(f"  {identity}\t{count}")
    return 0


def cmd_gallery_remove(args: argparse.Namespace) -> int:
    from edge_daemon.recognition.gallery import Gallery, locked

    settings = settings_from(args, **mqtt_override(args))
    path = gallery_path(args, settings)
    with locked(path):
        gallery = Gallery.load(path)
        removed = gallery.remove(args.name)
        if not removed:
            log.error("identity not in gallery", identity=args.name)
            return 1
        gallery.save(path)
    return report_change(args, settings, path, {"identity": args.name, "removed": removed, "version": gallery.version})


def add_gallery_group(commands: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The ``gallery`` command; its actions come from this module and the review module."""
    return commands.add_parser("gallery", help="build, list or edit a gallery").add_subparsers(dest="action", required=True)


def add_build_list_remove_actions(gallery: argparse._SubParsersAction, parents: ParentParsers) -> None:
    build = gallery.add_parser("build", parents=[parents.config], help="enrol every <identity>/<image> under DIR")
    build.add_argument("directory", type=Path, metavar="DIR")
    build.add_argument("--out", type=Path, required=True, metavar="GALLERY")
    build.add_argument("--force", action="store_true", help="replace an existing gallery")
    build.set_defaults(handler=cmd_gallery_build)
    listing = gallery.add_parser("list", parents=[parents.config], help="identities and embedding counts")
    listing.add_argument("--gallery", type=Path)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_gallery_list)
    remove = gallery.add_parser("remove", parents=[parents.config, parents.publish], help="remove one identity")
    remove.add_argument("--gallery", type=Path)
    remove.add_argument("name")
    remove.add_argument("--publish", action="store_true", help="then publish the gallery to the fleet's broker")
    remove.set_defaults(handler=cmd_gallery_remove)


def add_publish_rebuild_actions(gallery: argparse._SubParsersAction, parents: ParentParsers) -> None:
    publish = gallery.add_parser(
        "publish", parents=[parents.config, parents.publish], help="publish a gallery to every box on the broker"
    )
    publish.add_argument("gallery", type=Path, nargs="?", metavar="GALLERY")
    publish.set_defaults(handler=cmd_gallery_publish)
    rebuild = gallery.add_parser(
        "rebuild", parents=[parents.config], help="re-embed a gallery with the configured embedder (old files kept aside)"
    )
    rebuild.add_argument("gallery", type=Path, nargs="?", metavar="GALLERY")
    rebuild.set_defaults(handler=cmd_gallery_rebuild)


def add_enroll_command(commands: argparse._SubParsersAction, parents: ParentParsers) -> None:
    enroll = commands.add_parser("enroll", parents=[parents.config, parents.publish], help="add one person from a few photos")
    enroll.add_argument("--gallery", type=Path)
    enroll.add_argument("--publish", action="store_true", help="then publish the gallery to the fleet's broker")
    enroll.add_argument("name")
    enroll.add_argument("images", nargs="*", metavar="IMAGE")
    enroll.add_argument("--from-cluster", type=int, metavar="ID", help="the faces of an 'unknowns' cluster")
    enroll.add_argument("--from-face", type=int, nargs="+", metavar="ID", help="faces of the history by id")
    enroll.add_argument("--since", default="24h", help="with --from-cluster: as given to 'unknowns' (default 24h)")
    enroll.add_argument("--camera", help="with --from-cluster: as given to 'unknowns'")
    enroll.set_defaults(handler=cmd_enroll)
