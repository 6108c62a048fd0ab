"""[torch] Two more PyTorch backends, for GPUs without TensorRT and for comparison with upstream.

``torch-upstream`` runs Lotus-D the way the original code does: fp32 weights, eager, under fp16
autocast on CUDA. ``torch-optimized`` is what a desktop GPU can do without TensorRT: fp16 weights,
channels-last memory format, PyTorch's scaled-dot-product attention, and one CUDA graph per input
shape (optionally ``torch.compile`` first). On the CPU both run plain fp32 (autocast, fp16 and CUDA
graphs do not apply), so their code paths are exercised by the CPU test suite; channels-last and SDPA
still apply there.

Both load the artifact's source checkpoint (like the ``torch`` reference backend) and share its
interface: ``run`` takes and returns float32 NCHW numpy batches.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.artifacts import Artifact
from ..core.config import Task
from .torch_backend import TorchBackend


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class TorchUpstreamBackend(TorchBackend):
    """fp32 weights, eager; fp16 autocast on CUDA (upstream Lotus's ``torch.autocast("cuda")``)."""

    name = "torch-upstream"

    def __init__(self, artifact: Artifact | None = None, model: str | None = None, task: Task | str | None = None,
                 device: str | None = None, threads: int = 0, autocast: bool = True) -> None:
        super().__init__(artifact, model=model, task=task, device=device or _default_device(), dtype="float32", threads=threads)
        self.autocast = autocast and self.device.type == "cuda"
        self.precision = "fp32 weights, fp16 autocast" if self.autocast else "fp32"

    def run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        self.shape.check_input(tuple(batch.shape))
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.float16, enabled=self.autocast):
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
            y = self.module(x)
        return np.asarray(y.float().cpu().numpy(), dtype=np.float32)


def _use_sdpa(module: Any) -> None:
    """Make every diffusers attention block use torch's scaled_dot_product_attention."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    for part in (module.unet, module.vae):
        if hasattr(part, "set_attn_processor"):
            part.set_attn_processor(AttnProcessor2_0())


class TorchOptimizedBackend(TorchBackend):
    """fp16 + channels-last + SDPA + CUDA graphs (and optionally torch.compile) on CUDA; fp32 on the CPU.

    Options: ``fp16`` (default: on CUDA), ``channels_last`` (default on), ``cuda_graphs`` (default: on
    CUDA), ``compile`` (default off: minutes of compilation per shape; ``True`` or a mode string
    such as ``"max-autotune-no-cudagraphs"``).
    """

    name = "torch-optimized"

    def __init__(self, artifact: Artifact | None = None, model: str | None = None, task: Task | str | None = None,
                 device: str | None = None, threads: int = 0, fp16: bool | None = None, channels_last: bool = True,
                 cuda_graphs: bool | None = None, compile: bool | str = False) -> None:  # noqa: A002 - torch's word
        import torch

        super().__init__(artifact, model=model, task=task, device=device or _default_device(), dtype="float32", threads=threads)
        on_cuda = self.device.type == "cuda"
        self.fp16 = on_cuda if fp16 is None else bool(fp16)
        if self.fp16 and not on_cuda:
            self.fp16 = False  # fp16 convolutions on the CPU are slower than fp32, and not what this backend is for
        self.channels_last = channels_last
        self.cuda_graphs = on_cuda if cuda_graphs is None else (bool(cuda_graphs) and on_cuda)
        _use_sdpa(self.module)
        if self.fp16:
            self.module = self.module.half()
            self.dtype = torch.float16
        if channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        self._call: Any = self.module
        if compile:
            mode = compile if isinstance(compile, str) else "max-autotune-no-cudagraphs"
            self._call = torch.compile(self.module, mode=mode, fullgraph=False, dynamic=False)
        self._graphs: dict[tuple[int, ...], tuple[Any, Any, Any]] = {}
        self.precision = "fp16" if self.fp16 else "fp32"

    def _prepare(self, batch: np.ndarray) -> Any:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, self.dtype)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _graphed(self, x: Any) -> Any:
        """Replay a CUDA graph captured for x's shape (captured on first sight, after a warm-up)."""
        import torch

        key = tuple(x.shape)
        if key not in self._graphs:
            static_in = x.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm-up outside the graph (cuDNN autotuning, lazy init)
                    self._call(static_in)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._call(static_in)
            self._graphs[key] = (graph, static_in, static_out)
        graph, static_in, static_out = self._graphs[key]
        static_in.copy_(x)
        graph.replay()
        return static_out

    def run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        self.shape.check_input(tuple(batch.shape))
        with torch.inference_mode():
            x = self._prepare(batch)
            y = self._graphed(x) if self.cuda_graphs else self._call(x)
            out = y.float().cpu().numpy()
        return np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        self._graphs.clear()
        self._call = None
        super().close()
