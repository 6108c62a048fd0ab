"""Runtime backends (ONNX Runtime, PyTorch reference, TensorRT) behind one interface."""

from .base import Backend, backend_names, load_backend, register_backend

__all__ = ["Backend", "DepthEstimator", "Prediction", "backend_names", "load_backend", "register_backend"]


def __getattr__(name: str) -> object:
    # DepthEstimator pulls in pre/post-processing (numpy + Pillow only); imported on first use.
    if name in ("DepthEstimator", "Prediction"):
        from . import estimator

        return getattr(estimator, name)
    raise AttributeError(name)
