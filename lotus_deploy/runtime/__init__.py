"""Runtime backends (ONNX Runtime, PyTorch reference, TensorRT) behind one interface."""

from .base import Backend, backend_names, load_backend, register_backend

__all__ = ["Backend", "backend_names", "load_backend", "register_backend"]
