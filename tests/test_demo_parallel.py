"""Data-parallel training of builtin:demo's UNets: processes really join one gloo group, rank 0's result
and lines come back, a failing process fails the run, and a two-process UNet training trains."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from extras import need, need_all

need_all("torch", "diffusers")
torch = need("torch")

from lotus_deploy.core.config import Task  # noqa: E402
from lotus_deploy.model.demo import train  # noqa: E402
from lotus_deploy.model.demo.parallel import run_data_parallel  # noqa: E402


def _sum_of_ranks(rank: int, world: int, say: Any) -> dict[str, Any]:
    import torch.distributed as dist

    value = torch.tensor([float(rank + 1)])
    dist.all_reduce(value)
    say(f"rank {rank} of {world}")
    return {"sum": float(value), "threads": torch.get_num_threads()}


def _fails_on_rank_one(rank: int, world: int, say: Any) -> None:
    if rank == 1:
        raise ValueError("rank one broke")


def test_processes_share_one_group_and_rank_zero_reports() -> None:
    lines: list[str] = []
    result = run_data_parallel(_sum_of_ranks, 2, lines.append)
    assert result == {"sum": 3.0, "threads": 1}  # 1 + 2, summed across both processes, each on one thread
    assert lines == ["rank 0 of 2"]  # only rank 0 speaks


def test_a_failing_process_fails_the_run() -> None:
    with pytest.raises(Exception, match="rank one broke"):
        run_data_parallel(_fails_on_rank_one, 2, lambda line: None)


def test_two_process_unet_training_trains() -> None:
    plan = replace(train.TrainPlan.quick(), depth=train.UnetPlan(steps=10, batch=4, detail=2, processes=2))
    generator = torch.Generator().manual_seed(0)
    image, target = torch.randn(8, 4, 8, 12, generator=generator), torch.randn(8, 4, 8, 12, generator=generator)
    prompt = torch.randn(1, 2, 32, generator=generator)
    lines: list[str] = []
    unet, losses = train.train_unet(Task.DEPTH, image, target, prompt, plan, seed=3, say=lines.append)
    assert len(losses) == 10 and len(lines) == 10 and not unet.training
    fresh = train.fresh_unet(3).state_dict()
    changed = [name for name, tensor in unet.state_dict().items() if not torch.equal(tensor, fresh[name])]
    assert len(changed) > len(fresh) // 2  # the trained weights came back, not the initialization


@pytest.mark.parametrize("shape", [{"batch": 3}, {"batch": 4, "detail": 1}, {"batch": 4, "detail": 6}])
def test_plans_that_do_not_split_evenly_are_refused(shape: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="multiples of its processes"):
        train.UnetPlan(steps=1, processes=2, **shape)


def test_a_unet_starts_from_another_tasks_weights_in_every_process() -> None:
    plan = replace(train.TrainPlan.quick(), depth=train.UnetPlan(steps=2, batch=4, lr=0.0, detail=2, processes=2, start="normal"))
    generator = torch.Generator().manual_seed(0)
    image, target = torch.randn(8, 4, 8, 12, generator=generator), torch.randn(8, 4, 8, 12, generator=generator)
    start = train.fresh_unet(99).state_dict()
    unet, _ = train.train_unet(Task.DEPTH, image, target, torch.randn(1, 2, 32, generator=generator), plan, seed=3,
                               say=lambda line: None, start=start)
    assert all(torch.equal(tensor, start[name]) for name, tensor in unet.state_dict().items())  # lr 0: the start comes back whole
    assert not torch.equal(unet.state_dict()["conv_in.weight"], train.fresh_unet(3).state_dict()["conv_in.weight"])


def test_the_unet_started_from_comes_first_and_only_the_other_task_can_be_it() -> None:
    quick = replace(train.TrainPlan.quick(), depth=train.UnetPlan(12, 4))
    assert quick.task_order() == [Task.DEPTH, Task.NORMAL]
    assert replace(quick, depth=replace(quick.depth, start="normal")).task_order() == [Task.NORMAL, Task.DEPTH]
    assert replace(quick, normal=replace(quick.normal, start="depth")).task_order() == [Task.DEPTH, Task.NORMAL]
    for depth_start, normal_start in (("depth", None), ("normal", "depth"), ("disparity", None)):
        with pytest.raises(ValueError, match="can start only from the other task's UNet"):
            replace(quick, depth=replace(quick.depth, start=depth_start), normal=replace(quick.normal, start=normal_start))
