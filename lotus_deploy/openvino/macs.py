"""Multiply-accumulates per image of an OpenVINO model, and the share OpenVINO actually ran in int8.

What counts as int8 is read from the compiled model's runtime graph (``runtimePrecision`` I8/U8 of
each executed convolution or matmul, and the original layers fused into it), not from where NNCF put
FakeQuantize: a quantized layer the plugin ran in another precision is not counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAC_OPS = ("Convolution", "GroupConvolution", "MatMul")
INT8_PRECISIONS = ("I8", "U8", "i8", "u8")


def _length(shape: Any) -> list[int]:
    return [int(d) for d in shape.to_shape()]


def op_macs(op: Any) -> int:
    """MACs of one Convolution/GroupConvolution/MatMul with static shapes (0 for other ops)."""
    kind = op.get_type_name()
    if kind not in MAC_OPS:
        return 0
    out = _length(op.get_output_partial_shape(0))
    if kind == "MatMul":
        a = _length(op.get_input_partial_shape(0))
        transpose_a = bool(op.get_attributes().get("transpose_a", False))
        k = a[-2] if transpose_a and len(a) > 1 else a[-1]
        return int(np.prod(out, dtype=np.int64)) * k
    weights = _length(op.get_input_partial_shape(1))  # [Cout, Cin, kh, kw] or [G, Cout/G, Cin/G, kh, kw]
    per_output = int(np.prod(weights[-3:], dtype=np.int64))
    return int(np.prod(out, dtype=np.int64)) * per_output


def macs_by_op(model: Any, sample_shape: tuple[int, ...]) -> dict[str, int]:
    """MACs per op (friendly name) of ``model`` reshaped to ``sample_shape``, per image."""
    static = model.clone()
    static.reshape({0: list(sample_shape)})
    batch = int(sample_shape[0]) or 1
    return {op.get_friendly_name(): op_macs(op) // batch for op in static.get_ordered_ops() if op.get_type_name() in MAC_OPS}


def int8_executed(compiled: Any) -> set[str]:
    """Names of the original layers the compiled model ran in int8."""
    names: set[str] = set()
    for node in compiled.get_runtime_model().get_ordered_ops():
        info = node.get_rt_info()
        precision = str(info["runtimePrecision"].astype(str)) if "runtimePrecision" in info else ""
        if precision in INT8_PRECISIONS:
            original = str(info["originalLayersNames"].astype(str)) if "originalLayersNames" in info else ""
            names.update(n.strip() for n in original.split(",") if n.strip())
    return names


def int8_mac_share(model: Any, compiled: Any, sample_shape: tuple[int, ...]) -> dict[str, Any]:
    """{"share", "total", "int8", "int8_ops", "ops"}: MACs per image and the part run in int8."""
    macs = macs_by_op(model, sample_shape)
    ran = int8_executed(compiled)
    total = sum(macs.values())
    in_int8 = sum(v for name, v in macs.items() if name in ran)
    return {"share": round(in_int8 / total, 4) if total else 0.0, "total": total, "int8": in_int8,
            "int8_ops": sum(1 for name in macs if name in ran), "ops": len(macs), "at": list(sample_shape)}
