"""int8 copies of converted models: static QDQ quantisation (ONNX Runtime's quantiser), with
per-channel int8 weights and uint8 activations whose ranges were measured once on training faces.

The ranges are package data (``edge_daemon/models/int8/<model>.ranges.json``), made by
``python -m edge_daemon.models.prepare.calibrate_int8`` from faces outside every evaluation set, so
``models prepare`` makes the same int8 file on any box without those faces: quantising is then a
deterministic function of the float model and the ranges. What stays float32: the layers from the
input up to and including the first convolution (they see raw pixels, whose int8 rounding no later
layer can undo) and the final projection to the embedding (its error is the embedding's error). The
check of the result is ``verify.record_int8_check``; docs/guide/models.md#int8.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx

from edge_daemon.models.files import file_sha256

RANGES_FORMAT = "edge-daemon-int8-ranges/1"
INPUT_NAME = "image"


class QuantisationError(RuntimeError):
    """An int8 file cannot be made (ranges missing, damaged or for another float model)."""


def float_layers(graph: onnx.GraphProto) -> list[str]:
    """The nodes kept in float32: every node up to and including the first Conv, and each MatMul or
    Gemm after the last Conv (the projection to the embedding)."""
    nodes = list(graph.node)
    convs = [index for index, node in enumerate(nodes) if node.op_type == "Conv"]
    if not convs:
        raise QuantisationError("the graph has no convolution: not a model this quantiser is for")
    head = [node.name for node in nodes[: convs[0] + 1]]
    tail = [node.name for node in nodes[convs[-1] + 1:] if node.op_type in ("MatMul", "Gemm")]
    if any(not name for name in head + tail):
        raise QuantisationError("the graph has unnamed nodes; the converters name every node")
    return head + tail


def activation_ranges(float_model: Path, batches: Iterable[np.ndarray]) -> dict[str, list[float]]:
    """The smallest and largest value of every tensor over ``batches`` of model inputs (MinMax)."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter(batches)

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)}

    with tempfile.TemporaryDirectory() as scratch:
        calibrator = create_calibrator(
            Path(float_model), None, augmented_model_path=str(Path(scratch) / "augmented.onnx"),
            calibrate_method=CalibrationMethod.MinMax,
        )
        calibrator.collect_data(Reader())
        data = calibrator.compute_data()
    return {name: [float(np.asarray(value).reshape(-1)[0]) for value in tensor.range_value] for name, tensor in data.data.items()}


def write_ranges(path: Path, float_model: Path, ranges: dict[str, list[float]], calibration: dict) -> None:
    """The ranges file: ranges by tensor, the float model's sha256, and what they were measured on."""
    document = {"format": RANGES_FORMAT, "float_sha256": file_sha256(float_model), "calibration": calibration, "ranges": ranges}
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def read_ranges(path: Path, float_sha256: str) -> dict[str, list[float]]:
    """The ranges for the float model with ``float_sha256``; anything else is a ``QuantisationError``."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        ranges = document["ranges"]
        valid = document["format"] == RANGES_FORMAT and all(
            len(value) == 2 and all(isinstance(v, (int, float)) and np.isfinite(v) for v in value) and value[0] <= value[1]
            for value in ranges.values()
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise QuantisationError(f"cannot read the int8 ranges {path}: {exc}") from None
    if not valid:
        raise QuantisationError(f"the int8 ranges {path} are not {RANGES_FORMAT} ranges")
    if document["float_sha256"] != float_sha256:
        raise QuantisationError(f"the int8 ranges {path} were measured on another float model than the manifest's")
    return ranges


def quantize(float_model: Path, ranges: dict[str, list[float]], target: Path) -> None:
    """Write the int8 QDQ copy of ``float_model`` to ``target`` (atomically)."""
    from onnxruntime.quantization import CalibrationMethod, QuantType
    from onnxruntime.quantization.calibrate import TensorsData
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer
    from onnxruntime.quantization.registry import QDQRegistry

    model = load_model_with_shape_infer(Path(float_model))
    missing = [name for node in model.graph.node for name in node.output if name and name not in ranges]
    if missing:
        raise QuantisationError(f"the int8 ranges lack {len(missing)} tensors of the model (e.g. {missing[0]!r}): measure them again")
    tensors = TensorsData(CalibrationMethod.MinMax, {name: (np.float32(low), np.float32(high)) for name, (low, high) in ranges.items()})
    # the arguments quantize_static passes for QDQ; called directly, since the ranges are measured already
    quantizer = QDQQuantizer(
        model, True, False, QuantType.QInt8, QuantType.QUInt8, tensors, [], float_layers(model.graph), list(QDQRegistry), {}
    )
    quantizer.quantize_model()
    temporary = target.with_name(f".{target.name}.tmp")
    quantizer.model.save_model_to_file(str(temporary))
    temporary.replace(target)
