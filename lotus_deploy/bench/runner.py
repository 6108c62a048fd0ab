"""The measurement loop: every candidate in its own process, same inputs, timed iterations interleaved.

For each (size, batch) scenario: the same input batch goes to every candidate; each runs ``warmup``
untimed iterations; then ``iterations`` rounds, each round timing one run of every candidate in a
rotated order, so slow drift (thermal, other load) hits all candidates alike. FLOPs are counted and
parity computed between rounds, never while a candidate is being timed. The fp32 4096² matrix-multiply
rate is measured before and after (best of 3, numpy and torch), and once more after every round (one
numpy product, in the parent, while the children are idle), so the fraction can also be taken against
the rate the machine had while the candidates ran.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.config import Task
from ..core.contract import GraphShape, check_spatial
from ..core.errors import ConfigError
from . import matmul, provenance
from .plan import Candidate, flops_graph
from .stats import achieved_gflops, images_per_second, summarize
from .worker import Worker, WorkerError, WorkerSpec

SCHEMA = "lotus-bench/1"
REFERENCES = ("float32", "float64", "none")


@dataclass(frozen=True)
class BenchSettings:
    sizes: tuple[tuple[int, int], ...] = ((256, 256),)
    batches: tuple[int, ...] = (1,)
    iterations: int = 5
    warmup: int = 1
    reference: str = "float32"
    images: Path | None = None
    matmul_size: int = 4096
    matmul_repeats: int = 3
    quiet: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ConfigError(f"--iterations {self.iterations} is not positive", "use 5 or more for committed numbers")
        if self.warmup < 0:
            raise ConfigError(f"--warmup {self.warmup} is negative", "use 1")
        if self.reference not in REFERENCES:
            raise ConfigError(f"--reference {self.reference!r} is not one of {', '.join(REFERENCES)}", "use float32")
        if not self.sizes or not self.batches:
            raise ConfigError("no sizes or no batch sizes to run", "pass --size 256 and --batch 1")
        for h, w in self.sizes:
            check_spatial(h, w)
        for b in self.batches:
            if b < 1:
                raise ConfigError(f"--batch {b} is not positive", "use 1")


def say(settings: BenchSettings, text: str) -> None:
    if not settings.quiet:
        print(text, file=sys.stderr, flush=True)


def make_inputs(height: int, width: int, batch: int, images: Path | None) -> tuple[np.ndarray, list[str]]:
    """The one input batch every candidate gets: photos (resized/padded per docs/contract.md) or synthetic images."""
    from ..export.parity_inputs import parity_batch

    return parity_batch(GraphShape(batch=batch, height=height, width=width), count=batch, processing_res=max(height, width), image_dir=images)


def fits(candidate: Candidate, height: int, width: int, batch: int) -> str | None:
    """Why a candidate cannot run this scenario (a static graph of another size), or None."""
    if candidate.artifact is None or candidate.is_torch or candidate.stage is not None:
        return None
    shape = candidate.artifact.shape
    if shape.is_static and (shape.height, shape.width) != (height, width):
        return f"static graph {shape.height}x{shape.width}"
    if shape.batch is not None and shape.batch != batch:
        return f"static batch {shape.batch}"
    return None


def _stage_input_shape(stage: str | None, height: int, width: int, batch: int) -> list[int]:
    return [batch, 3, height, width] if stage in (None, "encoder") else [batch, 4, height // 8, width // 8]


class _Flops:
    """FLOP counts per (graph, input shape), counted once."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, tuple[int, ...]], dict[str, Any] | None] = {}

    def get(self, graph: Path | None, shape: list[int]) -> dict[str, Any] | None:
        if graph is None:
            return None
        key = (str(graph), tuple(shape))
        if key not in self.cache:
            from ..export.flops import count_flops

            try:
                self.cache[key] = count_flops(graph, shape).to_json()
            except Exception as exc:  # noqa: BLE001 - a graph we cannot count still gets timed
                self.cache[key] = {"flops": None, "error": f"{exc.__class__.__name__}: {exc}"[:200]}
        return self.cache[key]


