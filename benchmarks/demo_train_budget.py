"""Whether builtin:demo's training run fits its 45-minute budget on this CPU, projected stage by stage.

A full retrain takes most of an hour, and how long depends on the CPU (docs/demo-model.md). This runs a
sample of every stage of the committed recipe (``TrainPlan()``) with the training code itself — render
views, train the VAE, encode latents, train each UNet in the recipe's processes with its batch, evaluate
held-out views — and scales each to the recipe's counts. Step times come from the training loop's own
progress lines (all but the first tenth of the sampled steps), so start-up does not inflate them. Saving
weights is left out (well under a second). It is a projection: `benchmarks/retrain.py` measures a run.

    python benchmarks/demo_train_budget.py

Writes ``<out>/demo_train_budget_<isa>.json`` + ``.md`` (isa: amx, avx512, avx2 or the machine's name),
with the shipped card's measured stage times beside the projection.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lotus_deploy.bench.provenance import collect, provenance_sentence
from lotus_deploy.core.cpu import widest_vector_unit
from lotus_deploy.core.safe_io import write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    from lotus_deploy.core.config import Task
    from lotus_deploy.model.demo.train import TrainPlan

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


@dataclass(frozen=True)
class Row:
    """One timed piece of the run: ``unit_s`` seconds for each of ``units`` in the full recipe."""

    stage: str  # the card's stage (its timings_s key) this piece belongs to
    piece: str
    unit: str
    unit_s: float
    units: int

    @property
    def projected_s(self) -> float:
        return self.unit_s * self.units


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def steady_step_s(lines: list[str]) -> float:
    """Mean seconds per step of a sampled run, its first tenth left out."""
    from lotus_deploy.model.demo.train import step_seconds

    return float(np.mean(step_seconds(lines)))


def project(views: int, steps: int, seed: int, say: Callable[[str], None]) -> list[Row]:
    """Time ``views`` scenes and ``steps`` steps of each stage of the committed recipe; one row per piece."""
    import torch

    from lotus_deploy.core.config import Task
    from lotus_deploy.model.demo import train
    from lotus_deploy.synthetic.accuracy import held_out_scenes

    plan = train.TrainPlan()
    torch.set_num_threads(max(1, plan.workers))
    rng = np.random.default_rng(seed)
    rows: list[Row] = []

    say(f"render {views} views")
    startup_s, _ = timed(lambda: train.render_set(0, plan.workers, (8, 8), plan.workers))  # the pool's start, paid once a run
    render_s, scenes = timed(lambda: train.render_set(seed * 1000, views, plan.view, plan.workers))
    rescale_s, rescaled = timed(lambda: train.multiscale(scenes, plan.scales))
    if render_s <= startup_s:
        raise SystemExit(f"demo_train_budget: {views} views rendered faster than the pool started ({render_s:.1f} s): pass more --views")
    rows.append(Row("render_s", f"render a view ({plan.workers} processes) and shrink it", "view",
                    (render_s - startup_s + rescale_s) / views, plan.scenes))

    say(f"train the VAE for {steps} steps")
    vae, _, prompt = train.build_models(seed)
    crop_s, data = timed(lambda: train.crops(rescaled, plan.crop, plan.crops_per_scene, rng))
    lines: list[str] = []
    train.train_vae(vae, data, replace(plan, vae_steps=steps), seed, lines.append)
    rows.append(Row("vae_s", f"cut {plan.crop}-px crops", "view", crop_s / views, plan.scenes))
    rows.append(Row("vae_s", f"VAE step (batch {plan.vae_batch})", "step", steady_step_s(lines), plan.vae_steps))

    held_s, held = timed(lambda: held_out_scenes(2, plan.view[1]))
    rows.append(Row("other_s", "render held-out views (one process)", "view", held_s / 2, plan.held_out))

    for task in (Task.DEPTH, Task.NORMAL):
        say(f"encode and train the {task.value} UNet for {steps} steps")
        rows += unet_rows(task, plan, vae, prompt, scenes, rescaled, held, steps, rng)
    return rows


def unet_rows(task: Task, plan: TrainPlan, vae: Any, prompt: Any, scenes: list[Any], rescaled: list[Any], held: list[Any], steps: int,
              rng: np.random.Generator) -> list[Row]:
    """One UNet's stage: encode its training latents from ``scenes``, train ``steps`` steps, evaluate ``held``."""
    from lotus_deploy.model.demo import train
    from lotus_deploy.synthetic.accuracy import mean_accuracy

    stage, unet_plan, views = f"unet_{task.value}_s", plan.unet(task), len(scenes)

    def encode() -> tuple[Any, Any]:
        if unet_plan.crop is None:
            return train.encode_views(vae, scenes, task)
        part = train.crops(rescaled, unet_plan.crop, plan.crops_per_scene, rng)
        return train.encode_all(vae, part["image"]), train.encode_all(vae, part[task.value])

    encode_s, (image, target) = timed(encode)
    if len(image) < unet_plan.batch:
        raise SystemExit(f"demo_train_budget: {views} views give {len(image)} {task.value} training latents, fewer than its "
                         f"batch of {unet_plan.batch}: pass more --views")
    lines: list[str] = []
    sample = replace(plan, **{task.value: replace(unet_plan, steps=steps)})
    unet, _ = train.train_unet(task, image, target, prompt, sample, train.SEED, lines.append)
    processes = f"{unet_plan.processes} process{'es' if unet_plan.processes > 1 else ''}"
    evaluate_s, _ = timed(lambda: mean_accuracy(train.module_predictor(vae, unet, prompt, task), task.value, held))
    return [Row(stage, "encode its training latents", "view", encode_s / views, plan.scenes),
            Row(stage, f"UNet step ({unet_plan.batch} + {unet_plan.detail_images()} detail, {processes})", "step",
                steady_step_s(lines), unet_plan.steps),
            Row(stage, "evaluate held-out views", "view", evaluate_s / len(held), plan.held_out)]


