"""A stand-in for Triton's ``triton_python_backend_utils`` (tests only): drives our Python-backend models
outside a server. BLS requests run the graph in a real ONNX Runtime session; nothing is faked but Triton's
plumbing (tensors, requests, responses, errors)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np


class Tensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self._name = name
        self._array = np.asarray(array)

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class TritonError:
    def __init__(self, message: str) -> None:
        self._message = message

    def message(self) -> str:
        return self._message


class InferenceResponse:
    def __init__(self, output_tensors: list[Tensor], error: TritonError | None = None) -> None:
        self.output_tensors = output_tensors
        self._error = error

    def has_error(self) -> bool:
        return self._error is not None

    def error(self) -> TritonError | None:
        return self._error


class Request:
    """A server request: named input tensors."""

    def __init__(self, **inputs: np.ndarray) -> None:
        self.inputs = [Tensor(name, value) for name, value in inputs.items()]


def get_input_tensor_by_name(request: Any, name: str) -> Tensor | None:
    return next((t for t in request.inputs if t.name() == name), None)


def get_output_tensor_by_name(response: InferenceResponse, name: str) -> Tensor | None:
    return next((t for t in response.output_tensors if t.name() == name), None)


class TritonUtils:
    """The module object handed to ``model_class``; ``graphs`` maps a model name to a callable on its input."""

    def __init__(self, graphs: dict[str, Callable[[np.ndarray], np.ndarray]]) -> None:
        self.graphs = graphs
        self.bls_batches: list[int] = []
        self.Tensor = Tensor
        self.TritonError = TritonError
        self.InferenceResponse = InferenceResponse
        self.get_input_tensor_by_name = get_input_tensor_by_name
        self.get_output_tensor_by_name = get_output_tensor_by_name
        utils = self

        class InferenceRequest:
            def __init__(self, model_name: str, requested_output_names: list[str], inputs: list[Tensor]) -> None:
                self.model_name, self.outputs, self.inputs = model_name, requested_output_names, inputs

            def exec(self) -> InferenceResponse:
                batch = self.inputs[0].as_numpy()
                utils.bls_batches.append(batch.shape[0])
                return InferenceResponse([Tensor(self.outputs[0], utils.graphs[self.model_name](batch))])

        self.InferenceRequest = InferenceRequest


def initialize(model: Any, config_text_json: dict[str, Any]) -> Any:
    model.initialize({"model_config": json.dumps(config_text_json)})
    return model
