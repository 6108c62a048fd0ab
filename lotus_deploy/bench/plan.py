"""Which candidates a benchmark runs: backends × artifacts, deduplicated, plus split stage graphs.

Rules: a PyTorch backend (``torch``, ``torch-upstream``, ``torch-optimized``) runs the artifact's
*source checkpoint*, so it is benchmarked once per source model, not once per artifact. ONNX Runtime
runs ONNX artifacts; TensorRT backends run engine artifacts. With ``stages``, each ONNX artifact that
has ``split/`` graphs (``lotus-export --split``) adds its VAE encoder, UNet and VAE decoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.artifacts import Artifact
from ..core.errors import ConfigError
from ..runtime.base import backend_names

TORCH_LABELS = {"torch": "PyTorch eager", "torch-upstream": "PyTorch upstream", "torch-optimized": "PyTorch optimized"}
GPU_ONLY = ("torch-upstream", "torch-optimized", "tensorrt")  # the rows a CPU-only run marks "GPU: not run"
STAGE_BACKEND = "onnxruntime"


@dataclass
class Candidate:
    id: str
    label: str
    backend: str
    precision: str
    source_model: str
    artifact: Artifact | None = None
    stage: str | None = None  # encoder / unet / decoder for split graphs
    graph: Path | None = None  # the ONNX graph run (stages) or whose FLOPs stand for it
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_torch(self) -> bool:
        return self.backend.startswith("torch")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "label": self.label, "backend": self.backend, "precision": self.precision, "stage": self.stage,
            "source_model": self.source_model, "artifact": str(self.artifact.folder) if self.artifact else None,
            "graph": str(self.graph) if self.graph else None, "options": self.options,
        }


def is_tensorrt_backend(name: str) -> bool:
    return "tensorrt" in name or name.startswith("trt")


def split_spec(spec: str) -> tuple[str, str]:
    """'openvino:bf16' -> ('openvino', 'bf16'): a backend and its precision variant ('' for none)."""
    name, _, variant = spec.partition(":")
    return name, variant


def accepts(backend: str, artifact: Artifact, with_ir: bool = False) -> bool:
    """Whether ``backend`` runs ``artifact``; OpenVINO runs IR artifacts, and ONNX ones only in a run without any IR."""
    backend, _ = split_spec(backend)
    if backend.startswith("torch"):
        return True
    if is_tensorrt_backend(backend):
        return artifact.kind == "tensorrt"
    if backend == "openvino":
        return artifact.kind == "openvino" or (artifact.kind == "onnx" and not with_ir)
    return artifact.kind == "onnx"


def check_backends(backends: list[str]) -> None:
    from ..openvino.device import PRECISIONS

    known = backend_names()
    for spec in backends:
        name, variant = split_spec(spec)
        if name not in known:
            raise ConfigError(f"unknown backend {name!r}", f"choose from: {', '.join(known)}")
        if variant and (name != "openvino" or variant not in PRECISIONS):
            raise ConfigError(f"backend {spec!r}: only openvino takes a precision after ':'",
                              f"use openvino:{'|openvino:'.join(PRECISIONS)}, or {name} alone")


def plan(backends: list[str], artifacts: list[Artifact], stages: bool = False, options: dict[str, dict[str, Any]] | None = None) -> list[Candidate]:
    """Candidates in a stable order: per artifact, its backends; torch backends once per source model."""
    from ..export.split import split_paths

    check_backends(backends)
    if not artifacts:
        raise ConfigError("nothing to benchmark: no artifact", "pass --artifact DIR (from lotus-export) or --model ID")
    options = options or {}
    candidates: list[Candidate] = []
    seen_torch: set[tuple[str, str]] = set()
    with_ir = any(a.kind == "openvino" for a in artifacts)
    for artifact in artifacts:
        for spec in backends:
            if not accepts(spec, artifact, with_ir):
                continue
            backend, variant = split_spec(spec)
            if backend.startswith("torch"):
                key = (backend, artifact.source_model)
                if key in seen_torch:
                    continue
                seen_torch.add(key)
                label, precision = TORCH_LABELS.get(backend, backend), "fp32"
            else:
                precision = artifact.precision.value
                label = f"{spec} {precision}" + (" IR" if artifact.kind == "openvino" else "")
            graph = artifact.model_path if artifact.kind == "onnx" else None
            extra = {"precision": variant} if variant else {}
            candidates.append(Candidate(f"c{len(candidates)}", label, backend, precision, artifact.source_model, artifact, graph=graph,
                                        options={**options.get(spec, {}), **extra}))
        if stages and artifact.kind == "onnx" and STAGE_BACKEND in backends:
            for stage, path in split_paths(artifact.folder).items():
                label = f"{STAGE_BACKEND} {artifact.precision.value} · {stage}"
                candidates.append(Candidate(f"c{len(candidates)}", label, STAGE_BACKEND, artifact.precision.value, artifact.source_model,
                                            artifact, stage=stage, graph=path, options=dict(options.get(STAGE_BACKEND, {}))))
    if not candidates:
        raise ConfigError(f"no backend in {backends} can run the given artifacts", "onnxruntime runs ONNX artifacts, tensorrt runs engines, openvino runs OpenVINO IR (and ONNX), torch runs any")
    _disambiguate(candidates)
    return candidates


def _disambiguate(candidates: list[Candidate]) -> None:
    """Two artifacts with the same backend and precision: name the artifact folder in the label."""
    counts: dict[str, int] = {}
    for cand in candidates:
        counts[cand.label] = counts.get(cand.label, 0) + 1
    for cand in candidates:
        if counts[cand.label] > 1 and cand.artifact is not None:
            cand.label = f"{cand.label} [{cand.artifact.folder.name}]"


def flops_graph(candidate: Candidate, candidates: list[Candidate]) -> Path | None:
    """The ONNX graph whose FLOPs stand for a candidate: its own, else an fp32 ONNX graph of the same model."""
    if candidate.graph is not None:
        return candidate.graph
    same = [c for c in candidates if c.stage is None and c.graph is not None and c.source_model == candidate.source_model]
    fp32 = [c for c in same if c.precision == "fp32"]
    chosen = fp32 or same
    return chosen[0].graph if chosen else None
