"""[torch] The fused one-step Lotus-D module (docs/model.md): the product's one forward pass.

``LotusD`` runs VAE encoder -> UNet (t=999, empty-prompt embedding, task switcher) -> VAE decoder ->
output decoding in one ``forward``, with every constant held as a buffer so that ONNX export bakes
them in. It uses the posterior *mean* (``mode()``), not upstream's stochastic ``sample()``. The
export's float64 parity oracle (:mod:`lotus_deploy.export.oracle`) is written separately on purpose.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..core.config import Task
from .checkpoint import LoadedCheckpoint

if TYPE_CHECKING:
    import torch

TIMESTEP = 999
ANNOTATION_SWITCH = (1.0, 0.0)  # [1, 0] asks for the annotation (depth/normal); [0, 1] for reconstruction


def task_embedding() -> list[float]:
    """``cat([sin([1,0]), cos([1,0])])`` = [sin 1, 0, cos 1, 1]."""
    a, b = ANNOTATION_SWITCH
    return [math.sin(a), math.sin(b), math.cos(a), math.cos(b)]


def build_module(checkpoint: LoadedCheckpoint, task: Task) -> torch.nn.Module:
    return LotusD(checkpoint.vae, checkpoint.unet, checkpoint.prompt_embeds, task)


def _module_class() -> type:
    import torch

    class _LotusD(torch.nn.Module):
        """image [N,3,H,W] in [-1,1] -> depth [N,1,H,W] in [0,1] or normal [N,3,H,W] in [-1,1]."""

        def __init__(self, vae: Any, unet: Any, prompt_embeds: torch.Tensor, task: Task) -> None:
            super().__init__()
            self.vae = vae
            self.unet = unet
            self.task = task
            self.scaling_factor = float(vae.config.scaling_factor)
            self.register_buffer("prompt_embeds", prompt_embeds.detach().clone())
            self.register_buffer("task_emb", torch.tensor([task_embedding()], dtype=torch.float32))
            self.register_buffer("timestep", torch.tensor([TIMESTEP], dtype=torch.int64))

        # The three stage functions: forward is their composition, and the split export traces each alone.
        def encode(self, image: torch.Tensor) -> torch.Tensor:
            """image [N,3,H,W] -> latents [N,4,H/8,W/8]: posterior mean times the VAE's scaling factor."""
            return self.vae.encode(image).latent_dist.mode() * self.scaling_factor

        def predict(self, latents: torch.Tensor) -> torch.Tensor:
            """latents -> the UNet's one-step prediction (t=999, empty prompt, task switch)."""
            n = latents.shape[0]
            prompt = self.get_buffer("prompt_embeds")
            task = self.get_buffer("task_emb")
            prediction: torch.Tensor = self.unet(latents, self.get_buffer("timestep"), encoder_hidden_states=prompt.expand(n, -1, -1),
                                                 class_labels=task.expand(n, -1), return_dict=False)[0]
            return prediction

        def decode_output(self, prediction: torch.Tensor) -> torch.Tensor:
            """prediction -> depth [N,1,H,W] in [0,1] (channel mean) or normal [N,3,H,W] in [-1,1]."""
            img = (self.vae.decode(prediction / self.scaling_factor, return_dict=False)[0] / 2 + 0.5).clamp(0, 1)
            if self.task is Task.DEPTH:
                return img.mean(dim=1, keepdim=True)
            return img * 2 - 1

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.decode_output(self.predict(self.encode(image)))

    return _LotusD


_CLASS: type | None = None


def LotusD(vae: Any, unet: Any, prompt_embeds: torch.Tensor, task: Task) -> torch.nn.Module:  # noqa: N802 - class-like factory
    """Construct the fused module (the class is created lazily so importing this file needs no torch)."""
    global _CLASS
    if _CLASS is None:
        _CLASS = _module_class()
    module: torch.nn.Module = _CLASS(vae, unet, prompt_embeds, task).eval()
    return module
