"""Our pre/post-processing as Triton Python-backend models (the ``model.py`` files of ``lotus-serve repo``).

Triton hands these classes its ``triton_python_backend_utils`` module (``pb``); nothing here imports
it, so the logic runs and is tested outside Triton. The steps are the package's own (decode,
``preprocess``, ``restore_output``), so a served prediction equals ``DepthEstimator``'s for the same
graph. A request that cannot be decoded gets its own error; the other requests of the batch succeed.

Roles: ``end_to_end`` (encoded image → prediction, calling the graph model through BLS), ``pre``
(encoded image → graph input and the sizes) and ``post`` (graph output and sizes → prediction), the
last two chained around the graph by an ensemble.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.config import Task
from ..core.errors import LotusError
from ..image.postprocess import restore_output
from ..image.preprocess import PreprocessInfo, decode_image, preprocess

ENCODED_INPUT = "encoded"
IMAGE_TENSOR = "image"
INFO_TENSOR = "info"
RAW_TENSOR = "raw"


@dataclass(frozen=True)
class ServedGraph:
    """What the repository writer told the Python models (their config's ``parameters``)."""

    graph_model: str
    task: Task
    output: str
    processing_res: int
    resample: str
    graph_hw: tuple[int, int] | None
    static_batch: int | None
    max_batch: int

    @classmethod
    def from_model_config(cls, model_config: str | dict[str, Any]) -> ServedGraph:
        config = json.loads(model_config) if isinstance(model_config, str) else model_config
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        height, width = int(params["graph_height"]), int(params["graph_width"])
        return cls(graph_model=params["graph_model"], task=Task(params["task"]), output=params["output"],
                   processing_res=int(params["processing_res"]), resample=params["resample"],
                   graph_hw=(height, width) if height and width else None, static_batch=int(params["static_batch"]) or None,
                   max_batch=int(params["graph_max_batch"]))


def prediction_dims(task: Task) -> list[int]:
    """Dims of one served prediction at the image's size: H x W (depth), H x W x 3 (normals)."""
    return [-1, -1, 3] if task is Task.NORMAL else [-1, -1]


def encoded_bytes(array: np.ndarray) -> bytes:
    """The one encoded image of a request (a BYTES tensor of shape [1] or [1, 1])."""
    flat = np.asarray(array, dtype=object).reshape(-1)
    if flat.size != 1:
        raise LotusError(f"a request holds {flat.size} encoded images", "send one image per request")
    value = flat[0]
    return value if isinstance(value, bytes) else bytes(value)


def prepare_encoded(data: bytes, graph: ServedGraph) -> tuple[np.ndarray, PreprocessInfo]:
    """Encoded image → graph input [1, 3, H, W] and the sizes to undo it, as ``DepthEstimator.prepare`` does."""
    return preprocess(decode_image(data, "the request's image"), processing_res=graph.processing_res, graph_hw=graph.graph_hw)


def info_to_array(info: PreprocessInfo) -> np.ndarray:
    return np.array([*info.original, *info.resized, *info.padded], dtype=np.int64)


def info_from_array(values: np.ndarray) -> PreprocessInfo:
    v = [int(x) for x in np.asarray(values).reshape(-1)]
    return PreprocessInfo(original=(v[0], v[1]), resized=(v[2], v[3]), padded=(v[4], v[5]))


class _PythonModel:
    """Triton's Python-model protocol: ``initialize(args)``, ``execute(requests)``, ``finalize()``."""

    pb: Any  # triton_python_backend_utils, set by model_class

    def initialize(self, args: dict[str, Any]) -> None:
        self.graph = ServedGraph.from_model_config(args["model_config"])

    def finalize(self) -> None:
        return None

    def _error(self, message: str) -> Any:
        return self.pb.InferenceResponse(output_tensors=[], error=self.pb.TritonError(message))

    def _prediction(self, values: np.ndarray) -> Any:
        return self.pb.InferenceResponse(output_tensors=[self.pb.Tensor(self.graph.output, values[None].astype(np.float32))])


class EndToEnd(_PythonModel):
    """Encoded image → prediction at the image's size; the graph runs through BLS, same-size images batched."""

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        prepared: dict[tuple[int, ...], list[tuple[int, np.ndarray, PreprocessInfo]]] = {}
        for index, request in enumerate(requests):
            try:
                data = encoded_bytes(self.pb.get_input_tensor_by_name(request, ENCODED_INPUT).as_numpy())
                tensor, info = prepare_encoded(data, self.graph)
            except LotusError as exc:
                responses[index] = self._error(str(exc))
                continue
            prepared.setdefault(tensor.shape, []).append((index, tensor, info))
        chunk = self.graph.static_batch or max(self.graph.max_batch, 1)
        for group in prepared.values():
            for start in range(0, len(group), chunk):
                part = group[start:start + chunk]
                try:
                    outputs = self._run_graph(np.concatenate([t for _, t, _ in part]))
                except LotusError as exc:
                    for index, _, _ in part:
                        responses[index] = self._error(str(exc))
                    continue
                for (index, _, info), output in zip(part, outputs, strict=False):
                    responses[index] = self._prediction(restore_output(output, info, self.graph.task, self.graph.resample))
        return responses

    def _run_graph(self, batch: np.ndarray) -> np.ndarray:
        n = batch.shape[0]
        if self.graph.static_batch is not None and n < self.graph.static_batch:  # a fixed-batch graph: pad with copies
            batch = np.concatenate([batch, np.repeat(batch[-1:], self.graph.static_batch - n, axis=0)])
        request = self.pb.InferenceRequest(model_name=self.graph.graph_model, requested_output_names=[self.graph.output],
                                           inputs=[self.pb.Tensor(IMAGE_TENSOR, batch)])
        response = request.exec()
        if response.has_error():
            raise LotusError(f"the graph model {self.graph.graph_model} failed: {response.error().message()}", "see the server's log")
        return np.asarray(self.pb.get_output_tensor_by_name(response, self.graph.output).as_numpy())[:n]


class Pre(_PythonModel):
    """Ensemble step 1: encoded image → graph input [1, 3, H, W] and its sizes [1, 6]."""

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            try:
                tensor, info = prepare_encoded(encoded_bytes(self.pb.get_input_tensor_by_name(request, ENCODED_INPUT).as_numpy()), self.graph)
            except LotusError as exc:
                responses.append(self._error(str(exc)))
                continue
            responses.append(self.pb.InferenceResponse(output_tensors=[
                self.pb.Tensor(IMAGE_TENSOR, tensor), self.pb.Tensor(INFO_TENSOR, info_to_array(info)[None])]))
        return responses


class Post(_PythonModel):
    """Ensemble step 3: graph output [1, C, H, W] and sizes → prediction at the image's size."""

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            raw = np.asarray(self.pb.get_input_tensor_by_name(request, RAW_TENSOR).as_numpy())
            info = info_from_array(self.pb.get_input_tensor_by_name(request, INFO_TENSOR).as_numpy())
            try:
                responses.append(self._prediction(restore_output(raw[0], info, self.graph.task, self.graph.resample)))
            except LotusError as exc:
                responses.append(self._error(str(exc)))
        return responses


ROLES: dict[str, type[_PythonModel]] = {"end_to_end": EndToEnd, "pre": Pre, "post": Post}


def model_class(pb: Any, role: str) -> type:
    """The ``TritonPythonModel`` class for ``role``, bound to Triton's utilities module ``pb``."""
    base = ROLES[role]
    return type("TritonPythonModel", (base,), {"pb": pb})
