"""``edge-daemon recognize``: the faces in still images, against a gallery."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_daemon.cli.common import ParentParsers, gallery_override, in_process_models, settings_from


def cmd_recognize(args: argparse.Namespace) -> int:
    from edge_daemon.api import ImageError, load_image, recognize
    from edge_daemon.recognition.gallery import Gallery
    from edge_daemon.recognition.matcher import use_thresholds

    settings = settings_from(args, **gallery_override(args.gallery))
    detector, embedder = in_process_models(settings)
    gallery = None
    if settings.gallery.path is not None:
        gallery = Gallery.load(settings.gallery.path)
        gallery.check_embedder(embedder)
        use_thresholds(gallery, settings.gallery)
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
                name = face.identity or face.verdict
                print(f"  [{x}, {y}, {w}, {h}]  {name}  score {face.score:.3f}  quality {face.quality:.2f}")
    return 1 if failures == len(args.images) else 0


def add_commands(commands: argparse._SubParsersAction, parents: ParentParsers) -> None:
    recognize = commands.add_parser("recognize", parents=[parents.config], help="recognise the faces in still images")
    recognize.add_argument("images", nargs="+")
    recognize.add_argument("--gallery", type=Path)
    recognize.add_argument("--json", action="store_true", help="one JSON object per image per line")
    recognize.set_defaults(handler=cmd_recognize)
