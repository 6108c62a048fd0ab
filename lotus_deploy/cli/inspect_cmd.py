"""``lotus-inspect ARTIFACT``: an artifact's manifest, I/O and profile, and a check of its file hashes.

Works for ONNX artifacts and engine artifacts, for Triton model repositories (``lotus-serve repo``), and for bare files: a ``.onnx`` graph or an engine file
with no manifest (I/O read from the file itself; nothing to verify). I/O is read from the model file
when the library for it is importable (``onnx`` for graphs, TensorRT + a GPU for engines), else taken
from the manifest's contract. Exit code 2 when a file is missing or its hash differs from the manifest.

``--polygraphy`` prints, instead, the ``polygraphy run`` lines that re-check the artifact's parity with
its own tolerances (docs/export.md, "Re-checking parity with Polygraphy").
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.artifacts import MANIFEST, ONNX_FILE, PARITY, Artifact, listed_files, open_artifact, read_manifest, verify_files
from ..core.config import Precision
from ..core.errors import ArtifactError, ConfigError, LotusError
from .common import run_main

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lotus-inspect", description="Show an artifact's manifest, I/O and profile, and verify its file hashes.")
    p.add_argument("artifact", type=Path, metavar="ARTIFACT", help="artifact folder, a file in it, or a bare .onnx / engine file")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip re-hashing the files (sizes are still checked)")
    g = p.add_argument_group("Polygraphy (NVIDIA's comparison tool)")
    g.add_argument("--polygraphy", action="store_true",
                   help="print only `polygraphy run` command lines that re-check the artifact's parity with its own tolerances "
                        "(one per gate, then a layer-wise comparison); drop --trt where TensorRT is absent")
    g.add_argument("--polygraphy-out", type=Path, metavar="DIR",
                   help="with --polygraphy: recompute the parity inputs and reference into the new folder DIR and point the "
                        "commands there (for artifacts written before the files existed; the artifact is never written)")
    g.add_argument("--parity-images", type=Path, metavar="DIR",
                   help="with --polygraphy-out: photos for the parity batch (default $LOTUS_DEPLOY_PARITY_IMAGES, else synthetic)")
    return p


def onnx_io(path: Path) -> list[dict[str, Any]]:
    """I/O of an ONNX graph via the onnx package (weights are not loaded)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    rows = []
    for direction, values in (("input", model.graph.input), ("output", model.graph.output)):
        for value in values:
            if value.name in initializers:
                continue
            tensor = value.type.tensor_type
            dims: list[int | str] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim]
            dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else "?"
            rows.append({"direction": direction, "name": value.name, "dtype": dtype, "shape": dims})
    return rows


def engine_io_rows(path: Path) -> list[dict[str, Any]]:
    """I/O of a TensorRT engine (needs TensorRT, cuda-python and a GPU)."""
    from ..tensorrt.compat import load_tensorrt
    from ..tensorrt.cuda_mem import load_cudart
    from ..tensorrt.engine import deserialize, engine_io

    trt = load_tensorrt()
    load_cudart()
    _runtime, engine = deserialize(trt, path)
    return [{"direction": "input" if t.is_input else "output", "name": t.name, "dtype": t.dtype, "shape": [d if d >= 0 else "dynamic" for d in t.shape]}
            for t in engine_io(trt, engine)]


def ir_io(path: Path) -> list[dict[str, Any]]:
    """I/O of an OpenVINO IR (needs the openvino extra; reads the topology only)."""
    from ..openvino.device import make_core

    model = make_core().read_model(str(path))
    return [{"direction": direction, "name": port.get_any_name(), "dtype": str(port.get_element_type().get_type_name()),
             "shape": [str(d) if d.is_dynamic else d.get_length() for d in port.get_partial_shape()]}
            for direction, ports in (("input", model.inputs), ("output", model.outputs)) for port in ports]


def contract_io(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    contract = manifest.get("contract") or {}
    rows = []
    for direction in ("input", "output"):
        for entry in contract.get(f"{direction}s", []):
            rows.append({"direction": direction, "name": entry.get("name"), "dtype": entry.get("dtype"), "shape": entry.get("shape")})
    return rows


def read_io(model_path: Path, kind: str, manifest: dict[str, Any] | None) -> tuple[list[dict[str, Any]], str]:
    """(rows, where they came from)."""
    try:
        if kind == "tensorrt":
            return engine_io_rows(model_path), f"read from {model_path.name} with TensorRT"
        from ..core.deps import available

        if kind == "openvino":
            if available("openvino"):
                return ir_io(model_path), f"read from {model_path.name} with OpenVINO"
            raise ArtifactError("openvino is not installed", "pip install 'lotus-deploy[openvino]'")

        if available("onnx"):
            return onnx_io(model_path), f"read from {model_path.name}"
        reason = "onnx is not installed"
    except LotusError as exc:
        reason = str(exc).split(" — ")[0]
    except Exception as exc:  # noqa: BLE001 - a corrupt model file: fall back to the manifest, say why
        reason = f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ''}"
    if manifest is None:
        raise ArtifactError(f"cannot read the I/O of {model_path} ({reason}) and it has no manifest", "install what is missing, or inspect an artifact folder")
    return contract_io(manifest), f"from the manifest's contract ({reason})"


