"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) as an ONNX graph.

The ``.dat`` file is dlib's ``serialize()`` of the whole network object (``anet_type`` in dlib's
``examples/dnn_face_recognition_ex.cpp``), read here with numpy alone:

* integers: a control byte (low nibble = byte count, 0x80 = negative), then the magnitude,
  little-endian; scalar floats: an int64 mantissa and an int16 exponent in that encoding;
  booleans: one ASCII ``'0'``/``'1'``; strings: a length, then the bytes;
* tensors: version 2, num_samples, k, nr, nc, then raw little-endian float32 values;
  an ``alias_tensor`` (a view into a layer's flat ``params``) stores only version 1 and its shape.

The nesting of the C++ types decides the order: the loss layer (``loss_metric_2``: margin and
distance threshold) first, then every wrapper's version number from the outermost in (2 for a
layer, 1 for a tag or skip, 3 for the layer on the input), then the input layer
(``input_rgb_image_sized``: channel means and size), then each layer's details from the input out,
each followed by three bools and three (empty) working tensors, and for the layer on the input
also a sample-expansion factor (1).

Tags, skips and ``add_prev`` store no tag ids, so the wiring comes from the published architecture
(``FACE_RESNET_ARCHITECTURE``), checked against what the file holds layer by layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge_daemon.models.prepare.converters import ConversionError, save_model

OPSET = 17
IR_VERSION = 8  # the IR version that introduced opset 17; any runtime that runs the opset reads it
INPUT_NAME = "image"
OUTPUT_NAME = "embedding"
# dlib scales the mean-subtracted pixels by 1/256 (input_rgb_image_sized::to_tensor).
PIXEL_SCALE = 256.0
FC_NO_BIAS = 1  # dlib's fc_bias_mode of fc_no_bias


# --- layers, nearest the input first -----------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Conv:
    weights: np.ndarray  # (out_channels, in_channels, kernel_y, kernel_x)
    bias: np.ndarray  # (out_channels,)
    stride: tuple[int, int]  # (y, x)
    padding: tuple[int, int]  # (y, x), zeros on both sides


@dataclass(frozen=True, eq=False)
class Affine:
    """A batch-norm layer folded for inference: ``x * gamma + beta``."""

    gamma: np.ndarray  # shaped to broadcast over NCHW: (1, channels, 1, 1) per channel
    beta: np.ndarray


@dataclass(frozen=True)
class Relu:
    pass


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" or "avg"
    size: tuple[int, int]  # (y, x); 0 means the whole input along that axis
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True, eq=False)
class FullyConnected:
    weights: np.ndarray  # (inputs, outputs): y = x @ weights, no bias


@dataclass(frozen=True)
class Tag:
    """Remembers the output so far under ``id`` and passes it through."""

    id: int


@dataclass(frozen=True)
class Skip:
    """Replaces the output so far with the one remembered under tag ``id``."""

    id: int


@dataclass(frozen=True)
class AddPrev:
    """Adds the output remembered under tag ``tag`` (zero-padding the smaller of the two)."""

    tag: int


Layer = Conv | Affine | Relu | Pool | FullyConnected | Tag | Skip | AddPrev


@dataclass(frozen=True, eq=False)
class DlibResnet:
    input_means: np.ndarray  # float32 (red, green, blue) subtracted from raw pixel values
    input_size: tuple[int, int]  # (rows, columns)
    layers: tuple[Layer, ...]  # nearest the input first
    distance_threshold: float  # dlib's same-person cut-off on the Euclidean distance

    @property
    def parameter_count(self) -> int:
        arrays = []
        for layer in self.layers:
            if isinstance(layer, Conv):
                arrays += [layer.weights, layer.bias]
            elif isinstance(layer, Affine):
                arrays += [layer.gamma, layer.beta]
            elif isinstance(layer, FullyConnected):
                arrays.append(layer.weights)
        return sum(array.size for array in arrays)


# --- the published architecture (dnn_face_recognition_ex.cpp), nearest the input first ---------
# Entries are the details' type names for layers that store them; tags, skips and add_prev carry
# the ids the file leaves out.


def _block() -> list:
    return ["con_4", "affine_", "relu_", "con_4", "affine_"]


