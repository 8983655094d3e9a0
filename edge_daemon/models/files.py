"""Where converted face models are kept and which of them may be used: the manifest, the model
directories, and a converted file's sha256 and recorded check. It sits low in the package, so the
detectors and embedders that load a model find it here; ``models.prepare`` (above them) fetches,
converts and verifies models, and may itself use a detector to do so.

The manifest, ``manifest.json`` beside this module, is package data. Converted models and their
downloaded sources never go inside the package: they live in a model directory. A directory given
explicitly (``--cache DIR`` of ``edge-daemon models prepare`` and ``models list``, ``model_cache`` of
the detector and embedder settings) is the only one used. Otherwise these are searched in order for
a verified file, and ``models prepare`` writes to the first:

1. ``$CACHE_DIRECTORY/models`` under systemd (``CacheDirectory=``);
2. the checkout's ``models/`` when the code runs from a development checkout (a ``pyproject.toml``
   beside the ``edge_daemon`` package, as with an editable install or ``PYTHONPATH``) and this user
   may write there;
3. ``$XDG_CACHE_HOME/edge-daemon/models`` (``~/.cache/edge-daemon/models`` without XDG_CACHE_HOME):
   the place for an installed package (``pip install edge-daemon``);
4. the checkout's ``models/`` that this user may not write (prepared there by root), read only.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from edge_daemon.logs import get_logger

log = get_logger(__name__)

MANIFEST_FILE = Path(__file__).with_name("manifest.json")
# the activation ranges int8 copies are quantised with (package data, like the manifest)
INT8_RANGES_DIRECTORY = Path(__file__).with_name("int8")


def _checkout_models() -> Path | None:
    """The ``models/`` of the development checkout this code runs from (None for an installed package)."""
    root = Path(__file__).resolve().parents[2]
    return root / "models" if (root / "pyproject.toml").is_file() else None


CHECKOUT_MODELS = _checkout_models()


class ModelFileError(RuntimeError):
    """The model manifest cannot be read."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(path: Path = MANIFEST_FILE) -> dict:
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
        models = manifest["models"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"cannot read the model manifest {path}: {exc}") from None
    return models


def _may_write(directory: Path) -> bool:
    """Whether this user may write ``directory``, or create it (a fresh checkout has no models/ yet)."""
    return os.access(directory if directory.exists() else directory.parent, os.W_OK)


def default_directories() -> list[Path]:
    """Where converted models are looked for, the first being where new ones are written."""
    directories = []
    if os.environ.get("CACHE_DIRECTORY"):  # systemd's CacheDirectory=
        directories.append(Path(os.environ["CACHE_DIRECTORY"].split(":")[0]) / "models")
    if CHECKOUT_MODELS is not None and _may_write(CHECKOUT_MODELS):
        directories.append(CHECKOUT_MODELS)
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    directories.append(xdg / "edge-daemon" / "models")
    if CHECKOUT_MODELS is not None and CHECKOUT_MODELS not in directories:
        directories.append(CHECKOUT_MODELS)  # read-only install: files prepared there by root
    return directories


def read_check(converted: Path) -> dict:
    """The verification recorded beside a converted file ({} if there is none)."""
    try:
        return json.loads(converted.with_suffix(".check.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def find_converted(model: str, entry: dict, directories: list[Path]) -> Path | None:
    """The first converted file of ``model`` in ``directories`` with the manifest ``entry``'s hash
    and a passed check for exactly that file, or None."""
    for directory in directories:
        candidate = Path(directory) / entry["converted"]["file"]
        if not candidate.is_file():
            continue
        digest = file_sha256(candidate)
        if digest != entry["converted"]["sha256"]:
            log.warning("converted model does not match the manifest: not used", model=model, file=str(candidate))
            continue
        check = read_check(candidate)
        if check.get("passed") and check.get("sha256") == digest:
            return candidate
    return None


def int8_ranges_file(entry: dict) -> Path:
    """The activation ranges a model's int8 copy is quantised with."""
    return INT8_RANGES_DIRECTORY / entry["int8"]["ranges"]


def find_int8(model: str, entry: dict, directories: list[Path]) -> Path | None:
    """The first int8 copy of ``model`` in ``directories`` whose recorded check passed for exactly
    that file, made from the manifest's float model with the package's ranges, or None."""
    try:
        ranges_sha256 = file_sha256(int8_ranges_file(entry))
    except OSError:
        return None
    for directory in directories:
        candidate = Path(directory) / entry["int8"]["file"]
        if not candidate.is_file():
            continue
        check = read_check(candidate)
        if (
            check.get("passed")
            and check.get("sha256") == file_sha256(candidate)
            and check.get("float_sha256") == entry["converted"]["sha256"]
            and check.get("ranges_sha256") == ranges_sha256
        ):
            return candidate
        log.warning("int8 model does not match its check, its float model or its ranges: not used", model=model, file=str(candidate))
    return None


def prepared_model(model: str, cache: Path | None, precision: str = "float32") -> Path:
    """The verified converted file of ``model`` (its int8 copy for ``precision`` "int8") from
    ``cache`` (or the default directories). Never converted here: a model that is not prepared is a
    ``ModelFileError`` naming the command that prepares it."""
    directories = [Path(cache)] if cache is not None else default_directories()
    try:
        entry = read_manifest()[model]
    except KeyError:
        raise ModelFileError(f"no {model} model in the model manifest {MANIFEST_FILE}") from None
    if precision == "int8":
        if "int8" not in entry:
            raise ModelFileError(f"the manifest has no int8 copy of {model}")
        path = find_int8(model, entry, directories)
    else:
        path = find_converted(model, entry, directories)
    if path is None:
        raise ModelFileError(
            f"the {model}{' int8' if precision == 'int8' else ''} model is not prepared in {', '.join(str(d) for d in directories)}: "
            "run 'edge-daemon models prepare'"
        )
    return path
