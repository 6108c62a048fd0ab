"""Which CPU this is: its model name and vector extensions, for anything that records where it ran.

Benchmarks and the demo model's training card both name the instruction set, because it changes speed
and float rounding; this module reads it once (``/proc/cpuinfo``; elsewhere only the machine's name).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

SIMD_FLAGS = frozenset({"avx", "avx2", "fma", "avx_vnni", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "asimd", "sve"})


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "flags", "Features", "Model", "Hardware") and key not in info:
            info[key] = value.strip()
    return info


def cpu_identity() -> dict[str, Any]:
    """Model name, architecture and the SIMD extensions that matter for inference and training speed."""
    info = _cpuinfo()
    flags = set(info.get("flags", info.get("Features", "")).split())
    return {
        "model": info.get("model name") or info.get("Model") or info.get("Hardware") or platform.processor() or platform.machine(),
        "machine": platform.machine(),
        "simd": sorted(flags & SIMD_FLAGS),
    }


def widest_vector_unit(identity: dict[str, Any]) -> str:
    """A short name for the widest vector unit (amx, avx512, avx2, sve, neon), else the machine's name."""
    simd = set(identity.get("simd", []))
    for flag, name in (("amx_tile", "amx"), ("avx512f", "avx512"), ("avx2", "avx2"), ("sve", "sve"), ("asimd", "neon")):
        if flag in simd:
            return name
    return str(identity.get("machine", "cpu"))
