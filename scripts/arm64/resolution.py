"""Whether the default install resolves from wheels alone on manylinux aarch64, and the pins that
make the arm64 venv install the host .venv's versions. Runs under the host's .venv Python, whose pip
does the resolving (``pip install --dry-run --only-binary=:all: --platform ...``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.arm64.checks import Check

OLDEST_MANYLINUX_MINOR, NEWEST_MANYLINUX_MINOR = 17, 28
# face-recognition-models (dlib's weights, pure data) is on PyPI as an sdist only: it is built once on
# the host into a py2.py3-none-any wheel, the same file on every architecture.
FACE_RECOGNITION_MODELS = "face-recognition-models"
FACE_RECOGNITION_MODELS_FALLBACK = "face-recognition-models>=0.3"
# not pinned: the project itself, the x86_64-only extra, and the installers the venv brings along
NEVER_PINNED = frozenset({"edge-daemon", "yuface", "pip", "setuptools", "wheel"})


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def platform_tags(arch: str) -> list[str]:
    """manylinux_2_17 .. manylinux_2_28 and manylinux2014 for ARCH: pip does not widen an explicit --platform."""
    minors = range(OLDEST_MANYLINUX_MINOR, NEWEST_MANYLINUX_MINOR + 1)
    return [f"manylinux_2_{minor}_{arch}" for minor in minors] + [f"manylinux2014_{arch}"]


def report_path(work: Path, arch: str, python_version: str) -> Path:
    return work / f"resolve-{arch}-cp{python_version.replace('.', '')}.json"


def resolve_command(arch: str, python_version: str, project: Path, wheels: Path, report: Path, target: Path) -> list[str]:
    platforms = [argument for tag in platform_tags(arch) for argument in ("--platform", tag)]
    return [
        sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:", *platforms,
        "--python-version", python_version, "--implementation", "cp", "--target", str(target),
        "--find-links", str(wheels), "--report", str(report), str(project),
    ]  # fmt: skip


def resolution_check(arch: str, python_version: str, returncode: int, report: Path, log: Path) -> tuple[Check, str]:
    """The check row and the log line for one resolution, from pip's exit status, report and output."""
    name = f"resolve cp{python_version.replace('.', '')} manylinux_2_28_{arch}"
    what = f"resolve cp{python_version.replace('.', '')} {arch}"
    if returncode == 0:
        try:
            count = len(json.loads(report.read_text(encoding="utf-8"))["install"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return Check(
                name, "FAIL", "-", f"pip's report is unreadable: {exc}"[:140]
            ), f"{what} FAILED: no readable report {report}"
        return Check(name, "PASS", "-", f"{count} packages, all wheels"), f"{what}: {count} packages, all from wheels"
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
    error = next((line for line in lines if line.startswith("ERROR")), lines[-1] if lines else f"pip exited {returncode}")
    return Check(name, "FAIL", "-", error[:120]), f"{what} FAILED: {error}  (log: {log})"


def resolve(arch: str, python_version: str, project: Path, wheels: Path, work: Path) -> tuple[Check, str]:
    report = report_path(work, arch, python_version)
    log = report.with_suffix(".log")
    with tempfile.TemporaryDirectory() as target, log.open("w", encoding="utf-8") as output:
        command = resolve_command(arch, python_version, project, wheels, report, Path(target))
        returncode = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT).returncode
    return resolution_check(arch, python_version, returncode, report, log)


def installed_packages() -> list[dict]:
    """This Python's installed distributions, as ``pip list --format=json --exclude-editable``."""
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "list", "--format=json", "--exclude-editable"], capture_output=True, text=True, check=True
    )
    return json.loads(listing.stdout)


def face_recognition_models_requirement(installed: list[dict]) -> str:
    """The installed face-recognition-models pinned, or any release when it is not installed."""
    for package in installed:
        if canonical(package["name"]) == FACE_RECOGNITION_MODELS:
            return f"{FACE_RECOGNITION_MODELS}=={package['version']}"
    return FACE_RECOGNITION_MODELS_FALLBACK


def ensure_face_recognition_models_wheel(wheels: Path) -> None:
    """Build the face-recognition-models wheel into WHEELS unless one is there; SystemExit when none can be."""
    wheels.mkdir(parents=True, exist_ok=True)
    if any(wheels.glob("face_recognition_models-*.whl")):
        return
    requirement = face_recognition_models_requirement(installed_packages())
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), requirement],
        capture_output=True, text=True,
    )  # fmt: skip
    for line in (build.stdout + build.stderr).splitlines():
        if "is ignored" not in line:
            print(line)
    if not any(wheels.glob("face_recognition_models-*.whl")):
        raise SystemExit(f"could not build a wheel of {requirement} on the host")


def wanted_packages(report: Path) -> set[str] | None:
    """The packages a resolution report installs (canonical names), or None without a readable report."""
    try:
        return {canonical(item["metadata"]["name"]) for item in json.loads(report.read_text(encoding="utf-8"))["install"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pins(installed: list[dict], wanted: set[str] | None) -> list[str]:
    """``name==version`` for each installed package the install wants (all of them when wanted is None)."""
    lines = []
    for package in sorted(installed, key=lambda package: canonical(package["name"])):
        name = canonical(package["name"])
        if name in NEVER_PINNED or (wanted is not None and name not in wanted):
            continue
        lines.append(f"{name}=={package['version']}")
    return lines
