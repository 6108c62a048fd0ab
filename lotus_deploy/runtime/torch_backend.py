"""[torch] The PyTorch reference backend: the fused Lotus-D module, eager, in float32 or float64.

It loads the artifact's *source checkpoint* (from the manifest), so it answers "what should this
artifact compute?"; with no artifact it runs a model id directly (``model=..., task=...``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.artifacts import Artifact
from ..core.config import OutputMeaning, Task, infer_task
from ..core.contract import GraphShape
from ..core.errors import ConfigError


class TorchBackend:
    """Eager PyTorch; ``dtype`` "float32" (default) or "float64" (the parity reference)."""

    name = "torch"

    def __init__(self, artifact: Artifact | None = None, model: str | None = None, task: Task | str | None = None,
                 device: str = "cpu", dtype: str = "float32", threads: int = 0) -> None:
        import torch

        from ..model.checkpoint import load_checkpoint
        from ..model.fused import build_module

        if artifact is not None:
            model = model or artifact.source_model
            self.task = artifact.task
            self.meaning = artifact.meaning
        elif model is None:
            raise ConfigError("the torch backend needs an artifact or a model", "pass --artifact DIR or --model ID")
        else:
            self.task, self.meaning = infer_task(model, Task(task) if task else None, None)
        if dtype not in ("float32", "float64"):
            raise ConfigError(f"torch backend dtype {dtype!r} is not float32 or float64", "use float32, or the torch-optimized backend for fp16")
        if threads:
            torch.set_num_threads(threads)
        self.shape = GraphShape()
        self.model_id = model
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype)
        checkpoint = load_checkpoint(model, self.task.value)
        self.declared_processing_res: int | None = checkpoint.notes.get("processing_res")
        self.module: Any = build_module(checkpoint, self.task).to(self.device, self.dtype)

    @property
    def output_meaning(self) -> OutputMeaning:
        return self.meaning

    def run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        self.shape.check_input(tuple(batch.shape))
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, self.dtype)
            y = self.module(x)
        return np.asarray(y.float().cpu().numpy(), dtype=np.float32)

    def close(self) -> None:
        self.module = None
