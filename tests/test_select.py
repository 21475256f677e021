"""holefill.select: one click or a box gives the object's mask; grow_mask moves its outline."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from holefill.errors import InputError
from holefill.io import read_image
from holefill.select import grow_mask, select_object


def test_one_click_in_a_textured_disc_selects_the_disc(bench_select):
    """The issue's bar at 1024x1024 (the 2 s half is measured by benchmarks/bench_select.py)."""
    image, disc = bench_select.textured_disc_photo(1024, seed=0)
    for point in bench_select.click_points(disc)[::3]:  # the centre and near the edge
        selected = select_object(image, point=point)
        assert selected.shape == disc.shape and selected.dtype == bool
        assert bench_select.iou(selected, disc) >= 0.8


def test_a_16_bit_grey_image_and_a_box_work_too(bench_select):
    image, disc = bench_select.textured_disc_photo(256, seed=3)
    rows, cols = np.nonzero(disc)
    box = (cols.min() - 12, rows.min() - 12, cols.max() + 12, rows.max() + 12)
    grey16 = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    selected = select_object(image.astype(np.uint16) * 257, box=box)
    assert bench_select.iou(selected, disc) >= 0.8
    assert select_object(grey16, box=box).shape == disc.shape


def test_a_box_on_a_real_photo_selects_less_than_the_box(shared):
    """The water drop's crown in a 2560x1600 photo: the box's centre is on it, the box is not."""
    image = read_image(shared / "data" / "val" / "hd" / "Aqua.jpg").pixels
    left, top, right, bottom = 1350, 580, 2150, 1450
    selected = select_object(image, box=(left, top, right, bottom))
    assert selected.shape == image.shape[:2]
    assert selected[(top + bottom) // 2, (left + right) // 2]
    inside = selected[top:bottom, left:right].sum()
    assert inside == selected.sum()  # nothing outside the box
    assert 0.2 < inside / ((right - left) * (bottom - top)) < 0.9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give a point"),
        ({"point": (64, 10)}, "outside the 64x48 image"),
        ({"point": (1, 2, 3)}, "point must be 2"),
        ({"point": ("a", 2)}, "point must be 2 numbers"),
        ({"box": (0, 0, 1, 40)}, "at least 2x2"),
        ({"box": (0, 0, 64, 48)}, "covers the whole image"),
        ({"point": (3, 3), "work_side": 8}, "work_side"),
    ],
)
def test_bad_arguments_are_one_line_errors(smooth_image, kwargs, message):
    with pytest.raises(InputError, match=message):
        select_object(smooth_image, **kwargs)


def test_bad_image_is_an_error():
    with pytest.raises(InputError, match="uint8 or uint16"):
        select_object(np.zeros((8, 8, 3), np.float32), point=(1, 1))
    with pytest.raises(InputError, match="RGB"):
        select_object(np.zeros((8, 8, 2), np.uint8), point=(1, 1))


# -- grow_mask ------------------------------------------------------------------------------


def _naive_grow(hole: np.ndarray, pixels: int) -> np.ndarray:
    """OpenCV's elliptical kernel written out: row ``dy`` spans ``round(sqrt(r^2 - dy^2))``."""
    radius = abs(pixels)
    height, width = hole.shape
    padded = np.pad(hole, radius, constant_values=pixels < 0)  # erosion: outside is hole
    out = np.zeros_like(hole) if pixels > 0 else np.ones_like(hole)
    for dy in range(-radius, radius + 1):
        half = int(np.floor(np.sqrt(radius**2 - dy**2) + 0.5))
        for dx in range(-half, half + 1):
            shifted = padded[radius + dy : radius + dy + height, radius + dx : radius + dx + width]
            out = out | shifted if pixels > 0 else out & shifted
    return out


def test_grow_and_shrink_one_pixel_by_hand():
    dot = np.zeros((7, 7), bool)
    dot[3, 3] = True
    assert np.array_equal(np.argwhere(grow_mask(dot, 1)), [[2, 3], [3, 2], [3, 3], [3, 4], [4, 3]])
    grown = grow_mask(dot, 2)
    # rows dy = -1, 0, 1 span round(sqrt(4 - dy^2)) = 2 each side; rows dy = +-2 only the centre
    assert grown[1:6, 1:6].sum() == 17 and grown.sum() == 17
    assert grown[1, 3] and grown[2, 1] and grown[3, 5] and not grown[1, 2] and not grown[5, 4]
    square = np.zeros((16, 16), np.uint8)
    square[3:13, 3:13] = 255
    shrunk = grow_mask(square, -2)
    assert np.array_equal(np.argwhere(shrunk)[[0, -1]], [[5, 5], [10, 10]])  # 10x10 -> 6x6
    assert shrunk.sum() == 36
    assert np.array_equal(grow_mask(square, 0), square > 0)


@pytest.mark.parametrize("pixels", [1, 3, 7, 12, -1, -4, -9])
def test_grow_mask_matches_opencv_and_a_naive_kernel(pixels):
    rng = np.random.default_rng(abs(pixels))
    hole = cv2.GaussianBlur(rng.random((90, 120)), (0, 0), 4) > 0.5
    hole[0:30, 0:20] = True  # touching the border: erosion treats outside as hole, like OpenCV
    side = 2 * abs(pixels) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    morph = cv2.dilate if pixels > 0 else cv2.erode
    expected = morph(hole.astype(np.uint8), kernel).astype(bool)
    result = grow_mask(hole, pixels)
    assert np.array_equal(result, expected)
    assert np.array_equal(result, _naive_grow(hole, pixels))
    assert (result.sum() > hole.sum()) == (pixels > 0)


def test_grow_mask_rejects_bad_input():
    with pytest.raises(InputError, match="2-D"):
        grow_mask(np.zeros((4, 4, 3)), 1)
    with pytest.raises(InputError, match="whole number"):
        grow_mask(np.zeros((4, 4)), 1.5)
