"""The C++ pre/post-processing (cpp_demo/) against the Python one, on the real photos.

Both sides start from the same decoded pixels (Python's ``load_image``, handed to the C++ tool as a
raw RGB buffer), so only the processing steps are compared. Tolerances:

- preprocessing (resize, pad, normalize): max |Δ| ≤ 1/127.5 (one uint8 step, in normalized units)
  and at most 0.1 % of the elements differing. The C++ resampler replicates Pillow's fixed-point
  arithmetic, so the difference measured here is 0; the allowance covers a Pillow build whose
  rounding differs, and a systematic rounding slip still fails the 0.1 % bound.
- resize back: nearest must be equal; bilinear ≤ 1e-6 (double sums stored as float32).
- colorize, normals → RGB, uint16 encodings, Spectral table, PreprocessInfo: equal.
- file decoding (two libjpeg builds: the system's and Pillow's bundled one): max |Δ| ≤ 3 with at
  least 99 % of the values equal; measured here: equal.

The tool comes from ``$LOTUS_PREPOST_TOOL`` (CTest sets it) or is built in ``cpp_demo/build``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lotus_deploy.core.errors import InputImageError
from lotus_deploy.image import colormap
from lotus_deploy.image import postprocess as po
from lotus_deploy.image import preprocess as pp

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO.parent / "shared" / "data" / "images"
CPP = REPO / "cpp_demo"
BUILD = CPP / "build"
STEP = 1.0 / 127.5
needs_images = pytest.mark.skipif(not IMAGES.is_dir(), reason=f"{IMAGES} is absent (../shared beside the checkout)")


def _photos() -> list[Path]:
    return sorted(p for p in IMAGES.iterdir() if p.suffix.lower() in pp.IMAGE_EXTENSIONS) if IMAGES.is_dir() else []


@pytest.fixture(scope="module")
def tool() -> Path:
    given = os.environ.get("LOTUS_PREPOST_TOOL")
    if given:
        path = Path(given)
        if not path.is_file():
            pytest.fail(f"LOTUS_PREPOST_TOOL={given} does not exist")
        return path
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed; build cpp_demo with cpp_demo/run_tests.sh")
    if not (BUILD / "CMakeCache.txt").exists():
        done = subprocess.run(["cmake", "-S", str(CPP), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release"], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cpp_demo does not configure here (libjpeg-dev / libpng-dev missing?): {done.stderr.strip()[-300:]}")
    done = subprocess.run(["cmake", "--build", str(BUILD), "--target", "lotus_prepost_tool", "-j2"], capture_output=True, text=True)
    assert done.returncode == 0, f"building lotus_prepost_tool failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return BUILD / "lotus_prepost_tool"


def _run(tool: Path, *args: object) -> str:
    done = subprocess.run([str(tool), *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, f"lotus_prepost_tool {args[0]} failed: {done.stderr.strip()}"
    return done.stdout


def _assert_close_u8_steps(cpp: np.ndarray, py: np.ndarray, step: float) -> None:
    """At most one uint8 step apart, and at most 0.1 % of the elements differing."""
    assert cpp.shape == py.shape
    diff = np.abs(cpp.astype(np.float64) - py.astype(np.float64))
    assert diff.max() <= step + 1e-6, f"max |Δ| {diff.max()} > {step}"
    assert (diff > 0).mean() <= 1e-3, f"{(diff > 0).mean():.4%} of the elements differ"


# --- preprocessing ----------------------------------------------------------------------------


@needs_images
@pytest.mark.parametrize("path", _photos(), ids=lambda p: p.name)
def test_preprocess_matches_python(tool: Path, tmp_path: Path, path: Path) -> None:
    img = pp.load_image(path)
    h, w = img.shape[:2]
    raw = tmp_path / "in.rgb"
    raw.write_bytes(img.tobytes())

    # the resampler alone, at the long-edge size
    resized = pp.resize_long_edge(img, 768)
    rh, rw = resized.shape[:2]
    _run(tool, "resize", raw, h, w, rh, rw, tmp_path / "r.rgb")
    _assert_close_u8_steps(np.fromfile(tmp_path / "r.rgb", np.uint8).reshape(rh, rw, 3), resized, 1.0)

    # the whole of steps 2-4, dynamic graph and a static 512x512 one
    for graph in ((0, 0), (512, 512)):
        out = tmp_path / "x.f32"
        info = json.loads(_run(tool, "preprocess", raw, h, w, 768, graph[0], graph[1], out))
        x, py_info = pp.preprocess(img, 768, graph_hw=None if graph == (0, 0) else graph)
        assert info == {"original": list(py_info.original), "resized": list(py_info.resized), "padded": list(py_info.padded)}
        _assert_close_u8_steps(np.fromfile(out, np.float32).reshape(x.shape[1:]), x[0], STEP)


# --- postprocessing ---------------------------------------------------------------------------


def _fake_outputs(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, pp.PreprocessInfo]:
    """Depth-like [1,H,W] in [0,1] and normal-like [3,H,W] graph outputs with real image structure."""
    x, info = pp.preprocess(img, 768)
    depth = ((x[0].mean(axis=0, keepdims=True) + 1.0) / 2.0).astype(np.float32)
    normal = np.ascontiguousarray(x[0] * np.float32(0.9))
    return depth, normal, info


def _postprocess_cpp(tool: Path, tmp: Path, out: np.ndarray, info: pp.PreprocessInfo, mode: str) -> np.ndarray:
    src, dst = tmp / "o.f32", tmp / "b.f32"
    src.write_bytes(np.ascontiguousarray(out, np.float32).tobytes())
    c, ph, pw = out.shape
    _run(tool, "postprocess", src, c, ph, pw, *info.original, *info.resized, mode, dst)
    return np.fromfile(dst, np.float32).reshape(c, *info.original)


@needs_images
@pytest.mark.parametrize("path", _photos(), ids=lambda p: p.name)
def test_depth_postprocess_matches_python(tool: Path, tmp_path: Path, path: Path) -> None:
    img = pp.load_image(path)
    depth_out, _, info = _fake_outputs(img)
    for mode in ("nearest", "bilinear"):
        cpp = _postprocess_cpp(tool, tmp_path, depth_out, info, mode)
        py = po.crop_and_resize(depth_out, info, mode)
        if mode == "nearest":
            np.testing.assert_array_equal(cpp, py)
        else:
            assert np.abs(cpp - py).max() <= 1e-6
    depth = po.decode_depth(py)
    h, w = depth.shape
    (tmp_path / "d.f32").write_bytes(depth.tobytes())
    for reverse in (0, 1):
        _run(tool, "colorize", tmp_path / "d.f32", h, w, reverse, tmp_path / "c.rgb")
        np.testing.assert_array_equal(
            np.fromfile(tmp_path / "c.rgb", np.uint8).reshape(h, w, 3), po.colorize_depth(depth, reverse=bool(reverse))
        )
    _run(tool, "depth16", tmp_path / "d.f32", h, w, tmp_path / "d16.png")
    with Image.open(tmp_path / "d16.png") as im:
        assert im.mode == "I;16"
        np.testing.assert_array_equal(np.asarray(im), po.depth_to_uint16(depth))


@needs_images
@pytest.mark.parametrize("name", ["00.jpg", "05.png", "10.jpg"])
def test_normal_postprocess_matches_python(tool: Path, tmp_path: Path, name: str) -> None:
    img = pp.load_image(IMAGES / name)
    _, normal_out, info = _fake_outputs(img)
    cpp = _postprocess_cpp(tool, tmp_path, normal_out, info, "bilinear")
    py = po.crop_and_resize(normal_out, info, "bilinear")
    assert np.abs(cpp - py).max() <= 1e-6
    h, w = info.original
    (tmp_path / "n.f32").write_bytes(py.tobytes())
    _run(tool, "renormalize", tmp_path / "n.f32", h, w, tmp_path / "u.f32")
    unit_cpp = np.fromfile(tmp_path / "u.f32", np.float32).reshape(3, h, w).transpose(1, 2, 0)
    unit_py = po.decode_normal(py, renormalize=True)
    assert np.abs(unit_cpp - unit_py).max() <= 1e-7
    (tmp_path / "un.f32").write_bytes(np.ascontiguousarray(unit_py.transpose(2, 0, 1)).tobytes())
    _run(tool, "normals", tmp_path / "un.f32", h, w, tmp_path / "n.rgb", tmp_path / "n.u16")
    np.testing.assert_array_equal(np.fromfile(tmp_path / "n.rgb", np.uint8).reshape(h, w, 3), po.normal_to_rgb(unit_py))
    np.testing.assert_array_equal(np.fromfile(tmp_path / "n.u16", np.uint16).reshape(h, w, 3), po.normal_to_uint16(unit_py))
    _run(tool, "normal16", tmp_path / "un.f32", h, w, tmp_path / "n16.png")
    with Image.open(tmp_path / "n16.png") as im:  # Pillow reads 16-bit RGB as its high bytes
        assert im.size == (w, h)
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), (po.normal_to_uint16(unit_py) >> 8).astype(np.uint8))


def test_spectral_table_matches_python(tool: Path, tmp_path: Path) -> None:
    _run(tool, "lut", tmp_path / "lut.rgb")
    np.testing.assert_array_equal(np.fromfile(tmp_path / "lut.rgb", np.uint8).reshape(256, 3), colormap.spectral_lut())


def test_edge_values_match_python(tool: Path, tmp_path: Path) -> None:
    depth = np.array([[0.0, 1.0, -0.5, 1.5, np.nan, 0.5, 1 / 256, 0.999999]], np.float32)
    (tmp_path / "d.f32").write_bytes(depth.tobytes())
    _run(tool, "colorize", tmp_path / "d.f32", 1, depth.shape[1], 0, tmp_path / "c.rgb")
    np.testing.assert_array_equal(np.fromfile(tmp_path / "c.rgb", np.uint8).reshape(1, -1, 3), po.colorize_depth(depth))
    normal = np.array([[-1.0, 1.0, 0.0, np.nan, 2.0, -0.0039215, 0.0039216, 0.5]] * 3, np.float32).reshape(3, 1, 8)
    (tmp_path / "n.f32").write_bytes(normal.tobytes())
    _run(tool, "normals", tmp_path / "n.f32", 1, 8, tmp_path / "n.rgb", tmp_path / "n.u16")
    hwc = normal.transpose(1, 2, 0)
    np.testing.assert_array_equal(np.fromfile(tmp_path / "n.rgb", np.uint8).reshape(1, 8, 3), po.normal_to_rgb(hwc))
    np.testing.assert_array_equal(np.fromfile(tmp_path / "n.u16", np.uint16).reshape(1, 8, 3), po.normal_to_uint16(hwc))


# --- decoding files in C++ --------------------------------------------------------------------


def _assert_decode_close(cpp: np.ndarray, py: np.ndarray) -> None:
    assert cpp.shape == py.shape
    diff = np.abs(cpp.astype(int) - py.astype(int))
    assert diff.max() <= 3 and (diff == 0).mean() >= 0.99, f"max |Δ| {diff.max()}, equal {(diff == 0).mean():.4%}"


def _decode_cpp(tool: Path, path: Path, out: Path) -> np.ndarray:
    size = json.loads(_run(tool, "decode", path, out))
    return np.fromfile(out, np.uint8).reshape(size["height"], size["width"], 3)


@needs_images
@pytest.mark.parametrize("path", _photos(), ids=lambda p: p.name)
def test_cpp_decoder_matches_pillow_on_photos(tool: Path, tmp_path: Path, path: Path) -> None:
    _assert_decode_close(_decode_cpp(tool, path, tmp_path / "d.rgb"), pp.load_image(path))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_cpp_exif_orientation_matches_pillow(tool: Path, tmp_path: Path, orientation: int) -> None:
    rng = np.random.default_rng(orientation)
    pixels = np.kron(rng.integers(0, 256, (3, 5, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))  # 24x40 blocks
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.jpg"
    Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes())
    py = pp.load_image(path)
    assert py.shape[:2] == ((40, 24) if orientation >= 5 else (24, 40))
    _assert_decode_close(_decode_cpp(tool, path, tmp_path / "d.rgb"), py)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16", "1"])
def test_cpp_png_modes_match_pillow(tool: Path, tmp_path: Path, mode: str) -> None:
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, 256, (13, 17, 4), dtype=np.uint8)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (13, 17), dtype=np.uint16))
    elif mode == "P":
        image = Image.fromarray(rgba[..., :3]).quantize(colors=50)
    else:
        image = Image.fromarray(rgba, mode="RGBA").convert(mode)
    path = tmp_path / "m.png"
    image.save(path)
    np.testing.assert_array_equal(_decode_cpp(tool, path, tmp_path / "d.rgb"), pp.load_image(path))


@pytest.mark.parametrize("content", [b"garbage bytes, not an image", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_cpp_unreadable_image_is_one_line_error(tool: Path, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    done = subprocess.run([str(tool), "decode", str(path), str(tmp_path / "d.rgb")], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot read image") and done.stderr.count("\n") == 1
    assert "—" in done.stderr
    with pytest.raises(InputImageError):  # and Python agrees it is unreadable
        pp.load_image(path)
