"""``edge-daemon run``: the daemon itself."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from edge_daemon.cli.common import ParentParsers, UsageError, gallery_override, settings_from
from edge_daemon.config import ConfigError
from edge_daemon.config.base import CAMERA_NAME_PATTERN


def parse_camera_flag(flag: str) -> dict[str, str]:
    """``NAME=URL`` from ``--camera`` into a camera entry (validated with the rest of the config)."""
    name, sep, url = flag.partition("=")
    if not sep or not name or not url:
        raise ConfigError(f"--camera expects NAME=URL, got {flag!r}")
    if not re.match(CAMERA_NAME_PATTERN, name):
        raise ConfigError(f"--camera name {name!r}: use letters, digits, '_', '-', '.'")
    return {"name": name, "url": url}


def cmd_run(args: argparse.Namespace) -> int:
    overrides: dict = gallery_override(args.gallery)
    if args.camera:
        overrides["cameras"] = [parse_camera_flag(flag) for flag in args.camera]
    if args.events_out is not None:
        overrides["events"] = {"jsonl": args.events_out}
    if args.mqtt is not None:
        overrides["mqtt"] = {"url": args.mqtt}
    settings = settings_from(args, **overrides)
    from edge_daemon.service.runner import DaemonRunner

    try:
        runner = DaemonRunner(settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return runner.run()


def add_commands(commands: argparse._SubParsersAction, parents: ParentParsers) -> None:
    run = commands.add_parser("run", parents=[parents.config], help="run the daemon")
    run.add_argument("--camera", action="append", metavar="NAME=URL", help="a file, rtsp://..., or usb:N (repeatable)")
    run.add_argument("--gallery", type=Path, metavar="DIR", help="gallery directory")
    run.add_argument("--events-out", metavar="FILE", help="JSON-lines events file, '-' for stdout")
    run.add_argument("--mqtt", metavar="mqtt://HOST:PORT", help="publish events to this broker")
    run.set_defaults(handler=cmd_run)
