"""Triton model repositories (lotus-serve repo): every config follows Triton's schema; the Python models
pre/post-process exactly as DepthEstimator does; bad input fails alone; nothing on disk is lost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import triton_double
from extras import need

from lotus_deploy.cli import inspect_cmd, serve_cmd
from lotus_deploy.core.artifacts import Artifact, open_artifact
from lotus_deploy.core.errors import ArtifactExistsError, ConfigError
from lotus_deploy.serve.triton_python import model_class
from lotus_deploy.serve.triton_repo import RepoSettings, describe_repository, parse_config, repository_configs, to_pbtxt

need("tritonclient")


def _manifest(kind: str, task: str, shape: dict[str, int | None], profile: dict[str, list[int]] | None = None) -> dict[str, Any]:
    manifest: dict[str, Any] = {"kind": kind, "task": task, "output_meaning": task, "precision": "fp16", "shape": shape}
    if profile is not None:
        manifest["tensorrt"] = {"profile": {"input": "image", **profile}}
    return manifest


DYNAMIC = {"batch": None, "height": None, "width": None}
STATIC_B1 = {"batch": 1, "height": 512, "width": 512}
STATIC_HW = {"batch": None, "height": 384, "width": 512}
CASES = {
    "onnx-dynamic": (_manifest("onnx", "depth", DYNAMIC), 8, [3, -1, -1]),
    "onnx-static-b1": (_manifest("onnx", "normal", STATIC_B1), 0, [1, 3, 512, 512]),
    "onnx-static-hw": (_manifest("onnx", "depth", STATIC_HW), 8, [3, 384, 512]),
    "trt-dynamic": (_manifest("tensorrt", "depth", DYNAMIC, {"min": [1, 3, 256, 256], "opt": [2, 3, 512, 512], "max": [4, 3, 768, 768]}),
                    4, [3, -1, -1]),
    "trt-static": (_manifest("tensorrt", "normal", STATIC_B1, {"min": [1, 3, 512, 512], "opt": [1, 3, 512, 512], "max": [1, 3, 512, 512]}),
                   0, [1, 3, 512, 512]),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("preprocess", ["python", "ensemble"])
def test_every_generated_config_parses_with_tritons_schema(case: str, preprocess: str, tmp_path: Path) -> None:
    manifest, max_batch, dims = CASES[case]
    artifact = Artifact(tmp_path, manifest)
    settings = RepoSettings(preprocess=preprocess)  # type: ignore[arg-type]
    if preprocess == "ensemble" and max_batch == 0:
        with pytest.raises(ConfigError, match="ensemble needs a graph with a dynamic batch axis"):
            repository_configs(artifact, settings)
        return
    configs = repository_configs(artifact, settings)
    parsed = {name: parse_config(to_pbtxt(config), name) for name, config in configs.items()}
    graph = parsed[f"lotus_{manifest['task']}_graph"]
    assert graph.platform == ("tensorrt_plan" if manifest["kind"] == "tensorrt" else "onnxruntime_onnx")
    assert graph.max_batch_size == max_batch and list(graph.input[0].dims) == dims and graph.input[0].name == "image"
    assert graph.output[0].name == manifest["task"] and graph.output[0].dims[len(dims) - 3] == (3 if manifest["task"] == "normal" else 1)
    assert graph.HasField("dynamic_batching") == (max_batch > 0)
    front = parsed[f"lotus_{manifest['task']}"]
    assert front.input[0].name == "encoded" and front.input[0].data_type == 13  # TYPE_STRING
    assert (front.platform == "ensemble") == (preprocess == "ensemble")
    if preprocess == "ensemble":
        assert [step.model_name for step in front.ensemble_scheduling.step] == [
            f"lotus_{manifest['task']}_pre", f"lotus_{manifest['task']}_graph", f"lotus_{manifest['task']}_post"]


def test_a_field_triton_does_not_know_is_refused() -> None:
    from lotus_deploy.core.errors import ArtifactError

    with pytest.raises(ArtifactError, match="does not follow Triton's model-config schema"):
        parse_config('name: "x"\nmax_batch: 4\n')


@pytest.mark.parametrize(("manifest", "settings", "message"), [
    (CASES["trt-dynamic"][0], RepoSettings(max_batch=8), "more than the engine's profile allows"),
    (CASES["trt-dynamic"][0], RepoSettings(instance_kind="cpu"), "runs on a GPU only"),
    (CASES["onnx-static-b1"][0], RepoSettings(max_batch=4), "fixed batch of 1"),
    (_manifest("openvino", "depth", DYNAMIC), RepoSettings(), "cannot be served by Triton"),
    (CASES["onnx-dynamic"][0], RepoSettings(name="bad name!"), "model name"),
])
def test_impossible_requests_are_refused_in_one_line(manifest: dict[str, Any], settings: RepoSettings, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        repository_configs(Artifact(tmp_path, manifest), settings)


def _model_json(repo: Path, name: str) -> dict[str, Any]:
    from google.protobuf import json_format

    return json_format.MessageToDict(parse_config((repo / name / "config.pbtxt").read_text()), preserving_proto_field_name=True)


@pytest.fixture(scope="module")
def onnx_graph(tiny_depth_onnx: Path) -> Any:
    """The graph model of the repository, run by ONNX Runtime as Triton's onnxruntime backend would."""
    need("onnxruntime")
    from lotus_deploy.onnxrt.session import make_session

    session = make_session(tiny_depth_onnx / "model.onnx")
    return lambda batch: session.run(["depth"], {"image": batch})[0]


