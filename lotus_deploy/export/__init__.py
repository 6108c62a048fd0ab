"""[torch, onnx] Checkpoint → one fused ONNX graph (and optional stage graphs), proven against a float64 oracle."""

from .fused import export_onnx
from .oracle import oracle_output
from .split import export_split, split_paths

__all__ = ["export_onnx", "export_split", "oracle_output", "split_paths"]
