"""[torch] Export-time numerics: a GroupNorm formulation that stays accurate in float32 runtimes.

Why: the TorchScript exporter writes ``nn.GroupNorm`` as Reshape -> InstanceNormalization, and a
hand-written single-axis version is fused by ONNX Runtime into LayerNormalization; both CPU kernels
accumulate long float32 sums (one per group: C/G x H x W values, ~50 k at 256x256) whose error, on a
badly conditioned model, reached the output at 1.3e-4 against float64 (measured on a random-weight
Lotus-D; the rule is 1e-4). Reducing in two levels — over W, then over the rest — keeps every sum
short, and centring before squaring (two-pass variance) avoids cancellation: the same model then
measured 3.3e-5. The function is identical; only the order of float32 operations changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..core.config import GROUPNORM_MODES  # the one list of modes (ExportSettings validates against it)


def _two_level_class() -> type:
    import torch

    class TwoLevelGroupNorm(torch.nn.Module):
        """GroupNorm with the same parameters as ``source``, reduced over W then over (C/G, H)."""

        def __init__(self, source: torch.nn.GroupNorm) -> None:
            super().__init__()
            self.num_groups = source.num_groups
            self.eps = source.eps
            self.affine = source.affine
            self.weight = source.weight
            self.bias = source.bias

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            grouped = x.reshape(x.shape[0], self.num_groups, -1, x.shape[-1])
            mean = grouped.mean(dim=3, keepdim=True).mean(dim=2, keepdim=True)
            centred = grouped - mean
            var = (centred * centred).mean(dim=3, keepdim=True).mean(dim=2, keepdim=True)
            y = (centred / torch.sqrt(var + self.eps)).reshape(x.shape)
            if not self.affine:
                return y
            shape = [1, -1] + [1] * (x.dim() - 2)
            return y * self.weight.reshape(shape) + self.bias.reshape(shape)

    return TwoLevelGroupNorm


@contextlib.contextmanager
def group_norms(module: Any, mode: str) -> Iterator[int]:
    """Temporarily swap every ``nn.GroupNorm`` in ``module`` (yields how many); restored on exit."""
    import torch

    if mode not in GROUPNORM_MODES:
        from ..core.errors import ConfigError

        raise ConfigError(f"groupnorm mode {mode!r} is unknown", f"use one of {', '.join(GROUPNORM_MODES)}")
    swapped: list[tuple[Any, str, Any]] = []
    if mode == "two-level":
        replacement = _two_level_class()
        for parent in list(module.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, torch.nn.GroupNorm):
                    swapped.append((parent, name, child))
                    setattr(parent, name, replacement(child))
    try:
        yield len(swapped)
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


def _constant_class() -> type:
    import torch

    class ConstantEmbedding(torch.nn.Module):
        """Stands in for an embedding whose input is a constant: returns the value computed in float64.

        The value has batch dimension 1 and broadcasts, so the exporter folds everything downstream of
        it (every ResNet's ``time_emb_proj``) into constants too.
        """

        def __init__(self, value: torch.Tensor) -> None:
            super().__init__()
            self.register_buffer("value", value)

        def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
            value = self.value
            assert isinstance(value, torch.Tensor)
            return value

    return ConstantEmbedding


@contextlib.contextmanager
def baked_embeddings(fused: Any) -> Iterator[None]:
    """Replace the UNet's timestep (t=999) and task-switcher embeddings by one float64-computed constant.

    Why: both inputs are constants of Lotus-D, but the timestep path is traced per batch element
    (``timesteps.expand(N)``), so without this the graph would compute ``sin/cos(999 * f)`` at run time
    — wasted work, and in fp16 an argument of 999 is off by up to 0.5 rad. Computing ``time_embedding
    + class_embedding`` once in float64 and rounding to float32 is exact to float32 precision.
    """
    import torch

    unet = fused.unet
    originals = (unet.time_embedding, unet.class_embedding)
    with torch.no_grad():
        timestep = fused.timestep.to(torch.float64)
        t_emb = unet.time_proj(timestep).to(torch.float64)
        time_embedding = _double_copy(unet.time_embedding)
        emb = time_embedding(t_emb)
        if unet.class_embedding is not None:
            class_emb = _double_copy(unet.class_embedding)(fused.task_emb.to(torch.float64))
            emb = torch.cat([emb, class_emb], dim=-1) if unet.config.class_embeddings_concat else emb + class_emb
    unet.time_embedding = _constant_class()(emb.to(torch.float32))
    unet.class_embedding = None
    try:
        yield
    finally:
        unet.time_embedding, unet.class_embedding = originals


def _double_copy(module: Any) -> Any:
    import copy

    import torch

    return copy.deepcopy(module).to(dtype=torch.float64)


@contextlib.contextmanager
def export_numerics(fused: Any, groupnorm: str) -> Iterator[None]:
    """Everything export changes about *how* the fused module computes (never *what*), then undone."""
    with group_norms(fused, groupnorm), baked_embeddings(fused):
        yield
