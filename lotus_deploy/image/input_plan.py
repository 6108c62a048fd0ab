"""Which images a batch run reads, and the unique, predictable name each one's outputs get.

Rules (README "Output names"):

* a file named directly lands at the top of the output folder: ``photo.jpg`` → ``out/photo.*``;
* a file found inside a folder argument keeps its path relative to that folder, subfolders included:
  ``photos/sub/b.jpg`` → ``out/sub/b.*``;
* when two images in one folder share a stem (``x.webp``, ``x.tiff``), both keep their extension in
  the output name (``out/x.webp.npy``, ``out/x.tiff.npy``);
* inputs that would still map to one name (``d1/x.jpg`` and ``d2/x.jpg`` given as two folders) are
  refused before any work, naming both;
* hidden files and folders (``.*``, macOS ``._*``) inside folders are skipped and counted; the
  output folder itself is never read as input.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ConfigError, InputImageError, NoImagesError
from .preprocess import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class PlannedInput:
    """One image and where its outputs go (``subdir`` relative to the output folder)."""

    path: Path
    subdir: Path
    stem: str

    @property
    def key(self) -> str:
        """The output name relative to the output folder, without suffix (unique within a plan)."""
        return (self.subdir / self.stem).as_posix()


@dataclass
class InputPlan:
    inputs: list[PlannedInput] = field(default_factory=list)
    hidden_skipped: list[Path] = field(default_factory=list)


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _walk_images(folder: Path, exclude: Path | None, hidden: list[Path]) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted), without hidden entries and ``exclude``."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        kept_dirs = []
        for name in sorted(dirnames):
            sub = here / name
            if _is_hidden(name):
                hidden.append(sub)
            elif exclude is None or sub.resolve() != exclude:
                kept_dirs.append(name)
        dirnames[:] = kept_dirs
        for name in sorted(filenames):
            if Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            if _is_hidden(name):
                hidden.append(here / name)
            else:
                found.append(here / name)
    return sorted(found)


def _names_for(files: list[tuple[Path, Path]]) -> list[PlannedInput]:
    """(path, relative path) pairs → planned inputs; same-stem files in one folder keep their extension."""
    by_stem: dict[tuple[Path, str], int] = {}
    for _, rel in files:
        by_stem[(rel.parent, rel.stem)] = by_stem.get((rel.parent, rel.stem), 0) + 1
    return [PlannedInput(path, rel.parent, rel.name if by_stem[(rel.parent, rel.stem)] > 1 else rel.stem) for path, rel in files]


def plan_inputs(inputs: Sequence[Path], output: Path | None = None) -> InputPlan:
    """Expand files and folders into planned inputs; one-line errors before any work."""
    exclude = Path(output).resolve() if output is not None else None
    plan = InputPlan()
    direct: list[tuple[Path, Path]] = []
    planned: list[PlannedInput] = []
    for path in inputs:
        path = Path(path)
        if path.is_dir():
            images = _walk_images(path, exclude, plan.hidden_skipped)
            planned += _names_for([(image, image.relative_to(path)) for image in images])
        elif path.is_file():
            direct.append((path, Path(path.name)))
        else:
            raise InputImageError(f"{path} does not exist", "pass image files or folders that exist")
    planned = _names_for(direct) + planned
    seen: dict[str, PlannedInput] = {}
    for item in planned:
        other = seen.get(item.key)
        if other is not None:
            if other.path.resolve() == item.path.resolve():
                raise ConfigError(f"{item.path} is given twice", "pass each image or folder once")
            raise ConfigError(f"{other.path} and {item.path} would both be written as {item.key}.*",
                              "pass their common parent folder instead (outputs then keep their subfolders)")
        seen[item.key] = item
    if not planned:
        hidden = f" ({len(plan.hidden_skipped)} hidden files skipped)" if plan.hidden_skipped else ""
        wanted = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise NoImagesError(f"no images found in {', '.join(str(p) for p in inputs)}{hidden}", f"pass files with one of these extensions: {wanted}")
    plan.inputs = planned
    return plan
