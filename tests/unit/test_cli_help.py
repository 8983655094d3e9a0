"""Every command's ``--help`` works: the commands are found by walking the parsers that
``build_parser`` makes, so a new command is covered without naming it here."""

from __future__ import annotations

import argparse

import pytest
import structlog

from edge_daemon.cli import build_parser, main


def command_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path, parser) of ``parser`` and of every command below it, depth first."""
    yield path, parser
    # argparse has no public way to list sub-commands; its sub-parsers action holds them.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from command_parsers(sub, (*path, name))


def sub_commands(parser: argparse.ArgumentParser) -> list[str]:
    return [path[0] for path, _ in command_parsers(parser) if len(path) == 1]


@pytest.fixture(autouse=True)
def logging_as_it_was():
    """main() points the logs at this test's captured stderr, which is closed after the test."""
    config = structlog.get_config()
    yield
    structlog.configure(**config)


PARSERS = dict(command_parsers(build_parser()))


each_command = pytest.mark.parametrize("path", list(PARSERS), ids=lambda path: " ".join(path) or "edge-daemon")


def test_the_walk_reaches_commands_of_commands():
    assert any(len(path) == 2 for path in PARSERS)


@each_command
def test_help_exits_0_with_the_usage_of_that_command(path, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*path, "--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith(f"usage: {' '.join(('edge-daemon', *path))} ")
    missing = [name for name in sub_commands(PARSERS[path]) if name not in help_text]
    assert missing == [], f"sub-commands absent from the help: {missing}"


@each_command
def test_every_command_without_sub_commands_has_a_handler(path):
    if not sub_commands(PARSERS[path]):
        assert callable(PARSERS[path].get_default("handler"))