def test_the_python_models_predict_what_depth_estimator_predicts(tiny_depth_onnx: Path, shared_images: Path, onnx_graph: Any,
                                                                 tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lotus_deploy.runtime.estimator import DepthEstimator

    repo = tmp_path / "repo"
    assert serve_cmd.main(["repo", str(tiny_depth_onnx), "--out", str(repo), "--instance-kind", "cpu", "--processing-res", "128",
                           "--max-batch", "2"]) == 0
    assert sorted(p.name for p in repo.iterdir()) == ["lotus_depth", "lotus_depth_graph"]
    assert (repo / "lotus_depth_graph" / "1" / "model.onnx").read_bytes() == (tiny_depth_onnx / "model.onnx").read_bytes()
    assert (repo / "lotus_depth_graph" / "1" / "model.onnx.data").is_file()
    assert 'model_class(pb_utils, "end_to_end")' in (repo / "lotus_depth" / "1" / "model.py").read_text()

    photos = sorted(p for p in shared_images.iterdir() if p.suffix.lower() in {".jpg", ".png"})[:3]
    utils = triton_double.TritonUtils({"lotus_depth_graph": onnx_graph})
    model = triton_double.initialize(model_class(utils, "end_to_end")(), _model_json(repo, "lotus_depth"))
    requests = [triton_double.Request(encoded=np.array([[p.read_bytes()]], dtype=object)) for p in photos]
    requests.insert(1, triton_double.Request(encoded=np.array([[b"not an image"]], dtype=object)))
    responses = model.execute(requests)
    assert responses[1].has_error() and "cannot read image" in responses[1].error().message()
    with DepthEstimator(tiny_depth_onnx, processing_res=128) as estimator:
        for photo, response in zip(photos, [responses[0], *responses[2:]], strict=True):
            assert not response.has_error()
            served = triton_double.get_output_tensor_by_name(response, "depth").as_numpy()
            assert served.shape[0] == 1 and np.array_equal(served[0], estimator.predict(photo).values)


def test_the_ensemble_steps_chain_to_the_same_prediction(tiny_depth_onnx: Path, shared_images: Path, onnx_graph: Any, tmp_path: Path) -> None:
    from lotus_deploy.runtime.estimator import DepthEstimator

    repo = tmp_path / "repo"
    assert serve_cmd.main(["repo", str(tiny_depth_onnx), "--out", str(repo), "--preprocess", "ensemble", "--instance-kind", "cpu",
                           "--processing-res", "128", "--link"]) == 0
    assert (repo / "lotus_depth_graph" / "1" / "model.onnx").stat().st_ino == (tiny_depth_onnx / "model.onnx").stat().st_ino
    utils = triton_double.TritonUtils({})
    pre = triton_double.initialize(model_class(utils, "pre")(), _model_json(repo, "lotus_depth_pre"))
    post = triton_double.initialize(model_class(utils, "post")(), _model_json(repo, "lotus_depth_post"))
    photo = next(p for p in sorted(shared_images.iterdir()) if p.suffix.lower() == ".jpg")
    first = pre.execute([triton_double.Request(encoded=np.array([[photo.read_bytes()]], dtype=object)),
                         triton_double.Request(encoded=np.array([[b"\x89PNG broken"]], dtype=object))])
    assert first[1].has_error()
    image = triton_double.get_output_tensor_by_name(first[0], "image").as_numpy()
    info = triton_double.get_output_tensor_by_name(first[0], "info").as_numpy()
    (result,) = post.execute([triton_double.Request(raw=onnx_graph(image), info=info)])
    with DepthEstimator(tiny_depth_onnx, processing_res=128) as estimator:
        assert np.array_equal(triton_double.get_output_tensor_by_name(result, "depth").as_numpy()[0], estimator.predict(photo).values)


def test_an_existing_repository_is_kept_unless_forced_and_inspect_shows_it(tiny_depth_onnx: Path, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "mine.txt").write_text("keep")
    with pytest.raises(ArtifactExistsError):
        from lotus_deploy.serve.triton_repo import write_repository

        write_repository(open_artifact(tiny_depth_onnx), repo, RepoSettings(instance_kind="cpu"))
    assert serve_cmd.main(["repo", str(tiny_depth_onnx), "--out", str(repo), "--instance-kind", "cpu"]) == 2
    assert "already exists" in capsys.readouterr().err and (repo / "mine.txt").read_text() == "keep"
    assert serve_cmd.main(["repo", str(tiny_depth_onnx), "--out", str(repo), "--instance-kind", "cpu", "--force", "--max-batch", "4"]) == 0
    assert not (repo / "mine.txt").exists() and not list(tmp_path.glob(".repo*"))  # replaced whole; no staging left
    capsys.readouterr()
    assert inspect_cmd.main([str(repo), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    models = {m["name"]: m for m in report["models"]}
    assert models["lotus_depth_graph"]["platform"] == "onnxruntime_onnx" and models["lotus_depth_graph"]["max_batch_size"] == 4
    assert models["lotus_depth_graph"]["inputs"] == [{"name": "image", "dtype": "TYPE_FP32", "dims": [3, -1, -1]}]
    assert models["lotus_depth"]["platform"] == "python" and models["lotus_depth"]["files"] == ["1/model.py"]
    assert describe_repository(repo) == report
    assert inspect_cmd.main([str(repo)]) == 0
    text = capsys.readouterr().out
    assert "lotus_depth_graph" in text and "onnxruntime_onnx" in text and "KIND_CPU" in text
