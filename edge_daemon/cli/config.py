"""``edge-daemon config``: check or describe the configuration."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_daemon.config import Settings, load_settings
from edge_daemon.config.example import example_toml


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = load_settings(args.file)
    print(settings.model_dump_json(indent=2))
    return 0


def cmd_config_example(args: argparse.Namespace) -> int:
    print(example_toml(), end="")
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    print(json.dumps(Settings.model_json_schema(), indent=2))
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    config = commands.add_parser("config", help="check or describe configuration").add_subparsers(dest="action", required=True)
    check = config.add_parser("check", help="validate a config file and print the effective config")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=cmd_config_check)
    config.add_parser("schema", help="print the JSON schema of the configuration").set_defaults(handler=cmd_config_schema)
    config.add_parser("example", help="print a TOML file with every option commented").set_defaults(handler=cmd_config_example)
