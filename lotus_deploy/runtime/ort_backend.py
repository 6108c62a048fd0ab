"""[onnxruntime] Run an ONNX artifact with ONNX Runtime (CPU by default; CUDA/TensorRT EPs on request).

The session's I/O names come from the graph itself and are checked against the contract, so a graph
exported by another tool that follows the contract also runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.artifacts import Artifact
from ..core.config import Task
from ..core.contract import INPUT_NAME, GraphShape, output_name
from ..core.errors import ArtifactError
from ..onnxrt.session import CPU, make_session

__all__ = ["CPU", "OnnxRuntimeBackend"]


class OnnxRuntimeBackend:
    """ONNX Runtime session over ``artifact``'s model.onnx."""

    name = "onnxruntime"

    def __init__(self, artifact: Artifact, providers: list[Any] | None = None, threads: int = 0,
                 optimization: str = "all", spinning: bool = True) -> None:
        self.artifact = artifact
        self.task: Task = artifact.task
        self.shape: GraphShape = artifact.shape
        self.session = make_session(artifact.model_path, providers=providers, threads=threads, optimization=optimization, spinning=spinning)
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != [INPUT_NAME] or outputs != [output_name(self.task)]:
            raise ArtifactError(
                f"{artifact.model_path} has inputs {inputs} and outputs {outputs}",
                f"a Lotus graph has input {INPUT_NAME!r} and output {output_name(self.task)!r}; re-export it with lotus-export",
            )
        self.providers = self.session.get_providers()

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.shape.check_input(tuple(batch.shape))
        feed = {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)}
        result: np.ndarray = self.session.run(None, feed)[0]
        return result

    def close(self) -> None:
        self.session = None
