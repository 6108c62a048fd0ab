"""[onnx] Count a graph's floating-point work at a given input size: 2 × multiply-accumulates.

Counted: Conv, ConvTranspose, MatMul, Gemm, and their quantized forms (ConvInteger, QLinearConv,
MatMulInteger, QLinearMatMul) so an int8 graph counts the same work as its fp32 parent. Everything
else (normalisations, activations, bias adds, softmax) is left out: on Lotus-D it is a few percent, and
leaving it out makes "achieved GFLOP/s" comparable with a matrix-multiply rate.

Shapes come from ONNX shape inference after the graph's dynamic input dims are fixed to the asked
size. Only the graph structure is read (``load_external_data=False``), so a 3.8 GB model costs
megabytes. When ONNX's own inference leaves a needed shape unknown, ONNX Runtime's symbolic shape
inference is tried; nodes whose shapes stay unknown are reported, not guessed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.deps import require

CONV_OPS = {"Conv", "ConvInteger", "QLinearConv"}
MATMUL_OPS = {"MatMul", "MatMulInteger", "QLinearMatMul"}
COUNTED_OPS = CONV_OPS | MATMUL_OPS | {"ConvTranspose", "Gemm"}


@dataclass
class FlopCount:
    """FLOPs (2 × MACs) of one graph at one input shape."""

    flops: int
    by_op: dict[str, int] = field(default_factory=dict)
    nodes: int = 0
    unknown: list[str] = field(default_factory=list)  # counted ops whose shapes could not be inferred

    @property
    def macs(self) -> int:
        return self.flops // 2

    def to_json(self) -> dict[str, Any]:
        return {"flops": self.flops, "macs": self.macs, "by_op": dict(self.by_op), "nodes": self.nodes, "unknown_nodes": list(self.unknown)}


def _dims(value_info: Any) -> list[int] | None:
    """Concrete dims of a value (None when any dim is symbolic or unknown)."""
    tensor = value_info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    dims = []
    for dim in tensor.shape.dim:
        if not dim.HasField("dim_value"):
            return None
        dims.append(int(dim.dim_value))
    return dims


def _fix_inputs(model: Any, shapes: dict[str, Sequence[int]]) -> None:
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    for value in inputs:
        if value.name not in shapes:
            raise ValueError(f"no shape given for graph input {value.name!r} (inputs: {[i.name for i in inputs]})")
        dims = value.type.tensor_type.shape.dim
        wanted = list(shapes[value.name])
        if len(dims) != len(wanted):
            raise ValueError(f"input {value.name!r} has rank {len(dims)}, shape {wanted} given")
        for dim, size in zip(dims, wanted, strict=True):
            dim.ClearField("dim_param")
            dim.dim_value = int(size)


def _shape_table(model: Any) -> dict[str, list[int] | None]:
    table: dict[str, list[int] | None] = {}
    for value in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        table[value.name] = _dims(value)
    for init in model.graph.initializer:
        table[init.name] = [int(d) for d in init.dims]
    return table


def _infer(model: Any) -> Any:
    onnx = require("onnx")
    return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)


def _infer_symbolic(model: Any) -> Any | None:
    """ONNX Runtime's symbolic shape inference (better at Reshape chains); None if unavailable."""
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    except Exception:  # noqa: BLE001 - optional helper; any import problem means "not available"
        return None
    onnx = require("onnx")
    # It reads every initializer's data; weights left on disk become graph inputs of the same shape.
    work = onnx.ModelProto()
    work.CopyFrom(model)
    inline = []
    for init in work.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            work.graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
        else:
            inline.append(init)
    del work.graph.initializer[:]
    work.graph.initializer.extend(inline)
    try:
        return SymbolicShapeInference.infer_shapes(work, auto_merge=True, guess_output_rank=False)
    except Exception:  # noqa: BLE001 - it raises plain Exceptions on graphs it cannot handle
        return None


def node_macs(node: Any, shape: dict[str, list[int] | None], consts: dict[str, list[int]]) -> int | None:
    """MACs of one counted node, or None when a needed shape is unknown."""
    op = node.op_type

    def get(index: int) -> list[int] | None:
        if index >= len(node.input) or not node.input[index]:
            return None
        name = node.input[index]
        return shape.get(name) if shape.get(name) is not None else consts.get(name)

    out = shape.get(node.output[0])
    if op in CONV_OPS:
        weight = get(3 if op == "QLinearConv" else 1)
        if out is None or weight is None:
            return None
        return math.prod(out) * math.prod(weight[1:])  # each output: Cin/group × kernel MACs
    if op == "ConvTranspose":
        x, weight = get(0), get(1)
        if x is None or weight is None:
            return None
        return math.prod(x) * math.prod(weight[1:])  # each input element scatters into Cout/group × kernel
    if op in MATMUL_OPS:
        a = get(0)
        if out is None or a is None:
            return None
        return math.prod(out) * (a[-1] if a else 1)
    if op == "Gemm":
        a = get(0)
        if out is None or a is None or len(a) != 2:
            return None
        trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
        return math.prod(out) * (a[0] if trans_a else a[1])
    return 0


def _count(model: Any) -> FlopCount:
    consts = {init.name: [int(d) for d in init.dims] for init in model.graph.initializer}
    for node in model.graph.node:  # weights held as Constant nodes
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    consts[node.output[0]] = [int(d) for d in attr.t.dims]
    table = _shape_table(model)
    result = FlopCount(flops=0)
    for node in model.graph.node:
        if node.op_type not in COUNTED_OPS:
            continue
        result.nodes += 1
        macs = node_macs(node, table, consts)
        if macs is None:
            result.unknown.append(node.name or node.output[0])
            continue
        result.flops += 2 * macs
        result.by_op[node.op_type] = result.by_op.get(node.op_type, 0) + 2 * macs
    return result


def count_flops(model_or_path: Any, input_shapes: dict[str, Sequence[int]] | Sequence[int]) -> FlopCount:
    """FLOPs (2 × MACs of Conv/ConvTranspose/MatMul/Gemm) of a graph at the given input shape(s).

    ``input_shapes`` maps input names to shapes; a single shape is taken for the only input.
    Subgraphs (If/Loop bodies) are not descended into; Lotus graphs have none.
    """
    onnx = require("onnx")
    if isinstance(model_or_path, (str, Path)):
        model = onnx.load(str(model_or_path), load_external_data=False)
    else:
        model = onnx.ModelProto()
        model.CopyFrom(model_or_path)
    if not isinstance(input_shapes, dict):
        initializers = {init.name for init in model.graph.initializer}
        names = [i.name for i in model.graph.input if i.name not in initializers]
        if len(names) != 1:
            raise ValueError(f"graph has inputs {names}; pass a dict of shapes")
        input_shapes = {names[0]: list(input_shapes)}
    _fix_inputs(model, input_shapes)
    result = _count(_infer(model))
    if result.unknown:
        symbolic = _infer_symbolic(model)
        if symbolic is not None:
            second = _count(symbolic)
            if len(second.unknown) < len(result.unknown):
                result = second
    return result
