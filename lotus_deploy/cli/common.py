"""What every command shares: one-line errors for expected failures, exit codes, enum parsing."""

from __future__ import annotations

import argparse
import enum
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from ..core.artifacts import Artifact, open_artifact
from ..core.errors import LotusError

E = TypeVar("E", bound=enum.Enum)

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a reader that went away


def run_main(body: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser, argv: Sequence[str] | None,
             interrupted: str = "interrupted; nothing was published") -> int:
    """Parse ``argv``, run ``body``; LotusError -> one line on stderr and exit code 2 (no traceback).

    ``interrupted`` is what Ctrl-C prints: each command says truthfully what it leaves behind.
    """
    args = parser.parse_args(argv)
    _quiet_third_party()
    try:
        return body(args)
    except LotusError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{parser.prog}: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our stdout went away (``lotus-inspect ... | head``): stop quietly, like other tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def note_processing_res(prog: str, estimator: Any) -> None:
    """Say so when the model's declared working resolution replaces the usual default (no --processing-res given)."""
    if estimator.processing_res_from == "declared by the model":
        print(f"{prog}: processing at {estimator.processing_res} px, the working resolution this model declares "
              "(pass --processing-res to override)", file=sys.stderr)


def warn(prog: str, message: str) -> None:
    """One line on stderr for something worth knowing that is not an error."""
    print(f"{prog}: warning: {message}", file=sys.stderr)


def warn_unused(parser: argparse.ArgumentParser, args: argparse.Namespace, names: Sequence[str], why: str) -> None:
    """Warn (never fail: scripts pass one set of flags to several engines) about flags set but unused here."""
    given = [name for name in names if getattr(args, name, None) != parser.get_default(name)]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        warn(parser.prog, f"{flags} {'has' if len(given) == 1 else 'have'} no effect {why}")


