"""`import lotus_deploy` and pre/post-processing must work on a runtime with no torch/onnx/ORT/TensorRT."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_SCRIPT = r"""
import sys
BLOCKED = {"torch", "onnx", "onnxruntime", "tensorrt", "diffusers", "transformers", "onnxslim", "cv2", "matplotlib", "modelopt",
           "ray", "pyarrow", "tritonclient", "pytriton", "google"}

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked for this test")
        return None

sys.meta_path.insert(0, Blocker())
import numpy as np
import lotus_deploy
from lotus_deploy.image import preprocess, postprocess
from lotus_deploy.core import config, contract, artifacts, parity
from lotus_deploy.runtime import DepthEstimator, backend_names
from lotus_deploy.cli import infer_cmd, export_cmd, serve_cmd, inspect_cmd
from lotus_deploy.serve import ray_batch, triton_repo, triton_python, pytriton_server
img = (np.arange(50 * 70 * 4) % 251).astype(np.uint8).reshape(50, 70, 4)
x, info = preprocess.preprocess(img, processing_res=100)
assert x.shape == (1, 3, 128, 128) and x.dtype == np.float32, x.shape
out = np.zeros((1, 128, 128), np.float32)
depth = postprocess.decode_depth(postprocess.crop_and_resize(out, info))
assert depth.shape == (50, 70)
assert postprocess.colorize_depth(depth).shape == (50, 70, 3)
from lotus_deploy.core.deps import require
from lotus_deploy.core.errors import DependencyError
try:
    require("onnxruntime")
except DependencyError as exc:
    assert "lotus-deploy[ort]" in str(exc), exc
else:
    raise AssertionError("onnxruntime should be blocked")
for module, extra in (("ray", "ray"), ("tritonclient", "serve")):
    try:
        require(module)
    except DependencyError as exc:
        assert f"lotus-deploy[{extra}]" in str(exc), exc
    else:
        raise AssertionError(f"{module} should be blocked")
try:
    pytriton_server.load_pytriton()
except DependencyError as exc:
    assert "nvidia-pytriton>=0.7" in str(exc) and "numpy<2" in str(exc), exc
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not leaked, leaked
print("light import ok")
"""


def test_package_imports_without_heavy_dependencies() -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "light import ok" in done.stdout


def test_missing_onnxruntime_is_a_one_line_error(tmp_path: Path) -> None:
    script = _SCRIPT.split("import numpy as np")[0] + (
        "from lotus_deploy.cli import infer_cmd\n"
        f"raise SystemExit(infer_cmd.main([{str(tmp_path)!r}, '-a', {str(tmp_path)!r}, '--quiet']))\n"
    )
    (tmp_path / "manifest.json").write_text('{"schema_version": 1, "task": "depth", "files": {}}')
    (tmp_path / "x.png").write_bytes(b"")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "lotus-deploy[ort]" in done.stderr
