"""lotus-deploy: export Lotus-D to one ONNX graph, precision variants and TensorRT engines, and run them.

Importing the package needs numpy and Pillow only; torch, onnx, onnxruntime and tensorrt are
imported lazily by the modules that use them.
"""

from __future__ import annotations

from .core.version import __version__

__all__ = ["__version__"]
