"""Pre-processing (docs/contract.md steps 1-4) on the real photos and on hand-made edge cases."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lotus_deploy.core.errors import ConfigError, InputImageError, LotusError, NoImagesError, ShapeError
from lotus_deploy.image import preprocess as pp

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images"
needs_images = pytest.mark.skipif(not IMAGES.is_dir(), reason=f"{IMAGES} is absent (../shared beside the checkout)")


def _photos() -> list[Path]:
    return sorted(p for p in IMAGES.iterdir() if p.suffix.lower() in pp.IMAGE_EXTENSIONS) if IMAGES.is_dir() else []


def _pillow_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


# --- listing and decoding -------------------------------------------------------------------


@needs_images
def test_list_images_finds_all_photos_sorted() -> None:
    found = pp.list_images(IMAGES)
    assert [p.name for p in found] == sorted(p.name for p in found)
    assert len(found) == 12
    assert {p.suffix for p in found} <= {".jpg", ".png"}


def test_list_images_extensions_case_insensitive(tmp_path: Path) -> None:
    for name in ("b.JPG", "a.png", "c.TiFf", "notes.txt", "d.webp"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.jpg").mkdir()  # a folder named like an image is not an image
    assert [p.name for p in pp.list_images(tmp_path)] == ["a.png", "b.JPG", "c.TiFf", "d.webp"]


def test_list_images_empty_and_missing(tmp_path: Path) -> None:
    (tmp_path / "readme.md").write_text("no images")
    with pytest.raises(NoImagesError, match="holds no images"):
        pp.list_images(tmp_path)
    with pytest.raises(InputImageError, match="not an existing folder"):
        pp.list_images(tmp_path / "missing")


@needs_images
@pytest.mark.parametrize("path", _photos(), ids=lambda p: p.name)
def test_load_every_photo_as_uint8_rgb(path: Path) -> None:
    img = pp.load_image(path)
    w, h = _pillow_size(path)
    assert img.dtype == np.uint8 and img.shape == (h, w, 3)
    assert img.flags.c_contiguous


@needs_images
def test_grayscale_photo_is_replicated() -> None:
    path = IMAGES / "07.jpg"
    with Image.open(path) as im:
        assert im.mode == "L"
        gray = np.asarray(im)
    img = pp.load_image(path)
    for c in range(3):
        np.testing.assert_array_equal(img[:, :, c], gray)


@needs_images
def test_rgba_photo_alpha_dropped() -> None:
    path = IMAGES / "04.jpg"  # a PNG with alpha despite its name: decoding goes by content
    with Image.open(path) as im:
        assert im.mode == "RGBA"
        rgba = np.asarray(im)
    np.testing.assert_array_equal(pp.load_image(path), rgba[:, :, :3])


def test_transparent_pixels_keep_their_color(tmp_path: Path) -> None:
    """Dropping alpha means no premultiplication and no compositing onto a background."""
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[0, 0, 3] = 0
    rgba[0, 1, 3] = 128
    path = tmp_path / "a.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    np.testing.assert_array_equal(pp.load_image(path), np.full((2, 2, 3), (200, 100, 50), np.uint8))


def test_exif_orientation_applied(tmp_path: Path) -> None:
    """Orientation 6 = rotate 90° clockwise to display: a 32-wide, 16-high file shows 16 wide, 32 high."""
    pixels = np.zeros((16, 32, 3), np.uint8)
    pixels[:8, :8] = (255, 0, 0)  # top-left block red in the stored file (8x8: survives JPEG)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rot.jpg"
    Image.fromarray(pixels).save(path, quality=100, subsampling=0, exif=exif.tobytes())
    img = pp.load_image(path)
    assert img.shape == (32, 16, 3)
    # after rotating 90° clockwise the stored top-left block is at the top-right
    assert img[2:6, 10:14, 0].min() > 200 and img[2:6, 10:14, 1].max() < 60
    assert img[2:6, 2:6, 0].max() < 60 and img[26:30, 10:14, 0].max() < 60
    with Image.open(path) as im:
        np.testing.assert_array_equal(img, np.asarray(im.convert("RGB").transpose(Image.Transpose.ROTATE_270)))


def test_sixteen_bit_gray_keeps_high_byte(tmp_path: Path) -> None:
    values = np.array([[0, 255, 256, 65535]], dtype=np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(values).save(path)
    img = pp.load_image(path)
    np.testing.assert_array_equal(img[0, :, 0], [0, 0, 1, 255])
    np.testing.assert_array_equal(img[:, :, 0], img[:, :, 2])


def test_palette_and_la_images(tmp_path: Path) -> None:
    pal = Image.new("P", (3, 2))
    pal.putpalette([10, 20, 30] * 256)
    np.testing.assert_array_equal(pp.to_rgb_array(pal), np.full((2, 3, 3), (10, 20, 30), np.uint8))
    la = Image.fromarray(np.dstack([np.full((2, 2), 77, np.uint8), np.zeros((2, 2), np.uint8)]), mode="LA")
    np.testing.assert_array_equal(pp.to_rgb_array(la), np.full((2, 2, 3), 77, np.uint8))


def test_to_rgb_array_shapes() -> None:
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert pp.to_rgb_array(gray).shape == (2, 3, 3)
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 3] = 9
    assert pp.to_rgb_array(rgba).shape == (2, 3, 3) and pp.to_rgb_array(rgba).max() == 0
    with pytest.raises(InputImageError, match="dtype float32"):
        pp.to_rgb_array(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(InputImageError, match="shape"):
        pp.to_rgb_array(np.zeros((2, 2, 5), np.uint8))


@pytest.mark.parametrize("content", [b"not an image at all", b"\xff\xd8\xff\xe0" + b"\x00" * 40, b""])
def test_corrupt_file_raises_input_image_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    with pytest.raises(InputImageError, match="cannot read image") as info:
        pp.load_image(path)
    assert "—" in str(info.value) and "\n" not in str(info.value)


def test_truncated_jpeg_raises(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(InputImageError):
        pp.load_image(path)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(InputImageError, match="cannot read image"):
        pp.load_image(tmp_path / "nope.png")


# --- resize, fit, pad -------------------------------------------------------------------------


@needs_images
@pytest.mark.parametrize(
    ("name", "resized"),
    [
        ("07.jpg", (510, 768)),  # 3072x2040: 2040 * 0.25 = 510
        ("09.jpg", (512, 768)),  # 2560x1707: 1707 * 0.3 = 512.1 -> 512
        ("00.jpg", (728, 768)),  # 848x804: 804 * 768/848 = 728.15 -> 728
        ("06.jpg", (576, 768)),  # 1024x768: exact 0.75
        ("01.jpg", (511, 767)),  # 1474 * (768/1474) = 767.999.. -> 767: upstream's int() truncation, kept
    ],
)
def test_resize_long_edge_sizes(name: str, resized: tuple[int, int]) -> None:
    img = pp.load_image(IMAGES / name)
    out = pp.resize_long_edge(img, 768)
    assert out.shape == (*resized, 3) and out.dtype == np.uint8


@needs_images
def test_resize_matches_pillow_bilinear_without_reducing_gap() -> None:
    img = pp.load_image(IMAGES / "07.jpg")
    expected = np.asarray(Image.fromarray(img).resize((768, 510), Image.Resampling.BILINEAR, reducing_gap=None))
    np.testing.assert_array_equal(pp.resize_long_edge(img, 768), expected)
    # reducing_gap would give a different (box-prereduced) result; make sure we are not using it
    gapped = np.asarray(Image.fromarray(img).resize((768, 510), Image.Resampling.BILINEAR, reducing_gap=2.0))
    assert not np.array_equal(expected, gapped)


def test_resize_long_edge_disabled_and_upscale() -> None:
    img = np.zeros((10, 20, 3), np.uint8)
    assert pp.resize_long_edge(img, 0) is img
    assert pp.resize_long_edge(img, -1) is img
    assert pp.resize_long_edge(img, 40).shape == (20, 40, 3)  # upstream also upsamples small inputs


def test_fit_inside() -> None:
    img = np.zeros((300, 1000, 3), np.uint8)
    assert pp.fit_inside(img, 512, 512).shape == (153, 512, 3)  # 300 * 0.512 = 153.6
    assert pp.fit_inside(img, 256, 2048).shape == (256, 853, 3)  # height-bound: 1000 * 256/300 = 853.3
    small = np.zeros((100, 100, 3), np.uint8)
    assert pp.fit_inside(small, 512, 512) is small


def test_pad_to_replicates_edges() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = pp.pad_to(img, 8, 9)
    assert out.shape == (8, 9, 3)
    np.testing.assert_array_equal(out[:5, :7], img)
    for y in range(5, 8):
        np.testing.assert_array_equal(out[y, :7], img[4])
    for x in range(7, 9):
        np.testing.assert_array_equal(out[:5, x], img[:, 6])
    np.testing.assert_array_equal(out[5:, 7:], np.broadcast_to(img[4, 6], (3, 2, 3)))
    with pytest.raises(ShapeError):
        pp.pad_to(img, 4, 9)


# --- the whole preprocess ---------------------------------------------------------------------


@needs_images
@pytest.mark.parametrize("path", _photos(), ids=lambda p: p.name)
def test_preprocess_dynamic_on_photos(path: Path) -> None:
    img = pp.load_image(path)
    x, info = pp.preprocess(img)
    h, w = img.shape[:2]
    scale = 768 / max(h, w)
    rh, rw = int(h * scale), int(w * scale)
    ph, pw = -(-rh // 64) * 64, -(-rw // 64) * 64
    assert info == pp.PreprocessInfo(original=(h, w), resized=(rh, rw), padded=(ph, pw))
    assert x.shape == (1, 3, ph, pw) and x.dtype == np.float32 and x.flags.c_contiguous
    assert ph % 64 == 0 and pw % 64 == 0 and 0 <= ph - rh < 64 and 0 <= pw - rw < 64
    assert x.min() >= -1.0 and x.max() <= 1.0

    resized = pp.resize_long_edge(img, 768)
    # normalization exactly x / 127.5 - 1 in float32, at sampled pixels
    rng = np.random.default_rng(0)
    for y, xx in zip(rng.integers(0, rh, 50), rng.integers(0, rw, 50), strict=True):
        for c in range(3):
            assert x[0, c, y, xx] == np.float32(resized[y, xx, c]) / np.float32(127.5) - np.float32(1.0)
    # padded border equals the replicated edge
    np.testing.assert_array_equal(x[0, :, rh:, :rw], np.broadcast_to(x[0, :, rh - 1 : rh, :rw], (3, ph - rh, rw)))
    np.testing.assert_array_equal(x[0, :, :, rw:], np.broadcast_to(x[0, :, :, rw - 1 : rw], (3, ph, pw - rw)))


def test_preprocess_normalization_values() -> None:
    img = np.array([[[0, 127, 255], [1, 128, 254]]], np.uint8)
    x, info = pp.preprocess(img, processing_res=0, multiple=2)
    assert info == pp.PreprocessInfo(original=(1, 2), resized=(1, 2), padded=(2, 2))
    np.testing.assert_array_equal(x[0, :, 0, 0], np.array([-1.0, np.float32(127) / np.float32(127.5) - np.float32(1), 1.0], np.float32))
    np.testing.assert_array_equal(x[0, :, 0, :], x[0, :, 1, :])  # bottom row padded by replication


@needs_images
def test_preprocess_static_graph_fit_and_pad() -> None:
    img = pp.load_image(IMAGES / "07.jpg")  # 3072x2040 -> 768x510 -> fits inside 512x512 as 512x340
    x, info = pp.preprocess(img, processing_res=768, graph_hw=(512, 512))
    assert x.shape == (1, 3, 512, 512)
    assert info.resized == (340, 512) and info.padded == (512, 512) and info.original == (2040, 3072)
    # the content equals long-edge resize followed by fit_inside, i.e. two resizes as the spec says
    two_step = pp.fit_inside(pp.resize_long_edge(img, 768), 512, 512)
    np.testing.assert_array_equal(x[0, :, :340, :512], two_step.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0)
    # smaller than the static graph: no resize, only padding
    small = np.full((100, 200, 3), 9, np.uint8)
    x2, info2 = pp.preprocess(small, processing_res=0, graph_hw=(256, 320))
    assert x2.shape == (1, 3, 256, 320) and info2.resized == (100, 200)


def test_preprocess_bad_arguments() -> None:
    img = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ShapeError, match="multiple of 64"):
        pp.preprocess(img, graph_hw=(500, 512))
    with pytest.raises(ConfigError):
        pp.preprocess(img, multiple=0)
    with pytest.raises(InputImageError):
        pp.preprocess(np.zeros((10, 10, 3), np.float64))
    with pytest.raises(LotusError):
        pp.resize_long_edge(np.zeros((10, 10), np.uint8), 8)


def test_stack_batch() -> None:
    a, _ = pp.preprocess(np.zeros((60, 60, 3), np.uint8), processing_res=0)
    b, _ = pp.preprocess(np.full((64, 64, 3), 255, np.uint8), processing_res=0)
    batch = pp.stack_batch([a, b])
    assert batch.shape == (2, 3, 64, 64) and batch[1].min() == 1.0
    c, _ = pp.preprocess(np.zeros((10, 100, 3), np.uint8), processing_res=0)
    with pytest.raises(ShapeError, match="cannot batch"):
        pp.stack_batch([a, c])
    with pytest.raises(ShapeError):
        pp.stack_batch([])
