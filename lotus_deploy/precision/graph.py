"""[onnx, onnxruntime] Graph-level helpers shared by the fp16 and int8 stages.

- a scratch *work folder* holding one copy of the parent's ``model.onnx.data``, which every graph
  built there references, so variants never duplicate the weights (ONNX Runtime refuses external data
  outside the graph's folder, symlinks included, and onnx refuses hard links, hence one real copy);
- layer *groups* (one ResNet block, one attention block, one up/down-sampler...) derived from the
  TorchScript exporter's scoped node names, the unit in which precision is decided;
- multiply-accumulate counts per Conv/MatMul/Gemm from the shapes of one profiled ONNX Runtime run;
- per-tensor value ranges over calibration images, collected by adding ReduceMin/ReduceMax outputs to
  a weightless copy of the graph (the same numbers ONNX Runtime's MinMax calibrator records, stored
  in its ``TensorsData`` format so ``quantize_static`` can read them as its calibration cache).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifacts import ONNX_DATA, ONNX_FILE
from ..core.contract import INPUT_NAME
from ..core.progress import bar
from ..export.common import save_with_external_data
from ..export.flops import node_macs
from ..onnxrt import make_session

COMPUTE_OPS = ("Conv", "MatMul", "Gemm")
PARENT_DATA = "parent.onnx.data"  # name of the link to the parent's weights inside a work folder
_BLOCK = re.compile(r"^(down_blocks|up_blocks)\.\d+$")
_SUB = re.compile(r"^(resnets|attentions|upsamplers|downsamplers)\.\d+$")


@contextlib.contextmanager
def work_folder(parent_folder: Path, under: Path | None = None) -> Iterator[Path]:
    """A temporary folder holding a link to the parent's weights (``parent.onnx.data``)."""
    base = Path(under) if under is not None else None
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".lotus-precision-", dir=base))
    try:
        _link(Path(parent_folder).resolve() / ONNX_DATA, folder / PARENT_DATA)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _link(source: Path, target: Path) -> None:
    """A private copy: ONNX Runtime refuses symlinks that leave the graph's folder and onnx refuses hard links."""
    shutil.copyfile(source, target)


