"""TensorRT optimization profiles derived from the graph contract (pure logic: no TensorRT needed).

Profile (the engine's input shapes, derived from the contract: input ``image`` [N, 3, H, W], H and W
multiples of 64):

* static (default): N x 3 x H x W with H x W = ``--height/--width`` if given, else the parent graph's
  static size, else **512 x 512**; N = ``--batch``, else the parent's, else **1**. 512 x 512 is the
  size the SD2-base UNet was trained at and a sensible Jetson Orin default (768 x 768 costs 2.4x).
* dynamic (``--dynamic``): min 1 x 3 x 64 x 64; opt as the static size above; max
  ``--max-batch`` x 3 x ``--max-height`` x ``--max-width``, defaulting to the opt batch and to
  768 x 768 (upstream's processing resolution, so any aspect ratio at long edge 768 fits).

Axes that the parent graph fixes stay fixed (min = opt = max). Nothing here imports TensorRT at module
level: profile derivation and the trtexec command line work without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .contract import INPUT_CHANNELS, INPUT_NAME, SPATIAL_MULTIPLE, GraphShape
from .errors import ConfigError, ShapeError
from .sizes import check_size_flag, is_spatial_size

DEFAULT_HEIGHT = 512
DEFAULT_WIDTH = 512
DEFAULT_BATCH = 1
DYNAMIC_MIN_SIZE = SPATIAL_MULTIPLE
DYNAMIC_DEFAULT_MAX = 768

Dims4 = tuple[int, int, int, int]


@dataclass(frozen=True)
class EngineProfile:
    """One optimization profile for input ``image``: min/opt/max NCHW shapes."""

    min: Dims4
    opt: Dims4
    max: Dims4

    @property
    def is_static(self) -> bool:
        return self.min == self.opt == self.max

    def graph_shape(self) -> GraphShape:
        """The contract shape: an axis is fixed where min == max, else dynamic (None)."""
        fixed = [lo if lo == hi else None for lo, hi in zip(self.min, self.max, strict=True)]
        return GraphShape(batch=fixed[0], height=fixed[2], width=fixed[3])

    def opt_shape(self) -> GraphShape:
        return GraphShape(batch=self.opt[0], height=self.opt[2], width=self.opt[3])

    def to_json(self) -> dict[str, Any]:
        return {"input": INPUT_NAME, "min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EngineProfile:
        def dims(key: str) -> Dims4:
            n, c, h, w = (int(v) for v in data[key])
            return (n, c, h, w)

        return cls(min=dims("min"), opt=dims("opt"), max=dims("max"))

    def check_input(self, shape: tuple[int, ...]) -> None:
        """Raise ShapeError unless an NCHW shape lies inside the profile (batch may exceed: run in chunks)."""
        if len(shape) != 4 or shape[1] != INPUT_CHANNELS:
            raise ShapeError(f"input shape {tuple(shape)} is not [N, 3, H, W]", "pass an NCHW RGB batch")
        _, _, h, w = shape
        for axis, value in ((2, h), (3, w)):
            lo, hi = self.min[axis], self.max[axis]
            if not lo <= value <= hi or not is_spatial_size(value):
                allowed = f"{lo}" if lo == hi else f"{lo}..{hi} in steps of {SPATIAL_MULTIPLE}"
                raise ShapeError(
                    f"input {h}x{w} is outside the engine's profile ({'height' if axis == 2 else 'width'} {allowed})",
                    "let the preprocessor pad/resize to the engine size, or rebuild the engine with --dynamic / --max-height / --max-width",
                )


def _dims(batch: int, height: int, width: int) -> Dims4:
    return (batch, INPUT_CHANNELS, height, width)


def derive_profile(parent: GraphShape, height: int | None = None, width: int | None = None, batch: int | None = None,
                   dynamic: bool = False, max_height: int | None = None, max_width: int | None = None,
                   max_batch: int | None = None) -> EngineProfile:
    """The optimization profile for a graph of shape ``parent`` (see the module docstring for defaults)."""
    for flag, value in (("--height", height), ("--width", width), ("--max-height", max_height), ("--max-width", max_width)):
        check_size_flag(flag, value)
    for flag, value in (("--batch", batch), ("--max-batch", max_batch)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {value} is not positive", f"use {flag} 1 or more")
    if (height is None) != (width is None):
        raise ConfigError("only one of --height/--width was given", "give both, or neither for the default 512x512")
    if not dynamic:
        given = [flag for flag, value in (("--max-height", max_height), ("--max-width", max_width), ("--max-batch", max_batch)) if value is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} only apply to a dynamic profile", "add --dynamic, or drop them for a static engine")
    for flag, asked, fixed in (("--height", height, parent.height), ("--width", width, parent.width), ("--batch", batch, parent.batch),
                               ("--max-height", max_height, parent.height), ("--max-width", max_width, parent.width),
                               ("--max-batch", max_batch, parent.batch)):
        if asked is not None and fixed is not None and asked != fixed:
            raise ConfigError(f"{flag} {asked} contradicts the ONNX graph, which is static at {fixed} on that axis", "drop the flag, or export a dynamic graph")
    opt = _dims(batch or parent.batch or DEFAULT_BATCH, height or parent.height or DEFAULT_HEIGHT, width or parent.width or DEFAULT_WIDTH)
    if not dynamic:
        return EngineProfile(min=opt, opt=opt, max=opt)
    low = _dims(parent.batch or 1, parent.height or DYNAMIC_MIN_SIZE, parent.width or DYNAMIC_MIN_SIZE)
    high = _dims(
        max_batch or parent.batch or opt[0],
        max_height or parent.height or max(opt[2], DYNAMIC_DEFAULT_MAX),
        max_width or parent.width or max(opt[3], DYNAMIC_DEFAULT_MAX),
    )
    for axis, (name, flag) in {0: ("batch", "--max-batch"), 2: ("height", "--max-height"), 3: ("width", "--max-width")}.items():
        if opt[axis] > high[axis]:
            raise ConfigError(f"opt {name} {opt[axis]} is above {flag} {high[axis]}", f"raise {flag} or lower --{name}")
    return EngineProfile(min=low, opt=opt, max=high)


def describe_profile(profile: EngineProfile) -> str:
    def fmt(d: Dims4) -> str:
        return "x".join(str(v) for v in d)

    if profile.is_static:
        return f"static {fmt(profile.opt)}"
    return f"min {fmt(profile.min)} opt {fmt(profile.opt)} max {fmt(profile.max)}"
