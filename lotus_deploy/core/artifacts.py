"""Artifacts on disk: manifest read/write, file hashes, verification and atomic publication.

An artifact is one folder (docs/contract.md). It is built in a hidden staging folder beside its final
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import OutputMeaning, Precision, Task
from .contract import GraphShape
from .errors import ArtifactError, ArtifactExistsError, ParityError
from .manifest_schema import files_problem, manifest_problem
from .safe_io import check_writable_folder, make_temp_folder, normalize_permissions, publish_lock, write_json_atomic

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
PARITY = "parity.json"
ONNX_FILE = "model.onnx"
ONNX_DATA = "model.onnx.data"
ENGINE_FILE = "model.engine"
IR_FILE = "model.xml"  # OpenVINO IR: the topology; its weights are IR_WEIGHTS beside it
IR_WEIGHTS = "model.bin"
MODEL_FILES = (ONNX_FILE, ENGINE_FILE, IR_FILE)
MODEL_FILE_OF_KIND = {"onnx": ONNX_FILE, "tensorrt": ENGINE_FILE, "openvino": IR_FILE}
SPLIT_DIR = "split"
SPLIT_JSON = "split.json"
_CHUNK = 1 << 22


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_entries(folder: Path, manifest: dict[str, Any]) -> set[str]:
    """Paths (relative, POSIX) of everything an artifact folder may hold according to its manifest."""
    names = {MANIFEST, PARITY, *manifest.get("files", {})}
    split = manifest.get("split")
    if isinstance(split, dict):
        base = str(split.get("folder", SPLIT_DIR))
        names.update({base, f"{base}/{SPLIT_JSON}"})
        for entry in (split.get("stages") or {}).values():
            if isinstance(entry, dict):
                names.update(f"{base}/{name}" for name in entry.get("files", {}))
    return names


def foreign_entries(folder: Path) -> list[str]:
    """What in ``folder`` is not part of the artifact its manifest describes (all of it without a valid manifest).

    Only the topmost foreign entry of a foreign subtree is listed.
    """
    folder = Path(folder)
    ours: set[str] = set()
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = None
    if manifest is not None and manifest_problem(manifest, SCHEMA_VERSION) is None:
        ours = artifact_entries(folder, manifest)
    foreign: list[str] = []
    pending = [folder]
    while pending:  # descend only into our own folders (split/): a foreign tree, e.g. --output ~, is never walked
        for path in pending.pop().iterdir():
            name = path.relative_to(folder).as_posix()
            if name not in ours:
                foreign.append(name)
            elif path.is_dir():
                pending.append(path)
    return sorted(foreign)


def holds_artifact(folder: Path) -> bool:
    """True when ``folder`` holds one of our artifacts and nothing else."""
    folder = Path(folder)
    return folder.is_dir() and (folder / MANIFEST).is_file() and not foreign_entries(folder)


def check_artifact_output(folder: Path, force: bool) -> None:
    """Raise unless ``folder`` may receive an artifact: absent, empty, or ours with ``force``.

    Anything else (a file, a folder with other files in it, even with --force) is refused, so an
    export never deletes a file it did not write.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ArtifactExistsError(f"{folder} exists and is not a folder", "choose another --output")
    if not folder.exists() or not any(folder.iterdir()):
        check_writable_folder(folder.parent if not folder.exists() else folder)
        return
    foreign = foreign_entries(folder)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ArtifactExistsError(f"{folder} holds files that are not a lotus-deploy artifact ({shown})",
                                  "choose a new or empty folder for --output (nothing was changed)")
    if not force:
        raise ArtifactExistsError(f"{folder} already holds an artifact", "pass --force to replace it, or choose another --output")
    check_writable_folder(folder.parent)


def refuse_overwrite(folder: Path, force: bool) -> None:
    """Raise unless ``folder`` is free or holds our artifact and ``force`` was given."""
    check_artifact_output(folder, force)


@contextlib.contextmanager
def staged_artifact(final: Path, force: bool) -> Iterator[Path]:
    """Yield a staging folder; on success move it to ``final`` (replacing our artifact only when ``force``).

    The lock ``.NAME.lock`` beside ``final`` is held throughout, so a concurrent export to the same
    place fails in one line; the output folder is checked again just before the swap. The old
    artifact is moved aside first and deleted only after the new one is in place, so at every instant
    one complete artifact exists at ``final`` or the old one can be restored.
    """
    final = Path(final).absolute()
    with publish_lock(final):
        check_artifact_output(final, force)
        staging = make_temp_folder(final.parent, prefix=f".{final.name}.staging-")
        try:
            yield staging
            normalize_permissions(staging)
            check_artifact_output(final, force)  # unchanged while we worked?
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
    from .version import __version__

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
    """The folder's manifest, schema-checked; one-line ArtifactError when it is missing or malformed."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{folder} has no {MANIFEST}", "point at an artifact folder written by lotus-export") from None
    except IsADirectoryError:
        raise ArtifactError(f"{path} is a folder, not a manifest file", "point at an artifact folder written by lotus-export") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc})", "re-export the artifact") from None
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc.strerror}", "check its permissions") from None
    problem = manifest_problem(data, SCHEMA_VERSION)
    if problem:
        raise ArtifactError(f"{path} is not a valid lotus-deploy manifest: {problem}", "re-export the artifact (or restore its manifest.json)")
    return dict(data)


def listed_files(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every file entry the manifest lists, split graphs included, keyed by its path inside the artifact."""
    listed = dict(manifest.get("files") or {})
    split = manifest.get("split")
    if isinstance(split, dict):
        base = str(split.get("folder", SPLIT_DIR))
        listed.update({f"{base}/{name}": entry for stage in split["stages"].values() for name, entry in stage.get("files", {}).items()})
    return listed


def verify_files(folder: Path, manifest: dict[str, Any], check_hashes: bool = True) -> None:
    """Raise ArtifactError when a listed file is missing, has another size, or another sha256."""
    folder = Path(folder)
    problem = files_problem(manifest.get("files"), "files")
    if problem:
        raise ArtifactError(f"{folder / MANIFEST} cannot be verified: {problem}", "re-export the artifact")
    for name, entry in listed_files(manifest).items():
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
        return self.folder / MODEL_FILE_OF_KIND.get(self.kind, ONNX_FILE)

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

    @property
    def processing_res(self) -> int | None:
        """The working resolution the source checkpoint declares (``source.processing_res``), if any."""
        value = self.manifest.get("source", {}).get("processing_res")
        return int(value) if value else None


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
