"""[torch, onnx, onnxslim] What every graph export shares: trace, clean, save with external data.

The fused graph and the split stage graphs go through exactly these steps, so their numerics and
timings compare; the precision stages save with the same external-data layout.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError

TRACE_SIZE = 64  # spatial size of the dummy input for dynamic graphs (any multiple of 64 traces the same graph)
EXTERNAL_DATA_THRESHOLD = 1024  # tensors from this many bytes go to the .onnx.data file


def trace(module: Any, dummy: Any, path: Path, opset: int, input_name: str, output_name: str,
          dynamic_axes: dict[str, dict[int, str]] | None, groupnorm: str, numerics_owner: Any) -> None:
    """Trace ``module`` on ``dummy`` with the TorchScript exporter (constant folding on) into ``path``.

    ``numerics_owner`` is the fused module whose GroupNorms take the ``groupnorm`` export form while tracing.
    """
    import torch

    from ..model.numerics import export_numerics

    with torch.no_grad(), warnings.catch_warnings(), export_numerics(numerics_owner, groupnorm):
        warnings.simplefilter("ignore")  # TracerWarnings about Python-side asserts are expected here
        torch.onnx.export(
            module,
            (dummy,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes=dynamic_axes or None,
            do_constant_folding=True,
        )


@dataclass
class LiftedWeights:
    """The raw graph's weights, taken out of the graph while it is cleaned and streamed back when it is saved.

    Why: onnxslim turns every weight into a numpy copy and then a new TensorProto, so cleaning the
    full-size graph with its weights held three copies (10.9 GiB for 3.4 GiB of weights). Lifted, each
    weight is a graph input of the same name, shape and dtype; the proto onnxslim sees is a few MB, its
    own shape inference works at any model size, and nothing it folds needed a weight (the TorchScript
    exporter already folded every constant expression). The tensors here hold no data for a large
    model: they point into the raw export's folder, read one at a time by :func:`save_streaming`.
    """

    folder: Path
    tensors: dict[str, Any] = field(default_factory=dict)

    def data(self, name: str) -> bytes:
        """One weight's bytes, read from wherever the raw export put them."""
        from onnx import numpy_helper
        from onnx.external_data_helper import uses_external_data

        tensor = self.tensors[name]
        if tensor.HasField("raw_data"):
            return bytes(tensor.raw_data)
        if uses_external_data(tensor):
            info = {entry.key: entry.value for entry in tensor.external_data}
            with open(self.folder / info["location"], "rb") as handle:
                handle.seek(int(info.get("offset", 0)))
                length = info.get("length")
                return handle.read(int(length)) if length is not None else handle.read()
        return bytes(numpy_helper.to_array(tensor).tobytes())


def constant_inputs(model: Any) -> set[str]:
    """Initializers feeding a constant expression (a node whose inputs are all constants, transitively),
    e.g. the time-embedding projections of the constant t=999: the cleaner needs their values to fold it."""
    constants = {tensor.name for tensor in model.graph.initializer}
    initializers = set(constants)
    needed: set[str] = set()
    for node in model.graph.node:  # exported in topological order
        if all(not name or name in constants for name in node.input):
            constants.update(node.output)
            needed.update(name for name in node.input if name in initializers)
    return needed


def fold_conv_adds(model: Any, weights: LiftedWeights) -> int:
    """Fold ``Add(Conv(x), c)`` with a per-channel constant ``c`` into the Conv's bias (the resnets' conv1
    plus the folded time embedding). onnxslim does this only when the Conv's weight is a constant,
    which a lifted weight is not; only the bias and ``c`` are read here. Returns the Adds removed."""
    import numpy as np
    from onnx import numpy_helper

    graph = model.graph
    inits = {tensor.name: tensor for tensor in graph.initializer}
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    outputs = {value.name for value in graph.output}

    def value(name: str) -> Any:
        if name in inits:
            return numpy_helper.to_array(inits[name])
        tensor = weights.tensors[name]
        return np.frombuffer(weights.data(name), dtype=np.float32).reshape(list(tensor.dims))

    removed = []
    for conv in [n for n in graph.node if n.op_type == "Conv" and n.output[0] not in outputs]:
        after = readers.get(conv.output[0], [])
        if len(after) != 1 or after[0].op_type != "Add":
            continue
        add = after[0]
        other = next((name for name in add.input if name != conv.output[0]), None)
        weight = inits.get(conv.input[1]) or weights.tensors.get(conv.input[1])
        if other not in inits or weight is None or inits[other].data_type != 1 or weight.data_type != 1:
            continue
        channels = int(weight.dims[0])
        constant = numpy_helper.to_array(inits[other])
        if list(constant.shape) not in ([1, channels, 1, 1], [channels, 1, 1]):
            continue
        bias = value(conv.input[2]) if len(conv.input) > 2 and conv.input[2] else np.zeros(channels, np.float32)
        folded = numpy_helper.from_array((bias + constant.reshape(channels)).astype(np.float32), f"{add.output[0]}_bias")
        graph.initializer.append(folded)
        inits[folded.name] = folded
        if len(conv.input) > 2:
            conv.input[2] = folded.name
        else:
            conv.input.append(folded.name)
        conv.output[0] = add.output[0]
        removed.append(add)
    for add in removed:
        graph.node.remove(add)
    if removed:
        _drop_unread(model)
    return len(removed)


