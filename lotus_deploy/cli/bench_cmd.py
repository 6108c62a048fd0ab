"""``lotus-bench``: backends × artifacts × sizes × batch sizes, interleaved, with provenance.

Writes ``<output>/<name>.json`` (everything), ``<name>.md`` (tables) and ``<name>.png`` (chart).
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.config import EngineKind, OutputMeaning, Task
from ..core.errors import ConfigError
from ..core.safe_io import check_result_files, ensure_folder, write_text_atomic
from .common import enum_choice, run_main

DEFAULT_BACKENDS = ("torch", "onnxruntime")


def parse_size(text: str) -> tuple[int, int]:
    """'256' -> (256, 256); '384x512' -> (384, 512) (height x width)."""
    try:
        if "x" in text.lower():
            h, w = text.lower().split("x", 1)
            return int(h), int(w)
        return int(text), int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: use 256 or HxW like 384x512") from None


def parse_option(text: str) -> tuple[str, str, Any]:
    """'torch-optimized.compile=True' -> ('torch-optimized', 'compile', True)."""
    head, sep, raw = text.partition("=")
    backend, dot, key = head.rpartition(".")
    if not sep or not dot or not backend or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not BACKEND.KEY=VALUE (e.g. onnxruntime.threads=2)")
    try:
        value: Any = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return backend, key, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lotus-bench",
        description="Benchmark Lotus-D backends side by side on the same inputs: latency percentiles, images/s, memory, "
        "achieved GFLOP/s against this machine's fp32 matmul rate, parity against PyTorch, with provenance.",
    )
    src = p.add_argument_group("what to run")
    src.add_argument("--model", action="append", default=[], help="checkpoint (hub id, folder, builtin:tiny/full): its artifacts are reused or exported (repeatable)")
    src.add_argument("--engine", action="append", type=enum_choice(EngineKind), help="artifact kind(s) to use or make for --model (repeatable; default: onnx)")
    src.add_argument("--task", type=enum_choice(Task), help="depth or normal, for --model ids that do not say")
    src.add_argument("--artifact", action="append", type=Path, default=[], help="an artifact folder from lotus-export (repeatable)")
    src.add_argument("--backend", action="append", help=f"backend(s) (repeatable; default: {' '.join(DEFAULT_BACKENDS)}); lotus-bench --list-backends")
    src.add_argument("--option", action="append", type=parse_option, default=[], help="backend option BACKEND.KEY=VALUE, e.g. torch-optimized.compile=True (repeatable)")
    src.add_argument("--threads", type=int, default=0, help="intra-op threads for every backend (default: the library's own default)")
    src.add_argument("--stages", action="store_true", help="also time the split VAE encoder / UNet / VAE decoder graphs (exports them with --split for --model)")
    how = p.add_argument_group("how")
    how.add_argument("--size", action="append", type=parse_size, help="input size, 256 or HxW, multiples of 64 (repeatable; default 256)")
    how.add_argument("--batch", action="append", type=int, help="batch size (repeatable; default 1)")
    how.add_argument("--iterations", type=int, default=5, help="timed iterations per candidate and scenario (default %(default)s)")
    how.add_argument("--warmup", type=int, default=1, help="untimed warm-up iterations (default %(default)s)")
    how.add_argument("--reference", choices=("float32", "float64", "none"), default="float32",
                     help="parity reference: PyTorch eager in float32 (the torch candidate itself when present), float64 (docs/contract.md rule; slow), or none")
    how.add_argument("--images", type=Path, help="folder of photos for the inputs (default: $LOTUS_DEPLOY_PARITY_IMAGES, else synthetic images)")
    how.add_argument("--matmul-size", type=int, default=4096, help="size of the fp32 matmul yardstick (0 skips it; default %(default)s)")
    out = p.add_argument_group("output")
    out.add_argument("-o", "--output", type=Path, default=Path("outputs/bench"), help="folder for the reports (default: %(default)s)")
    out.add_argument("--name", default="bench", help="report file stem (default: %(default)s)")
    out.add_argument("--no-chart", dest="chart", action="store_false", help="skip the PNG chart")
    out.add_argument("--force", action="store_true", help="overwrite reports of the same --name (other files in --output are never touched)")
    out.add_argument("--render", type=Path, metavar="JSON", help="only re-write the Markdown and PNG of an existing result JSON (e.g. a partial one)")
    out.add_argument("--list-backends", action="store_true", help="print the registered backends and exit")
    out.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _options(args: argparse.Namespace, backends: list[str]) -> dict[str, dict[str, Any]]:
    options: dict[str, dict[str, Any]] = {name: ({"threads": args.threads} if args.threads else {}) for name in backends}
    for backend, key, value in args.option:
        if backend not in options:
            raise ConfigError(f"--option for {backend!r}, which is not among the backends {backends}", f"add --backend {backend} or fix the name")
        options[backend][key] = value
    return options


def collect_artifacts(args: argparse.Namespace) -> tuple[list[Any], dict[str, float]]:
    """Open every --artifact (verified) and ensure one artifact per --model × --engine (timed if built)."""
    from ..core.artifacts import holds_artifact, open_artifact
    from ..core.config import ExportConfig, ExportSettings, infer_task
    from ..pipeline import ensure_artifact

    artifacts = [open_artifact(folder) for folder in args.artifact]
    builds: dict[str, float] = {}
    for model in args.model:
        task, meaning = infer_task(model, args.task, None)
        for engine in args.engine or [EngineKind.ONNX]:
            config = ExportConfig(model=model, task=task, meaning=meaning or OutputMeaning(task.value), engine=engine,
                                  export=ExportSettings(split=args.stages))
            existed = holds_artifact(config.artifact_dir)
            start = time.perf_counter()
            artifact = ensure_artifact(config, quiet=args.quiet)
            if not existed:
                builds[str(artifact.folder)] = round(time.perf_counter() - start, 1)
            artifacts.append(artifact)
    return artifacts, builds


def _body(args: argparse.Namespace) -> int:
    from ..runtime.base import backend_names

    if args.list_backends:
        print("\n".join(backend_names()))
        return 0
    from ..bench import plan as planning
    from ..bench.report import to_markdown, write_json

    if args.render is not None:
        return _render(args)
    from ..bench.runner import BenchSettings, run_benchmark
    from ..export.parity_inputs import default_image_dir

    backends = list(dict.fromkeys(args.backend or DEFAULT_BACKENDS))
    planning.check_backends(backends)  # before any export or load
    if not args.model and not args.artifact:
        raise ConfigError("nothing to benchmark", "pass --artifact DIR (from lotus-export) and/or --model ID (e.g. builtin:tiny)")
    settings = BenchSettings(sizes=tuple(args.size or [(256, 256)]), batches=tuple(args.batch or [1]), iterations=args.iterations,
                             warmup=args.warmup, reference=args.reference, images=args.images or default_image_dir(),
                             matmul_size=args.matmul_size, quiet=args.quiet)
    options = _options(args, backends)
    json_path, md_path, png_path = (args.output / f"{args.name}.{ext}" for ext in ("json", "md", "png"))
    check_result_files([json_path, md_path, *([png_path] if args.chart else [])], args.force)  # before any export or load
    artifacts, builds = collect_artifacts(args)
    candidates = planning.plan(backends, artifacts, stages=args.stages, options=options)
    if args.stages and not any(c.stage for c in candidates):
        print("lotus-bench: note: no split graphs found; re-export with lotus-export --split --force to time the stages", file=sys.stderr)
    ensure_folder(args.output)
    command = ["lotus-bench", *args.argv]

    def partial(doc: dict[str, Any]) -> None:
        write_json(doc, json_path)

    doc = run_benchmark(candidates, settings, command=command, builds=builds, on_partial=partial)
    write_json(doc, json_path)
    write_text_atomic(md_path, to_markdown(doc))
    written = [str(json_path), str(md_path)]
    if args.chart:
        from ..bench.chart import draw

        written.append(str(draw(doc, png_path)))
    for row in doc["results"]:
        if "stats" in row:
            extra = f", {row['speedup_vs_torch_eager']:.2f}× vs torch" if row.get("speedup_vs_torch_eager") and row["backend"] != "torch" else ""
            print(f"{row['height']}x{row['width']} b{row['batch']}  {row['label']:<34} median {row['stats']['median']:.4g} s{extra}")
        else:
            print(f"{row['height']}x{row['width']} b{row['batch']}  {row['label']:<34} error: {row.get('error')}")
    print("wrote " + ", ".join(written))
    return 0


def _render(args: argparse.Namespace) -> int:
    from ..bench.report import read_json, to_markdown, validate

    try:
        doc = read_json(args.render)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {args.render}: {exc}", "pass a JSON written by lotus-bench") from None
    problems = validate(doc)
    if problems:
        raise ConfigError(f"{args.render} is not a lotus-bench result: {problems[0]}", "pass a JSON written by lotus-bench")
    md_path = args.output / f"{args.name}.md"
    check_result_files([md_path, *([args.output / f"{args.name}.png"] if args.chart else [])], args.force)
    ensure_folder(args.output)
    write_text_atomic(md_path, to_markdown(doc))
    written = [str(md_path)]
    if args.chart:
        from ..bench.chart import draw

        written.append(str(draw(doc, args.output / f"{args.name}.png")))
    print("wrote " + ", ".join(written))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    raw = list(argv) if argv is not None else sys.argv[1:]

    def body(args: argparse.Namespace) -> int:
        args.argv = raw
        return _body(args)

    return run_main(body, parser, argv, interrupted="interrupted; results measured so far (if any) are in the --output JSON")


if __name__ == "__main__":
    raise SystemExit(main())
