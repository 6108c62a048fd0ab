"""Where and with what a benchmark ran: CPU, GPU, Jetson power mode, memory, libraries, git, load."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..core.artifacts import tool_versions
from ..core.cpu import cpu_identity
from ..core.deps import require

LIBRARIES = (
    "numpy", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "diffusers", "transformers",
    "onnxslim", "nvidia-modelopt", "matplotlib", "psutil",
)


def provenance_sentence(data: dict[str, Any]) -> str:
    """How a committed result says where it came from: its command, commit, date and CPU (Markdown, no final stop)."""
    git, cpu = data["provenance"]["git"], data["provenance"]["cpu"]
    return (f"`{' '.join(data['command'])}` at commit {git['commit'][:12]} (tracked changes: {git['tracked_changes']}), {data['date']}; "
            f"{cpu.get('model', '?')}, {cpu.get('usable_cpus', '?')} CPUs, ISA {', '.join(cpu.get('simd', [])) or '?'}")


def shown_path(path: Path | str, repo: Path) -> str:
    """A path as a committed result may name it: repo-relative, ``../shared/...`` beside the checkout, or
    ``<scratch>/NAME``; never absolute (results say how to regenerate them from any clone)."""
    p = Path(path)
    if not p.is_absolute():
        return str(p)
    for base, prefix in ((repo, Path(".")), (repo.parent, Path(".."))):
        if p.resolve().is_relative_to(base):
            return str(prefix / p.resolve().relative_to(base))
    return f"<scratch>/{p.name}"


def run_quietly(cmd: list[str], timeout: float = 10.0, cwd: Path | None = None) -> str | None:
    """stdout of a small command, or None when it is missing or fails."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _mem_total_mib() -> float:
    psutil = require("psutil")
    return round(psutil.virtual_memory().total / (1 << 20), 1)


def cpu_info() -> dict[str, Any]:
    identity = cpu_identity()
    physical = require("psutil").cpu_count(logical=False)
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "model": identity["model"],
        "machine": identity["machine"],
        "physical_cores": physical,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "simd": identity["simd"],
        "memory_mib": _mem_total_mib(),
    }


def gpu_info() -> list[dict[str, str]]:
    """One entry per NVIDIA GPU that nvidia-smi reports ([] without one)."""
    out = run_quietly(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap", "--format=csv,noheader"])
    gpus = []
    for line in (out or "").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3:
            gpus.append({"name": parts[0], "driver": parts[1], "memory": parts[2], "compute_capability": parts[3] if len(parts) > 3 else ""})
    return gpus


def jetson_info() -> dict[str, Any] | None:
    """Jetson model, L4T release and power mode (``nvpmodel -q``) where present, else None."""
    release = Path("/etc/nv_tegra_release")
    model_file = Path("/proc/device-tree/model")
    if not release.exists() and not shutil.which("nvpmodel"):
        return None
    info: dict[str, Any] = {}
    if model_file.exists():
        info["model"] = model_file.read_text(errors="replace").strip("\x00 \n")
    if release.exists():
        info["l4t"] = release.read_text(errors="replace").splitlines()[0].strip()
    info["power_mode"] = run_quietly(["nvpmodel", "-q"])
    info["memory_mib"] = _mem_total_mib()
    return info


def library_versions() -> dict[str, str]:
    return tool_versions(*LIBRARIES)


RESULTS_DIR = "benchmarks/results/"  # what benchmarks write: regenerating one result does not make the code "changed"


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """The commit, and whether any tracked file other than a committed result differs from it.

    ``benchmarks/run_cpu_full.sh`` writes three results in turn into ``benchmarks/results/``; the second
    must not be labelled as measured on changed code because the first was just rewritten.
    """
    cwd = cwd or Path(__file__).resolve().parents[2]
    commit = run_quietly(["git", "rev-parse", "HEAD"], cwd=cwd)
    if commit is None:
        return {"commit": None}
    changed = run_quietly(["git", "diff", "--name-only", "HEAD"], cwd=cwd)  # staged or not, tracked files only
    if changed is None:
        return {"commit": commit, "tracked_changes": None}
    return {"commit": commit, "tracked_changes": any(not path.startswith(RESULTS_DIR) for path in changed.splitlines())}


def machine_load() -> dict[str, Any]:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return {}
    return {"loadavg_1m": round(one, 2), "loadavg_5m": round(five, 2), "loadavg_15m": round(fifteen, 2)}


def collect() -> dict[str, Any]:
    """Everything above, plus the platform and the thread settings that change CPU timings."""
    from ..core.artifacts import now_iso

    return {
        "date": now_iso(),
        "platform": platform.platform(),
        "cpu": cpu_info(),
        "gpus": gpu_info(),
        "jetson": jetson_info(),
        "libraries": library_versions(),
        "git": git_state(),
        "threads_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS") if k in os.environ},
        "load_at_start": machine_load(),
    }