def _ares() -> list:
    """relu<add_prev1<block<tag1<SUBNET>>>>"""
    return [Tag(1), *_block(), AddPrev(1), "relu_"]


def _ares_down() -> list:
    """relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<stride 2, tag1<SUBNET>>>>>>>>"""
    return [Tag(1), *_block(), Tag(2), Skip(1), "avg_pool_2", AddPrev(2), "relu_"]


FACE_RESNET_ARCHITECTURE: tuple = (
    "con_4", "affine_", "relu_", "max_pool_2",
    *_ares() * 3,  # alevel4
    *_ares_down(), *_ares() * 3,  # alevel3
    *_ares_down(), *_ares() * 2,  # alevel2
    *_ares_down(), *_ares() * 2,  # alevel1
    *_ares_down(),  # alevel0
    "avg_pool_2",  # avg_pool_everything
    "fc_2",  # fc_no_bias<128>
)  # fmt: skip


# --- reading -----------------------------------------------------------------------------------


class _Reader:
    """dlib's serialisation primitives over the file's bytes; every failure is a ConversionError
    naming the file and the byte offset."""

    def __init__(self, path: Path, data: bytes):
        self.path = path
        self.data = data
        self.pos = 0

    def fail(self, message: str) -> ConversionError:
        return ConversionError(f"{self.path}: {message} (at byte {self.pos} of {len(self.data)})")

    def take(self, count: int, what: str) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise self.fail(f"file ends inside {what}: truncated or not a dlib network")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def integer(self, what: str) -> int:
        control = self.take(1, what)[0]
        size = control & 0x0F
        if control & 0x70 or size > 8:
            raise self.fail(f"bad integer control byte 0x{control:02x} in {what}: corrupt file")
        magnitude = int.from_bytes(self.take(size, what), "little")
        return -magnitude if control & 0x80 else magnitude

    def count(self, what: str) -> int:
        value = self.integer(what)
        if value < 0:
            raise self.fail(f"negative {what} ({value}): corrupt file")
        return value

    def scalar(self, what: str) -> float:
        mantissa, exponent = self.integer(what), self.integer(what)
        try:
            return math.ldexp(mantissa, exponent)
        except OverflowError:
            raise self.fail(f"{what} is not a finite number") from None

    def boolean(self, what: str) -> bool:
        byte = self.take(1, what)
        if byte not in (b"0", b"1"):
            raise self.fail(f"bad boolean {byte!r} in {what}: corrupt file")
        return byte == b"1"

    def string(self, what: str) -> str:
        return self.take(self.count(f"{what} length"), what).decode("latin-1")

    def expect(self, value: int, what: str) -> None:
        found = self.integer(what)
        if found != value:
            raise self.fail(f"{what} is {found}, expected {value}: not a dlib network this reader knows")

    def shape(self, what: str) -> tuple[int, int, int, int]:
        return tuple(self.count(f"{what} dimension") for _ in range(4))

    def tensor(self, what: str) -> np.ndarray:
        self.expect(2, f"{what} version")
        shape = self.shape(what)
        size = math.prod(shape)
        values = np.frombuffer(self.take(4 * size, what), dtype="<f4").astype(np.float32)
        return values.reshape(shape)

    def alias_shape(self, what: str) -> tuple[int, int, int, int]:
        self.expect(1, f"{what} version")
        return self.shape(what)

    def multipliers(self, count: int, what: str) -> None:
        """Learning-rate and weight-decay multipliers: training settings, irrelevant here."""
        for _ in range(count):
            self.scalar(what)


def _read_conv(reader: _Reader) -> Conv:
    params = reader.tensor("con params").ravel()
    filters, rows, columns = (reader.count("con size") for _ in range(3))
    stride = (reader.count("con stride"), reader.count("con stride"))
    padding = (reader.count("con padding"), reader.count("con padding"))
    filters_shape = reader.alias_shape("con filters")
    reader.alias_shape("con biases")
    reader.multipliers(4, "con multipliers")
    weight_count = math.prod(filters_shape)
    if (filters_shape[0], *filters_shape[2:]) != (filters, rows, columns) or params.size != weight_count + filters:
        raise reader.fail(f"con layer's {params.size} parameters do not fit its filters {filters_shape}")
    return Conv(params[:weight_count].reshape(filters_shape), params[weight_count:], stride, padding)


