"""``edge-daemon`` command line.

Exit codes: 0 success, 1 runtime failure (unreadable model, gallery, camera), 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import sys

from edge_daemon import __version__
from edge_daemon.cli import config, demo, gallery, history, models, recognize, run, training
from edge_daemon.cli.common import RuntimeFailure, UsageError, make_parent_parsers
from edge_daemon.config import ConfigError
from edge_daemon.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-daemon", description="Face recognition for video streams.")
    parser.add_argument("--version", action="version", version=f"edge-daemon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    parents = make_parent_parsers()
    # --help lists the commands in the order they are added here, which interleaves the modules' groups.
    run.add_commands(commands, parents)
    config.add_commands(commands)
    gallery_actions = gallery.add_gallery_group(commands)
    gallery.add_build_list_remove_actions(gallery_actions, parents)
    history.add_reject_action(gallery_actions, parents)
    gallery.add_publish_rebuild_actions(gallery_actions, parents)
    models.add_commands(commands, parents)
    gallery.add_enroll_command(commands, parents)
    history.add_commands(commands, parents)
    recognize.add_commands(commands, parents)
    training.add_commands(commands, parents)
    demo.add_commands(commands, parents)
    training.add_calibrate_command(commands, parents)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = build_parser().parse_args(argv)
    from edge_daemon.detectors import DetectorError
    from edge_daemon.embedders import EmbedderError
    from edge_daemon.recognition.gallery import GalleryError

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