def _spec(candidate: Candidate) -> WorkerSpec:
    folder = str(candidate.artifact.folder) if candidate.artifact else None
    if candidate.stage is not None:
        return WorkerSpec(backend=candidate.backend, artifact=folder, graph=str(candidate.graph), options=candidate.options)
    return WorkerSpec(backend=candidate.backend, artifact=folder, options=candidate.options)


def _start_workers(candidates: Sequence[Candidate], settings: BenchSettings, rows: dict[str, dict[str, Any]]) -> dict[str, Worker]:
    workers: dict[str, Worker] = {}
    for index, cand in enumerate(candidates, 1):
        say(settings, f"[load {index}/{len(candidates)}] {cand.label} ...")
        try:
            worker = Worker(_spec(cand), cand.label)
        except WorkerError as exc:
            rows[cand.id]["error"] = str(exc)
            say(settings, f"    failed: {exc}")
            continue
        workers[cand.id] = worker
        rows[cand.id].update(load_s=worker.info["load_s"], rss_after_load_mib=worker.info.get("rss_after_load_mib"), providers=worker.info.get("providers"),
                             backend_details=worker.info.get("details"))
        if worker.info.get("precision"):
            rows[cand.id]["precision"] = worker.info["precision"]
        say(settings, f"    loaded in {worker.info['load_s']:.1f} s")
    return workers


class _References:
    """Reference outputs for parity: the float32 torch candidate's own output, or a dedicated child."""

    def __init__(self, settings: BenchSettings, candidates: Sequence[Candidate]) -> None:
        self.settings = settings
        self.candidates = candidates
        self.workers: dict[str, Worker] = {}
        self.notes: dict[str, str] = {}

    def get(self, model: str, artifact: Any, batch: np.ndarray, outputs: dict[str, np.ndarray | None]) -> np.ndarray | None:
        if self.settings.reference == "none":
            return None
        if self.settings.reference == "float32":
            for cand in self.candidates:
                if cand.backend == "torch" and cand.source_model == model and outputs.get(cand.id) is not None:
                    self.notes[model] = "PyTorch eager float32 (the torch candidate's own output)"
                    return outputs[cand.id]
        if model not in self.workers:
            dtype = "float64" if self.settings.reference == "float64" else "float32"
            say(self.settings, f"[reference] loading PyTorch {dtype} for {model} (untimed) ...")
            try:
                self.workers[model] = Worker(WorkerSpec(backend="torch", artifact=str(artifact.folder), options={"dtype": dtype}), f"reference {dtype}")
            except WorkerError as exc:
                self.notes[model] = f"unavailable: {exc}"
                return None
            self.notes[model] = f"PyTorch eager {dtype} (separate untimed process)"
        worker = self.workers[model]
        worker.call("input", batch)
        worker.call("run")
        out: np.ndarray = worker.call("output")
        return out

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()


def _prepare_stages(group: list[Candidate], workers: dict[str, Worker], batch: np.ndarray) -> None:
    """Feed split stages in chain order: encoder gets the image, the UNet the latents, the decoder the prediction."""
    order = {"encoder": 0, "unet": 1, "decoder": 2}
    current = batch
    for cand in sorted(group, key=lambda c: order[c.stage or "encoder"]):
        worker = workers[cand.id]
        worker.call("input", current)
        worker.call("run")  # untimed; counts as one warm-up run
        current = worker.call("output")


