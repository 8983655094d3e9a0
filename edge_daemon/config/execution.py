"""Where a section's ONNX models run: the fields the detector and embedder sections both have."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

ProviderName = Literal["cpu", "openvino"]
# OpenVINO's device names: CPU, GPU (GPU.0, GPU.1 ...), NPU, or AUTO / HETERO / MULTI over a list.
OPENVINO_DEVICE_PATTERN = r"^(CPU|NPU|GPU(\.\d+)?|(AUTO|HETERO|MULTI)(:[A-Z0-9.]+(,[A-Z0-9.]+)*)?)$"


def provider_field():
    return Field(
        "cpu",
        title="Execution provider",
        description="'cpu': ONNX Runtime's own kernels (the default, every box). 'openvino': OpenVINO's execution "
        "provider on openvino_device (Intel CPUs, iGPUs and NPUs; needs the onnxruntime-openvino package in place "
        "of onnxruntime). Where OpenVINO cannot be had, the model runs on 'cpu' and the log says why. Which is "
        "faster depends on the model and the box: docs/guide/models.md#execution-providers.",
    )


def openvino_device_field():
    return Field(
        "CPU",
        pattern=OPENVINO_DEVICE_PATTERN,
        title="OpenVINO device",
        description="With provider 'openvino': 'CPU', 'GPU' (an Intel iGPU; 'GPU.1' for a second), 'NPU', or "
        "'AUTO:GPU,CPU' to let OpenVINO choose.",
    )
