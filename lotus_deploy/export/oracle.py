"""[torch] The export's float64 parity oracle, written apart from the product's forward pass on purpose.

The fused module (:mod:`lotus_deploy.model.fused`) is what gets traced. If the oracle reused it, a
semantic slip there (a wrong timestep, ``sample()`` instead of the mean, a flipped task switch, no
clamp...) would be traced *and* referenced alike and parity would pass. So the oracle is computed
straight from the checkpoint's diffusers components, in upstream Lotus-D's order, with its own
constants (docs/model.md, "The parity oracle"):

    latents = vae.encode(x).latent_dist.mode() * vae.config.scaling_factor
    pred    = unet(latents, t=999, encoder_hidden_states=<empty-prompt embedding>,
                   class_labels=cat(sin([1, 0]), cos([1, 0])))
    image   = (vae.decode(pred / scaling_factor) / 2 + 0.5).clamp(0, 1)
    depth   = image.mean(channels)         normal = image * 2 - 1

The empty-prompt embedding is the one :func:`lotus_deploy.model.checkpoint.load_checkpoint` computed
from the checkpoint's own tokenizer and text encoder (BOS + EOS, not padded to 77 tokens).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.config import Task

UPSTREAM_TIMESTEP = 999  # Lotus-D predicts in one step at the last timestep
UPSTREAM_TASK_SWITCH = (1.0, 0.0)  # upstream's "annotation" switch, embedded as sin/cos


def oracle_output(checkpoint: Any, task: Task, batch: np.ndarray) -> np.ndarray:
    """Float64 output of the checkpoint's own VAE and UNet for ``batch`` ([N,3,H,W] in [-1, 1]).

    The components are switched to float64 for the call and back to float32 afterwards.
    """
    import torch

    vae, unet = checkpoint.vae, checkpoint.unet
    vae.double()
    unet.double()
    try:
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(batch)).double()
            n = x.shape[0]
            scaling = float(vae.config.scaling_factor)
            latents = vae.encode(x).latent_dist.mode() * scaling
            switch = torch.tensor([UPSTREAM_TASK_SWITCH], dtype=torch.float64)
            class_labels = torch.cat([torch.sin(switch), torch.cos(switch)], dim=-1).repeat(n, 1)
            prompt = checkpoint.prompt_embeds.double().expand(n, -1, -1)
            timestep = torch.tensor([UPSTREAM_TIMESTEP], dtype=torch.int64)
            pred = unet(latents, timestep, encoder_hidden_states=prompt, class_labels=class_labels, return_dict=False)[0]
            image = (vae.decode(pred / scaling, return_dict=False)[0] / 2 + 0.5).clamp(0, 1)
            out = image.mean(dim=1, keepdim=True) if task is Task.DEPTH else image * 2 - 1
            result: np.ndarray = out.numpy()
    finally:
        vae.float()
        unet.float()
    return result
