"""The one place ONNX Runtime sessions are made (imported lazily: the ``ort`` / ``ort-gpu`` extras)."""

from .session import GraphRunner, make_session, run_graph

__all__ = ["GraphRunner", "make_session", "run_graph"]
