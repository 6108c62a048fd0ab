"""[torch] Checkpoints and the fused one-step module (torch, diffusers and transformers are imported on use)."""

from .checkpoint import LoadedCheckpoint, load_checkpoint, resolve_checkpoint
from .fused import build_module, task_embedding

__all__ = ["LoadedCheckpoint", "build_module", "load_checkpoint", "resolve_checkpoint", "task_embedding"]
