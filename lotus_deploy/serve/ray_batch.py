"""Dataset-scale inference on Ray Data: the plain ``lotus-infer`` batch run, spread over an actor pool.

Files are read as bytes by Ray (``read_binary_files``: local paths and anything pyarrow's filesystems
open) and decoded inside the actors by the project's own decoder, so pixels are exactly those of
``lotus-infer`` and a corrupt file becomes a failure row instead of failing the dataset. Each actor
loads the artifact once and writes its images' outputs itself (files under the plain command's names,
or one Parquet part per batch); the driver only gathers small status rows for ``summary.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..core.deps import require
from ..core.errors import ArtifactExistsError, ConfigError, LotusError
from ..core.safe_io import atomic_write, check_writable_folder, ensure_folder, write_json_atomic
from ..image.input_plan import InputPlan, PlannedInput
from ..image.preprocess import decode_image, set_max_image_pixels
from ..runtime.batch import SUMMARY_NAME, BatchInterrupted, BatchSummary, OnExisting, check_results_folder
from ..runtime.estimator import DepthEstimator, Prediction

OutputFormat = Literal["files", "parquet"]
OUTPUT_FORMATS: tuple[str, ...] = ("files", "parquet")
LOCAL = "local"
PARQUET_FOLDER = "predictions"  # Parquet parts live here, inside the output folder
PART_PREFIX = "part-"


@dataclass(frozen=True)
class RaySettings:
    """Where and how wide to run: ``address`` is ``local`` (start a cluster here) or a cluster address."""

    address: str = LOCAL
    concurrency: int | None = None  # actors; None: every CPU but one (or one actor per gpus_per_actor GPUs)
    gpus_per_actor: float = 0.0
    output_format: OutputFormat = "files"

    def check(self) -> None:
        if self.concurrency is not None and self.concurrency < 1:
            raise ConfigError(f"--ray-concurrency {self.concurrency} is not positive", "use 1 or more actors")
        if self.gpus_per_actor < 0:
            raise ConfigError(f"--ray-gpus-per-actor {self.gpus_per_actor} is negative", "use 0 (CPU actors) or a positive share of a GPU")
        if self.output_format not in OUTPUT_FORMATS:
            raise ConfigError(f"unknown --ray-output {self.output_format!r}", f"choose one of: {', '.join(OUTPUT_FORMATS)}")


def default_concurrency(cpus: float, gpus: float, gpus_per_actor: float) -> int:
    """Actors to start: one per GPU share with GPUs, else every CPU but one (left for Ray's readers)."""
    if gpus_per_actor > 0:
        return max(1, int(gpus // gpus_per_actor))
    return max(1, int(cpus) - 1)


def check_concurrency(concurrency: int, cpus: float, gpus_per_actor: float, local: bool) -> None:
    """On a local cluster, CPU actors must leave one CPU for reading: 2 actors on 2 CPUs deadlocked when tried."""
    if local and gpus_per_actor == 0 and cpus > 1 and concurrency > cpus - 1:
        raise ConfigError(f"--ray-concurrency {concurrency} leaves no CPU for reading files on this {int(cpus)}-CPU machine",
                          f"use at most {int(cpus) - 1} actor(s) here, or a cluster with more CPUs")


# -- what the actors write ----------------------------------------------------------------------------------
def part_name(keys: list[str]) -> str:
    """A Parquet part's name, from the outputs it holds: the same batch gets the same name in every run."""
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]
    return f"{PART_PREFIX}{digest}.parquet"


def prediction_row(key: str, path: str, prediction: Prediction) -> dict[str, Any]:
    """One Parquet row: the prediction at its input's size, as raw bytes with its shape and dtype."""
    values = np.ascontiguousarray(prediction.values)
    return {"key": key, "path": path, "meaning": prediction.meaning.value, "shape": list(values.shape),
            "dtype": values.dtype.str, "values": values.tobytes()}


def row_values(row: dict[str, Any]) -> np.ndarray:
    """The array of a Parquet row written by :func:`prediction_row` (for readers of the output)."""
    return np.frombuffer(row["values"], dtype=np.dtype(row["dtype"])).reshape(row["shape"])


def write_part(folder: Path, rows: list[dict[str, Any]], overwrite: bool) -> Path:
    """Write one batch's rows as a Parquet part, atomically (a half-written part never has the final name)."""
    pa = require("pyarrow")
    pq = require("pyarrow.parquet")
    table = pa.Table.from_pylist(rows)
    return atomic_write(folder / part_name([row["key"] for row in rows]), lambda handle: pq.write_table(table, handle), overwrite=overwrite)


class DepthActor:
    """One Ray actor: loads the artifact once, then decodes, predicts and writes batch after batch."""

    def __init__(self, artifact: str | None, estimator_options: dict[str, Any], keys: dict[str, tuple[str, str]], output: str,
                 output_format: str, overwrite: bool, max_image_pixels: int | None) -> None:
        if max_image_pixels is not None:
            set_max_image_pixels(max_image_pixels)
        self.estimator = DepthEstimator(artifact, **estimator_options)
        self.backend = json.dumps({"name": type(self.estimator.backend).__name__, "details": self.estimator.describe_backend(),
                                   "meaning": self.estimator.meaning.value})
        self.keys = keys  # path as Ray reads it -> (output key, the path as the user gave it)
        self.output = Path(output)
        self.output_format = output_format
        self.overwrite = overwrite

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [str(p) for p in batch["path"]]
        errors = {path: "" for path in paths}
        decoded: list[tuple[str, np.ndarray]] = []
        for path, data in zip(paths, batch["bytes"], strict=True):
            try:
                decoded.append((path, decode_image(bytes(data), self.keys[path][1])))
            except LotusError as exc:
                errors[path] = str(exc)
        rows: list[dict[str, Any]] = []
        for path, result in self.estimator.predict_each(decoded):
            if not isinstance(result, Prediction):
                errors[path] = str(result)
                continue
            try:
                if self.output_format == "parquet":
                    rows.append(prediction_row(*self.keys[path], result))
                else:
                    self._save(path, result)
            except LotusError as exc:
                errors[path] = str(exc)
        if rows:
            try:
                write_part(ensure_folder(self.output / PARQUET_FOLDER), rows, self.overwrite)
            except LotusError as exc:
                unsaved = {row["key"] for row in rows}
                for path in paths:
                    if self.keys[path][0] in unsaved:
                        errors[path] = str(exc)
        return {"path": np.array(paths, dtype=object), "error": np.array([errors[p] for p in paths], dtype=object),
                "backend": np.array([self.backend] * len(paths), dtype=object)}

    def _save(self, path: str, prediction: Prediction) -> None:
        key = Path(self.keys[path][0])
        prediction.save(self.output / key.parent, key.name, force=self.overwrite)


# -- the driver ---------------------------------------------------------------------------------------------
def parquet_keys(output: Path) -> dict[Path, set[str]]:
    """Existing Parquet parts in the output folder and the output keys each holds."""
    folder = output / PARQUET_FOLDER
    if not folder.is_dir():
        return {}
    pq = require("pyarrow.parquet")
    return {part: set(pq.read_table(part, columns=["key"]).column("key").to_pylist())
            for part in sorted(folder.glob(f"{PART_PREFIX}*.parquet"))}


def check_parquet_output(output: Path, plan: InputPlan, on_existing: OnExisting) -> list[PlannedInput]:
    """The Parquet counterpart of ``check_results_folder``: refuse, resume (skip stored keys) or replace parts.

    ``overwrite`` removes only parts whose every output is recomputed now; a part mixing those with
    others is refused, so no output of another run is ever lost.
    """
    check_writable_folder(output)
    parts = parquet_keys(output)
    stored = set().union(*parts.values()) if parts else set()
    wanted = {item.key for item in plan.inputs}
    summary = output / SUMMARY_NAME
    if on_existing == "skip":
        return [item for item in plan.inputs if item.key not in stored]
    clashing = [part for part, keys in parts.items() if keys & wanted]
    if on_existing == "refuse":
        taken = ([summary] if summary.exists() else []) + clashing
        if taken:
            raise ArtifactExistsError(f"{taken[0]} already exists" + (f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""),
                                      "pass --resume to skip inputs already stored, --force to replace them, or choose another --output")
        return list(plan.inputs)
    mixed = next((part for part in clashing if not parts[part] <= wanted), None)
    if mixed is not None:
        raise ArtifactExistsError(f"{mixed} holds outputs of this run's inputs and of others", "move that part away, or choose another --output")
    for part in clashing:
        part.unlink()
    return list(plan.inputs)


@contextmanager
def ray_cluster(address: str) -> Iterator[Any]:
    """Connect to ``address`` (``local``: start a cluster on this machine, every CPU); disconnect at the end."""
    ray = require("ray")
    require("ray.data")
    logging.getLogger("ray").setLevel(logging.WARNING)
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address == LOCAL:
        ray.init(num_cpus=os.cpu_count() or 1, **options)
    else:
        ray.init(address=address, **options)
    logging.getLogger("ray").setLevel(logging.WARNING)  # init configures Ray's loggers; keep them to warnings
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        yield ray
    finally:
        ray.shutdown()


def check_ray_output(output: Path, plan: InputPlan, settings: RaySettings, on_existing: OnExisting) -> list[PlannedInput]:
    """Validate the output folder before any cluster starts; return the inputs still to run."""
    if settings.output_format == "parquet":
        return check_parquet_output(Path(output), plan, on_existing)
    return check_results_folder(Path(output), plan, on_existing)


def run_ray_batch(artifact: str | Path | None, plan: InputPlan, todo: list[PlannedInput], output: Path, settings: RaySettings,
                  estimator_options: dict[str, Any], on_existing: OnExisting = "refuse", batch_size: int = 1,
                  max_image_pixels: int | None = None, progress: Callable[[int], None] | None = None,
                  report: Callable[[str], None] | None = None) -> BatchSummary:
    """Run ``todo`` (from :func:`check_ray_output`) on a Ray cluster; outputs and ``summary.json`` as
    :func:`lotus_deploy.runtime.batch.run_batch` writes them.

    The artifact folder and the output folder must be reachable under the same paths on every node
    (a shared filesystem); the inputs may be anywhere pyarrow reads.
    """
    settings.check()
    output = Path(output)
    say = report or (lambda line: None)
    summary = BatchSummary(output=output, hidden_skipped=[str(p) for p in plan.hidden_skipped])
    todo_paths = {os.path.abspath(item.path): item for item in todo}
    summary.skipped_existing = [str(item.path) for item in plan.inputs if os.path.abspath(item.path) not in todo_paths]
    finished: set[str] = set()
    started = time.perf_counter()
    try:
        if todo:
            with ray_cluster(settings.address) as ray:
                resources = ray.cluster_resources()
                cpus, gpus = float(resources.get("CPU", 1)), float(resources.get("GPU", 0))
                concurrency = settings.concurrency or default_concurrency(cpus, gpus, settings.gpus_per_actor)
                check_concurrency(concurrency, cpus, settings.gpus_per_actor, local=settings.address == LOCAL)
                keys = {path: (item.key, str(item.path)) for path, item in todo_paths.items()}
                dataset = ray.data.read_binary_files(list(todo_paths), include_paths=True).map_batches(
                    DepthActor, batch_size=batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=concurrency), num_cpus=1,
                    num_gpus=settings.gpus_per_actor or None,
                    fn_constructor_kwargs={"artifact": None if artifact is None else str(artifact),
                                           "estimator_options": {**estimator_options, "batch_size": batch_size},
                                           "keys": keys, "output": str(output), "output_format": settings.output_format,
                                           "overwrite": on_existing != "refuse", "max_image_pixels": max_image_pixels})
                summary.runner = {"name": "ray", "address": settings.address, "actors": concurrency,
                                  "gpus_per_actor": settings.gpus_per_actor, "output_format": settings.output_format,
                                  "cluster_cpus": cpus, "cluster_gpus": gpus}
                for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                    _gather(batch, todo_paths, summary, finished, say)
                    if progress is not None:
                        progress(len(batch["path"]))
    except KeyboardInterrupt:
        summary.interrupted = True
        raise BatchInterrupted(summary) from None
    finally:
        order = {str(item.path): index for index, item in enumerate(plan.inputs)}  # input order, as the plain run lists them
        summary.done.sort(key=order.__getitem__)
        summary.failed.sort(key=lambda failure: order[failure["path"]])
        summary.not_processed = [str(item.path) for item in todo if str(item.path) not in finished]
        summary.seconds = time.perf_counter() - started
        ensure_folder(output)
        write_json_atomic(output / SUMMARY_NAME, summary.to_json(), overwrite=True)
    return summary


def _gather(batch: dict[str, np.ndarray], todo: dict[str, PlannedInput], summary: BatchSummary, finished: set[str],
            say: Callable[[str], None]) -> None:
    """Fold one batch of actor status rows into the summary."""
    for path, error, backend in zip(batch["path"], batch["error"], batch["backend"], strict=True):
        item = todo[str(path)]
        if not summary.backend:
            described = json.loads(str(backend))
            summary.backend, summary.backend_details, summary.meaning = described["name"], described["details"], described["meaning"]
        if error:
            summary.failed.append({"path": str(item.path), "error": str(error)})
            say(f"failed: {item.path}: {error}")
        else:
            summary.done.append(str(item.path))
        finished.add(str(item.path))
