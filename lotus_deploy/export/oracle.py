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

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..core.config import Task

UPSTREAM_TIMESTEP = 999  # Lotus-D predicts in one step at the last timestep
UPSTREAM_TASK_SWITCH = (1.0, 0.0)  # upstream's "annotation" switch, embedded as sin/cos


def oracle_output(checkpoint: Any, task: Task, batch: np.ndarray) -> np.ndarray:
    """Float64 output of the checkpoint's own VAE and UNet for ``batch`` ([N,3,H,W] in [-1, 1]).

    Computed in float64 without a float64 copy of the whole model: the VAE (small) is switched to
    float64 for the call, and each UNet module holding weights is switched just for its own forward
    (:func:`float64_per_module`); afterwards every module holds its original float32 tensors again.
    Images run one at a time (every op here is per image), which halves the float64 activations.
    """
    import torch

    vae, unet = checkpoint.vae, checkpoint.unet
    outputs = []
    with torch.no_grad(), float64_whole(vae), float64_per_module(unet):
        for index in range(batch.shape[0]):  # one image at a time: float64 activations are twice float32's
            x = torch.from_numpy(np.ascontiguousarray(batch[index : index + 1])).double()
            scaling = float(vae.config.scaling_factor)
            latents = vae.encode(x).latent_dist.mode() * scaling
            switch = torch.tensor([UPSTREAM_TASK_SWITCH], dtype=torch.float64)
            class_labels = torch.cat([torch.sin(switch), torch.cos(switch)], dim=-1)
            prompt = checkpoint.prompt_embeds.double()
            timestep = torch.tensor([UPSTREAM_TIMESTEP], dtype=torch.int64)
            pred = unet(latents, timestep, encoder_hidden_states=prompt, class_labels=class_labels, return_dict=False)[0]
            image = (vae.decode(pred / scaling, return_dict=False)[0] / 2 + 0.5).clamp(0, 1)
            out = image.mean(dim=1, keepdim=True) if task is Task.DEPTH else image * 2 - 1
            outputs.append(out.numpy())
    result: np.ndarray = np.concatenate(outputs, axis=0)
    return result


def _own_float_tensors(module: Any) -> list[Any]:
    import torch

    tensors = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
    return [t for t in tensors if torch.is_floating_point(t)]


def _to_float64(tensors: list[Any]) -> list[Any]:
    """Switch each tensor's data to a float64 copy; returns the original data to restore."""
    originals = [t.data for t in tensors]
    for tensor in tensors:
        tensor.data = tensor.data.double()
    return originals


def _restore(tensors: list[Any], originals: list[Any]) -> None:
    for tensor, data in zip(tensors, originals, strict=True):
        tensor.data = data


@contextlib.contextmanager
def float64_whole(module: Any) -> Iterator[None]:
    """``module`` entirely in float64 for the block (for small modules whose code reads its own dtype,
    like the VAE decoder); the original float32 tensors are put back, not re-created."""
    tensors = [t for sub in module.modules() for t in _own_float_tensors(sub)]
    originals = _to_float64(tensors)
    try:
        yield
    finally:
        _restore(tensors, originals)


@contextlib.contextmanager
def float64_per_module(root: Any) -> Iterator[None]:
    """Every module of ``root`` that holds weights runs in float64, one at a time: its tensors become
    float64 copies just before its forward (floating inputs are cast to float64 too) and get their
    original float32 data back right after. Peak extra memory: one module's weights in float64."""
    import torch

    saved: dict[int, list[list[Any]]] = {}
    handles = []

    def before(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        saved.setdefault(id(module), []).append(_to_float64(_own_float_tensors(module)))

        def up(value: Any) -> Any:
            return value.double() if isinstance(value, torch.Tensor) and torch.is_floating_point(value) else value

        return tuple(up(a) for a in args), {k: up(v) for k, v in kwargs.items()}

    def after(module: Any, args: Any, output: Any) -> None:
        _restore(_own_float_tensors(module), saved[id(module)].pop())

    try:
        for module in root.modules():
            if _own_float_tensors(module):
                handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
                handles.append(module.register_forward_hook(after))
        yield
    finally:
        for handle in handles:
            handle.remove()
        for module in root.modules():  # a forward that raised left some module in float64
            stack = saved.get(id(module))
            while stack:
                _restore(_own_float_tensors(module), stack.pop())