def run_scenario(height: int, width: int, batch_size: int, candidates: Sequence[Candidate], workers: dict[str, Worker],
                 settings: BenchSettings, refs: _References, flops: _Flops, skipped: list[dict[str, Any]],
                 round_rate: matmul.RoundRate | None = None) -> list[dict[str, Any]]:
    from ..core.parity import compare

    tag = f"{height}x{width} b{batch_size}"
    batch, names = make_inputs(height, width, batch_size, settings.images)
    active: list[Candidate] = []
    for cand in candidates:
        if cand.id not in workers:
            continue
        why = fits(cand, height, width, batch_size)
        if why:
            skipped.append({"candidate": cand.id, "label": cand.label, "height": height, "width": width, "batch": batch_size, "why": why})
            continue
        active.append(cand)
    samples: dict[str, list[float]] = {c.id: [] for c in active}
    errors: dict[str, str] = {}
    say(settings, f"[{tag}] inputs: {', '.join(names)}; {len(active)} candidates; warm-up {settings.warmup}, {settings.iterations} timed rounds")
    for cand in active:
        if cand.stage is None:
            workers[cand.id].call("input", batch)
    stage_groups: dict[str, list[Candidate]] = {}
    for cand in active:
        if cand.stage is not None:
            stage_groups.setdefault(str(cand.artifact.folder if cand.artifact else ""), []).append(cand)
    for group in stage_groups.values():
        try:
            _prepare_stages(group, workers, batch)
        except WorkerError as exc:
            for cand in group:
                errors[cand.id] = str(exc)
    flop_counts = {c.id: flops.get(flops_graph(c, list(candidates)), _stage_input_shape(c.stage, height, width, batch_size)) for c in active}
    for cand in active:
        for _ in range(settings.warmup):
            if cand.id in errors:
                break
            try:
                workers[cand.id].call("run")
            except WorkerError as exc:
                errors[cand.id] = str(exc)
    round_rates: list[float] = []
    for round_index in range(settings.iterations):
        running = [c for c in active if c.id not in errors]
        if not running:
            break
        shift = round_index % len(running)
        line = []
        for cand in running[shift:] + running[:shift]:
            try:
                seconds = float(workers[cand.id].call("run"))
            except WorkerError as exc:
                errors[cand.id] = str(exc)
                continue
            samples[cand.id].append(seconds)
            line.append(f"{cand.label} {seconds:.3f}s")
        if round_rate is not None:
            round_rates.append(round_rate.sample())
            line.append(f"matmul {round_rates[-1]:.1f} GFLOP/s")
        say(settings, f"[{tag}] round {round_index + 1}/{settings.iterations}: " + ", ".join(line))
    outputs: dict[str, np.ndarray | None] = {}
    for cand in active:
        if cand.id not in errors and (cand.stage in (None, "decoder")):
            outputs[cand.id] = workers[cand.id].call("output")
    results = []
    reference_cache: dict[str, np.ndarray | None] = {}
    for cand in active:
        row: dict[str, Any] = {"candidate": cand.id, "label": cand.label, "backend": cand.backend, "precision": cand.precision, "stage": cand.stage,
                               "height": height, "width": width, "batch": batch_size, "inputs": names}
        if cand.id in errors:
            row["error"] = errors[cand.id]
            results.append(row)
            continue
        stats = summarize(samples[cand.id])
        info = workers[cand.id].info
        row.update(precision=info.get("precision") or cand.precision, backend_details=info.get("details"))  # what actually ran
        count = flop_counts.get(cand.id) or {}
        flops_per_batch = count.get("flops")
        row.update(latencies_s=[round(s, 6) for s in samples[cand.id]], stats=stats.to_json(),
                   images_per_s=images_per_second(batch_size, stats.median),
                   flops_per_image=(flops_per_batch / batch_size) if flops_per_batch else None,
                   gflops_per_s=achieved_gflops(flops_per_batch, stats.median),
                   flops_graph=str(flops_graph(cand, list(candidates)) or ""), flops_unknown_nodes=len(count.get("unknown_nodes", []) or []))
        if round_rates:
            rate = summarize(round_rates).median
            row["matmul_rounds_gflops"] = [round(r, 2) for r in round_rates]
            row["matmul_rounds_median_gflops"] = round(rate, 2)
            if row["gflops_per_s"] is not None:
                row["matmul_fraction_rounds"] = row["gflops_per_s"] / rate
        row.update(workers[cand.id].call("memory"))
        if cand.id in outputs and cand.artifact is not None:
            model = cand.source_model
            if model not in reference_cache:
                reference_cache[model] = refs.get(model, cand.artifact, batch, outputs)
            reference = reference_cache[model]
            is_self = cand.backend == "torch" and settings.reference == "float32" and reference is outputs[cand.id]
            output = outputs[cand.id]
            if reference is not None and output is not None and not is_self:
                report = compare(output, reference, cand.artifact.task if cand.artifact else Task.DEPTH)
                row["parity"] = {"reference": refs.notes.get(model), **report.to_json()}
        results.append(row)
    _relative_columns(results)
    return results


