"""[tensorrt] TensorRT engines: version compatibility, CUDA memory, opening, building, trtexec lines.

Named after the library it wraps; ``import tensorrt`` inside it still means NVIDIA's package (absolute imports).
"""

from .build import BuildSettings, build_engine_artifact, preflight
from .compat import load_tensorrt, tensorrt_usable
from .engine import BareEngine, EngineManifestWarning, open_engine
from .trtexec import format_command, trtexec_command

__all__ = [
    "BareEngine", "BuildSettings", "EngineManifestWarning", "build_engine_artifact", "format_command", "load_tensorrt", "open_engine",
    "preflight", "tensorrt_usable", "trtexec_command",
]
