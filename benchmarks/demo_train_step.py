"""How fast this CPU trains builtin:demo's depth UNet: one process with two threads against two processes.

The previous recipe trained the depth UNet in one process with two threads (4 views and 4 detail images a
step); the shipped one (docs/demo-model.md) in two one-thread processes averaging gradients (4 views and
1 detail image each). Which is faster depends on the CPU, and the training run must fit
its 45-minute budget on any 2-core CPU, so this measures both here on random latents of 256x192 views.

Each setting trains ``--steps`` steps. The time per step is the one the training loop itself reports
(``train.progress_line``, measured inside the process that trains) over all but the first tenth of the
steps, so neither start-up (process spawn, model construction) nor the first, slower steps count.

    python benchmarks/demo_train_step.py

Writes ``<out>/demo_train_step_<isa>.json`` + ``.md`` (isa: amx, avx512, avx2 or the machine's name).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lotus_deploy.bench.provenance import collect, provenance_sentence
from lotus_deploy.core.cpu import widest_vector_unit
from lotus_deploy.core.safe_io import write_json_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
LATENT = (4, 24, 32)  # a 256x192 view's latent


@dataclass(frozen=True)
class Setting:
    name: str
    processes: int
    views: int  # per step, over all processes
    detail: int  # detail-preserver images per step, over all processes
    lr: float
    recipe_steps: int  # the recipe's depth steps, to project the stage's time


SETTINGS = (Setting("previous: 1 process x 2 threads", 1, 4, 4, 2e-3, 10_000),
            Setting("shipped: 2 processes x 1 thread", 2, 8, 2, 1e-3, 14_000))


def train_timed(setting: Setting, steps: int) -> tuple[float, list[float]]:
    """Wall time of ``train_unet`` for ``steps`` steps of ``setting`` (start-up included), and the seconds
    per step its progress lines report after the first tenth."""
    import torch

    from lotus_deploy.core.config import Task
    from lotus_deploy.model.demo.train import TrainPlan, UnetPlan, build_models, step_seconds, train_unet

    torch.set_num_threads(2)
    _, _, prompt = build_models(1)
    generator = torch.Generator().manual_seed(0)
    image, target = torch.randn(64, *LATENT, generator=generator), torch.randn(64, *LATENT, generator=generator)
    plan = TrainPlan(depth=UnetPlan(steps, setting.views, lr=setting.lr, detail=setting.detail, processes=setting.processes))
    lines: list[str] = []
    started = time.perf_counter()
    train_unet(Task.DEPTH, image, target, prompt, plan, seed=1, say=lines.append)
    wall = time.perf_counter() - started
    return wall, step_seconds(lines)


def measure(setting: Setting, steps: int) -> dict[str, Any]:
    wall, rates = train_timed(setting, steps)
    per_step = float(np.mean(rates))
    return {"setting": setting.name, "processes": setting.processes, "views_per_step": setting.views, "detail_per_step": setting.detail,
            "s_per_step": round(per_step, 4), "s_per_step_spread": [round(min(rates), 4), round(max(rates), 4)],
            "views_per_s": round(setting.views / per_step, 1),
            "images_per_s": round((setting.views + setting.detail) / per_step, 1), "recipe_steps": setting.recipe_steps,
            "projected_depth_training_s": round(per_step * setting.recipe_steps, 1), "wall_s": round(wall, 1)}


def write_markdown(data: dict[str, Any], path: Path) -> None:
    lines = ["# builtin:demo depth UNet: seconds per training step on this CPU", "", provenance_sentence(data) + ".", "",
             f"Random latents of 256x192 views; each setting trains {data['steps']} steps, timed inside the training "
             "process over all but the first tenth of them (start-up and the first, slower steps left out); the range: the "
             "fastest and the slowest tenth. Projected: the recipe's depth steps at this rate, without encoding and "
             "evaluation.", "",
             "| setting | views + detail per step | s/step | s/step range | views/s | images/s | depth steps | projected depth training (s) |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['setting']} | {r['views_per_step']} + {r['detail_per_step']} | {r['s_per_step']} | "
              f"{r['s_per_step_spread'][0]}–{r['s_per_step_spread'][1]} | {r['views_per_s']} | "
              f"{r['images_per_s']} | {r['recipe_steps']} | {r['projected_depth_training_s']} |" for r in data["rows"]]
    lines += ["", f"Two processes see {data['views_per_s_ratio']}x the views per second of one process with two threads here."]
    write_text_atomic(path, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100, help="steps each setting trains (at least 2: the first tenth is not timed)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.steps < 2:
        raise SystemExit(f"demo_train_step: --steps must be at least 2 (the first tenth is not timed), got {args.steps}")
    provenance = collect()
    rows = [measure(setting, args.steps) for setting in SETTINGS]
    data = {"command": ["python", "benchmarks/demo_train_step.py"] + (["--steps", str(args.steps)] if args.steps != 100 else []),
            "date": provenance["date"], "provenance": {"git": provenance["git"], "cpu": provenance["cpu"]}, "steps": args.steps,
            "rows": rows, "views_per_s_ratio": round(rows[1]["views_per_s"] / rows[0]["views_per_s"], 2)}
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"demo_train_step_{widest_vector_unit(provenance['cpu'])}"
    write_json_atomic(args.out / f"{name}.json", data)
    write_markdown(data, args.out / f"{name}.md")
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