def _read_affine(reader: _Reader) -> Affine:
    params = reader.tensor("affine params").ravel()
    gamma_shape = reader.alias_shape("affine gamma")
    reader.alias_shape("affine beta")
    reader.integer("affine mode")
    # Both modes (per channel, or per element in FC mode) broadcast over NCHW as (1, k, nr, nc).
    size = math.prod(gamma_shape)
    if params.size != 2 * size:
        raise reader.fail(f"affine layer's {params.size} parameters do not fit gamma {gamma_shape}")
    return Affine(params[:size].reshape(gamma_shape), params[size:].reshape(gamma_shape))


def _read_pool(kind: str):
    def read(reader: _Reader) -> Pool:
        rows, columns = reader.count("pool size"), reader.count("pool size")
        stride = (reader.count("pool stride"), reader.count("pool stride"))
        padding = (reader.count("pool padding"), reader.count("pool padding"))
        return Pool(kind, (rows, columns), stride, padding)

    return read


def _read_fc(reader: _Reader) -> FullyConnected:
    outputs, inputs = reader.count("fc outputs"), reader.count("fc inputs")
    params = reader.tensor("fc params").ravel()
    reader.alias_shape("fc weights")
    reader.alias_shape("fc biases")
    bias_mode = reader.integer("fc bias mode")
    reader.multipliers(4, "fc multipliers")
    if bias_mode != FC_NO_BIAS or params.size != inputs * outputs:
        raise reader.fail("fc layer is not the bias-free fc_no_bias of dlib's face ResNet")
    return FullyConnected(params.reshape(inputs, outputs))


_DETAIL_READERS = {
    "con_4": _read_conv,
    "affine_": _read_affine,
    "relu_": lambda reader: Relu(),
    "max_pool_2": _read_pool("max"),
    "avg_pool_2": _read_pool("avg"),
    "fc_2": _read_fc,
}


def _read_details(reader: _Reader, position: int, expected, on_input: bool) -> Layer:
    expected_kind = "add_prev_" if isinstance(expected, AddPrev) else expected
    kind = reader.string(f"layer {position} type")
    if kind != expected_kind:
        raise reader.fail(f"layer {position} is {kind!r}, dlib's face ResNet has {expected_kind!r} there")
    # add_prev stores nothing: its tag id is in the C++ type, so it comes from the architecture.
    layer = expected if isinstance(expected, AddPrev) else _DETAIL_READERS[kind](reader)
    # Training state saved with every layer: three flags and three working tensors.
    for _ in range(3):
        reader.boolean(f"layer {position} flags")
    for _ in range(3):
        reader.tensor(f"layer {position} working tensor")
    if on_input:
        # The version-3 wrapper on the input also records how many tensor samples one input makes.
        reader.expect(1, "sample expansion factor")
    return layer


def _read_wrapper_versions(reader: _Reader) -> list[int]:
    """Versions of the nested wrappers, outermost first, up to and including the one on the input."""
    versions = []
    while not versions or versions[-1] != 3:
        version = reader.integer("layer version")
        if version not in (1, 2, 3):
            raise reader.fail(f"layer version {version}: not a dlib network this reader knows")
        versions.append(version)
    return versions


def _read_layers(reader: _Reader, versions_inner_first: list[int]) -> tuple[Layer, ...]:
    """The architecture's layers with the file's parameters, checking the two agree layer by layer
    (a tag or skip is a version-1 wrapper with no details; every other layer stores details)."""
    if len(versions_inner_first) != len(FACE_RESNET_ARCHITECTURE):
        raise reader.fail(
            f"{len(versions_inner_first)} layers, dlib's face ResNet has {len(FACE_RESNET_ARCHITECTURE)}"
        )
    layers = []
    for position, (version, expected) in enumerate(zip(versions_inner_first, FACE_RESNET_ARCHITECTURE)):
        is_tag_or_skip = isinstance(expected, (Tag, Skip))
        if is_tag_or_skip != (version == 1):
            raise reader.fail(f"layer {position} (version {version}) does not match dlib's face ResNet's {expected}")
        if is_tag_or_skip:
            layers.append(expected)
        else:
            layers.append(_read_details(reader, position, expected, on_input=version == 3))
    return tuple(layers)