def _relative_columns(results: list[dict[str, Any]]) -> None:
    """Speed-up over PyTorch eager (same scenario): torch median / candidate median (> 1 = faster)."""
    torch_rows = [r for r in results if r.get("backend") == "torch" and "stats" in r and r.get("stage") is None]
    for row in results:
        if "stats" not in row or row.get("stage") is not None or not torch_rows:
            continue
        row["speedup_vs_torch_eager"] = torch_rows[0]["stats"]["median"] / row["stats"]["median"]


def add_matmul_fraction(results: list[dict[str, Any]], rate_gflops: float | None) -> None:
    for row in results:
        if row.get("gflops_per_s") is not None and rate_gflops:
            row["matmul_fraction"] = row["gflops_per_s"] / rate_gflops


def run_benchmark(candidates: list[Candidate], settings: BenchSettings, command: Sequence[str] = (), builds: dict[str, float] | None = None,
                  on_partial: Any = None) -> dict[str, Any]:
    """Run everything; return the JSON-ready result document. ``on_partial(doc)`` after each scenario."""
    builds = builds or {}
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "command": list(command),
        "settings": {"sizes": [list(s) for s in settings.sizes], "batches": list(settings.batches), "iterations": settings.iterations,
                     "warmup": settings.warmup, "interleaved": True, "reference": settings.reference,
                     "images": str(settings.images) if settings.images else "synthetic"},
        "provenance": provenance.collect(),
        "candidates": [],
        "results": [],
        "skipped": [],
    }
    say(settings, f"[matmul] fp32 {settings.matmul_size}² rate (best of {settings.matmul_repeats}) ...")
    before = matmul.measure(settings.matmul_size, settings.matmul_repeats) if settings.matmul_size else None
    if before:
        say(settings, f"    {before['gflops']:.1f} GFLOP/s")
    rows: dict[str, dict[str, Any]] = {}
    for cand in candidates:
        manifest = cand.artifact.manifest if cand.artifact else {}
        files = manifest.get("files", {})
        model_file = cand.artifact.model_path.name if cand.artifact else None
        size = sum(int(e.get("bytes", 0)) for e in files.values()) if files else None
        if cand.stage is not None and cand.graph is not None:
            size = sum(p.stat().st_size for p in cand.graph.parent.glob(f"{cand.graph.name}*"))
        rows[cand.id] = {**cand.to_json(), "artifact_bytes": None if cand.is_torch else size,
                         "artifact_sha256": None if cand.is_torch else files.get(model_file, {}).get("sha256"),
                         "artifact_build_s": builds.get(str(cand.artifact.folder)) if cand.artifact and not cand.is_torch else None}
    round_rate = matmul.RoundRate(settings.matmul_size) if settings.matmul_size else None
    workers = _start_workers(candidates, settings, rows)
    refs = _References(settings, candidates)
    flops = _Flops()
    try:
        for height, width in settings.sizes:
            for batch_size in settings.batches:
                doc["results"].extend(run_scenario(height, width, batch_size, candidates, workers, settings, refs, flops, doc["skipped"], round_rate))
                doc["candidates"] = list(rows.values())
                if on_partial is not None:
                    if before:
                        doc["matmul"] = {**before, "before": before, "after": None, "note": "partial result: measured before the runs only"}
                    add_matmul_fraction(doc["results"], before["gflops"] if before else None)
                    on_partial(doc)
    finally:
        for worker in workers.values():
            worker.close()
        refs.close()
    say(settings, "[matmul] measuring again after the runs ...")
    after = matmul.measure(settings.matmul_size, settings.matmul_repeats) if settings.matmul_size else None
    if before and after:
        doc["matmul"] = {**after, "gflops": max(before["gflops"], after["gflops"]), "before": before, "after": after,
                         "note": "fp32 square matrix multiply, best of repeats, numpy and torch; the higher rate is the reference"}
    add_matmul_fraction(doc["results"], doc.get("matmul", {}).get("gflops"))
    doc["candidates"] = list(rows.values())
    doc["reference_notes"] = refs.notes
    doc["provenance"]["load_at_end"] = provenance.machine_load()
    doc["provenance"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return doc