def shipped_timings() -> dict[str, float]:
    from lotus_deploy.model.builtin import DEMO_CARD, DEMO_WEIGHTS

    card: dict[str, Any] = json.loads((DEMO_WEIGHTS / DEMO_CARD).read_text())
    timings: dict[str, float] = card.get("timings_s", {})
    return timings


def summary(rows: list[Row], budget_s: float) -> dict[str, Any]:
    stages: dict[str, float] = {}
    for row in rows:
        stages[row.stage] = stages.get(row.stage, 0.0) + row.projected_s
    total = sum(stages.values())
    shipped = shipped_timings()
    return {"stages_s": {stage: round(s, 1) for stage, s in stages.items()}, "total_s": round(total, 1), "budget_s": budget_s,
            "fits": total <= budget_s, "shipped_run_s": shipped,
            "ratio_to_shipped_run": round(total / shipped["total_s"], 2) if shipped.get("total_s") else None}


def write_markdown(data: dict[str, Any], path: Path) -> None:
    s = data["summary"]
    lines = ["# builtin:demo's training run on this CPU: projected against its 45-minute budget", "",
             provenance_sentence(data) + ".", "",
             f"Each stage of the committed recipe sampled ({data['views']} views, {data['steps']} steps of each model; step "
             "times from the training loop, first tenth left out) and scaled to the recipe's counts. A projection, not a run: "
             "`benchmarks/retrain.py` measures one.", "",
             "| stage | piece | per unit (s) | units | projected (s) |", "|---|---|---|---|---|"]
    lines += [f"| {r['stage']} | {r['piece']} | {r['unit_s']:.4f} / {r['unit']} | {r['units']} | {r['projected_s']:.0f} |"
              for r in data["rows"]]
    shipped = s["shipped_run_s"]
    lines += ["", "| stage | projected here (s) | shipped run, measured (s) |", "|---|---|---|"]
    lines += [f"| {stage} | {seconds:.0f} | {shipped.get(stage, '–')} |" for stage, seconds in s["stages_s"].items()]
    lines += [f"| **total** | **{s['total_s']:.0f}** | **{shipped.get('total_s', '–')}** |", "",
              f"Budget {s['budget_s']:.0f} s: **{'fits' if s['fits'] else 'does not fit'}** on this CPU "
              f"({s['total_s'] / s['budget_s']:.2f}x the budget; {s['ratio_to_shipped_run']}x the shipped run's time)."]
    write_text_atomic(path, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    from lotus_deploy.model.demo.train import SEED, TIME_BUDGET_S

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--views", type=int, default=96, help="views to render and encode (at least 4, and enough for a batch of each UNet)")
    p.add_argument("--steps", type=int, default=40, help="steps of each model to time (at least 2: the first tenth is not timed)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.views < 4 or args.steps < 2:
        raise SystemExit(f"demo_train_budget: --views must be at least 4 and --steps at least 2, got {args.views} and {args.steps}")
    provenance = collect()
    rows = project(args.views, args.steps, SEED, print)
    command = ["python", "benchmarks/demo_train_budget.py"] + [flag for name, default in (("views", 96), ("steps", 40))
                                                                if getattr(args, name) != default
                                                                for flag in (f"--{name}", str(getattr(args, name)))]
    data = {"command": command, "date": provenance["date"], "provenance": {"git": provenance["git"], "cpu": provenance["cpu"]},
            "views": args.views, "steps": args.steps,
            "rows": [{"stage": r.stage, "piece": r.piece, "unit": r.unit, "unit_s": round(r.unit_s, 4), "units": r.units,
                      "projected_s": round(r.projected_s, 1)} for r in rows],
            "summary": summary(rows, TIME_BUDGET_S)}
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"demo_train_budget_{widest_vector_unit(provenance['cpu'])}"
    write_json_atomic(args.out / f"{name}.json", data)
    write_markdown(data, args.out / f"{name}.md")
    print(json.dumps(data["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
