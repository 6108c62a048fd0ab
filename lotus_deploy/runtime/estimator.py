"""``DepthEstimator``: images in, depth/disparity/normals out, through any backend.

It owns the docs/contract.md pre/post-processing so every backend sees the same tensors, batches images
that share a padded size, and takes the output meaning from the artifact's manifest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..core.artifacts import Artifact, open_artifact
from ..core.config import DEFAULT_PROCESSING_RES, OutputMeaning, Task
from ..core.contract import GraphShape
from ..core.errors import ConfigError, LotusError
from ..image.postprocess import restore_output, save_prediction
from ..image.preprocess import PreprocessInfo, decode_image, load_image, preprocess, to_rgb_array, validate_processing_res
from .base import Backend, describe_backend, load_backend

ImageLike = Any  # path, encoded bytes, numpy uint8 HxWx3 / HxW / HxWx4, or PIL image
K = TypeVar("K")


@dataclass
class Prediction:
    """One image's result at its original size: HxW (depth/disparity) or HxWx3 (normal)."""

    values: np.ndarray
    meaning: OutputMeaning
    info: PreprocessInfo
    source: str = ""

    def save(self, out_dir: Path, stem: str, force: bool = False) -> list[Path]:
        return save_prediction(out_dir, stem, self.values, self.meaning, force=force)


class DepthEstimator:
    """Run a Lotus-D artifact (or, with the torch backend, a checkpoint) on images.

    >>> est = DepthEstimator("engines/builtin-tiny-depth-onnx")            # doctest: +SKIP
    >>> pred = est.predict("photo.jpg"); pred.values.shape                 # doctest: +SKIP
    """

    def __init__(self, artifact: str | Path | Artifact | None = None, backend: str = "onnxruntime",
                 processing_res: int | None = None, resample: str = "nearest", batch_size: int = 1,
                 check_hashes: bool = True, **backend_options: Any) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size {batch_size} is not positive", "use 1 or more")
        if processing_res is not None:
            validate_processing_res(processing_res)
        self._closed = True  # until the backend is loaded: close() then has nothing to release
        if isinstance(artifact, (str, Path)):
            artifact = open_artifact(artifact, check_hashes=check_hashes)
        self.artifact = artifact
        self.backend: Backend = load_backend(backend, artifact, **backend_options)
        self._closed = False
        self.task: Task = self.backend.task
        self.shape: GraphShape = self.backend.shape
        if artifact is not None:
            self.meaning = artifact.meaning
        else:
            self.meaning = getattr(self.backend, "output_meaning", OutputMeaning(self.task.value))
        declared = artifact.processing_res if artifact is not None else getattr(self.backend, "declared_processing_res", None)
        # None: the working resolution the model declares (builtin:demo: 256), else upstream's 768
        self.processing_res: int = processing_res if processing_res is not None else declared or DEFAULT_PROCESSING_RES
        self.processing_res_from = "given" if processing_res is not None else "declared by the model" if declared else "default"
        self.resample = resample
        self.batch_size = self.shape.batch or batch_size

    # -- core -----------------------------------------------------------------------------------
    def _graph_hw(self) -> tuple[int, int] | None:
        if self.shape.is_static:
            assert self.shape.height is not None and self.shape.width is not None
            return (self.shape.height, self.shape.width)
        return None

    def prepare(self, image: ImageLike) -> tuple[np.ndarray, PreprocessInfo]:
        """Any image (a path, encoded bytes, decoded pixels) → graph input [1, 3, H, W] and the sizes to undo it."""
        if isinstance(image, (str, Path)):
            pixels = load_image(image)
        elif isinstance(image, (bytes, bytearray, memoryview)):
            pixels = decode_image(bytes(image), "the encoded image")
        else:
            pixels = to_rgb_array(image)
        return preprocess(pixels, processing_res=self.processing_res, graph_hw=self._graph_hw())

    def finish(self, output: np.ndarray, info: PreprocessInfo, source: str = "") -> Prediction:
        """[C,H,W] graph output -> Prediction at the original image size."""
        values = restore_output(output, info, self.task, resample=self.resample)
        return Prediction(values=values, meaning=self.meaning, info=info, source=source)

    def run_tensor(self, batch: np.ndarray) -> np.ndarray:
        """Run an already-preprocessed [N,3,H,W] batch, padding it to a static batch size if needed."""
        n = batch.shape[0]
        if self.shape.batch is not None and n < self.shape.batch:
            filler = np.repeat(batch[-1:], self.shape.batch - n, axis=0)
            return self.backend.run(np.concatenate([batch, filler]))[:n]
        return self.backend.run(batch)

    def predict(self, image: ImageLike) -> Prediction:
        self._check_open()
        tensor, info = self.prepare(image)
        return self.finish(self.run_tensor(tensor)[0], info, source=str(image) if isinstance(image, (str, Path)) else "")

    def predict_many(self, images: Iterable[ImageLike]) -> Iterator[Prediction]:
        """Predictions in input order; consecutive images of the same padded size share a batch.

        The first unreadable image raises its error, after every earlier image's prediction.
        """
        for _, result in self.predict_each((index, image) for index, image in enumerate(images)):
            if isinstance(result, LotusError):
                raise result
            yield result

    def predict_each(self, items: Iterable[tuple[K, ImageLike]]) -> Iterator[tuple[K, Prediction | LotusError]]:
        """``(key, image)`` pairs → ``(key, prediction)`` in input order, batching like ``predict_many``.

        An image that cannot be read, or a batch the backend refuses, yields ``(key, error)`` in its
        place and the run goes on: one bad file never costs the others their results.
        """
        self._check_open()
        pending: list[tuple[np.ndarray, PreprocessInfo, str, K]] = []
        for key, image in items:
            try:
                tensor, info = self.prepare(image)
            except LotusError as exc:
                yield from self._flush(pending)
                pending = []
                yield key, exc
                continue
            name = str(image) if isinstance(image, (str, Path)) else ""
            if pending and (tensor.shape != pending[0][0].shape or len(pending) >= self.batch_size):
                yield from self._flush(pending)
                pending = []
            pending.append((tensor, info, name, key))
        yield from self._flush(pending)

    def _flush(self, pending: Sequence[tuple[np.ndarray, PreprocessInfo, str, K]]) -> Iterator[tuple[K, Prediction | LotusError]]:
        if not pending:
            return
        try:
            outputs = self.run_tensor(np.concatenate([t for t, _, _, _ in pending], axis=0))
        except LotusError as exc:
            for *_, key in pending:
                yield key, exc
            return
        for output, (_, info, name, key) in zip(outputs, pending, strict=True):
            yield key, self.finish(output, info, source=name)

    def describe_backend(self) -> dict[str, object]:
        """What runs the model (backend name, and device/precision where the backend says): for summaries."""
        return describe_backend(self.backend)

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("this DepthEstimator is closed", "create a new DepthEstimator (or use it inside its `with` block)")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.backend.close()

    def __enter__(self) -> DepthEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
