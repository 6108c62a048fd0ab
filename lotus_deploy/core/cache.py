"""Where lotus-deploy keeps generated files (built-in models, ONNX Runtime TensorRT caches): one variable."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

HOME_VARIABLE = "LOTUS_DEPLOY_HOME"
DEPRECATED_VARIABLE = "LOTUS_DEPLOY_CACHE"  # before 0.2.0 the ort-trt cache read this one
DEFAULT_HOME = Path("~/.cache/lotus-deploy")
_warned = False


def cache_root() -> Path:
    """``$LOTUS_DEPLOY_HOME``, else the deprecated ``$LOTUS_DEPLOY_CACHE`` (warns once), else ``~/.cache/lotus-deploy``."""
    global _warned
    home = os.environ.get(HOME_VARIABLE)
    if home:
        return Path(home).expanduser()
    old = os.environ.get(DEPRECATED_VARIABLE)
    if old:
        if not _warned:
            _warned = True
            warnings.warn(f"${DEPRECATED_VARIABLE} is deprecated; set ${HOME_VARIABLE} instead (it now holds every cache)",
                          DeprecationWarning, stacklevel=2)
        return Path(old).expanduser()
    return DEFAULT_HOME.expanduser()
