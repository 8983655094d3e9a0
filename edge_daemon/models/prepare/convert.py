"""Converting a model's source files to the ONNX file the manifest names: each model goes to its
converter (``converters/``), and the result must have the manifest's sha256, so that a converter
or ``onnx`` package other than the recorded one cannot slip a different file in."""

from __future__ import annotations

from pathlib import Path

from edge_daemon.embedders.base import EmbedderError
from edge_daemon.models.files import file_sha256


def _convert_yunet(sources: dict[str, Path], target: Path) -> None:
    from edge_daemon.models.prepare.converters.libfacedetection import convert

    convert(next(iter(sources.values())), target)


def _convert_dlib(sources: dict[str, Path], target: Path) -> None:
    from edge_daemon.models.prepare.converters.dlib_resnet import convert

    convert(next(iter(sources.values())), target)


def _convert_mobilefacenet(sources: dict[str, Path], target: Path) -> None:
    from edge_daemon.models.prepare.converters.tfjs_graph import convert_mobilefacenet

    convert_mobilefacenet(graph_json(sources), target)


def graph_json(sources: dict[str, Path]) -> Path:
    """The graph file of a TensorFlow.js model's sources (the weights are the other file)."""
    return next(path for path in sources.values() if path.suffix == ".json")


CONVERTERS = {"yunet": _convert_yunet, "dlib_resnet": _convert_dlib, "mobilefacenet": _convert_mobilefacenet}


def convert_model(model: str, entry: dict, sources: dict[str, Path], target: Path) -> None:
    """Convert ``model`` (its manifest ``entry``) from ``sources`` into ``target``; a result that is
    not the manifest's file is deleted and an error."""
    CONVERTERS[model](sources, target)
    digest = file_sha256(target)
    if digest != entry["converted"]["sha256"]:
        target.unlink()
        raise EmbedderError(
            f"converting {model} gave a file with sha256 {digest[:16]}…, not the manifest's "
            f"{entry['converted']['sha256'][:16]}…: this converter or the onnx package is not the one recorded"
        )
