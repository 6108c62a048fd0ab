"""[torch, onnx, onnxslim] What every graph export shares: trace, clean, save with external data.

The fused graph and the split stage graphs go through exactly these steps, so their numerics and
timings compare; the precision stages save with the same external-data layout.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError

TRACE_SIZE = 64  # spatial size of the dummy input for dynamic graphs (any multiple of 64 traces the same graph)
_PROTOBUF_LIMIT = 2**31 - 1  # protobuf refuses to serialise a message this large
_PROTOBUF_MARGIN = 64 << 20  # room for the graph itself beside the weights
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


def clean(raw: Path) -> tuple[Any, dict[str, Any]]:
    """Constant folding and dead-node removal with onnxslim; node counts before and after.

    onnxslim's own shape inference serialises the whole model, which protobuf refuses beyond 2 GB
    (the full-size fp32 graph is ~3.8 GB). For such graphs shapes are inferred by onnx on the file
    (``infer_shapes_path`` has no size limit) and onnxslim runs without its shape inference; its
    constant folding handles large models itself. On builtin:tiny the two paths leave 1886 and 1911
    nodes of 3981.
    """
    import onnx
    import onnxslim

    model = onnx.load(str(raw), load_external_data=True)
    before = len(model.graph.node)
    # ModelProto.ByteSize() itself raises beyond 2 GB; the weights are what make a graph large.
    weight_bytes = sum(tensor.ByteSize() for tensor in model.graph.initializer)
    if weight_bytes < _PROTOBUF_LIMIT - _PROTOBUF_MARGIN:
        slimmed = onnxslim.slim(model)
        how = "onnxslim"
    else:
        del model
        inferred = raw.with_name("inferred.onnx")
        onnx.shape_inference.infer_shapes_path(str(raw), str(inferred))
        slimmed = onnxslim.slim(onnx.load(str(inferred), load_external_data=True), no_shape_infer=True)
        how = "onnx.shape_inference.infer_shapes_path + onnxslim (no_shape_infer: graph over 2 GB)"
    if slimmed is None:
        raise ConfigError("onnxslim returned no model", "this is a bug; export with a smaller model to reproduce and report it")
    return slimmed, {"before": before, "after": len(slimmed.graph.node), "cleaner": how}


def save_with_external_data(model: Any, path: Path, data_name: str, check: bool = True) -> None:
    """Save ``model`` as ``path`` plus one external-data file ``data_name`` beside it; run onnx.checker on the path."""
    import onnx

    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data_name,
                    size_threshold=EXTERNAL_DATA_THRESHOLD)
    if check:
        onnx.checker.check_model(str(path))
