"""[onnxruntime] Run an ONNX artifact with ONNX Runtime (CPU by default; CUDA/TensorRT EPs on request).

The session's I/O names come from the graph itself and are checked against the contract, so a graph
exported by another tool that follows the contract also runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..artifacts import Artifact
from ..config import Task
from ..contract import INPUT_NAME, GraphShape, output_name
from ..deps import require
from ..errors import ArtifactError

CPU = "CPUExecutionProvider"


class OnnxRuntimeBackend:
    """ONNX Runtime session over ``artifact``'s model.onnx."""

    name = "onnxruntime"

    def __init__(self, artifact: Artifact, providers: list[Any] | None = None, threads: int = 0,
                 optimization: str = "all") -> None:
        ort = require("onnxruntime")
        self.artifact = artifact
        self.task: Task = artifact.task
        self.shape: GraphShape = artifact.shape
        options = ort.SessionOptions()
        options.graph_optimization_level = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }[optimization]
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(artifact.model_path), sess_options=options, providers=providers or [CPU])
        except Exception as exc:  # ORT raises its own exception types for bad files
            first = str(exc).strip().splitlines()[0][:300]
            raise ArtifactError(f"ONNX Runtime cannot load {artifact.model_path}: {first}", "re-export the artifact (is model.onnx.data beside it?)") from None
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
