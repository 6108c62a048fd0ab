"""Serve ``DepthEstimator`` through PyTriton (``lotus-serve run``): a real Triton server, our runtime inside.

Two models, so that a bad request fails alone while good ones are still batched:

* ``<name>`` takes one encoded image per request and returns the prediction at the image's size. It
  decodes and preprocesses (the package's own steps), asks ``<name>_graph`` for the graph output over
  loopback gRPC, and restores the output. It has no batching and several instances, so one
  undecodable image costs only its own request an error.
* ``<name>_graph`` runs the graph on ``[N, 3, H, W]`` tensors. Triton's dynamic batcher gathers the
  concurrent requests of the same size into one call (``max_batch`` 1: dynamic batching off).

PyTriton needs numpy < 2 and loads its Python backend through the system libpython, so it runs from
a venv made from the system Python (docs/serving.md); nothing else in the package imports it.
"""

from __future__ import annotations

import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.contract import INPUT_CHANNELS, INPUT_NAME, OUTPUT_CHANNELS
from ..core.deps import require
from ..core.errors import ConfigError, DependencyError, LotusError
from ..image.postprocess import restore_output
from ..runtime.estimator import DepthEstimator
from .triton_python import ENCODED_INPUT, encoded_bytes, prediction_dims

EXIT_TIMEOUT_S = 5  # on stop, how long Triton waits for requests in flight (its default, 30 s, makes Ctrl-C slow)
PYTRITON_HINT = "install it in a venv made from the system Python: pip install 'nvidia-pytriton>=0.7' 'numpy<2' (docs/serving.md)"


@dataclass(frozen=True)
class ServerSettings:
    """Ports, batching and names of a ``lotus-serve run`` server."""

    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    address: str = "127.0.0.1"  # where both endpoints listen; 0.0.0.0 serves other machines
    max_batch: int = 8  # images per graph call; 1 turns dynamic batching off
    max_queue_delay_us: int = 2000
    instances: int | None = None  # instances of the decoding model; None: max(2, max_batch)
    name: str | None = None  # client-facing model name; None: lotus_<task>

    def check(self) -> None:
        if self.max_batch < 1:
            raise ConfigError(f"--max-batch {self.max_batch} is not positive", "use 1 (dynamic batching off) or more")
        if self.max_queue_delay_us < 0:
            raise ConfigError(f"--max-queue-delay-us {self.max_queue_delay_us} is negative", "use 0 or more microseconds")
        for port in (self.http_port, self.grpc_port, self.metrics_port):
            if not 0 < port < 65536:
                raise ConfigError(f"port {port} is not a TCP port", "use 1..65535")
        if len({self.http_port, self.grpc_port, self.metrics_port}) != 3:
            raise ConfigError("the HTTP, gRPC and metrics ports must differ", "pass three different ports")

    def decoder_instances(self) -> int:
        return self.instances or max(2, self.max_batch)


def load_pytriton() -> Any:
    """The ``pytriton`` package, or a one-line error saying how to get it."""
    try:
        return require("pytriton.triton")
    except DependencyError as exc:
        raise DependencyError(f"PyTriton is not importable ({exc.cause})", PYTRITON_HINT) from None


@dataclass
class GraphStats:
    """How the dynamic batcher fed the graph: calls and images (their ratio is the mean batch)."""

    calls: int = 0
    images: int = 0


class GraphRunner:
    """``<name>_graph``'s inference callable: same-shape requests share one backend call."""

    def __init__(self, estimator: DepthEstimator, stats: GraphStats | None = None) -> None:
        self.estimator = estimator
        self.stats = stats if stats is not None else GraphStats()

    def __call__(self, requests: list[Any]) -> list[dict[str, np.ndarray]]:
        by_shape: dict[tuple[int, ...], list[int]] = {}
        tensors = [np.asarray(request[INPUT_NAME], dtype=np.float32) for request in requests]
        for index, tensor in enumerate(tensors):
            by_shape.setdefault(tensor.shape[1:], []).append(index)
        responses: list[dict[str, np.ndarray]] = [{} for _ in requests]
        output = self.estimator.task.value
        for indices in by_shape.values():
            batch = np.concatenate([tensors[i] for i in indices])
            outputs = self.estimator.run_tensor(batch)
            self.stats.calls += 1
            self.stats.images += batch.shape[0]
            start = 0
            for index in indices:
                count = tensors[index].shape[0]
                responses[index] = {output: outputs[start:start + count]}
                start += count
        return responses


