"""Optional dependencies in tests: skip naming the extra that brings them — or, in CI's full run
(``LOTUS_REQUIRE_EXTRAS=1``), fail, so a missing install can never turn into silent skips.

TensorRT and CUDA are exempt (no machine of this project has them; their tests are marked instead).
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest

EXTRA_OF = {
    "torch": "export", "diffusers": "export", "transformers": "export", "onnx": "export", "onnxslim": "export",
    "onnxruntime": "ort", "onnxconverter_common": "precision", "cv2": "video", "matplotlib": "bench", "psutil": "bench",
    "openvino": "openvino", "nncf": "openvino-int8", "ray": "ray", "pyarrow": "ray", "tritonclient": "serve", "google": "serve",
}


def need(module: str) -> ModuleType:
    """Import ``module`` or skip the test (module-level: the file) with the extra's name in the reason."""
    extra = EXTRA_OF.get(module.split(".")[0], "?")
    reason = f"needs the {extra} extra ({module} is not installed): pip install -e '.[{extra}]'"
    try:
        return pytest.importorskip(module, reason=reason)
    except pytest.skip.Exception:
        if os.environ.get("LOTUS_REQUIRE_EXTRAS") == "1":
            pytest.fail(f"LOTUS_REQUIRE_EXTRAS=1 but {module} is missing: {reason}", pytrace=False)
        raise


def need_all(*modules: str) -> None:
    """``need`` for several modules at once (the first missing one decides the skip)."""
    for module in modules:
        need(module)
