"""What a stage (export, precision, engine build) returns: the published folder, its manifest, its parity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .parity import ParityReport


@dataclass
class ExportResult:
    folder: Path
    manifest: dict[str, Any]
    parity: ParityReport | None
