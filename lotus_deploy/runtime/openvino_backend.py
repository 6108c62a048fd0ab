"""[openvino] Run an artifact with OpenVINO: an OpenVINO IR (``--engine openvino``/``openvino-int8``)
or an fp32/fp16/int8 ONNX graph, which OpenVINO reads directly.

``device`` is CPU, GPU, NPU or AUTO; ``precision`` is auto (the device's default: bf16 on a CPU with
native bf16), f32, bf16 or f16. The precision that actually runs is read back from the compiled model
and kept in ``self.precision`` (summaries and bench rows record it). When an IR's own parity check
recorded a bf16 miss and bf16 runs, the warning its export printed is repeated.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from ..core.artifacts import Artifact
from ..core.config import Task
from ..core.contract import INPUT_NAME, GraphShape, output_name
from ..core.errors import ArtifactError, ConfigError
from ..openvino.device import check_precision_name, compile_model, make_core
from ..openvino.parity import bf16_warning


class OpenVINOBackend:
    """A compiled OpenVINO model over ``artifact``'s model.xml (or model.onnx)."""

    name = "openvino"

    def __init__(self, artifact: Artifact | None, device: str = "CPU", precision: str = "auto", threads: int = 0) -> None:
        if artifact is None:
            raise ConfigError("the openvino backend needs an artifact", "pass --artifact (an OpenVINO IR or ONNX artifact from lotus-export)")
        if artifact.kind not in ("openvino", "onnx"):
            raise ConfigError(f"{artifact.folder} is a {artifact.kind} artifact; OpenVINO runs OpenVINO IR and ONNX artifacts",
                              "export one with lotus-export --engine openvino (or pass an ONNX artifact)")
        check_precision_name(precision)
        self.artifact = artifact
        self.task: Task = artifact.task
        self.shape: GraphShape = artifact.shape
        self.device = device.upper()
        core = make_core()
        model = core.read_model(str(artifact.model_path))
        inputs = [i.get_any_name() for i in model.inputs]
        outputs = [o.get_any_name() for o in model.outputs]
        if inputs != [INPUT_NAME] or outputs != [output_name(self.task)]:
            raise ArtifactError(f"{artifact.model_path} has inputs {inputs} and outputs {outputs}",
                                f"a Lotus graph has input {INPUT_NAME!r} and output {output_name(self.task)!r}; re-export it with lotus-export")
        self.compiled, self.inference_precision = compile_model(core, model, self.device, precision, threads)
        self.requested_precision = precision
        # what bench rows and summaries show: an int8 IR runs int8 layers plus the inference precision elsewhere
        self.precision = f"int8+{self.inference_precision}" if artifact.precision.value == "int8" else self.inference_precision
        self.request = self.compiled.create_infer_request()
        if self.inference_precision == "bf16":
            message = bf16_warning(artifact.manifest.get("parity"))
            if message:
                print(f"lotus-deploy: warning: {message}", file=sys.stderr)

    def describe(self) -> dict[str, Any]:
        return {"device": self.device, "precision_requested": self.requested_precision, "precision_used": self.inference_precision,
                "artifact_precision": self.artifact.precision.value, "artifact_kind": self.artifact.kind}

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.shape.check_input(tuple(batch.shape))
        result = self.request.infer({INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.array(result[self.compiled.output(0)], dtype=np.float32, copy=True)  # the request reuses its buffer

    def close(self) -> None:
        self.request = None
        self.compiled = None