def processing_res_arg(text: str) -> int:
    """argparse ``type=`` for --processing-res: 0 (keep the size) or 1..MAX_PROCESSING_RES."""
    from ..core.errors import ConfigError
    from ..image.preprocess import validate_processing_res

    try:
        return validate_processing_res(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def print_export_summary(result: Any, config: Any, **extra: object) -> None:
    """The JSON summary lotus-export and lotus-build print for a published artifact."""
    summary: dict[str, object] = {"artifact": str(result.folder), "engine": config.engine.value, "task": config.task.value, **extra}
    if result.parity is not None:
        summary["parity"] = result.parity.summary()
    print(json.dumps(summary, indent=2, ensure_ascii=False))


def add_runtime_arguments(p: argparse.ArgumentParser, batch_default: int, batch_help: str) -> None:
    """Flags lotus-infer and lotus-video share: what to run, where outputs go, pre/post-processing."""
    from pathlib import Path

    from ..core.config import DEFAULT_PROCESSING_RES, Task
    from ..image.preprocess import MAX_PROCESSING_RES

    p.add_argument("-a", "--artifact", type=Path, help="artifact folder from lotus-export (required except for --backend torch with --model)")
    p.add_argument("-o", "--output", type=Path, default=Path("outputs"), help="output folder (default: %(default)s)")
    p.add_argument("--backend", default="onnxruntime", help="onnxruntime (default), torch, or another registered backend")
    p.add_argument("--model", help="checkpoint for --backend torch without an artifact (hub id, folder, builtin:NAME)")
    p.add_argument("--task", type=enum_choice(Task), help="task for --model when it cannot be inferred")
    p.add_argument("--processing-res", type=processing_res_arg, default=None,
                   help=f"resize the long edge to this before padding, 1..{MAX_PROCESSING_RES}; 0 keeps the size (default: the working "
                        f"resolution the model declares, e.g. builtin:demo's 256, else {DEFAULT_PROCESSING_RES})")
    p.add_argument("--resample", choices=("nearest", "bilinear"), default="nearest", help="how to resize outputs back to the input size (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=batch_default, help=f"{batch_help} (default %(default)s)")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--force", action="store_true", help="overwrite existing outputs of the same name (other files are never touched)")
    existing.add_argument("--resume", action="store_true", help="skip inputs whose outputs all exist (finish an interrupted run)")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first unreadable input (default: report it, go on, exit 2 at the end)")
    p.add_argument("--max-image-pixels", type=int, help="raise Pillow's decompression-bomb limit to this many pixels (0: no limit)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_openvino_arguments(p.add_argument_group("OpenVINO (--backend openvino)"))


OPENVINO_FLAGS = ("ov_device", "ov_precision")


def add_openvino_arguments(g: Any) -> None:
    """--ov-device / --ov-precision (the choices live in lotus_deploy.openvino.device)."""
    from ..openvino.device import DEVICES, PRECISIONS

    g.add_argument("--ov-device", default="CPU", help=f"OpenVINO device: {', '.join(DEVICES)} (default %(default)s)")
    g.add_argument("--ov-precision", choices=PRECISIONS, default="auto",
                   help="inference precision; auto = the device's default (bf16 on CPUs with native bf16); the one used is recorded (default %(default)s)")


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword options for the chosen backend: the checkpoint pair for torch, device and precision for openvino."""
    options = checkpoint_options(args)
    if args.backend == "openvino":
        options.update(device=args.ov_device, precision=args.ov_precision)
    return options


def warn_backend_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Flags of one backend given with another (a warning, never an error)."""
    if args.backend != "openvino":
        warn_unused(parser, args, OPENVINO_FLAGS, f"with --backend {args.backend} (they apply to --backend openvino)")


def enum_choice(kind: type[E]) -> Callable[[str], E]:
    """argparse ``type=`` that accepts an enum's values and lists them on error."""

    def parse(text: str) -> E:
        try:
            return kind(text)
        except ValueError:
            values = ", ".join(str(member.value) for member in kind)
            raise argparse.ArgumentTypeError(f"{text!r} is not one of: {values}") from None

    parse.__name__ = kind.__name__.lower()
    return parse


def _quiet_third_party() -> None:
    """Keep library chatter (tracer warnings, weight-loading bars) out of the user's terminal."""
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def field_default(settings: type, name: str) -> Any:
    """A settings dataclass's default for ``name``: the one place CLI defaults come from."""
    return next(f.default for f in fields(settings) if f.name == name)


def add_engine_arguments(g: Any) -> None:
    """The TensorRT build flags lotus-export (trt-*) and lotus-build share; defaults from EngineSettings."""
    from ..core.config import MAX_OPT_LEVEL, EngineSettings

    g.add_argument("--dynamic", dest="dynamic_profile", action="store_true", help="min/opt/max profile: 64x64 .. --max-height x --max-width (default 768x768)")
    g.add_argument("--max-height", type=int, help="profile max height with --dynamic")
    g.add_argument("--max-width", type=int, help="profile max width with --dynamic")
    g.add_argument("--max-batch", type=int, help="profile max batch with --dynamic")
    g.add_argument("--workspace-gib", type=float, default=field_default(EngineSettings, "workspace_gib"), help="builder workspace limit in GiB (default %(default)s)")
    g.add_argument("--opt-level", dest="optimization_level", type=int, default=field_default(EngineSettings, "optimization_level"),
                   help=f"builder optimization level 0-{MAX_OPT_LEVEL} (default %(default)s)")
    g.add_argument("--timing-cache", type=Path, help="timing cache file, reused across builds (default: engines/timing.cache)")


ENGINE_FLAGS = ("dynamic_profile", "max_height", "max_width", "max_batch", "workspace_gib", "optimization_level", "timing_cache")


def engine_settings(args: argparse.Namespace) -> Any:
    """EngineSettings from the flags add_engine_arguments defined."""
    from ..core.config import EngineSettings

    return EngineSettings(**{name: getattr(args, name) for name in ENGINE_FLAGS})


def checkpoint_options(args: argparse.Namespace) -> dict[str, Any]:
    """What to run when no artifact is given: ``--backend torch --model ID`` (the one place that rule lives).

    Raises a one-line ConfigError when neither an artifact nor that pair was given.
    """
    from ..core.errors import ConfigError

    if args.backend == "torch" and args.model:
        return {"model": args.model, "task": args.task}
    if args.artifact is None:
        raise ConfigError("no --artifact given", "pass --artifact ENGINE_DIR (from lotus-export), or --backend torch --model ID")
    return {}


def open_for_backend(path: Path, backend: str) -> Artifact:
    """An artifact folder; for the TensorRT backend also a bare engine file (e.g. from trtexec) — for
    images, videos and cameras alike."""
    if backend == "tensorrt":
        from ..tensorrt.engine import open_engine

        return open_engine(path)
    return open_artifact(path)