class ImageDecoder:
    """``<name>``'s inference callable (one per instance): encoded image → prediction at the image's size."""

    def __init__(self, estimator: DepthEstimator, graph_url: str, graph_model: str, timeout_s: float = 600.0) -> None:
        self.estimator = estimator
        self.graph_url = graph_url
        self.graph_model = graph_model
        self.timeout_s = timeout_s
        self._client: Any = None

    def _graph(self, tensor: np.ndarray) -> np.ndarray:
        if self._client is None:  # one client per instance: PyTriton's clients are not thread-safe
            client = require("pytriton.client")
            with warnings.catch_warnings():  # gRPC takes the timeout for inference only, and PyTriton warns so
                warnings.simplefilter("ignore")
                self._client = client.ModelClient(self.graph_url, self.graph_model, inference_timeout_s=self.timeout_s)
        return np.asarray(self._client.infer_batch(**{INPUT_NAME: tensor})[self.estimator.task.value])

    def __call__(self, requests: list[Any]) -> list[dict[str, np.ndarray]]:
        responses = []
        for request in requests:  # without batching: one request per call
            tensor, info = self.estimator.prepare(encoded_bytes(request[ENCODED_INPUT]))
            output = self._graph(tensor)[0]
            values = restore_output(output, info, self.estimator.task, self.estimator.resample)
            responses.append({self.estimator.task.value: values[None].astype(np.float32)})
        return responses

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def serve(estimator: DepthEstimator, settings: ServerSettings, ready: Callable[[], None] | None = None,
          stop: threading.Event | None = None, stats: GraphStats | None = None) -> None:
    """Bind both models and serve until Ctrl-C (or until ``stop`` is set); ``ready`` runs once both answer."""
    settings.check()
    triton_module = load_pytriton()
    model_config = require("pytriton.model_config")
    task = estimator.task
    name = settings.name or f"lotus_{task.value}"
    graph = f"{name}_graph"
    channels = OUTPUT_CHANNELS[task]
    config = triton_module.TritonConfig(http_address=settings.address, http_port=settings.http_port, grpc_address=settings.address,
                                        grpc_port=settings.grpc_port, metrics_port=settings.metrics_port,
                                        exit_timeout_secs=EXIT_TIMEOUT_S)
    decoders = [ImageDecoder(estimator, f"grpc://127.0.0.1:{settings.grpc_port}", graph) for _ in range(settings.decoder_instances())]
    Tensor = model_config.Tensor
    with triton_module.Triton(config=config) as triton:
        triton.bind(model_name=graph, infer_func=GraphRunner(estimator, stats),
                    inputs=[Tensor(name=INPUT_NAME, dtype=np.float32, shape=(INPUT_CHANNELS, -1, -1))],
                    outputs=[Tensor(name=task.value, dtype=np.float32, shape=(channels, -1, -1))],
                    config=model_config.ModelConfig(max_batch_size=settings.max_batch,
                                                    batcher=model_config.DynamicBatcher(max_queue_delay_microseconds=settings.max_queue_delay_us)))
        triton.bind(model_name=name, infer_func=decoders,
                    inputs=[Tensor(name=ENCODED_INPUT, dtype=bytes, shape=(1,))],
                    outputs=[Tensor(name=task.value, dtype=np.float32, shape=tuple(prediction_dims(task)))],
                    config=model_config.ModelConfig(max_batch_size=1))
        triton.run()
        if ready is not None:
            ready()
        try:
            if stop is None:
                threading.Event().wait()
            else:
                stop.wait()
        finally:
            for decoder in decoders:
                decoder.close()



@contextmanager
def running_server(estimator: DepthEstimator, settings: ServerSettings, timeout_s: float = 180.0,
                   stats: GraphStats | None = None) -> Iterator[ServerSettings]:
    """Serve in a background thread for the ``with`` block (tests, benchmarks, embedding in a program)."""
    stop, ready = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def target() -> None:
        try:
            serve(estimator, settings, ready=ready.set, stop=stop, stats=stats)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            failures.append(exc)
            ready.set()

    thread = threading.Thread(target=target, name="lotus-serve", daemon=True)
    thread.start()
    ready.wait(timeout_s)
    try:
        if failures:
            raise failures[0]
        if not ready.is_set():
            raise LotusError(f"the server did not come up within {timeout_s:.0f} s", "see Triton's log above")
        yield settings
    finally:
        stop.set()
        thread.join(timeout_s)


def free_local_ports(count: int) -> list[int]:
    """``count`` TCP ports free on the loopback interface right now (for servers started by tests and benchmarks)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
