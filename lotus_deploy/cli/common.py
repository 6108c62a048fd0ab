"""What every command shares: one-line errors for expected failures, exit codes, enum parsing."""

from __future__ import annotations

import argparse
import enum
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..errors import LotusError

E = TypeVar("E", bound=enum.Enum)

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def run_main(body: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse ``argv``, run ``body``; LotusError -> one line on stderr and exit code 2 (no traceback)."""
    args = parser.parse_args(argv)
    _quiet_third_party()
    try:
        return body(args)
    except LotusError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; nothing was published", file=sys.stderr)
        return EXIT_INTERRUPTED


def print_export_summary(result: Any, config: Any, **extra: object) -> None:
    """The JSON summary lotus-export and lotus-build print for a published artifact."""
    summary: dict[str, object] = {"artifact": str(result.folder), "engine": config.engine.value, "task": config.task.value, **extra}
    if result.parity is not None:
        summary["parity"] = result.parity.summary()
    print(json.dumps(summary, indent=2, ensure_ascii=False))


def add_runtime_arguments(p: argparse.ArgumentParser, batch_default: int, batch_help: str) -> None:
    """Flags lotus-infer and lotus-video share: what to run, where outputs go, pre/post-processing."""
    from pathlib import Path

    from ..config import DEFAULT_PROCESSING_RES, Task

    p.add_argument("-a", "--artifact", type=Path, help="artifact folder from lotus-export (required except for --backend torch with --model)")
    p.add_argument("-o", "--output", type=Path, default=Path("outputs"), help="output folder (default: %(default)s)")
    p.add_argument("--backend", default="onnxruntime", help="onnxruntime (default), torch, or another registered backend")
    p.add_argument("--model", help="checkpoint for --backend torch without an artifact (hub id, folder, builtin:NAME)")
    p.add_argument("--task", type=enum_choice(Task), help="task for --model when it cannot be inferred")
    p.add_argument("--processing-res", type=int, default=DEFAULT_PROCESSING_RES, help="resize the long edge to this before padding; 0 keeps the size (default %(default)s)")
    p.add_argument("--resample", choices=("nearest", "bilinear"), default="nearest", help="how to resize outputs back to the input size (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=batch_default, help=f"{batch_help} (default %(default)s)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


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
