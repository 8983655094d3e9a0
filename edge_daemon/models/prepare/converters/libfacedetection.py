"""YuNet as libfacedetection compiles it (the ``yuface`` wheel's ``libfacedetection.so``), rebuilt
as an ONNX graph from the weights in that shared library.

libfacedetection (BSD-3-Clause) keeps its 53 convolution layers as exported float arrays named
after the PyTorch modules they came from (``backbone__model0_pw_weight``, ...). They are read from
the library's dynamic symbol table with numpy alone, so the library is never loaded and any
machine can read an x86_64 build. The wiring follows ``objectdetect_cnn`` in libfacedetection's
``facedetectcnn-model.cpp`` (version 0.0.3, unchanged since 2022-09):

* the image, BGR 0..255 as given, zero-padded to a multiple of 32, goes through a 3x3 stride-2
  convolution (stored as a 1x1 over 3x3x3 patches packed into 32 channels) and a ReLU;
* a "DP" unit is a 1x1 pointwise convolution, then a 3x3 depthwise one, then a ReLU (none in the
  heads); ``model1`` to ``model5`` are two DP units each, with 2x2 max pools before ``model1``,
  ``model3``, ``model4`` and ``model5``;
* the neck adds each level's upsampled (nearest, x2) coarser level, stride 32 first, each through
  its lateral DP unit; the heads give class, objectness, box and 5-landmark maps at strides 8,
  16 and 32.

Pointwise weights are stored as [filters][channels], depthwise ones as [3x3 position][channels].
Decoding (grid priors, exp sizes, sqrt(class x objectness)) and NMS are the detector's
(``edge_daemon.detectors.yunet``), as in libfacedetection's ``detection_output``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge_daemon.detectors.yunet import HEADS, INPUT_NAME, STRIDES
from edge_daemon.models.prepare.converters import ConversionError, save_model

OPSET = 17
IR_VERSION = 8
# objectdetect_cnn's DP units (weight prefixes) per backbone stage, input side first; each ends in a ReLU.
BACKBONE_UNITS = [
    ["backbone__model0_dp"],
    ["backbone__model1_dp1", "backbone__model1_dp2"],
    ["backbone__model2_dp1", "backbone__model2_dp2"],
    ["backbone__model3_dp1", "backbone__model3_dp2"],
    ["backbone__model4_dp1", "backbone__model4_dp2"],
    ["backbone__model5_dp1", "backbone__model5_dp2"],
]
POOL_BEFORE = {1, 3, 4, 5}  # backbone stages that a 2x2 stride-2 max pool precedes
LEVEL_STAGES = (3, 4, 5)  # the stages whose outputs feed the strides 8, 16, 32


# --- the weights, from the ELF dynamic symbol table ---------------------------------------------

_SHT_NOBITS = 8
_SHT_DYNSYM = 11
_STT_OBJECT = 1


def read_symbols(path: str | Path) -> dict[str, np.ndarray]:
    """Every exported float array of a little-endian ELF64 shared library, by symbol name."""
    path = Path(path)
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ConversionError(f"{path} is not a little-endian 64-bit ELF shared library")
    try:
        return _exported_arrays(data, path)
    except (struct.error, IndexError, ValueError) as exc:  # offsets pointing past the end
        raise ConversionError(f"{path} is truncated or corrupt: {exc}") from None


def _exported_arrays(data: bytes, path: Path) -> dict[str, np.ndarray]:
    section_offset, = struct.unpack_from("<Q", data, 0x28)
    entry_size, count = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, section_offset + i * entry_size) for i in range(count)]
    dynsym = next((s for s in sections if s[1] == _SHT_DYNSYM), None)
    if dynsym is None:
        raise ConversionError(f"{path} has no dynamic symbol table")
    strings = sections[dynsym[6]]
    arrays = {}
    for offset in range(dynsym[4], dynsym[4] + dynsym[5], 24):
        name_at, info, _, section, value, size = struct.unpack_from("<IBBHQQ", data, offset)
        if info & 0xF != _STT_OBJECT or not 0 < section < len(sections) or size % 4:
            continue
        kind, address, file_offset = sections[section][1], sections[section][3], sections[section][4]
        if kind == _SHT_NOBITS:  # .bss: nothing stored in the file
            continue
        end = data.index(b"\0", strings[4] + name_at)
        name = data[strings[4] + name_at:end].decode("ascii", "replace")
        start = file_offset + value - address
        arrays[name] = np.frombuffer(data, dtype="<f4", count=size // 4, offset=start).copy()
    return arrays


def read_yunet(path: str | Path) -> dict[str, np.ndarray]:
    """YuNet's convolutions from ``libfacedetection.so`` as ONNX-shaped weights: ``<unit>_pw``
    [out, in, 1, 1], ``<unit>_dw`` [channels, 1, 3, 3], and ``head`` [16, 3, 3, 3], with biases."""
    symbols = read_symbols(path)
    weights: dict[str, np.ndarray] = {}

    def take(name: str) -> np.ndarray:
        if name not in symbols:
            raise ConversionError(f"{path} has no {name}: not libfacedetection 0.0.3's YuNet")
        return symbols[name]

    def unit(prefix: str, channels: int) -> int:
        pw_bias = take(f"{prefix}_pw_bias")
        filters = pw_bias.size
        pw = take(f"{prefix}_pw_weight")
        dw, dw_bias = take(f"{prefix}_dw_weight"), take(f"{prefix}_dw_bias")
        if pw.size != filters * channels or dw.size != 9 * filters or dw_bias.size != filters:
            raise ConversionError(f"{path}: {prefix} has sizes {pw.size}, {dw.size}, {dw_bias.size} for {channels} -> {filters}")
        weights[f"{prefix}_pw"] = pw.reshape(filters, channels, 1, 1)
        weights[f"{prefix}_pw_bias"] = pw_bias
        weights[f"{prefix}_dw"] = dw.reshape(9, filters).T.reshape(filters, 1, 3, 3)
        weights[f"{prefix}_dw_bias"] = dw_bias
        return filters

    head, head_bias = take("backbone__model0_pw_weight"), take("backbone__model0_pw_bias")
    if head.size != head_bias.size * 32:
        raise ConversionError(f"{path}: the first convolution has {head.size} weights, not {head_bias.size} x 32")
    # 32 packed channels: (3x3 position) x (B, G, R), then 5 unused.
    packed = head.reshape(head_bias.size, 32)[:, :27].reshape(head_bias.size, 3, 3, 3)
    weights["head"] = packed.transpose(0, 3, 1, 2)
    weights["head_bias"] = head_bias
    channels = head_bias.size
    for stage in BACKBONE_UNITS:
        for prefix in stage:
            channels = unit(prefix, channels)
    for level in range(3):
        unit(f"neck__lateral_convs__{level}", channels)
        for head_name, size in HEADS.items():
            if unit(f"bbox_head__multi_level_{head_name}__{level}", channels) != size:
                raise ConversionError(f"{path}: head {head_name} at level {level} does not give {size} maps")
    return weights


# --- the graph -----------------------------------------------------------------------------------


class _Graph:
    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def constant(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def conv(self, x: str, key: str, out: str, depthwise: bool) -> str:
        weight = self.weights[key]
        inputs = [x, self.constant(key, weight), self.constant(f"{key}_bias", self.weights[f"{key}_bias"])]
        if depthwise:
            return self.node("Conv", inputs, out, kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=weight.shape[0])
        return self.node("Conv", inputs, out, kernel_shape=[1, 1])

    def dp(self, x: str, prefix: str, relu: bool, out: str | None = None) -> str:
        x = self.conv(x, f"{prefix}_pw", f"{prefix}_p", depthwise=False)
        if not relu:
            return self.conv(x, f"{prefix}_dw", out or f"{prefix}_d", depthwise=True)
        x = self.conv(x, f"{prefix}_dw", f"{prefix}_d", depthwise=True)
        return self.node("Relu", [x], out or f"{prefix}_relu")


def build_onnx(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """``image`` float32 [1, H, W, 3], BGR 0..255, H and W multiples of 32 -> the raw head maps that
    ``edge_daemon.detectors.yunet.output_names()`` lists, each [1, C, H / stride, W / stride]."""
    graph = _Graph(weights)
    x = graph.node("Transpose", [INPUT_NAME], "nchw", perm=[0, 3, 1, 2])
    x = graph.node(
        "Conv", [x, graph.constant("head", weights["head"]), graph.constant("head_bias", weights["head_bias"])],
        "head_conv", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
    )
    x = graph.node("Relu", [x], "head_relu")
    levels = []
    for index, stage in enumerate(BACKBONE_UNITS):
        if index in POOL_BEFORE:
            x = graph.node("MaxPool", [x], f"pool{index}", kernel_shape=[2, 2], strides=[2, 2])
        for prefix in stage:
            x = graph.dp(x, prefix, relu=True)
        if index in LEVEL_STAGES:
            levels.append(x)
    coarser = None
    for level in (2, 1, 0):
        x = levels[level]
        if coarser is not None:
            scales = graph.constant(f"upsample_scales_{level}", np.array([1, 1, 2, 2], dtype=np.float32))
            up = graph.node("Resize", [coarser, "", scales], f"upsample_{level}", mode="nearest")
            x = graph.node("Add", [up, x], f"fuse_{level}")
        coarser = graph.dp(x, f"neck__lateral_convs__{level}", relu=True)
        for head in HEADS:
            graph.dp(coarser, f"bbox_head__multi_level_{head}__{level}", relu=False, out=f"{head}_{STRIDES[level]}")
    model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            "yunet_libfacedetection_0.0.3",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, "H", "W", 3])],
            [
                helper.make_tensor_value_info(f"{head}_{stride}", TensorProto.FLOAT, [1, size, f"H/{stride}", f"W/{stride}"])
                for stride in STRIDES
                for head, size in HEADS.items()
            ],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="edge-daemon",
        # The doc string is part of the converted file, so of the sha256 the manifest records: it stays
        # byte for byte as it was then, naming the converter's module path of that time.
        doc_string="YuNet from libfacedetection 0.0.3 (the yuface wheel), converted by edge_daemon.converters.libfacedetection. "
        "Input: BGR 0..255 pixels, zero-padded to multiples of 32.",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def convert(library: str | Path, onnx_path: str | Path) -> None:
    """``libfacedetection.so`` -> YuNet as an ONNX file, atomically."""
    save_model(build_onnx(read_yunet(library)), onnx_path)
