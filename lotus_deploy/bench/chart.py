"""[matplotlib] PNG chart: median latency by backend and precision, one panel per size × batch."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..core.deps import require
from ..core.safe_io import atomic_write

PRECISION_COLOURS = {"fp32": "#4C72B0", "fp16": "#55A868", "int8": "#C44E52"}
STAGE_COLOURS = {"encoder": "#8172B2", "unet": "#CCB974", "decoder": "#64B5CD"}


def draw(doc: dict[str, Any], path: Path) -> Path:
    """Write a horizontal bar chart (median, with p90 whiskers) and return its path."""
    matplotlib = require("matplotlib")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    scenarios: list[tuple[int, int, int]] = []
    for row in doc["results"]:
        key = (row["height"], row["width"], row["batch"])
        if key not in scenarios:
            scenarios.append(key)
    heights = [_rows(doc, key) for key in scenarios] or [1]
    fig, axes = plt.subplots(len(heights), 1, figsize=(10, 0.8 + sum(0.35 * n + 0.9 for n in heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for axis, (h, w, b) in zip(axes[:, 0], scenarios, strict=True):
        rows = [r for r in doc["results"] if (r["height"], r["width"], r["batch"]) == (h, w, b) and "stats" in r]
        whole = [r for r in rows if r.get("stage") is None]
        stages = [r for r in rows if r.get("stage") is not None]
        labels = [r["label"] for r in whole]
        medians = [r["stats"]["median"] for r in whole]
        spread = [max(r["stats"]["p90"] - r["stats"]["median"], 0.0) for r in whole]
        colours = [PRECISION_COLOURS.get(str(r.get("precision", "fp32"))[:4], "#777777") for r in whole]
        positions = list(range(len(whole)))
        axis.barh(positions, medians, xerr=[[0] * len(spread), spread], color=colours, capsize=3)
        for y, (value, row) in enumerate(zip(medians, whole, strict=True)):
            speed = row.get("speedup_vs_torch_eager")
            note = f" {value:.3g} s" + (f"  ({speed:.2f}×)" if speed and row.get("backend") != "torch" else "")
            axis.text(value + spread[y], y, note, va="center", fontsize=8)
        if stages:
            y = len(whole)
            left = 0.0
            for row in stages:
                axis.barh([y], [row["stats"]["median"]], left=left, color=STAGE_COLOURS.get(row["stage"], "#999999"), label=row["stage"])
                left += row["stats"]["median"]
            labels.append("split: " + " + ".join(r["stage"] for r in stages))
            positions.append(y)
            axis.legend(fontsize=7, loc="upper right", ncols=3, frameon=False)
        axis.set_yticks(positions, labels, fontsize=8)
        axis.invert_yaxis()
        axis.set_xlabel("median latency per batch, s (whisker: p90)")
        axis.set_title(f"{h}×{w}, batch {b}", fontsize=10)
        axis.margins(x=0.25)
    cpu = doc.get("provenance", {}).get("cpu", {}).get("model", "")
    fig.suptitle(f"Lotus-D latency by backend and precision — {cpu}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
    return path


def _rows(doc: dict[str, Any], key: tuple[int, int, int]) -> int:
    """Bars in one panel: whole-model candidates, plus one for the split stages."""
    rows = [r for r in doc["results"] if (r["height"], r["width"], r["batch"]) == key and "stats" in r]
    return max(1, sum(1 for r in rows if r.get("stage") is None) + (1 if any(r.get("stage") for r in rows) else 0))
