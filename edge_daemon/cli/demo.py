"""``edge-daemon demo``: a made-up clip and gallery, and the daemon run over them."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_daemon.cli.common import ParentParsers, RuntimeFailure, enrol_directory, in_process_models, settings_from
from edge_daemon.logs import get_logger

log = get_logger(__name__)


def cmd_demo(args: argparse.Namespace) -> int:
    from edge_daemon.demo import SamplePhotosUnavailable, make_demo_assets
    from edge_daemon.service.runner import DaemonRunner

    try:
        photos, clip = make_demo_assets(args.out)
    except SamplePhotosUnavailable as exc:
        raise RuntimeFailure(str(exc)) from None
    settings = settings_from(args)
    gallery, _ = enrol_directory(photos, *in_process_models(settings))
    gallery.save(args.out / "gallery")
    log.info("demo gallery enrolled", people=list(gallery.identities()), clip=str(clip))
    overrides = {
        "cameras": [{"name": "demo", "url": str(clip)}],
        "gallery": {"path": str(args.out / "gallery")},
        "events": {"jsonl": "-", "crops_dir": str(args.out / "crops")},
    }
    if args.mqtt:
        overrides["mqtt"] = {"url": args.mqtt}
    return DaemonRunner(settings_from(args, **overrides)).run()


def add_commands(commands: argparse._SubParsersAction, parents: ParentParsers) -> None:
    demo = commands.add_parser("demo", parents=[parents.config], help="make a demo clip and gallery, run the daemon on it")
    demo.add_argument("--out", type=Path, default=Path("demo-out"), help="where assets go (default: demo-out)")
    demo.add_argument("--mqtt", metavar="mqtt://HOST:PORT", help="also publish to this broker")
    demo.set_defaults(handler=cmd_demo)
