"""``holefill.inpaint``: the kind in is the kind out; conventions of every input type."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

import holefill
from holefill.errors import InputError, UnknownMethodError


def _telea_reference(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    filled = cv2.inpaint(image, hole.astype(np.uint8), 3.0, cv2.INPAINT_TELEA)
    return np.where(hole[..., None], filled, image)


def test_ndarray_uint8_matches_opencv(smooth_image, square_hole):
    out = holefill.inpaint(smooth_image, square_hole, method="telea", strategy="original")
    assert np.array_equal(out, _telea_reference(smooth_image, square_hole))


def test_crop_strategy_equals_opencv_on_the_window(smooth_image, square_hole):
    out = holefill.inpaint(smooth_image, square_hole, method="telea", strategy="crop", margin=6)
    rows, cols = slice(12, 34), slice(18, 42)  # hole box grown by max(6, 0.5 * 12)
    window = _telea_reference(smooth_image[rows, cols], square_hole[rows, cols])
    assert np.array_equal(out[rows, cols], window)
    assert np.array_equal(out[~square_hole], smooth_image[~square_hole])


def test_float_gray_rgba_uint16_kinds(smooth_image, square_hole):
    as_float = smooth_image.astype(np.float32) / 255
    out = holefill.inpaint(as_float, square_hole, method="telea")
    assert out.dtype == np.float32 and np.array_equal(out[~square_hole], as_float[~square_hole])
    gray = smooth_image[..., 0]
    out = holefill.inpaint(gray, square_hole, method="telea")
    assert out.shape == gray.shape and np.array_equal(out[~square_hole], gray[~square_hole])
    rgba = np.dstack([smooth_image, np.full(gray.shape, 99, np.uint8)])
    out = holefill.inpaint(rgba, square_hole, method="telea")
    assert out.shape == rgba.shape and (out[..., 3] == 99).all()
    wide = smooth_image.astype(np.uint16) * 257
    out = holefill.inpaint(wide, square_hole, method="biharmonic")
    assert out.dtype == np.uint16 and np.array_equal(out[~square_hole], wide[~square_hole])


def test_pil_and_path_give_pil(tmp_path, smooth_image, square_hole):
    image = Image.fromarray(smooth_image)
    mask = Image.fromarray((square_hole * 255).astype(np.uint8))
    out = holefill.inpaint(image, mask, method="navier_stokes")
    assert isinstance(out, Image.Image) and out.size == image.size
    image.save(tmp_path / "i.png")
    mask.save(tmp_path / "m.png")
    from_path = holefill.inpaint(
        tmp_path / "i.png", str(tmp_path / "m.png"), method="navier_stokes"
    )
    assert isinstance(from_path, Image.Image)
    assert np.array_equal(np.asarray(from_path), np.asarray(out))
    gray = holefill.inpaint(image.convert("L"), mask, method="telea")
    assert gray.mode == "L"


def test_invert_and_resize_mask(smooth_image, square_hole):
    out = holefill.inpaint(smooth_image, ~square_hole, method="telea", invert_mask=True)
    assert np.array_equal(out[~square_hole], smooth_image[~square_hole])
    small = square_hole[::2, ::2]
    with pytest.raises(InputError, match="mask is 32x24 but the image is 64x48"):
        holefill.inpaint(smooth_image, small, method="telea")
    out = holefill.inpaint(smooth_image, small, method="telea", resize_mask=True)
    assert out.shape == smooth_image.shape


def test_empty_mask_warns_and_returns_input(smooth_image):
    with pytest.warns(UserWarning, match="empty"):
        out = holefill.inpaint(smooth_image, np.zeros((48, 64), bool), method="telea")
    assert np.array_equal(out, smooth_image)


def test_errors_are_clear(smooth_image, square_hole):
    with pytest.raises(UnknownMethodError, match="unknown method 'nope'; available: .*telea"):
        holefill.inpaint(smooth_image, square_hole, method="nope")
    with pytest.raises(InputError, match="has no option radiuss"):
        holefill.inpaint(smooth_image, square_hole, method="telea", radiuss=3)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        holefill.inpaint(smooth_image.astype(np.float32), square_hole, method="telea")
    with pytest.raises(InputError, match="zero size"):
        holefill.inpaint(np.zeros((0, 4, 3), np.uint8), np.zeros((0, 4)), method="telea")


def test_list_and_create():
    assert {"telea", "navier_stokes", "biharmonic"} <= set(holefill.list_methods())
    inpainter = holefill.create_inpainter("telea", radius=5)
    assert inpainter.radius == 5.0 and "TeleaInpainter" in repr(inpainter)