def verify(folder: Path, manifest: dict[str, Any], hashes: bool) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Per-file results, failure causes and their fixes (every file is checked, not just up to the first failure)."""
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    fixes: list[str] = []
    for name, entry in listed_files(manifest).items():
        try:
            verify_files(folder, {"files": {name: entry}}, check_hashes=hashes)
            status = "ok" if hashes else "size ok"
        except ArtifactError as exc:
            failures.append(exc.cause)
            fixes.append(exc.fix)
            status = "FAILED"
        rows.append({"file": name, "bytes": entry.get("bytes"), "sha256": entry.get("sha256"), "status": status})
    listed = set(manifest.get("files", {}))
    extra = [name for name in file_hashes_names(folder) if name not in listed]
    for name in extra:
        rows.append({"file": name, "bytes": (folder / name).stat().st_size, "sha256": None, "status": "not in manifest"})
    return rows, failures, fixes


def file_hashes_names(folder: Path) -> list[str]:
    return [p.name for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".") and p.name not in (MANIFEST, PARITY)]


def inspect(path: Path, hashes: bool = True) -> dict[str, Any]:
    """Everything lotus-inspect reports, as a dict; ``failures`` lists hash/size mismatches."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path} does not exist", "pass an artifact folder, or a .onnx / engine file")
    folder = path if path.is_dir() else path.parent
    has_manifest = (folder / MANIFEST).is_file()
    if path.is_file() and has_manifest and path.name not in read_manifest(folder).get("files", {}) and path.name != MANIFEST:
        has_manifest = False  # a stray file beside some artifact's manifest: inspect it on its own
    if not has_manifest:
        if path.is_dir():
            raise ArtifactError(f"{path} has no {MANIFEST}", "point at an artifact folder written by lotus-export or lotus-build, or at a model file")
        kind = "tensorrt" if path.suffix in ENGINE_SUFFIXES else "onnx"
        io, io_source = read_io(path, kind, None)
        return {"artifact": str(path), "manifest": None, "kind": kind, "io": io, "io_source": io_source, "profile": None,
                "files": [], "failures": [], "fixes": [], "note": "no manifest: built outside lotus-deploy (e.g. trtexec); nothing to verify"}
    manifest = read_manifest(folder)
    artifact = Artifact(folder=folder, manifest=manifest)
    io, io_source = read_io(artifact.model_path, artifact.kind, manifest)
    files, failures, fixes = verify(folder, manifest, hashes)
    trt_info = manifest.get("tensorrt") or {}
    return {"artifact": str(folder), "manifest": manifest, "kind": artifact.kind, "io": io, "io_source": io_source,
            "profile": trt_info.get("profile"), "files": files, "failures": failures, "fixes": fixes, "note": None}


def _fmt_shape(shape: Any) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]" if isinstance(shape, list) else str(shape)


def render(report: dict[str, Any]) -> str:
    m = report["manifest"] or {}
    lines = [f"artifact   {report['artifact']}", f"kind       {report['kind']}" + (f" (engine {m.get('engine')}, precision {m.get('precision', '?')})" if m else "")]
    if report["note"]:
        lines.append(f"note       {report['note']}")
    if m:
        source = m.get("source") or {}
        lines.append(f"task       {m.get('task')} (output meaning: {m.get('output_meaning')})")
        lines.append(f"source     {source.get('model')}" + (f", licence {source['licence']}" if source.get("licence") else ""))
        lines.append(f"created    {m.get('created')} (schema {m.get('schema_version')})")
        if m.get("opset") is not None:
            lines.append(f"opset      {m.get('opset')}")
        if m.get("parent"):
            parent = m["parent"]
            lines.append(f"parent     {parent.get('folder')} (manifest sha256 {str(parent.get('manifest_sha256'))[:16]}…)")
        trt = m.get("tensorrt")
        if trt:
            lines.append(f"tensorrt   {trt.get('version')}, compute capability {trt.get('compute_capability')} ({trt.get('gpu_name')}), "
                         f"strongly typed {trt.get('strongly_typed')}, workspace {trt.get('workspace_gib')} GiB, opt level {trt.get('builder_optimization_level')}")
    lines.append(f"I/O        ({report['io_source']})")
    for row in report["io"]:
        lines.append(f"  {row['direction']:<7} {row['name']:<8} {row['dtype']:<8} {_fmt_shape(row['shape'])}")
    profile = report["profile"]
    if profile:
        static = profile.get("min") == profile.get("max")
        if static:
            lines.append(f"profile    static {profile.get('input', 'image')} {'x'.join(map(str, profile['opt']))}")
        else:
            lines.append(f"profile    {profile.get('input', 'image')} min {'x'.join(map(str, profile['min']))}  opt {'x'.join(map(str, profile['opt']))}  max {'x'.join(map(str, profile['max']))}")
    elif m:
        shape = m.get("shape") or {}
        lines.append("shape      " + ", ".join(f"{k} {v if v is not None else 'dynamic'}" for k, v in shape.items()))
    if m.get("parity"):
        parity = m["parity"]
        lines.append(f"parity     max|Δ| {parity.get('max_abs'):.3g}, passed {parity.get('passed')} (tolerances {parity.get('tolerances')})")
        if isinstance(parity.get("bf16"), dict):
            from ..openvino.parity import describe_bf16

            lines.append(f"           {describe_bf16(parity['bf16'])}")
    if report["files"]:
        lines.append("files")
        for row in report["files"]:
            digest = (row["sha256"] or "")[:16]
            lines.append(f"  {row['file']:<18} {row['bytes']:>14,} B  {digest:<16}  {row['status']}")
        verdict = "all files match the manifest" if not report["failures"] else f"{len(report['failures'])} file(s) do NOT match the manifest"
        lines.append(f"verify     {verdict}")
    return "\n".join(lines)


