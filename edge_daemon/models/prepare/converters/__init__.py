"""Converters from other frameworks' model files to ONNX graphs that ONNX Runtime runs."""


class ConversionError(ValueError):
    """A model file that cannot be converted (truncated, corrupt, or not the expected model);
    the message names the file and says what was wrong."""


def save_model(model, onnx_path) -> None:
    """Write an ``onnx.ModelProto`` atomically: a reader never sees half a file. A plain open, not
    mkstemp: mkstemp's 0600 mode would survive the rename and hide the model from a daemon that
    runs as another user."""
    import os
    from pathlib import Path

    onnx_path = Path(onnx_path)
    temporary = onnx_path.with_name(f".{onnx_path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(model.SerializeToString())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, onnx_path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