def read_dlib_resnet(path: str | Path) -> DlibResnet:
    """The network in dlib's ``dlib_face_recognition_resnet_model_v1.dat``; ConversionError if the
    file is not exactly that (every byte must be accounted for)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConversionError(f"{path}: cannot read: {exc.strerror or exc}") from None
    reader = _Reader(path, data)

    reader.expect(1, "loss layer version")
    if (loss := reader.string("loss type")) != "loss_metric_2":
        raise reader.fail(f"loss is {loss!r}, not dlib's face ResNet's loss_metric_2")
    reader.scalar("loss margin")
    distance_threshold = reader.scalar("loss distance threshold")

    versions = _read_wrapper_versions(reader)
    if (kind := reader.string("input type")) != "input_rgb_image_sized":
        raise reader.fail(f"input is {kind!r}, not dlib's face ResNet's input_rgb_image_sized")
    means = np.array([reader.scalar("input mean") for _ in range(3)], dtype=np.float32)
    input_size = (reader.count("input rows"), reader.count("input columns"))

    layers = _read_layers(reader, versions[::-1])
    if reader.pos != len(data):
        raise reader.fail(f"{len(data) - reader.pos} byte(s) left over after the network")
    return DlibResnet(means, input_size, layers, distance_threshold)


# --- building the ONNX graph -------------------------------------------------------------------


class _GraphBuilder:
    """Emits nodes and weights with names derived from the layer position (stable run to run)
    and tracks each tensor's (channels, rows, columns), which the zero-padded adds need."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.shapes: dict[str, tuple[int, int, int]] = {}

    def constant(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, shape=None, **attributes) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        if shape is not None:
            self.shapes[output] = shape
        return output


