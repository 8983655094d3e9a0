"""What the cameras saw: ``edge-daemon unknowns``, ``search`` and ``gallery reject``, and the history
faces that ``enroll --from-cluster/--from-face`` enrols."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_daemon.cli.common import (
    ParentParsers,
    UsageError,
    gallery_path,
    in_process_models,
    mqtt_override,
    report_change,
    settings_from,
)
from edge_daemon.config import Settings


def _open_history(settings: Settings):
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
    """(history, clusters): the unknown, not yet enrolled faces of this embedder seen within
    ``--since`` (and ``--camera``), in the groups their tracks joined."""
    import time

    from edge_daemon.history import HistoryGroups
    from edge_daemon.history.grouping import grouping_rule

    history = _open_history(settings)
    try:
        # Made, not only read: tracks of a history migrated from faces are grouped the first time.
        groups = HistoryGroups(history, embedder.version, grouping_rule(embedder, settings.history, settings.gallery))
    except ValueError as exc:
        history.close()
        raise UsageError(f"cannot group the unknown faces: {exc} ({embedder.threshold_source})") from None
    return history, groups.listing(time.time() - parse_duration(args.since), args.camera)


def history_selection(args: argparse.Namespace, settings: Settings, embedder):
    """(history, rows) named by --from-face, or by --from-cluster in the 'unknowns' listing made
    with the same --since/--camera."""
    if args.from_face:
        history = _open_history(settings)
        rows = [history.face(face_id) for face_id in args.from_face]
        missing = [face_id for face_id, row in zip(args.from_face, rows) if row is None]
        if missing:
            raise UsageError(f"no face {', '.join(map(str, missing))} in the history")
    else:
        history, clusters = _unknown_clusters(args, settings, embedder)
        cluster = next((c for c in clusters if c.cluster_id == args.from_cluster), None)
        if cluster is None:
            raise UsageError(f"no cluster {args.from_cluster}: run 'edge-daemon unknowns' with the same --since/--camera")
        rows = [row for row in map(history.face, cluster.face_ids) if row is not None]
    foreign = [row.face_id for row in rows if row.embedder_version != embedder.version]
    if foreign:
        raise UsageError(f"faces {foreign} were embedded by another embedder configuration; they cannot join this gallery")
    return history, rows


def cmd_unknowns(args: argparse.Namespace) -> int:
    from edge_daemon.embedders import create_embedder
    from edge_daemon.history import contact_sheet
    from edge_daemon.messages import utc_iso

    settings = settings_from(args)
    embedder = create_embedder(settings.embedder, separate_process=False)
    history, clusters = _unknown_clusters(args, settings, embedder)
    history.close()
    faces = sum(c.size for c in clusters)
    listing = [
        {"cluster": c.cluster_id, "faces": c.size, "tracks": c.tracks, "cameras": list(c.cameras),
         "first_seen": utc_iso(c.first_seen), "last_seen": utc_iso(c.last_seen), "representative": c.representative,
         "crop": str(c.representative_crop), "face_ids": list(c.face_ids)}
        for c in clusters
    ]
    if args.sheet is not None and clusters:
        contact_sheet(clusters, args.sheet)
    if args.json:
        print(json.dumps({"faces": faces, "clusters": listing}))
    else:
        print(f"{faces} unknown face(s), {sum(c.size > 1 for c in clusters)} cluster(s) of two or more")
        for item in listing:
            print(f"  cluster {item['cluster']:>3}  {item['faces']:>4} face(s)  {item['tracks']:>3} track(s)  "
                  f"{', '.join(item['cameras'])}  {item['first_seen']} .. {item['last_seen']}  {item['crop']}")
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

    from edge_daemon.history import search_faces
    from edge_daemon.messages import utc_iso

    settings = settings_from(args)
    detector, embedder = in_process_models(settings)
    query = _photo_embedding(args.image, detector, embedder, exactly_one=False)
    history = _open_history(settings)
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
    from edge_daemon.recognition.gallery import Gallery, locked

    settings = settings_from(args, **mqtt_override(args))
    path = gallery_path(args, settings)
    detector, embedder = in_process_models(settings)
    if args.face.isdigit():  # a face of the history, by id
        history = _open_history(settings)
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
    return report_change(args, settings, path, {"identity": args.name, "rejected": source, "version": gallery.version})


def add_reject_action(gallery: argparse._SubParsersAction, parents: ParentParsers) -> None:
    reject = gallery.add_parser(
        "reject", parents=[parents.config, parents.publish], help="'not this person': a face NAME must not match"
    )
    reject.add_argument("--gallery", type=Path)
    reject.add_argument("name")
    reject.add_argument("--face", required=True, metavar="ID|IMAGE", help="a face id of the history, or a photo")
    reject.add_argument("--publish", action="store_true", help="then publish the gallery to the fleet's broker")
    reject.set_defaults(handler=cmd_gallery_reject)


def add_commands(commands: argparse._SubParsersAction, parents: ParentParsers) -> None:
    unknowns = commands.add_parser("unknowns", parents=[parents.config], help="unknown faces seen lately, grouped by person")
    unknowns.add_argument("--since", default="24h", help="how far back (30m, 24h, 7d; default 24h)")
    unknowns.add_argument("--camera", help="only this camera")
    unknowns.add_argument("--sheet", type=Path, metavar="PNG", help="also write a contact sheet: a row of crops per cluster")
    unknowns.add_argument("--json", action="store_true")
    unknowns.set_defaults(handler=cmd_unknowns)

    search = commands.add_parser("search", parents=[parents.config], help="when and where a face was seen")
    search.add_argument("image", help="a photo of the person (the largest face is searched for)")
    search.add_argument("--since", default="7d", help="how far back (default 7d)")
    search.add_argument("--top", type=int, default=20, help="how many faces (default 20)")
    search.add_argument("--json", action="store_true")
    search.set_defaults(handler=cmd_search)
