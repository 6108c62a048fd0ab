"""lotus-serve run: a real Triton server (PyTriton) on localhost, concurrent HTTP and gRPC clients.

PyTriton needs numpy < 2 and the system Python, so this file runs in the serving venv that
scripts/check.sh makes (LOTUS_REQUIRE_PYTRITON=1 there: a missing PyTriton fails instead of skipping).
The artifact comes from LOTUS_SERVE_ARTIFACT (check.sh exports builtin:tiny in the main environment),
else from the tiny_depth_onnx fixture where torch is installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lotus_deploy.cli import infer_cmd

if os.environ.get("LOTUS_REQUIRE_PYTRITON") == "1":
    import pytriton  # noqa: F401 - fails the run where the serving venv lacks it
else:
    pytest.importorskip("pytriton", reason="runs in the serving venv that scripts/check.sh makes (PyTriton needs the system Python and numpy<2)")
pytest.importorskip("tritonclient.grpc", reason="needs the serve extra (tritonclient[http,grpc])")

from lotus_deploy.runtime.estimator import DepthEstimator  # noqa: E402
from lotus_deploy.serve.pytriton_server import ServerSettings, free_local_ports, running_server  # noqa: E402

RES = 128
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "serve_client.py"


@pytest.fixture(scope="module")
def artifact(request: pytest.FixtureRequest) -> Path:
    given = os.environ.get("LOTUS_SERVE_ARTIFACT")
    if given:
        return Path(given)
    return Path(request.getfixturevalue("tiny_depth_onnx"))


@pytest.fixture(scope="module")
def images(shared_images: Path) -> list[Path]:
    """Real photos of different sizes."""
    photos = sorted(p for p in shared_images.iterdir() if p.suffix.lower() in {".jpg", ".png"})[:5]
    from PIL import Image

    assert len({Image.open(p).size for p in photos}) > 1
    return photos


@pytest.fixture(scope="module")
def reference(artifact: Path, images: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """What plain lotus-infer writes for the same images."""
    out = tmp_path_factory.mktemp("lotus-infer")
    assert infer_cmd.main([*map(str, images), "-a", str(artifact), "--processing-res", str(RES), "-o", str(out), "--quiet"]) == 0
    return {p.name: np.load(out / f"{p.stem}.npy") for p in images}


def _http(port: int, data: bytes) -> np.ndarray:
    import tritonclient.http as http

    client = http.InferenceServerClient(f"127.0.0.1:{port}")
    tensor = http.InferInput("encoded", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[data]], dtype=object))
    return np.asarray(client.infer("lotus_depth", [tensor]).as_numpy("depth"))


def _grpc(port: int, data: bytes) -> np.ndarray:
    import tritonclient.grpc as grpc

    client = grpc.InferenceServerClient(f"127.0.0.1:{port}")
    tensor = grpc.InferInput("encoded", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[data]], dtype=object))
    return np.asarray(client.infer("lotus_depth", [tensor]).as_numpy("depth"))


def _ask_concurrently(settings: ServerSettings, images: list[Path]) -> tuple[dict[tuple[str, str], Any], Any, Any]:
    """Every image over HTTP and over gRPC at once, plus a corrupt image on each; answers or exceptions."""
    jobs = [(proto, p.name, p.read_bytes()) for p in images for proto in ("http", "grpc")]
    jobs.insert(3, ("http", "corrupt", b"\x89PNG\r\n\x1a\n broken"))
    jobs.insert(7, ("grpc", "corrupt", b"not an image"))

    def one(job: tuple[str, str, bytes]) -> Any:
        proto, _, data = job
        try:
            return _http(settings.http_port, data) if proto == "http" else _grpc(settings.grpc_port, data)
        except Exception as exc:  # noqa: BLE001 - the answer under test is the error itself
            return exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(one, jobs))
    good = {(proto, name): answer for (proto, name, _), answer in zip(jobs, answers, strict=True) if name != "corrupt"}
    bad = [answer for (_, name, _), answer in zip(jobs, answers, strict=True) if name == "corrupt"]
    return good, bad[0], bad[1]


@pytest.mark.parametrize("max_batch", [1, 4], ids=["dynamic-batching-off", "dynamic-batching-on"])
def test_concurrent_http_and_grpc_clients_get_lotus_infers_answers(artifact: Path, images: list[Path], reference: dict[str, np.ndarray],
                                                                    max_batch: int, tmp_path: Path) -> None:
    http_port, grpc_port, metrics_port = free_local_ports(3)
    settings = ServerSettings(http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port, max_batch=max_batch, max_queue_delay_us=20000)
    with DepthEstimator(artifact, processing_res=RES, batch_size=max_batch) as estimator, running_server(estimator, settings):
        good, bad_http, bad_grpc = _ask_concurrently(settings, images)
        if max_batch == 1:  # the client example in examples/ works against this server
            saved = tmp_path / "from_example.npy"
            done = subprocess.run([sys.executable, str(EXAMPLE), str(images[0]), "--url", f"127.0.0.1:{http_port}", "--out", str(saved)],
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            assert np.array_equal(np.load(saved), reference[images[0].name])
    for (proto, name), answer in good.items():
        assert not isinstance(answer, Exception), f"{proto} {name}: {answer}"
        expected = reference[name]
        assert answer.shape == (1, *expected.shape), (proto, name)
        if max_batch == 1:
            assert np.array_equal(answer[0], expected), (proto, name)  # byte-identical to lotus-infer
        else:
            assert np.abs(answer[0] - expected).max() <= 1e-6, (proto, name)
    for bad in (bad_http, bad_grpc):
        assert isinstance(bad, Exception) and "cannot read image" in str(bad)


def test_the_load_benchmark_runs_and_records_its_goal(artifact: Path, shared_images: Path, tmp_path: Path) -> None:
    """benchmarks/serve_load.py end to end, tiny bounds (the committed result uses more requests)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "serve_load.py"
    done = subprocess.run([sys.executable, str(script), "--artifact", str(artifact), "--images", str(shared_images), "--requests", "6",
                           "--clients", "3", "--processing-res", "64", "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    data = json.loads((tmp_path / "serve_load.json").read_text())
    assert [s["dynamic_batching"] for s in data["settings"]] == [True, False]
    for setting in data["settings"]:
        assert setting["sequential"]["requests"] == 6 and setting["concurrent"]["clients"] == 3
        assert setting["sequential"]["graph_mean_batch"] == 1.0  # one client: nothing to batch
    assert data["goal"]["ratio"] > 0 and data["command"][:2] == ["python", "benchmarks/serve_load.py"]
    assert (tmp_path / "serve_load.md").read_text().count("|") > 20
