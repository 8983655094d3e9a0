"""python -m scripts.arm64 COMMAND ...: what scripts/test-arm64.sh asks of the host's .venv Python.
Commands that add checks append them to the checks file and print the line the script logs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.arm64 import checks as checks_file
from scripts.arm64 import resolution
from scripts.arm64.apt_sources import apt_mirror
from scripts.arm64.comparison import Tolerance, compare, write_summary
from scripts.arm64.lossless import lossless_copy


def run_apt_mirror(args) -> int:
    print(apt_mirror(args.suite))
    return 0


def run_frm_wheel(args) -> int:
    resolution.ensure_face_recognition_models_wheel(args.wheels)
    return 0


def run_resolve(args) -> int:
    check, message = resolution.resolve(args.arch, args.python_version, args.project, args.wheels, args.work)
    checks_file.append(args.checks, [check])
    print(message)
    return 0


def run_pins(args) -> int:
    for line in resolution.pins(resolution.installed_packages(), resolution.wanted_packages(args.report)):
        print(line)
    return 0


def run_lossless(args) -> int:
    lossless_copy(args.source, args.target)
    return 0


def run_compare(args) -> int:
    checks, details = compare(args.work, Tolerance(args.score_tol, args.box_tol))
    write_summary(args.work, checks, details)
    checks_file.append(args.checks, checks)
    print(details["demo_x86_64"] or "none")
    return 0


def run_summary(args) -> int:
    text, status = checks_file.summary(checks_file.read(args.checks), args.seconds, args.work)
    print(text)
    return status


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.arm64", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    command = commands.add_parser("apt-mirror", help="print the Debian mirror this host's apt uses for SUITE")
    command.add_argument("suite")
    command.set_defaults(run=run_apt_mirror)

    command = commands.add_parser("frm-wheel", help="build the face-recognition-models wheel into WHEELS unless there")
    command.add_argument("wheels", type=Path)
    command.set_defaults(run=run_frm_wheel)

    command = commands.add_parser("resolve", help="resolve the default install from wheels alone for ARCH and PYTHON_VERSION")
    command.add_argument("arch")
    command.add_argument("python_version")
    command.add_argument("--project", type=Path, required=True)
    command.add_argument("--wheels", type=Path, required=True, help="extra wheels (--find-links)")
    command.add_argument("--work", type=Path, required=True, help="where pip's report and output go")
    command.add_argument("--checks", type=Path, required=True)
    command.set_defaults(run=run_resolve)

    command = commands.add_parser("pins", help="print this Python's versions of the packages in a resolution REPORT")
    command.add_argument("report", type=Path, help="pip's report; without a readable one, every installed package")
    command.set_defaults(run=run_pins)

    command = commands.add_parser("lossless", help="copy a clip's frames, as decoded here, losslessly (FFV1)")
    command.add_argument("source", type=Path)
    command.add_argument("target", type=Path)
    command.set_defaults(run=run_lossless)

    command = commands.add_parser("compare", help="compare WORK/x86_64 with WORK/aarch64; print the x86_64 demo decisions")
    command.add_argument("work", type=Path)
    command.add_argument("--score-tol", type=float, required=True)
    command.add_argument("--box-tol", type=float, required=True)
    command.add_argument("--checks", type=Path, required=True)
    command.set_defaults(run=run_compare)

    command = commands.add_parser("summary", help="print the table of CHECKS; exit 1 when any check failed")
    command.add_argument("checks", type=Path)
    command.add_argument("--seconds", type=int, required=True, help="how long the run took")
    command.add_argument("--work", type=Path, required=True, help="where the details are")
    command.set_defaults(run=run_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
