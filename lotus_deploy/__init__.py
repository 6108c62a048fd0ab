"""lotus-deploy: export Lotus-D to one ONNX graph, precision variants and TensorRT engines, and run them.

Importing the package needs numpy and Pillow only; torch, onnx, onnxruntime and tensorrt are
imported lazily by the modules that use them.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
