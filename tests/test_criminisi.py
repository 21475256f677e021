"""Tests of holefill.methods.criminisi (Criminisi, Pérez & Toyama 2004) on small synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from holefill import create_inpainter
from holefill.errors import InputError
from holefill.methods.criminisi import (
    _DATA_FLOOR,
    _best_exemplar,
    _confidence_term,
    _data_term,
    _priority,
    _valid_centres,
    criminisi_inpaint,
)
from holefill.registry import method_options

LEFT_COLOUR = (0.8, 0.2, 0.1)
RIGHT_COLOUR = (0.1, 0.3, 0.9)


def _two_colour_image(height: int, width: int, edge: int) -> np.ndarray:
    image = np.empty((height, width, 3), np.float32)
    image[:, :edge] = LEFT_COLOUR
    image[:, edge:] = RIGHT_COLOUR
    return image


def _smooth_random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Random colours with some spatial structure, values in [0, 1]."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    base = 0.5 + 0.3 * np.sin(rows[..., None] / 3.0 + cols[..., None] / 5.0 + np.arange(3))
    return np.clip(base + 0.15 * rng.random((height, width, 3)), 0, 1).astype(np.float32)


def _fill_tensors(image: np.ndarray, hole: np.ndarray, **options) -> np.ndarray:
    """Fill through the public API: image (1, 3, H, W), hole (1, 1, H, W) with 1 = missing."""
    image_tensor = torch.from_numpy(image).permute(2, 0, 1)[None]
    hole_tensor = torch.from_numpy(hole.astype(np.float32))[None, None]
    filled = create_inpainter("criminisi", **options).fill(image_tensor, hole_tensor)
    assert filled.shape == image_tensor.shape
    return filled[0].permute(1, 2, 0).numpy()


def _colours_come_from(filled: np.ndarray, image: np.ndarray, hole: np.ndarray) -> bool:
    """Every filled pixel is a copy of some known pixel of the input (exemplar copying)."""
    known = {tuple(colour) for colour in image[~hole]}
    return all(tuple(colour) in known for colour in filled[hole])


# -- the algorithm, checked by hand -------------------------------------------------------------
@pytest.mark.parametrize("transpose", [False, True])
def test_straight_edge_continues_through_the_hole(transpose):
    image = _two_colour_image(40, 40, edge=20)
    hole = np.zeros((40, 40), bool)
    hole[13:27, 13:27] = True  # 14x14, straddling the edge at column 20
    if transpose:
        image, hole = image.transpose(1, 0, 2).copy(), hole.T.copy()
    filled = _fill_tensors(image, hole)
    if transpose:
        filled = filled.transpose(1, 0, 2)
    np.testing.assert_allclose(
        filled[13:27, 13:20], np.broadcast_to(LEFT_COLOUR, (14, 7, 3)), atol=1e-6
    )
    np.testing.assert_allclose(
        filled[13:27, 20:27], np.broadcast_to(RIGHT_COLOUR, (14, 7, 3)), atol=1e-6
    )


def test_known_pixels_untouched_and_fill_copies_known_colours():
    image = _smooth_random_image(48, 40)
    hole = np.zeros((48, 40), bool)
    hole[10:22, 8:18] = True
    hole[30:36, 25:39] = True
    filled = _fill_tensors(image, hole)
    np.testing.assert_array_equal(filled[~hole], image[~hole])
    assert np.isfinite(filled).all()
    assert _colours_come_from(filled, image, hole)


# -- priority terms against naive numpy ---------------------------------------------------------
def test_confidence_term_matches_naive_mean():
    rng = np.random.default_rng(1)
    hole = np.zeros((11, 13), bool)
    hole[3:8, 4:10] = True
    confidence = np.where(hole, 0.0, rng.random((11, 13)))
    for row, col, half in [(3, 4, 1), (5, 9, 2), (0, 0, 2), (10, 12, 4), (7, 6, 3)]:
        window = np.s_[max(row - half, 0) : row + half + 1, max(col - half, 0) : col + half + 1]
        expected = (confidence[window] * ~hole[window]).sum() / hole[window].size
        assert _confidence_term(confidence, hole, row, col, half) == pytest.approx(expected)


def test_data_term_of_a_straight_edge():
    """Grey step 0 -> 1 between columns 9 and 10, hole below row 10: D = |∇I⊥ · n| by hand."""
    half = 2
    grey = np.zeros((21, 21))
    grey[:, 10:] = 1.0
    hole = np.zeros((21, 21), bool)
    hole[10:16, 3:18] = True
    grad_row = np.zeros_like(grey)  # columns are constant: no vertical gradient
    grad_col = np.gradient(grey, axis=1)  # central differences: 0.5 on columns 9 and 10
    grad_col[hole] = 0.0
    for col in range(6, 15):  # top side of the hole, away from its corners
        window_cols = slice(col - half, col + half + 1)
        isophote = np.array([-grad_col[10 - half : 10, window_cols].max(), 0.0])  # ∇I turned 90°
        normal = np.array([1.0, 0.0])  # the front runs along a row
        expected = abs(isophote @ normal)
        assert _data_term(grad_row, grad_col, hole, 10, col, half) == pytest.approx(expected)
        assert expected == (0.5 if 7 <= col <= 12 else 0.0)  # the patch reaches column 9 or 10
        confidence_expected = 10 / 25  # 2 known rows of 5 in the 5x5 patch
        assert _priority(np.ones((21, 21)), grad_row, grad_col, hole, 10, col, half) == (
            pytest.approx(confidence_expected * (expected + _DATA_FLOOR))
        )
    assert _priority(np.ones((21, 21)), grad_row, grad_col, hole, 12, 10, half) == -1.0


# -- exemplar search against brute force --------------------------------------------------------
def _brute_force_exemplar(image, hole, valid, row, col, half, radius):
    height, width = hole.shape
    best, best_centre = np.inf, None
    for source_row in range(height):
        for source_col in range(width):
            if not valid[source_row, source_col]:
                continue
            if radius and max(abs(source_row - row), abs(source_col - col)) > radius:
                continue
            ssd = 0.0
            for r in range(max(row - half, 0), min(row + half, height - 1) + 1):
                for c in range(max(col - half, 0), min(col + half, width - 1) + 1):
                    if not hole[r, c]:
                        source = image[source_row + r - row, source_col + c - col]
                        ssd += float(((source.astype(np.float64) - image[r, c]) ** 2).sum())
            if ssd < best:
                best, best_centre = ssd, (source_row, source_col)
    return best_centre


@pytest.mark.parametrize("half, radius", [(2, 0), (3, 0), (2, 6)])
def test_exemplar_is_the_brute_force_ssd_argmin(half, radius):
    rng = np.random.default_rng(2)
    image = rng.random((22, 26, 3)).astype(np.float32)
    hole = np.zeros((22, 26), bool)
    hole[8:14, 9:16] = True
    hole[0:3, 20:26] = True  # a hole on the border: its target patches are clipped
    image[hole] = 0.0
    valid = _valid_centres(hole, half)
    for row, col in [(8, 9), (13, 12), (10, 15), (2, 21), (0, 20), (2, 25)]:  # front pixels
        expected = _brute_force_exemplar(image, hole, valid, row, col, half, radius)
        assert _best_exemplar(image, hole, valid, row, col, half, radius) == expected


def test_equal_matches_go_to_the_nearest_source_then_raster_order():
    image = np.full((20, 20, 3), 0.5, np.float32)  # every source patch matches exactly
    hole = np.zeros((20, 20), bool)
    hole[6:14, 5:12] = True
    image[hole] = 0.0
    valid = _valid_centres(hole, 2)
    centres = np.argwhere(valid)
    for row, col in [(6, 8), (10, 5), (13, 11)]:
        distances = ((centres - (row, col)) ** 2).sum(axis=1)
        nearest = centres[distances == distances.min()]  # argwhere lists them in raster order
        assert _best_exemplar(image, hole, valid, row, col, 2, 0) == tuple(nearest[0])


def test_valid_centres_match_naive_check():
    hole = np.zeros((12, 14), bool)
    hole[5, 6] = hole[0, 13] = True
    valid = _valid_centres(hole, 2)
    for row in range(12):
        for col in range(14):
            inside = 2 <= row < 10 and 2 <= col < 12
            clean = inside and not hole[row - 2 : row + 3, col - 2 : col + 3].any()
            assert valid[row, col] == clean


def test_windowed_search_covering_the_image_equals_full_search():
    image = _smooth_random_image(30, 34, seed=3)
    hole = np.zeros((30, 34), bool)
    hole[9:19, 12:20] = True
    full = criminisi_inpaint(image, hole, search_radius=0)
    windowed = criminisi_inpaint(image, hole, search_radius=40)
    np.testing.assert_array_equal(full, windowed)


# -- sizes, borders, options --------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, rows, cols",
    [
        ((15, 15), slice(6, 9), slice(6, 9)),  # no fully known 9x9 patch: the patch shrinks
        ((17, 23), slice(5, 12), slice(0, 4)),  # odd size, hole on the left border
        ((21, 19), slice(15, 21), slice(13, 19)),  # hole in a corner
        ((9, 31), slice(0, 9), slice(14, 17)),  # hole across the whole height
    ],
)
def test_small_odd_and_border_holes_are_filled(shape, rows, cols):
    image = _smooth_random_image(*shape, seed=4)
    hole = np.zeros(shape, bool)
    hole[rows, cols] = True
    for search_filled in (False, True):
        filled = _fill_tensors(image, hole, search_filled=search_filled)
        np.testing.assert_array_equal(filled[~hole], image[~hole])
        assert _colours_come_from(filled, image, hole)


def test_deterministic_and_seed_independent():
    image = _smooth_random_image(36, 36, seed=5)
    hole = np.zeros((36, 36), bool)
    hole[12:24, 10:20] = True
    first = _fill_tensors(image, hole, seed=0)
    np.testing.assert_array_equal(first, _fill_tensors(image, hole, seed=0))
    np.testing.assert_array_equal(first, _fill_tensors(image, hole, seed=7))


def test_search_filled_copies_from_filled_pixels_too():
    image = _smooth_random_image(40, 40, seed=6)
    hole = np.zeros((40, 40), bool)
    hole[8:32, 8:32] = True
    filled = criminisi_inpaint(image, hole, patch_size=5, search_filled=True)
    assert np.isfinite(filled).all()
    np.testing.assert_array_equal(filled[~hole], image[~hole])


def test_options_are_registered_and_checked():
    options = method_options("criminisi")
    assert options["patch_size"]["default"] == 9
    assert options["search_radius"]["default"] == 80
    assert options["strategy"]["default"] is None
    for bad in (
        {"patch_size": 8},
        {"patch_size": 0},
        {"patch_size": 9.0},
        {"search_radius": -1},
        {"search_radius": "80"},
        {"size": 9},
    ):
        with pytest.raises(InputError):
            create_inpainter("criminisi", **bad)
    with pytest.raises(InputError):
        criminisi_inpaint(np.zeros((4, 4), np.float32), np.zeros((4, 4), bool))
    with pytest.raises(InputError):
        criminisi_inpaint(np.zeros((4, 4, 3), np.float32), np.ones((4, 4), bool))
