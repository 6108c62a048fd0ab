"""Artifacts on disk: manifest read/write, file hashes, verification and atomic publication.

An artifact is one folder (DESIGN.md §3). It is built in a hidden staging folder beside its final
place and renamed into place only when complete, so a failed or interrupted run never leaves a
half-written artifact and never destroys an existing one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import OutputMeaning, Precision, Task
from .contract import GraphShape
from .errors import ArtifactError, ArtifactExistsError, ParityError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
PARITY = "parity.json"
ONNX_FILE = "model.onnx"
ONNX_DATA = "model.onnx.data"
ENGINE_FILE = "model.engine"
MODEL_FILES = (ONNX_FILE, ENGINE_FILE)
_CHUNK = 1 << 22


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask_mode(base: int) -> int:
    """``base`` permissions less the process umask (mkstemp/mkdtemp create owner-only files)."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _umask_mode(0o666))
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=False, default=str)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def holds_artifact(folder: Path) -> bool:
    folder = Path(folder)
    return folder.is_dir() and any((folder / name).exists() for name in (MANIFEST, *MODEL_FILES))


def refuse_overwrite(folder: Path, force: bool) -> None:
    """Raise unless ``folder`` is free or ``force`` was given."""
    if holds_artifact(folder) and not force:
        raise ArtifactExistsError(f"{folder} already holds an artifact", "pass --force to replace it, or choose another --output")
    if Path(folder).exists() and not Path(folder).is_dir():
        raise ArtifactExistsError(f"{folder} exists and is not a folder", "choose another --output")


@contextlib.contextmanager
def staged_artifact(final: Path, force: bool) -> Iterator[Path]:
    """Yield a staging folder; on success move it to ``final`` (replacing it only when ``force``).

    The old artifact is moved aside first and deleted only after the new one is in place, so at
    every instant one complete artifact exists at ``final`` or the old one can be restored.
    """
    final = Path(final)
    refuse_overwrite(final, force)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
    os.chmod(staging, _umask_mode(0o777))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    backup: Path | None = None
    if final.exists():
        backup = final.parent / f".{final.name}.old-{os.getpid()}"
        os.replace(final, backup)
    try:
        os.replace(staging, final)
    except BaseException:
        if backup is not None:
            os.replace(backup, final)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def tool_versions(*modules: str) -> dict[str, str]:
    """Versions of the named packages that are installed (missing ones are left out)."""
    from importlib import metadata

    versions = {"python": platform.python_version(), "lotus-deploy": _own_version()}
    for name in modules:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _own_version() -> str:
    from . import __version__

    return __version__


def file_hashes(folder: Path, skip: tuple[str, ...] = (MANIFEST, PARITY)) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file in the artifact except the manifest and parity report."""
    hashes = {}
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and path.name not in skip and not path.name.startswith("."):
            hashes[path.name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return hashes


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def write_manifest(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Complete ``manifest`` with schema version, date and file hashes, and write it atomically."""
    full = {"schema_version": SCHEMA_VERSION, "created": now_iso(), **manifest, "files": file_hashes(folder)}
    write_json_atomic(Path(folder) / MANIFEST, full)
    return full


def record_parity(folder: Path, manifest: dict[str, Any], parity: dict[str, Any], passed: bool, failure: str, fix: str) -> None:
    """Put a parity report in the manifest and in parity.json; refuse to publish when it failed."""
    manifest["parity"] = parity
    write_json_atomic(Path(folder) / PARITY, parity)
    if not passed:
        raise ParityError(failure, fix)


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{folder} has no {MANIFEST}", "point at an artifact folder written by lotus-export") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc})", "re-export the artifact") from None
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ArtifactError(f"{path} has schema_version {version!r}; this tool reads up to {SCHEMA_VERSION}", "upgrade lotus-deploy or re-export")
    return data


def verify_files(folder: Path, manifest: dict[str, Any], check_hashes: bool = True) -> None:
    """Raise ArtifactError when a listed file is missing, has another size, or another sha256."""
    folder = Path(folder)
    for name, entry in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            hint = "the external-data file must sit beside model.onnx" if name.endswith(".data") else "copy the whole artifact folder"
            raise ArtifactError(f"{path} is missing", f"{hint}, or re-export")
        if path.stat().st_size != entry["bytes"]:
            raise ArtifactError(f"{path} has {path.stat().st_size} bytes, its manifest says {entry['bytes']}", "the file was changed or truncated; re-export")
        if check_hashes and sha256_file(path) != entry["sha256"]:
            raise ArtifactError(f"{path} no longer matches the sha256 in its manifest", "the file was modified; re-export the artifact (or restore it)")


@dataclass(frozen=True)
class Artifact:
    """An artifact folder opened for reading, with what its manifest says."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind", "onnx"))

    @property
    def model_path(self) -> Path:
        return self.folder / (ENGINE_FILE if self.kind == "tensorrt" else ONNX_FILE)

    @property
    def task(self) -> Task:
        return Task(self.manifest["task"])

    @property
    def meaning(self) -> OutputMeaning:
        return OutputMeaning(self.manifest.get("output_meaning", self.task.value))

    @property
    def precision(self) -> Precision:
        return Precision(self.manifest.get("precision", "fp32"))

    @property
    def shape(self) -> GraphShape:
        return GraphShape.from_json(self.manifest.get("shape", {}))

    @property
    def source_model(self) -> str:
        return str(self.manifest.get("source", {}).get("model", ""))


def open_artifact(folder: Path | str, check_hashes: bool = True) -> Artifact:
    """Read and verify an artifact folder (or the folder of a given model file)."""
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    if not folder.exists():
        raise ArtifactError(f"{folder} does not exist", "pass the folder written by lotus-export")
    manifest = read_manifest(folder)
    verify_files(folder, manifest, check_hashes=check_hashes)
    return Artifact(folder=folder, manifest=manifest)
