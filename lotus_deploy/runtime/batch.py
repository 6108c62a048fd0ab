"""A resilient batch run over many images: every readable image gets its outputs, each failure is listed.

Used by ``lotus-infer`` on files and folders. The results folder may hold other files: the run never
modifies or deletes a file it did not write, refuses an existing output of the same name unless
``on_existing`` says ``overwrite`` (``--force``) or ``skip`` (``--resume``), and never overwrites an
output written earlier in the same run. ``summary.json`` lists what was done, skipped and failed, and
is written on every exit path, Ctrl-C included.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..core.errors import ArtifactExistsError, LotusError, OutputPathError
from ..core.safe_io import check_writable_folder, ensure_folder, write_json_atomic
from ..image.input_plan import InputPlan, PlannedInput
from ..image.postprocess import output_names
from .base import describe_backend
from .estimator import DepthEstimator, Prediction

SUMMARY_NAME = "summary.json"
OnExisting = Literal["refuse", "overwrite", "skip"]


@dataclass
class BatchSummary:
    """What a batch run did; ``to_json`` is ``summary.json``."""

    output: Path
    done: list[str] = field(default_factory=list)
    skipped_existing: list[str] = field(default_factory=list)
    hidden_skipped: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    not_processed: list[str] = field(default_factory=list)
    interrupted: bool = False
    stopped_at_failure: bool = False
    seconds: float = 0.0
    meaning: str = ""
    backend: str = ""
    backend_details: dict[str, Any] = field(default_factory=dict)
    runner: dict[str, Any] = field(default_factory=dict)  # who ran it, when not this process (e.g. a Ray cluster)

    def to_json(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "meaning": self.meaning,
            "backend": self.backend,
            "backend_details": self.backend_details,
            "counts": {"done": len(self.done), "skipped_existing": len(self.skipped_existing), "hidden_skipped": len(self.hidden_skipped),
                       "failed": len(self.failed), "not_processed": len(self.not_processed)},
            "done": self.done,
            "skipped_existing": self.skipped_existing,
            "hidden_skipped": self.hidden_skipped,
            "failed": self.failed,
            "not_processed": self.not_processed,
            "interrupted": self.interrupted,
            "stopped_at_failure": self.stopped_at_failure,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(len(self.done) / self.seconds, 3) if self.seconds > 0 else None,
            **({"runner": self.runner} if self.runner else {}),
        }


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a batch run, after its summary was written; carries that summary."""

    def __init__(self, summary: BatchSummary) -> None:
        super().__init__("interrupted")
        self.summary = summary


def targets_of(output: Path, item: PlannedInput) -> list[Path]:
    return [output / item.subdir / name for name in output_names(item.stem)]


def check_results_folder(output: Path, plan: InputPlan, on_existing: OnExisting) -> list[PlannedInput]:
    """Validate the results folder before any model is loaded; return the inputs still to run.

    Refuses (one line) an output path that is a file or not writable, a target name taken by a
    folder, and, with ``refuse``, any existing output or summary of the same name.
    """
    output = Path(output)
    check_writable_folder(output)
    summary = output / SUMMARY_NAME
    todo: list[PlannedInput] = []
    taken: list[Path] = [summary] if summary.exists() else []
    for item in plan.inputs:
        targets = targets_of(output, item)
        for target in targets:
            if target.is_dir():
                raise OutputPathError(f"{target} is a folder, but an output file of that name is due", "move it away or choose another --output")
        existing = [t for t in targets if t.exists()]
        if on_existing == "skip" and len(existing) == len(targets):
            continue
        if on_existing == "refuse" and existing:
            taken.extend(existing)
        todo.append(item)
    if on_existing == "refuse" and taken:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise ArtifactExistsError(f"{taken[0]} already exists{more}",
                                  "pass --resume to skip inputs whose outputs exist, --force to overwrite them, or choose another --output")
    return todo


def run_batch(estimator: DepthEstimator, plan: InputPlan, output: Path, on_existing: OnExisting = "refuse",
              fail_fast: bool = False, progress: Callable[[int], None] | None = None,
              report: Callable[[str], None] | None = None) -> BatchSummary:
    """Predict every planned input and write its outputs; failures are listed, never fatal (unless ``fail_fast``).

    Ctrl-C stops the run: the outputs already written stay, the summary says ``interrupted`` and
    lists the inputs not processed, and :class:`BatchInterrupted` (a KeyboardInterrupt) carries it to the caller.
    """
    output = Path(output)
    say = report or (lambda line: print(line, file=sys.stderr))
    todo = check_results_folder(output, plan, on_existing)
    summary = BatchSummary(output=output, meaning=estimator.meaning.value, backend=type(estimator.backend).__name__,
                           backend_details=describe_backend(estimator.backend),
                           hidden_skipped=[str(p) for p in plan.hidden_skipped])
    todo_keys = {item.key for item in todo}
    summary.skipped_existing = [str(item.path) for item in plan.inputs if item.key not in todo_keys]
    overwrite = on_existing != "refuse"
    written: set[Path] = set()
    finished: set[str] = set()
    by_key = {item.key: item for item in todo}
    started = time.perf_counter()

    def fail(item: PlannedInput, error: str) -> None:
        summary.failed.append({"path": str(item.path), "error": error})
        finished.add(item.key)
        say(f"failed: {item.path}: {error}")

    try:
        for key, result in estimator.predict_each((item.key, item.path) for item in todo):
            item = by_key[key]
            if isinstance(result, Prediction):
                try:
                    _save(result, output, item, overwrite, written)
                except LotusError as exc:
                    fail(item, str(exc))
                else:
                    summary.done.append(str(item.path))
                    finished.add(key)
            else:
                fail(item, str(result))
            if progress is not None:
                progress(1)
            if fail_fast and summary.failed:
                summary.stopped_at_failure = True
                break
    except KeyboardInterrupt:
        summary.interrupted = True
        raise BatchInterrupted(summary) from None
    finally:
        summary.not_processed = [str(item.path) for item in todo if item.key not in finished]
        summary.seconds = time.perf_counter() - started
        ensure_folder(output)
        write_json_atomic(output / SUMMARY_NAME, summary.to_json(), overwrite=True)
    return summary


def _save(prediction: Prediction, output: Path, item: PlannedInput, overwrite: bool, written: set[Path]) -> None:
    """Write one input's outputs; never over a file this run already wrote."""
    targets = targets_of(output, item)
    clash = next((t for t in targets if t in written), None)
    if clash is not None:
        raise ArtifactExistsError(f"{clash} was already written by this run", "this is a bug in output naming; please report it")
    prediction.save(output / item.subdir, item.stem, force=overwrite)
    written.update(targets)