def polygraphy_lines(path: Path, out: Path | None, image_dir: Path | None, hashes: bool) -> list[str]:
    """The ``polygraphy run`` lines for an artifact (see :mod:`lotus_deploy.core.polygraphy_files`)."""
    from ..core.polygraphy_files import ParityFiles, checks_from_parity, polygraphy_commands

    folder = path if path.is_dir() else path.parent
    if not (folder / MANIFEST).is_file():
        raise ArtifactError(f"{path} has no {MANIFEST}: there is no parity record to re-check",
                            "point at an artifact folder written by lotus-export or lotus-build")
    artifact = open_artifact(folder, check_hashes=hashes)
    if artifact.kind == "openvino":
        raise ArtifactError(f"{folder} is an OpenVINO IR, which Polygraphy cannot run (it has ONNX Runtime and TensorRT runners)",
                            "its parity.json records the f32 and bf16 checks; re-check the fp32 parent with lotus-inspect --polygraphy")
    checks = checks_from_parity(artifact.manifest.get("parity"))
    if not checks:
        raise ArtifactError(f"{folder} has no parity record (exported with --no-parity?), so its tolerances are unknown",
                            "re-export it with parity (lotus-export --force ...)")
    files = ParityFiles.under(folder)
    if out is not None:
        from ..pipeline import write_parity_files

        files = write_parity_files(artifact, out, image_dir)
    elif not files.exist():
        raise ArtifactError(f"{folder} has no Polygraphy parity files ({files.inputs.name}, {files.reference.name}): it was written "
                            "before lotus-deploy saved them", f"re-export it with --force, or write them elsewhere: lotus-inspect --polygraphy {folder} --polygraphy-out DIR")
    engine = artifact.kind == "tensorrt"
    parent = Path(str((artifact.manifest.get("parent") or {}).get("folder", ""))) / ONNX_FILE if engine else None
    return polygraphy_commands(artifact.model_path, files, checks, engine=engine, layerwise_onnx=parent if parent and parent.is_file() else None,
                               onnxrt_basic=artifact.precision is Precision.INT8)


def render_repository(report: dict[str, Any]) -> str:
    """A Triton model repository, one block per model (configs parsed with Triton's schema)."""
    lines = [f"Triton model repository {report['repository']}: {len(report['models'])} model(s)"]
    for model in report["models"]:
        batching = f"max_batch_size {model['max_batch_size']}" + (", dynamic batching" if model["dynamic_batching"] else "")
        lines.append(f"  {model['name']}: {model['platform']}, {batching}, instances {', '.join(model['instances']) or 'default'}, "
                     f"versions {', '.join(model['versions']) or 'none'}")
        for direction in ("inputs", "outputs"):
            for tensor in model[direction]:
                lines.append(f"    {direction[:-1]:6} {tensor['name']:10} {tensor['dtype']:12} {_fmt_shape(tensor['dims'])}")
        if model["steps"]:
            lines.append(f"    steps  {' -> '.join(model['steps'])}")
        lines.extend(f"    file   {name}" for name in model["files"])
    return "\n".join(lines)


def _body(args: argparse.Namespace) -> int:
    if args.polygraphy:
        for line in polygraphy_lines(args.artifact, args.polygraphy_out, args.parity_images, args.verify):
            print(line)
        return 0
    if args.polygraphy_out is not None or args.parity_images is not None:
        raise ConfigError("--polygraphy-out and --parity-images only apply with --polygraphy", "add --polygraphy")
    from ..serve.triton_repo import describe_repository, is_repository

    if not (args.artifact / MANIFEST).is_file() and is_repository(args.artifact):
        repository = describe_repository(args.artifact)
        print(json.dumps(repository, indent=2) if args.json else render_repository(repository))
        return 0
    report = inspect(args.artifact, hashes=args.verify)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    else:
        print(render(report))
    if report["failures"]:
        # one line per failure above; the exit code and this one line say it failed
        more = len(report["failures"]) - 1
        raise ArtifactError(report["failures"][0] + (f" (and {more} more file(s), listed above)" if more else ""), report["fixes"][0])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_body, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
