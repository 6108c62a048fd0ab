"""The manifest's schema, checked when an artifact is opened (docs: "Artifact layout").

A manifest that is not an object, names an unknown task, or lacks the file list that verification
needs is refused with one line instead of failing later with a traceback. Unknown extra keys are
allowed (newer writers may add some); the keys below are what readers rely on.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from .config import EngineKind, OutputMeaning, Precision, Task

KINDS = ("onnx", "tensorrt", "openvino")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _enum_problem(manifest: dict[str, Any], key: str, allowed: tuple[str, ...], required: bool = False) -> str | None:
    if key not in manifest:
        return f'"{key}" is missing' if required else None
    value = manifest[key]
    if value not in allowed:
        return f'"{key}" is {value!r}, expected one of: {", ".join(allowed)}'
    return None


def _relative_name_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return f"file name {name!r} is not a string"
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        return f"file name {name!r} leaves the artifact folder"
    return None


def files_problem(files: object, where: str) -> str | None:
    """The first problem with a ``{name: {"sha256": hex, "bytes": int}}`` table, or None."""
    if not isinstance(files, dict):
        return f'"{where}" is {type(files).__name__}, expected an object of file entries'
    for name, entry in files.items():
        problem = _relative_name_problem(name)
        if problem:
            return f'"{where}": {problem}'
        if not isinstance(entry, dict):
            return f'"{where}"["{name}"] is not an object'
        if not isinstance(entry.get("sha256"), str) or not _SHA256.match(entry["sha256"]):
            return f'"{where}"["{name}"] has no valid "sha256"'
        size = entry.get("bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return f'"{where}"["{name}"] has no valid "bytes"'
    return None


def _shape_problem(shape: object) -> str | None:
    if not isinstance(shape, dict):
        return f'"shape" is {type(shape).__name__}, expected an object'
    for key in ("batch", "height", "width"):
        value = shape.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            return f'"shape"["{key}"] is {value!r}, expected a positive integer or null'
    return None


def _split_problem(split: object) -> str | None:
    if not isinstance(split, dict) or not isinstance(split.get("stages"), dict):
        return '"split" has no "stages" object'
    for stage, entry in split["stages"].items():
        if not isinstance(entry, dict):
            return f'"split"["stages"]["{stage}"] is not an object'
        problem = files_problem(entry.get("files"), f"split.stages.{stage}.files")
        if problem:
            return problem
    return None


def manifest_problem(manifest: object, schema_version: int) -> str | None:
    """The first reason ``manifest`` is not a usable manifest, or None when it is."""
    if not isinstance(manifest, dict):
        return f"it holds a JSON {type(manifest).__name__}, not an object"
    version = manifest.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f'"schema_version" is {version!r}, expected a positive integer'
    if version > schema_version:
        return f"schema_version {version} is newer than this tool reads ({schema_version}); upgrade lotus-deploy"
    checks = (
        _enum_problem(manifest, "task", tuple(t.value for t in Task), required=True),
        _enum_problem(manifest, "kind", KINDS),
        _enum_problem(manifest, "output_meaning", tuple(m.value for m in OutputMeaning)),
        _enum_problem(manifest, "precision", tuple(p.value for p in Precision)),
        _enum_problem(manifest, "engine", tuple(e.value for e in EngineKind)),
        _shape_problem(manifest["shape"]) if "shape" in manifest else None,
        None if isinstance(manifest.get("source", {}), dict) else '"source" is not an object',
        files_problem(manifest["files"], "files") if "files" in manifest else '"files" is missing (nothing could be verified)',
        _split_problem(manifest["split"]) if "split" in manifest else None,
    )
    return next((problem for problem in checks if problem), None)
