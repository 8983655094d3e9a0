"""What the command modules share: the exit-code exceptions, the parent parsers, settings and models
for one-shot commands, the gallery a command works on and its publication to the fleet."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import NamedTuple

from edge_daemon.config import Settings, load_settings
from edge_daemon.logs import configure_logging, get_logger

log = get_logger(__name__)


class UsageError(Exception):
    """Bad arguments: exit code 2."""


class RuntimeFailure(Exception):
    """Something outside the command failed (a broker, a disk): exit code 1."""


class ParentParsers(NamedTuple):
    """Options several commands take, each defined once."""

    config: argparse.ArgumentParser
    publish: argparse.ArgumentParser


def make_parent_parsers() -> ParentParsers:
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", type=Path, help="TOML config file (EDGE_* env vars override it)")
    publish = argparse.ArgumentParser(add_help=False)
    publish.add_argument(
        "--mqtt", metavar="mqtt[s]://HOST[:PORT]", help="the fleet's broker (default: mqtt.url; TLS and credentials from [mqtt])"
    )
    publish.add_argument("--prefix", help="topic prefix (default: mqtt.prefix)")
    return ParentParsers(config, publish)


def settings_from(args: argparse.Namespace, **overrides: object) -> Settings:
    settings = load_settings(args.config, **overrides)
    configure_logging(settings.logging.level, settings.logging.format)
    return settings


def gallery_override(path: Path | None) -> dict:
    return {"gallery": {"path": str(path)}} if path is not None else {}


def mqtt_override(args: argparse.Namespace) -> dict:
    return {"mqtt": {"url": args.mqtt}} if getattr(args, "mqtt", None) else {}


def in_process_models(settings: Settings):
    """(detector, embedder) of the configuration."""
    from edge_daemon.detectors import create_detector
    from edge_daemon.embedders import create_embedder

    # One-shot commands run the models in this process: no pipeline threads to starve.
    return create_detector(settings.detector, separate_process=False), create_embedder(settings.embedder, separate_process=False)


def gallery_path(args: argparse.Namespace, settings: Settings) -> Path:
    path = args.gallery or settings.gallery.path
    if path is None:
        raise UsageError("no gallery: pass --gallery DIR or set gallery.path in the config")
    return Path(path)


def report_skipped(skipped) -> None:
    for item in skipped:
        log.warning("image skipped", image=item.path, reason=item.reason)


def enrol_directory(directory: Path, detector, embedder, threshold: float | None = None):
    """Enrol every ``<identity>/<image>`` under ``directory``; returns the gallery and skipped images."""
    from edge_daemon.api import build_gallery

    try:
        gallery, skipped = build_gallery(directory, detector, embedder, threshold)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    report_skipped(skipped)
    return gallery, skipped


def publish_to_fleet(args: argparse.Namespace, settings: Settings, path: Path) -> dict:
    """Publish the gallery at ``path`` to the fleet's broker (mqtt.url, which ``--mqtt`` overrides)."""
    from edge_daemon.comms.gallery_sync import SyncError, publish_gallery

    if not settings.mqtt.url:
        raise UsageError("no broker: pass --mqtt mqtt[s]://HOST[:PORT] or set mqtt.url in the config")
    prefix = args.prefix or settings.mqtt.prefix
    try:
        manifest = publish_gallery(path, settings.mqtt, prefix, settings.gallery.sync_chunk_bytes)
    except SyncError as exc:
        raise RuntimeFailure(str(exc)) from None
    return {"published": manifest["version"], "rows": manifest["rows"], "topic": f"{prefix}/gallery/manifest"}


def report_change(args: argparse.Namespace, settings: Settings, path: Path, summary: dict) -> int:
    """After a gallery changed: publish it when asked (--publish), print the summary."""
    if args.publish:
        summary.update(publish_to_fleet(args, settings, path))
    print(json.dumps(summary))
    return 0