def _sliding_window_output(size, kernel, stride, padding) -> tuple[int, int]:
    """dlib's output size for convolutions and pools, 1 + (n + 2 pad - window) // stride: the
    floor rule, which ONNX's Conv and pools also follow by default."""
    return tuple(1 + (n + 2 * p - k) // s for n, k, s, p in zip(size, kernel, stride, padding))


def _window_attributes(kernel, stride, padding) -> dict:
    return {"kernel_shape": list(kernel), "strides": list(stride), "pads": [*padding, *padding]}


def _conv(graph: _GraphBuilder, x: str, layer: Conv, out: str) -> str:
    channels, rows, columns = graph.shapes[x]
    out_channels, in_channels, *kernel = layer.weights.shape
    if in_channels != channels:
        raise ConversionError(f"{out}: filters take {in_channels} channels, the input has {channels}")
    shape = (out_channels, *_sliding_window_output((rows, columns), kernel, layer.stride, layer.padding))
    weights = graph.constant(f"{out}_weights", layer.weights)
    bias = graph.constant(f"{out}_bias", layer.bias)
    return graph.node("Conv", [x, weights, bias], out, shape, **_window_attributes(kernel, layer.stride, layer.padding))


def _affine(graph: _GraphBuilder, x: str, layer: Affine, out: str) -> str:
    scaled = graph.node("Mul", [x, graph.constant(f"{out}_gamma", layer.gamma)], f"{out}_scaled", graph.shapes[x])
    return graph.node("Add", [scaled, graph.constant(f"{out}_beta", layer.beta)], out, graph.shapes[x])


def _pool(graph: _GraphBuilder, x: str, layer: Pool, out: str) -> str:
    channels, rows, columns = graph.shapes[x]
    # A size of 0 is dlib's "whole input" (avg_pool_everything).
    kernel = (layer.size[0] or rows, layer.size[1] or columns)
    shape = (channels, *_sliding_window_output((rows, columns), kernel, layer.stride, layer.padding))
    op = "MaxPool" if layer.kind == "max" else "AveragePool"
    # dlib averages only the in-image part of a window, as ONNX does with count_include_pad=0.
    return graph.node(op, [x], out, shape, **_window_attributes(kernel, layer.stride, layer.padding))


def _zero_pad_to(graph: _GraphBuilder, x: str, shape: tuple[int, int, int], out: str) -> str:
    missing = [target - have for target, have in zip(shape, graph.shapes[x])]
    if not any(missing):
        return x
    pads = graph.constant(f"{out}_pads", np.array([0, 0, 0, 0, 0, *missing], dtype=np.int64))
    return graph.node("Pad", [x, pads], out, shape)


def _add_prev(graph: _GraphBuilder, x: str, tagged: str, out: str) -> str:
    # dlib adds tensors of different shapes by zero-extending both at the far end of every axis
    # (more channels on the block than on the shortcut; 3x3 vs 4x4 and 1x1 vs 2x2 where the stride-2
    # convolution and the 2x2 average pool round odd sizes differently).
    shape = tuple(max(a, b) for a, b in zip(graph.shapes[x], graph.shapes[tagged]))
    left = _zero_pad_to(graph, x, shape, f"{out}_padded_block")
    right = _zero_pad_to(graph, tagged, shape, f"{out}_padded_shortcut")
    return graph.node("Add", [left, right], out, shape)


def _fully_connected(graph: _GraphBuilder, x: str, layer: FullyConnected, out: str) -> str:
    # dlib flattens each sample in (channel, row, column) order, as Flatten does on NCHW.
    flat = graph.node("Flatten", [x], f"{out}_flat", axis=1)
    return graph.node("MatMul", [flat, graph.constant(f"{out}_weights", layer.weights)], out)


def _input_nodes(graph: _GraphBuilder, net: DlibResnet) -> str:
    rows, columns = net.input_size
    nchw = graph.node("Transpose", [INPUT_NAME], "input_nchw", (3, rows, columns), perm=[0, 3, 1, 2])
    means = graph.constant("input_means", net.input_means.reshape(1, 3, 1, 1))
    centred = graph.node("Sub", [nchw, means], "input_centred", (3, rows, columns))
    scale = graph.constant("input_scale", np.array(PIXEL_SCALE, dtype=np.float32))
    return graph.node("Div", [centred, scale], "input_scaled", (3, rows, columns))


def _layer_nodes(graph: _GraphBuilder, net: DlibResnet, x: str) -> None:
    tagged: dict[int, str] = {}
    last = len(net.layers) - 1
    for position, layer in enumerate(net.layers):
        out = OUTPUT_NAME if position == last else f"layer{position:03d}_{type(layer).__name__.lower()}"
        if isinstance(layer, Tag):
            tagged[layer.id] = x
        elif isinstance(layer, Skip):
            x = tagged[layer.id]
        elif isinstance(layer, AddPrev):
            x = _add_prev(graph, x, tagged[layer.tag], out)
        elif isinstance(layer, Conv):
            x = _conv(graph, x, layer, out)
        elif isinstance(layer, Affine):
            x = _affine(graph, x, layer, out)
        elif isinstance(layer, Relu):
            x = graph.node("Relu", [x], out, graph.shapes[x])
        elif isinstance(layer, Pool):
            x = _pool(graph, x, layer, out)
        elif isinstance(layer, FullyConnected):
            x = _fully_connected(graph, x, layer, out)


def build_onnx(net: DlibResnet) -> onnx.ModelProto:
    """The network as an ONNX model: ``image`` float32 [N, rows, columns, 3], RGB, raw 0..255 pixel
    values -> ``embedding`` float32 [N, 128], dlib's descriptor as is (not L2-normalised)."""
    graph = _GraphBuilder()
    _layer_nodes(graph, net, _input_nodes(graph, net))
    rows, columns = net.input_size
    outputs = net.layers[-1].weights.shape[1]
    model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            "dlib_face_recognition_resnet_model_v1",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", rows, columns, 3])],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", outputs])],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="edge-daemon",
        # The doc string is part of the converted file, so of the sha256 the manifest records: it stays
        # byte for byte as it was then, naming the converter's module path of that time.
        doc_string=(
            "dlib_face_recognition_resnet_model_v1 converted by edge_daemon.converters.dlib_resnet. "
            f"Input: RGB {rows}x{columns} face chips from dlib's get_face_chip, raw pixel values. "
            f"dlib's same-person Euclidean distance threshold: {net.distance_threshold:g}."
        ),
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def convert(dat_path: str | Path, onnx_path: str | Path) -> None:
    """Convert dlib's ``.dat`` to an ONNX file, atomically."""
    save_model(build_onnx(read_dlib_resnet(dat_path)), onnx_path)
