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

GROUPNORM_MODES = ("two-level", "native")


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
        from .errors import ConfigError

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
