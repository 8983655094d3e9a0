"""ONNX Runtime sessions for every converted model (detector and embedders alike)."""

from __future__ import annotations

from pathlib import Path


def onnx_session(model: Path | bytes, threads: int = 1):
    """An ONNX Runtime CPU session with ``threads`` compute threads and no thread pool beyond them."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
