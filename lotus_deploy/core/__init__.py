"""Core: errors, enums and settings, the graph contract, artifacts and safe writes (numpy and the stdlib only)."""

from .artifacts import Artifact, open_artifact, read_manifest, verify_files
from .config import EngineKind, EngineSettings, ExportConfig, ExportSettings, OutputMeaning, Precision, PrecisionSettings, Task
from .contract import GraphShape
from .errors import (
    ArtifactError,
    ArtifactExistsError,
    CheckpointError,
    CompatibilityError,
    ConfigError,
    DependencyError,
    InputImageError,
    LotusError,
    NoImagesError,
    OutputPathError,
    ParityError,
    ShapeError,
)
from .parity import ParityReport, compare, judge
from .profile import EngineProfile, derive_profile
from .results import ExportResult
from .version import __version__

__all__ = [
    "Artifact", "ArtifactError", "ArtifactExistsError", "CheckpointError", "CompatibilityError", "ConfigError", "DependencyError",
    "EngineKind", "EngineProfile", "EngineSettings", "ExportConfig", "ExportSettings", "PrecisionSettings", "ExportResult", "GraphShape", "InputImageError", "LotusError", "NoImagesError",
    "OutputMeaning", "OutputPathError", "ParityError", "ParityReport", "Precision", "ShapeError", "Task", "__version__", "compare",
    "derive_profile", "judge", "open_artifact", "read_manifest", "verify_files",
]
