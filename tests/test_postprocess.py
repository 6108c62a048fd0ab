"""Post-processing (docs/contract.md step 5): crop, resize back, decode, colorize, save."""

from __future__ import annotations

import ast
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from extras import need
from PIL import Image

from lotus_deploy.core.errors import ArtifactExistsError, ConfigError, ShapeError
from lotus_deploy.image import colormap
from lotus_deploy.image import postprocess as po
from lotus_deploy.image import preprocess as pp

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images"
needs_images = pytest.mark.skipif(not IMAGES.is_dir(), reason=f"{IMAGES} is absent (../shared beside the checkout)")
PACKAGE = Path(__file__).resolve().parents[1] / "lotus_deploy"


def test_prepost_modules_import_only_numpy_pillow_stdlib() -> None:
    """A Jetson runtime has no torch: these modules may import numpy, PIL, stdlib and each other only."""
    import sys

    allowed = {"numpy", "PIL", "__future__"} | set(sys.stdlib_module_names)
    own = {1: {"preprocess", "postprocess", "colormap"}, 2: {"core"}}  # image/ siblings, and core/
    for name in ("preprocess.py", "postprocess.py", "colormap.py"):
        tree = ast.parse((PACKAGE / "image" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    assert (node.module or "").split(".")[0] in own.get(node.level, set()), f"{name} imports {'.' * node.level}{node.module}"
                    continue
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in allowed, f"{name} imports {root}"


# --- crop and resize back ---------------------------------------------------------------------


def _info(original: tuple[int, int], resized: tuple[int, int], padded: tuple[int, int]) -> pp.PreprocessInfo:
    return pp.PreprocessInfo(original=original, resized=resized, padded=padded)


def test_crop_only_when_no_resize() -> None:
    out = np.arange(2 * 64 * 64, dtype=np.float32).reshape(2, 64, 64)
    got = po.crop_and_resize(out, _info((50, 60), (50, 60), (64, 64)))
    np.testing.assert_array_equal(got, out[:, :50, :60])
    np.testing.assert_array_equal(po.crop_and_resize(out[None], _info((50, 60), (50, 60), (64, 64))), got)


@needs_images
@pytest.mark.parametrize("name", ["07.jpg", "04.jpg", "00.jpg"])
def test_round_trip_restores_original_size(name: str) -> None:
    img = pp.load_image(IMAGES / name)
    x, info = pp.preprocess(img)
    fake_depth = (x[:, :1] + 1.0) / 2.0  # [1, 1, H, W] in [0, 1]
    back = po.crop_and_resize(fake_depth[0], info)
    assert back.shape == (1, *img.shape[:2]) and back.dtype == np.float32
    # nearest never invents values; the padding never leaks in
    assert set(np.unique(back)) <= set(np.unique(fake_depth[0, 0, : info.resized[0], : info.resized[1]]))
    bil = po.crop_and_resize(fake_depth[0], info, resample="bilinear")
    assert bil.shape == back.shape and not np.array_equal(bil, back)
    # both approximate the original gray image (mean of channel 0 here) closely on average
    orig = img[:, :, 0].astype(np.float32) / 255.0
    assert abs(float(back.mean()) - float(orig.mean())) < 0.01
    assert float(np.abs(bil[0] - orig).mean()) < 0.05


def test_nearest_vs_bilinear_values() -> None:
    out = np.array([[[0.0, 1.0], [0.0, 1.0]]], np.float32)  # 1x2x2, upsampled to 4x4
    info = _info((4, 4), (2, 2), (2, 2))
    near = po.crop_and_resize(out, info, "nearest")[0]
    np.testing.assert_array_equal(near[0], [0, 0, 1, 1])
    bil = po.crop_and_resize(out, info, "bilinear")[0]
    np.testing.assert_allclose(bil[0], [0, 0.25, 0.75, 1.0], atol=1e-6)
    expected = np.asarray(Image.fromarray(out[0], mode="F").resize((4, 4), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(bil, expected)


def test_crop_and_resize_errors() -> None:
    out = np.zeros((1, 64, 64), np.float32)
    with pytest.raises(ConfigError, match="resample"):
        po.crop_and_resize(out, _info((10, 10), (10, 10), (64, 64)), resample="cubic")
    with pytest.raises(ShapeError):
        po.crop_and_resize(out, _info((100, 100), (100, 100), (128, 128)))
    with pytest.raises(ShapeError):
        po.crop_and_resize(np.zeros((64, 64), np.float32), _info((10, 10), (10, 10), (64, 64)))


# --- decoding -----------------------------------------------------------------------------------


def test_decode_depth() -> None:
    out = np.random.default_rng(0).random((1, 5, 6)).astype(np.float32)
    np.testing.assert_array_equal(po.decode_depth(out), out[0])
    with pytest.raises(ShapeError):
        po.decode_depth(np.zeros((3, 5, 6), np.float32))


def test_decode_normal_renormalizes_and_handles_zero() -> None:
    out = np.zeros((3, 2, 2), np.float32)
    out[:, 0, 0] = (0.3, 0.0, 0.4)  # length 0.5 -> (0.6, 0, 0.8)
    out[:, 0, 1] = (0.0, -2.0, 0.0)
    # (1, 1) stays a zero vector
    out[:, 1, 0] = (1e-20, 0.0, 0.0)  # below eps: treated as zero, no blow-up
    n = po.decode_normal(out, renormalize=True)
    assert n.shape == (2, 2, 3) and n.dtype == np.float32
    np.testing.assert_allclose(n[0, 0], (0.6, 0.0, 0.8), atol=1e-6)
    np.testing.assert_allclose(n[0, 1], (0.0, -1.0, 0.0), atol=1e-6)
    np.testing.assert_array_equal(n[1, 1], (0.0, 0.0, 0.0))
    assert np.isfinite(n).all()
    raw = po.decode_normal(out, renormalize=False)
    np.testing.assert_array_equal(raw, out.transpose(1, 2, 0))


def test_bilinear_resized_normals_are_unit_after_renormalize() -> None:
    rng = np.random.default_rng(3)
    v = rng.normal(size=(3, 16, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=0, keepdims=True)
    up = po.crop_and_resize(v, _info((40, 37), (16, 16), (16, 16)), "bilinear")
    assert np.abs(np.linalg.norm(up, axis=0) - 1).max() > 0.01  # interpolation shortens them
    n = po.decode_normal(up, renormalize=True)
    np.testing.assert_allclose(np.linalg.norm(n, axis=2), 1.0, atol=1e-5)


# --- colorize and integer encodings -------------------------------------------------------------


def test_colorize_lut_endpoints_and_shape() -> None:
    depth = np.array([[0.0, 1.0, -3.0, 7.0, np.nan]], np.float32)
    rgb = po.colorize_depth(depth)
    assert rgb.shape == (1, 5, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], (158, 1, 66))  # #9e0142
    np.testing.assert_array_equal(rgb[0, 1], (94, 79, 162))  # #5e4fa2
    np.testing.assert_array_equal(rgb[0, 2], rgb[0, 0])  # clipped below
    np.testing.assert_array_equal(rgb[0, 3], rgb[0, 1])  # clipped above
    np.testing.assert_array_equal(rgb[0, 4], rgb[0, 0])  # NaN -> low end
    rev = po.colorize_depth(depth, reverse=True)
    np.testing.assert_array_equal(rev[0, 0], rgb[0, 1])
    np.testing.assert_array_equal(rev[0, 1], rgb[0, 0])
    mid = po.colorize_depth(np.array([[0.5]], np.float32))
    np.testing.assert_array_equal(mid[0, 0], colormap.spectral_lut()[128])
    assert colormap.spectral_lut().shape == (256, 3)


def test_lut_index_rule() -> None:
    v = np.array([0.0, 1 / 256 - 1e-6, 1 / 256, 0.999, 1.0], np.float32)
    np.testing.assert_array_equal(colormap.lut_indices(v), [0, 0, 1, 255, 255])


def test_lut_matches_matplotlib() -> None:
    matplotlib = need("matplotlib")
    cmap = matplotlib.colormaps["Spectral"]
    values = np.concatenate([np.linspace(0, 1, 4097, dtype=np.float32), np.random.default_rng(0).random(10000).astype(np.float32)])
    np.testing.assert_array_equal(po.colorize_depth(values[None]), cmap(values[None], bytes=True)[..., :3])
    # Spectral_r builds its own table from reversed segment data; its float rounding can differ by 1
    rev = matplotlib.colormaps["Spectral_r"](values[None], bytes=True)[..., :3].astype(int)
    assert np.abs(po.colorize_depth(values[None], reverse=True).astype(int) - rev).max() <= 1


def test_normal_to_rgb() -> None:
    n = np.array([[[-1.0, 0.0, 1.0], [2.0, -5.0, 0.5]]], np.float32)
    np.testing.assert_array_equal(po.normal_to_rgb(n), [[[0, 128, 255], [255, 0, 191]]])  # 127.5 rounds to even 128


def test_depth_to_uint16() -> None:
    d = np.array([0.0, 1.0, 0.5, -0.1, 1.2, np.nan], np.float32)
    np.testing.assert_array_equal(po.depth_to_uint16(d), [0, 65535, 32768, 0, 65535, 0])


def _read_png16_rgb(data: bytes) -> np.ndarray:
    """Minimal reader for our own writer's output (filter 0, one IDAT) to check 16-bit RGB exactly."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks[kind] = body
        pos += 12 + length
    w, h, depth, ctype = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 16 and ctype == 2
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(h, 1 + w * 6)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].copy().view(">u2").reshape(h, w, 3).astype(np.uint16)


def test_png16_round_trip_gray_and_rgb() -> None:
    rng = np.random.default_rng(5)
    gray = rng.integers(0, 65536, (17, 23), dtype=np.uint16)
    with Image.open(io.BytesIO(po.encode_png16(gray))) as im:
        assert im.mode == "I;16"
        np.testing.assert_array_equal(np.asarray(im), gray)
    rgb = rng.integers(0, 65536, (9, 11, 3), dtype=np.uint16)
    data = po.encode_png16(rgb)
    np.testing.assert_array_equal(_read_png16_rgb(data), rgb)
    with Image.open(io.BytesIO(data)) as im:  # Pillow reads 16-bit RGB as 8-bit: the high bytes
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), (rgb >> 8).astype(np.uint8))
    with pytest.raises(ShapeError):
        po.encode_png16(gray.astype(np.int32))


# --- saving -------------------------------------------------------------------------------------


def test_save_depth_files_round_trip(tmp_path: Path) -> None:
    depth = np.random.default_rng(2).random((30, 40)).astype(np.float32)
    paths = po.save_prediction(tmp_path / "out", "img", depth, "depth")
    assert [p.name for p in paths] == ["img.npy", "img_16bit.png", "img_color.png"]
    np.testing.assert_array_equal(np.load(paths[0]), depth)
    with Image.open(paths[1]) as im:
        np.testing.assert_array_equal(np.asarray(im), po.depth_to_uint16(depth))
    with Image.open(paths[2]) as im:
        np.testing.assert_array_equal(np.asarray(im), po.colorize_depth(depth))
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")], "temp files left behind"


def test_save_disparity_is_reversed_and_normal_rgb(tmp_path: Path) -> None:
    disp = np.zeros((4, 4), np.float32)
    paths = po.save_prediction(tmp_path, "d", disp, "disparity")
    with Image.open(paths[2]) as im:
        np.testing.assert_array_equal(np.asarray(im)[0, 0], (94, 79, 162))
    normal = np.zeros((3, 5, 3), np.float32)
    normal[..., 2] = 1.0
    paths = po.save_prediction(tmp_path, "n", normal, "normal")
    assert np.load(paths[0]).shape == (3, 5, 3)
    with Image.open(paths[2]) as im:
        np.testing.assert_array_equal(np.asarray(im)[0, 0], (128, 128, 255))
    np.testing.assert_array_equal(_read_png16_rgb(paths[1].read_bytes())[0, 0], (32768, 32768, 65535))


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    depth = np.full((4, 4), 0.25, np.float32)
    existing = tmp_path / "img_color.png"
    existing.write_bytes(b"keep me")
    with pytest.raises(ArtifactExistsError, match="img_color.png already exists.*--force"):
        po.save_prediction(tmp_path, "img", depth, "depth")
    assert existing.read_bytes() == b"keep me"
    assert not (tmp_path / "img.npy").exists(), "nothing may be written when refusing"
    paths = po.save_prediction(tmp_path, "img", depth, "depth", force=True)
    assert existing.read_bytes() != b"keep me" and all(p.exists() for p in paths)


def test_save_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        po.save_prediction(tmp_path, "x", np.zeros((2, 2), np.float32), "height")
    with pytest.raises(ShapeError):
        po.save_prediction(tmp_path, "x", np.zeros((2, 2), np.float32), "normal")
    with pytest.raises(ShapeError):
        po.save_prediction(tmp_path, "x", np.zeros((2, 2, 3), np.float32), "depth")
    with pytest.raises(ConfigError):
        po.save_prediction(tmp_path, "a/b", np.zeros((2, 2), np.float32), "depth")
