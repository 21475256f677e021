"""Reading and writing images and masks: modes, EXIF, 16-bit, limits, corrupt files."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from holefill.errors import ImageTooLargeError, InputError
from holefill.io import (
    atomic_write_bytes,
    mask_from_alpha,
    match_mask,
    read_image,
    read_mask,
    write_image,
)


def _save(image: Image.Image, path, **kwargs):
    image.save(path, **kwargs)
    return path


def test_grayscale_palette_rgba_cmyk(tmp_path, smooth_image):
    rgb = Image.fromarray(smooth_image)
    gray = read_image(_save(rgb.convert("L"), tmp_path / "g.png"))
    assert gray.pixels.shape == (48, 64, 3)
    assert np.array_equal(gray.pixels[..., 0], np.asarray(rgb.convert("L")))
    palette = read_image(_save(rgb.convert("P"), tmp_path / "p.png"))
    assert np.array_equal(palette.pixels, np.asarray(rgb.convert("P").convert("RGB")))
    rgba_array = np.dstack([smooth_image, np.full((48, 64), 77, np.uint8)])
    rgba = read_image(_save(Image.fromarray(rgba_array, "RGBA"), tmp_path / "a.png"))
    assert np.array_equal(rgba.pixels, smooth_image) and (rgba.alpha == 77).all()
    cmyk = read_image(_save(rgb.convert("CMYK"), tmp_path / "c.jpg", quality=100))
    reference = np.asarray(Image.open(tmp_path / "c.jpg").convert("RGB"))
    assert np.array_equal(cmyk.pixels, reference)
    assert np.abs(cmyk.pixels.astype(int) - smooth_image).mean() < 8


def test_sixteen_bit_png(tmp_path, rng):
    colour = rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), colour[..., ::-1])
    loaded = read_image(tmp_path / "c16.png")
    assert loaded.pixels.dtype == np.uint16 and np.array_equal(loaded.pixels, colour)
    gray = rng.integers(0, 65536, (20, 30), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), gray)
    loaded = read_image(tmp_path / "g16.png")
    assert loaded.pixels.dtype == np.uint16 and np.array_equal(loaded.pixels[..., 1], gray)


def test_exif_orientation_applied_and_reset(tmp_path, smooth_image):
    image = Image.fromarray(smooth_image)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise to display
    image.save(tmp_path / "o.jpg", exif=exif.tobytes(), quality=100)
    loaded = read_image(tmp_path / "o.jpg")
    assert loaded.size == (64, 48)
    expected = np.asarray(Image.open(tmp_path / "o.jpg").transpose(Image.Transpose.ROTATE_270))
    assert np.array_equal(loaded.pixels, expected)
    parsed = Image.Exif()
    parsed.load(loaded.exif)
    assert parsed[0x0112] == 1


def test_corrupt_truncated_missing_zero(tmp_path, smooth_image):
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="not an image"):
        read_image(tmp_path / "junk.png")
    buffer = io.BytesIO()
    Image.fromarray(smooth_image).save(buffer, "PNG")
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(InputError, match="zero size"):
        read_image(Image.new("RGB", (0, 5)))


def test_pixel_limit(tmp_path, smooth_image):
    path = _save(Image.fromarray(smooth_image), tmp_path / "x.png")
    with pytest.raises(ImageTooLargeError, match="exceeds the limit"):
        read_image(path, max_pixels=1000)


def test_masks_any_mode_threshold_invert(tmp_path):
    values = np.array([[0, 100, 127, 128, 255]], np.uint8)
    path = _save(Image.fromarray(values), tmp_path / "m.png")
    assert read_mask(path).tolist() == [[False, False, False, True, True]]
    assert read_mask(path, threshold=99).tolist() == [[False, True, True, True, True]]
    assert read_mask(path, invert=True).tolist() == [[True, True, True, False, False]]
    one_bit = _save(Image.fromarray(values > 127).convert("1"), tmp_path / "b.png")
    assert read_mask(one_bit).tolist() == [[False, False, False, True, True]]
    rgb = _save(Image.fromarray(np.dstack([values] * 3)), tmp_path / "rgb.png")
    assert read_mask(rgb).tolist() == [[False, False, False, True, True]]


def test_painted_alpha_mask_and_mask_from_alpha(tmp_path, smooth_image):
    alpha = np.zeros((4, 4), np.uint8)
    alpha[1:3, 1:3] = 255
    painted = np.dstack([np.full((4, 4, 3), 200, np.uint8), alpha])
    path = _save(Image.fromarray(painted, "RGBA"), tmp_path / "paint.png")
    assert np.array_equal(read_mask(path), alpha > 0)
    transparent = np.dstack(
        [smooth_image, np.where(np.arange(64) < 10, 0, 255).astype(np.uint8)[None].repeat(48, 0)]
    )
    loaded = read_image(_save(Image.fromarray(transparent, "RGBA"), tmp_path / "t.png"))
    assert mask_from_alpha(loaded)[:, :10].all() and not mask_from_alpha(loaded)[:, 10:].any()
    with pytest.raises(InputError, match="no alpha"):
        mask_from_alpha(read_image(_save(Image.fromarray(smooth_image), tmp_path / "n.png")))


def test_mask_size_mismatch_names_both_sizes():
    with pytest.raises(InputError, match=r"mask is 20x10 but the image is 64x48"):
        match_mask(np.zeros((10, 20), bool), (48, 64))
    resized = match_mask(np.eye(2, dtype=bool), (4, 4), resize=True)
    assert resized.tolist() == np.kron(np.eye(2), np.ones((2, 2))).astype(bool).tolist()


def test_write_keeps_exif_icc_and_never_overwrites(tmp_path, smooth_image):
    exif = Image.Exif()
    exif[0x010F] = "holefill-test-camera"
    icc = b"\x00" * 128
    out = write_image(tmp_path / "o.jpg", smooth_image, exif=exif.tobytes(), icc=icc, quality=90)
    with Image.open(out) as reread:
        assert reread.getexif()[0x010F] == "holefill-test-camera"
        assert reread.info.get("icc_profile") == icc
    with pytest.raises(InputError, match="exists"):
        write_image(out, smooth_image)
    png = write_image(tmp_path / "o.png", smooth_image)
    assert np.array_equal(np.asarray(Image.open(png)), smooth_image)
    with pytest.raises(InputError, match="unsupported output format"):
        write_image(tmp_path / "o.xyz", smooth_image)


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"first")
    with pytest.raises(InputError):
        atomic_write_bytes(tmp_path / "a.bin", b"second", overwrite=False)
    assert (tmp_path / "a.bin").read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
