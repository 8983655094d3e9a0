"""ONNX Runtime sessions for every converted model (detector and embedders alike), on the CPU or,
where the box has one and the configuration asks, on OpenVINO's execution provider (Intel CPUs,
iGPUs and NPUs).

OpenVINO comes with the ``onnxruntime-openvino`` package, which installs the same ``onnxruntime``
module as the plain package, in its place. A session that asks for OpenVINO and cannot have it
(that package is not installed, the device is not there, the provider refuses the graph) runs on
the CPU provider instead, and says so in one log line with the reason: never a silent fall back.
docs/guide/models.md#execution-providers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_daemon.logs import get_logger

log = get_logger(__name__)

OPENVINO = "OpenVINOExecutionProvider"
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class Provider:
    """Where a model runs: ``cpu`` (ONNX Runtime's own kernels) or ``openvino`` on ``device``
    (OpenVINO's names: CPU, GPU, GPU.1, NPU, AUTO:GPU,CPU ...)."""

    name: str = "cpu"
    device: str = "CPU"


ON_CPU = Provider()


def configured_provider(section) -> Provider:
    """The provider a detector or embedder section asks for (its ``provider`` and ``openvino_device``)."""
    return Provider(section.provider, section.openvino_device)


def _options(threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return options


def onnx_session(model: Path | bytes, threads: int = 1, provider: Provider = ON_CPU, label: str = "model"):
    """An ONNX Runtime session with ``threads`` compute threads and no thread pool beyond them, on
    ``provider`` when it can be had, else on the CPU provider (logged once, with the reason).
    ``label`` names the model in that log line."""
    import onnxruntime

    source = model if isinstance(model, bytes) else str(model)
    if provider.name == "openvino":
        session, reason = _openvino_session(source, threads, provider.device)
        if session is not None:
            log.info("model runs on OpenVINO", model=label, device=provider.device)
            return session
        log.warning("OpenVINO not used: the model runs on the CPU provider", model=label, device=provider.device, reason=reason)
    elif provider.name != "cpu":
        raise ValueError(f"unknown execution provider {provider.name!r}: 'cpu' or 'openvino'")
    return onnxruntime.InferenceSession(source, _options(threads), providers=[CPU])


def _openvino_session(source: str | bytes, threads: int, device: str):
    """(session, None) on OpenVINO, or (None, why not)."""
    import onnxruntime

    if OPENVINO not in onnxruntime.get_available_providers():
        return None, (
            f"this onnxruntime ({onnxruntime.__version__}) has no OpenVINO execution provider: replace it with "
            "onnxruntime-openvino (pip uninstall -y onnxruntime && pip install onnxruntime-openvino)"
        )
    missing = _missing_devices(device)
    if missing:
        return None, f"OpenVINO has no {', '.join(missing)} device on this box (it has: {', '.join(_openvino_devices())})"
    try:
        session = onnxruntime.InferenceSession(
            source, _options(threads), providers=[(OPENVINO, {"device_type": device, "num_of_threads": str(threads)}), CPU]
        )
    except Exception as exc:  # the provider raises its own types (no device, unsupported graph)
        return None, f"OpenVINO refused it: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
    if OPENVINO not in session.get_providers():
        return None, f"ONNX Runtime did not register OpenVINO for it (providers: {', '.join(session.get_providers())})"
    return session, None


def _openvino_devices() -> list[str]:
    """The devices OpenVINO finds on this box (CPU, GPU, GPU.1, NPU ...)."""
    from onnxruntime.capi import _pybind_state

    return list(_pybind_state.get_available_openvino_device_ids())


def _missing_devices(device: str) -> list[str]:
    """The devices ``device`` names (one, or AUTO/HETERO/MULTI's list) that OpenVINO does not have here
    (OpenVINO refuses a list naming a device it does not have, AUTO's too)."""
    kind, _, listed = device.partition(":")
    names = listed.split(",") if listed else ([] if kind in ("AUTO", "HETERO", "MULTI") else [kind])
    available = _openvino_devices()
    return [name for name in names if not any(have == name or have.startswith(f"{name}.") for have in available)]