def _drop_unread(model: Any) -> None:
    """Initializers and lifted-weight inputs that no node reads any more."""
    graph = model.graph
    read = {name for node in graph.node for name in node.input} | {value.name for value in graph.output}
    keep = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    first, *rest = list(graph.input)
    del graph.input[:]
    graph.input.extend([first, *[value for value in rest if value.name in read]])


def lift_weights(model: Any, folder: Path, threshold: int = EXTERNAL_DATA_THRESHOLD) -> LiftedWeights:
    """Move every initializer of ``threshold`` bytes or more out of ``model`` (loaded without its external
    data) into graph inputs of the same name, shape and dtype; those that feed a constant expression stay,
    with their data loaded, so the cleaner still folds it."""
    from onnx import helper
    from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data

    lifted = LiftedWeights(folder=Path(folder))
    needed = constant_inputs(model)
    keep = []
    for tensor in model.graph.initializer:
        count = 1
        for dim in tensor.dims:
            count *= int(dim)
        large = count * helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize >= threshold
        if large and tensor.name not in needed:
            lifted.tensors[tensor.name] = _copy(tensor)
            model.graph.input.append(helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
            continue
        if uses_external_data(tensor):
            load_external_data_for_tensor(tensor, str(folder))
            tensor.data_location = 0  # DEFAULT: the data is in the proto now
            del tensor.external_data[:]
        keep.append(tensor)
    kept = [_copy(tensor) for tensor in keep]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return lifted


def _copy(tensor: Any) -> Any:
    from onnx import TensorProto

    clone = TensorProto()
    clone.CopyFrom(tensor)
    return clone


def clean(raw: Path) -> tuple[Any, dict[str, Any], LiftedWeights]:
    """Constant folding, shape inference and dead-node removal with onnxslim, over the graph's structure
    only (:class:`LiftedWeights`); node counts before and after. Save the result with :func:`save_streaming`.
    """
    import onnx
    import onnxslim

    model = onnx.load(str(raw), load_external_data=False)
    before = len(model.graph.node)
    weights = lift_weights(model, raw.parent)
    slimmed = onnxslim.slim(model)
    if slimmed is None:
        raise ConfigError("onnxslim returned no model", "this is a bug; export with a smaller model to reproduce and report it")
    fold_conv_adds(slimmed, weights)
    how = "onnxslim over the graph structure (weights lifted to inputs, streamed back when saving) + Conv/constant-Add bias folding"
    return slimmed, {"before": before, "after": len(slimmed.graph.node), "cleaner": how}, weights


_ALIGN = 4096  # each tensor starts on a page boundary in the data file (lets ONNX Runtime map it)


def save_streaming(model: Any, weights: LiftedWeights, path: Path, data_name: str, check: bool = True) -> None:
    """Save a cleaned graph as ``path`` + ``data_name``, writing one weight at a time: the lifted weights
    the graph still uses become initializers again (in external data), as do large folded constants."""
    import onnx
    from onnx import TensorProto

    data_path = Path(path).parent / data_name
    offset = 0
    with open(data_path, "wb") as out:

        def put(tensor: Any, payload: bytes) -> None:
            nonlocal offset
            pad = (-offset) % _ALIGN
            out.write(b"\0" * pad)
            offset += pad
            out.write(payload)
            del tensor.external_data[:]
            for key, value in (("location", data_name), ("offset", str(offset)), ("length", str(len(payload)))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
            tensor.data_location = TensorProto.EXTERNAL
            tensor.ClearField("raw_data")
            offset += len(payload)

        for tensor in model.graph.initializer:
            if tensor.HasField("raw_data") and len(tensor.raw_data) >= EXTERNAL_DATA_THRESHOLD:
                put(tensor, bytes(tensor.raw_data))
        used = [value.name for value in model.graph.input if value.name in weights.tensors]
        for name in used:
            source = weights.tensors[name]
            tensor = TensorProto(name=name, data_type=source.data_type, dims=list(source.dims))
            payload = weights.data(name)
            if len(payload) < EXTERNAL_DATA_THRESHOLD:
                tensor.raw_data = payload
            else:
                put(tensor, payload)
            model.graph.initializer.append(tensor)
    keep = [value for value in model.graph.input if value.name not in weights.tensors]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    onnx.save_model(model, str(path))
    if check:
        onnx.checker.check_model(str(path))


def save_with_external_data(model: Any, path: Path, data_name: str, check: bool = True) -> None:
    """Save ``model`` as ``path`` plus one external-data file ``data_name`` beside it; run onnx.checker on the path."""
    import onnx

    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data_name,
                    size_threshold=EXTERNAL_DATA_THRESHOLD)
    if check:
        onnx.checker.check_model(str(path))
