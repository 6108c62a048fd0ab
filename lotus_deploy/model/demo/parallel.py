"""Data-parallel training across processes, one thread each, for ``builtin:demo``'s training run.

At the demo's tensor sizes PyTorch's intra-op threads gain little (two threads make a UNet step 1.2x
faster), while two processes that each take their own batch on their own core and average gradients
(DistributedDataParallel over gloo) see twice the images in the same time (docs/demo-model.md).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol


class RankJob(Protocol):
    """Work one process does: ``rank`` of ``world``, reporting through ``say`` (rank 0's lines reach the caller)."""

    def __call__(self, rank: int, world: int, say: Callable[[str], None]) -> Any: ...


def run_data_parallel(job: RankJob, processes: int, say: Callable[[str], None]) -> Any:
    """Run ``job`` in ``processes`` spawned processes joined in one gloo process group; returns rank 0's
    result. ``job`` must be picklable (a module-level function or a ``functools.partial`` of one): spawned
    processes start fresh, as they must after PyTorch has started its threads."""
    import torch.multiprocessing as mp

    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    with tempfile.TemporaryDirectory(prefix="lotus-ddp-") as scratch:
        folder = Path(scratch)
        spawn = mp.get_context("spawn")
        messages = spawn.SimpleQueue()
        context = mp.start_processes(_entry, args=(processes, folder, job, messages), nprocs=processes, join=False, start_method="spawn")
        while not context.join(timeout=0.5):  # raises, with the child's traceback, if one of them fails
            _forward(messages, say)
        _forward(messages, say)
        import torch

        return torch.load(folder / "result.pt", weights_only=False)


def _forward(messages: Any, say: Callable[[str], None]) -> None:
    while not messages.empty():
        say(messages.get())


def _entry(rank: int, world: int, folder: Path, job: RankJob, messages: Any) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=(folder / "rendezvous").as_uri(), rank=rank, world_size=world)
    try:
        result = job(rank, world, messages.put if rank == 0 else _silent)
        if rank == 0:
            tmp = folder / ".result.pt"
            torch.save(result, tmp)
            tmp.replace(folder / "result.pt")
    finally:
        dist.destroy_process_group()


def _silent(line: str) -> None:
    del line