def load_structure(parent_folder: Path) -> Any:
    """The parent graph without weights; external references re-pointed at ``parent.onnx.data``."""
    import onnx

    model = onnx.load(str(Path(parent_folder) / ONNX_FILE), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = PARENT_DATA
    return model


def save_structure(model: Any, path: Path) -> None:
    """Save a graph whose initializers are external references (small file, weights stay shared)."""
    import onnx

    onnx.save_model(model, str(path), save_as_external_data=False)


def materialize(graph_path: Path, folder: Path) -> None:
    """Load ``graph_path`` with all its weights and save it as ``folder/model.onnx`` + ``model.onnx.data``."""
    import onnx

    model = onnx.load(str(graph_path), load_external_data=True)
    drop_unused(model)
    for tensor in model.graph.initializer:  # forget where the weights came from
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT
    save_with_external_data(model, Path(folder) / ONNX_FILE, ONNX_DATA)
    del model


def drop_unused(model: Any) -> None:
    """Remove nodes whose outputs nobody reads, then initializers nobody reads."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    while True:
        used = {name for node in graph.node for name in node.input} | outputs
        dead = [i for i, node in enumerate(graph.node) if not any(o in used for o in node.output)]
        if not dead:
            break
        for index in reversed(dead):
            del graph.node[index]
    used = {name for node in graph.node for name in node.input} | outputs
    keep = [t for t in graph.initializer if t.name in used]
    if len(keep) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(keep)


def group_of(node_name: str) -> str:
    """Precision group of a node: ``unet/down_blocks.1/resnets.0``, ``decoder/up_blocks.3/upsamplers.0``,
    ``unet/conv_in``, ``quant_conv``..., from the exporter's module-scoped names."""
    parts = [p for p in node_name.split("/") if p]
    if len(parts) <= 1:
        return parts[0] if parts else "(graph)"
    top = parts[0]
    if top not in ("unet", "encoder", "decoder"):
        return top
    if (_BLOCK.match(parts[1]) or parts[1] == "mid_block") and len(parts) > 2 and _SUB.match(parts[2]):
        return "/".join(parts[:3])
    return "/".join(parts[:2])


def constant_names(model: Any) -> set[str]:
    """Initializers and Constant-node outputs (weights, folded shapes)."""
    names = {t.name for t in model.graph.initializer}
    names.update(o for node in model.graph.node if node.op_type == "Constant" for o in node.output)
    return names


def runtime_macs(graph_path: Path, model: Any, sample: np.ndarray) -> dict[str, int]:
    """MACs per image of every Conv/MatMul/Gemm, from the shapes ONNX Runtime's profiler records when
    the graph (optimizations off, so node names survive) runs ``sample`` ([1,3,H,W]). Exact where static
    shape inference gives up (dynamic Reshape chains in an un-slimmed graph)."""
    import json


    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    compute = {n.name: n for n in model.graph.node if n.op_type in COMPUTE_OPS}
    with tempfile.TemporaryDirectory(prefix="lotus-macs-") as scratch:  # never in the (read-only) parent's folder
        session = make_session(graph_path, optimization="none", profile_prefix=Path(scratch) / "profile")
        session.run(None, {"image": sample})
        events = json.loads(Path(session.end_profiling()).read_text())
        del session
    macs: dict[str, int] = {}
    for event in events:
        args = event.get("args", {})
        name = str(event.get("name", "")).removesuffix("_kernel_time")
        node = compute.get(name)
        if node is None or "output_type_shape" not in args or name in macs:
            continue
        outs = [list(d.values())[0] for d in args["output_type_shape"]]
        ins = [list(d.values())[0] for d in args["input_type_shape"]]
        shapes = {**dict(zip(node.input, ins, strict=False)), node.output[0]: outs[0]}
        macs[name] = node_macs(node, shapes, weights) or 0  # the one MAC formula (export/flops.py)
    batch = int(sample.shape[0]) or 1
    return {name: macs.get(name, 0) // batch for name in compute}


def float_tensors(model: Any) -> list[str]:
    """Names of every float32 tensor a node produces (shape inference on the weightless graph)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    names = []
    for node in inferred.graph.node:
        if node.op_type == "Constant":
            continue
        for out in node.output:
            if out and types.get(out) == onnx.TensorProto.FLOAT:
                names.append(out)
    return names


def compute_inputs(model: Any) -> list[str]:
    """Activation inputs of Conv/MatMul/Gemm (what int8 calibration needs)."""
    constants = constant_names(model)
    names: list[str] = []
    for node in model.graph.node:
        if node.op_type in COMPUTE_OPS:
            names.extend(n for n in node.input[:2] if n and n not in constants and n not in names)
    return names


def collect_ranges(parent_folder: Path, inputs: Iterable[np.ndarray], count: int, work: Path, quiet: bool,
                   tensors: str = "all") -> dict[str, tuple[float, float]]:
    """Min and max over ``inputs`` (each [N,3,H,W]) of every float tensor (``tensors="all"``, for fp16)
    or of the Conv/MatMul/Gemm activation inputs only (``"compute-inputs"``, for int8: reducing
    every tensor keeps ONNX Runtime from fusing and makes a pass several times slower)."""
    import onnx

    model = load_structure(parent_folder)
    names = float_tensors(model) if tensors == "all" else compute_inputs(model)
    # Each tensor's ReduceMin/ReduceMax right after its producer, run in node order: the tensor is read
    # while still hot and freed at once. ONNX Runtime's default order ran every reduction at the end,
    # holding all activations (full size, 256x256: 9.8 GiB and 13-19 s per image, against 4.5 GiB and
    # 7.3 s); the values are the same.
    measured = set(names)
    nodes = list(model.graph.node)
    del model.graph.node[:]
    for node in [None, *nodes]:
        produced = [INPUT_NAME] if node is None else list(node.output)
        if node is not None:
            model.graph.node.append(node)
        for name in produced:
            if name not in measured:
                continue
            for op, suffix in (("ReduceMin", "min"), ("ReduceMax", "max")):
                out = f"{name}__lotus_{suffix}"
                model.graph.node.append(onnx.helper.make_node(op, [name], [out], keepdims=0, name=f"{out}_node"))
                model.graph.output.append(onnx.helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, []))
    path = work / "ranges.onnx"
    save_structure(model, path)
    del model
    session = make_session(path, lean=True, in_node_order=True)
    wanted = [f"{name}__lotus_{suffix}" for name in names for suffix in ("min", "max")]  # by name: the graph lists them in node order
    low = {n: np.inf for n in names}
    high = {n: -np.inf for n in names}
    for batch in bar(inputs, desc="calibrating", total=count, disable=quiet):
        values = session.run(wanted, {"image": batch})
        for index, name in enumerate(names):
            low[name] = min(low[name], float(values[2 * index]))
            high[name] = max(high[name], float(values[2 * index + 1]))
    del session
    path.unlink(missing_ok=True)
    return {n: (low[n], high[n]) for n in names if np.isfinite(low[n]) and np.isfinite(high[n])}
