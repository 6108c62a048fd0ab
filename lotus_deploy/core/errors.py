"""Errors users can act on.

Every expected failure raises a subclass of :class:`LotusError`. Its message is one line that says
what was received, what was expected and what to do; the CLI prints it without a traceback.
"""

from __future__ import annotations


class LotusError(Exception):
    """Base class for every expected, user-facing failure."""

    def __init__(self, cause: str, fix: str = "") -> None:
        self.cause = cause
        self.fix = fix
        super().__init__(f"{cause} — {fix}" if fix else cause)


class InputImageError(LotusError):
    """An image could not be read or has an unusable shape."""


class NoImagesError(LotusError):
    """A folder that should hold images holds none."""


class CheckpointError(LotusError):
    """A model id or folder is not a loadable Lotus-D checkpoint."""


class ArtifactError(LotusError):
    """An artifact on disk is missing files, corrupt, or does not match its manifest."""


class ArtifactExistsError(LotusError):
    """The output folder already holds an artifact and overwriting was not requested."""


class OutputPathError(LotusError):
    """An output path cannot be written: a file where a folder is needed, no permission, a full disk..."""


class ShapeError(LotusError):
    """An input does not fit the graph's contract (wrong size for a static graph, wrong rank...)."""


class ParityError(LotusError):
    """A graph's output differs from the reference by more than the tolerance."""


class DependencyError(LotusError):
    """An optional dependency is missing; the message names the pip extra that provides it."""


class ConfigError(LotusError):
    """A combination of settings that cannot work."""


class CompatibilityError(LotusError):
    """An engine was built for another TensorRT version or GPU architecture."""
