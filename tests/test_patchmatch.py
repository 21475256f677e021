"""PatchMatch completion: NNF search against brute force, periodic textures against Telea, contracts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import holefill
from holefill.errors import InputError
from holefill.methods import patchmatch
from holefill.methods.patchmatch import PatchMatchInpainter, complete


def _psnr(reference: np.ndarray, estimate: np.ndarray) -> float:
    mse = float(np.mean((reference.astype(np.float64) - estimate) ** 2))
    return 10 * np.log10(1 / max(mse, 1e-12))


def _colour(pattern: np.ndarray) -> np.ndarray:
    """A two-colour (H, W, 3) float32 image from a 0/1 pattern."""
    return np.stack([0.1 + 0.8 * pattern, 0.2 + 0.5 * pattern, 0.9 - 0.7 * pattern], -1).astype(
        np.float32
    )


def _telea(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    image8 = np.round(image * 255).astype(np.uint8)
    return cv2.inpaint(image8, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA).astype(np.float32) / 255


def _brute_force_nnf(image: np.ndarray, hole: np.ndarray, radius: int):
    """Plain numpy: every source patch (inside, wholly known) against every target patch."""
    height, width = hole.shape
    size = 2 * radius + 1
    windows = np.lib.stride_tricks.sliding_window_view(image, (size, size), axis=(0, 1))
    hole_windows = np.lib.stride_tricks.sliding_window_view(hole, (size, size))
    patches = windows.reshape(height - size + 1, width - size + 1, -1).astype(np.float64)
    sources = np.argwhere(~hole_windows.any(axis=(2, 3)))
    targets = np.argwhere(hole_windows.any(axis=(2, 3)))
    source_patches = patches[sources[:, 0], sources[:, 1]]
    best = {}
    for row, col in targets:
        ssd = ((source_patches - patches[row, col]) ** 2).sum(axis=1)
        best[(row + radius, col + radius)] = ssd.min()
    return {tuple(s + radius) for s in sources}, best


# -- the nearest-neighbour field ------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_patchmatch_distances_equal_brute_force_minimum(seed):
    rng = np.random.default_rng(seed)
    image = (rng.integers(0, 8, (20, 22, 3)) / 7).astype(np.float32)
    hole = np.zeros((20, 22), bool)
    hole[8:12, 9:14] = True
    radius = 2
    sources, best = _brute_force_nnf(image, hole, radius)

    source_ok = patchmatch._source_centres(hole, radius)
    targets = patchmatch._target_centres(hole, radius)
    assert {tuple(s) for s in np.argwhere(source_ok)} == sources
    assert {tuple(t) for t in targets} == set(best)

    nnf, distance = patchmatch._nearest_neighbour_field(
        image, source_ok, targets, radius, 3000, seed
    )
    for row, col in targets:
        match = tuple(nnf[row, col])
        assert match in sources
        assert distance[row, col] == pytest.approx(best[(row, col)], abs=1e-4)
        patch = image[row - radius : row + radius + 1, col - radius : col + radius + 1]
        matched = image[
            match[0] - radius : match[0] + radius + 1, match[1] - radius : match[1] + radius + 1
        ]
        assert float(((patch - matched) ** 2).sum()) == pytest.approx(distance[row, col], abs=1e-4)


def test_patchmatch_finds_exact_copies_with_zero_distance():
    rng = np.random.default_rng(3)
    left = rng.random((24, 24, 3)).astype(np.float32)
    image = np.concatenate([left, left], axis=1)  # the right half repeats the left exactly
    hole = np.zeros((24, 48), bool)
    hole[9:15, 8:14] = True
    radius = 2
    source_ok = patchmatch._source_centres(hole, radius)
    targets = patchmatch._target_centres(hole, radius)
    nnf, distance = patchmatch._nearest_neighbour_field(image, source_ok, targets, radius, 8, 0)
    for row, col in targets:  # each target's twin 24 columns right is a source
        assert source_ok[row, col + 24]
        assert distance[row, col] == 0.0
        match_row, match_col = nnf[row, col]
        assert (match_row, match_col) == (row, col + 24)


# -- completion quality ---------------------------------------------------------------------------
_YY, _XX = np.mgrid[:96, :96]
_TEXTURES = {
    "stripes": (_XX // 4) % 2,
    "checkerboard": (_XX // 4 + _YY // 4) % 2,
    "diagonal": ((_XX + _YY) // 4) % 2,
}


@pytest.mark.parametrize("texture", sorted(_TEXTURES))
@pytest.mark.parametrize("hole_side", [12, 20, 30])
def test_periodic_texture_is_reconstructed_far_above_telea(texture, hole_side):
    image = _colour(_TEXTURES[texture])
    hole = np.zeros(image.shape[:2], bool)
    hole[40 - hole_side // 2 : 40 + hole_side // 2, 50 - hole_side // 2 : 53 + hole_side // 2] = (
        True
    )
    filled = complete(image, hole, patch_size=5)
    ours, telea = _psnr(image[hole], filled[hole]), _psnr(image[hole], _telea(image, hole)[hole])
    assert telea < 15
    assert ours > 40  # the period is continued exactly, not diffused
    assert ours > telea + 25


def test_constant_image_is_filled_with_the_constant():
    image = np.full((30, 40, 3), [0.25, 0.5, 0.75], np.float32)
    hole = np.zeros((30, 40), bool)
    hole[5:25, 10:30] = True
    np.testing.assert_allclose(complete(image, hole), image, atol=1e-6)


# -- contracts --------------------------------------------------------------------------------------
def _random_case(height: int, width: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    image = torch.from_numpy(rng.random((1, 3, height, width), dtype=np.float32))
    hole = torch.zeros(1, 1, height, width)
    hole[
        ...,
        height // 3 : height // 3 + max(1, height // 4),
        width // 3 : width // 3 + max(1, width // 4),
    ] = 1
    return image, hole


def test_known_pixels_are_untouched_through_the_public_api():
    image, hole = _random_case(40, 50)
    out = holefill.create_inpainter("patchmatch").fill(image, hole)
    known = hole.expand_as(image) < 0.5
    assert torch.equal(out[known], image[known])
    assert not torch.equal(out[~known], image[~known])
    assert out.min() >= 0 and out.max() <= 1


def test_same_seed_is_bit_identical_and_seeds_differ():
    image, hole = _random_case(48, 48, seed=5)
    first = holefill.create_inpainter("patchmatch", seed=7).fill(image, hole)
    second = holefill.create_inpainter("patchmatch", seed=7).fill(image, hole)
    other = holefill.create_inpainter("patchmatch", seed=8).fill(image, hole)
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


@pytest.mark.parametrize(
    ("height", "width", "hole_box"),
    [
        (12, 12, (4, 7, 4, 7)),  # 3x3 hole in a 12x12 image
        (17, 23, (5, 12, 6, 15)),  # odd sizes
        (7, 9, (3, 4, 4, 5)),  # smaller than the pyramid ever needs
        (3, 3, (1, 2, 1, 2)),  # no 3x3 patch is wholly known: falls back to diffusion
        (40, 33, (0, 40, 0, 5)),  # hole along a whole border
    ],
)
@pytest.mark.parametrize("patch_size", [5, 7])
def test_tiny_and_odd_images(height, width, hole_box, patch_size):
    rng = np.random.default_rng(height * width)
    image = torch.from_numpy(rng.random((1, 3, height, width), dtype=np.float32))
    hole = torch.zeros(1, 1, height, width)
    top, bottom, left, right = hole_box
    hole[..., top:bottom, left:right] = 1
    inpainter = holefill.create_inpainter("patchmatch", patch_size=patch_size, strategy="original")
    out = inpainter.fill(image, hole)
    assert out.shape == image.shape
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    known = hole.expand_as(image) < 0.5
    assert torch.equal(out[known], image[known])


def test_filled_values_come_from_the_image():
    """Voting averages known colours: a two-colour image gets no colour outside their hull."""
    image = _colour(_TEXTURES["checkerboard"][:48, :48])
    hole = np.zeros((48, 48), bool)
    hole[20:30, 15:35] = True
    filled = complete(image, hole)
    low, high = image.reshape(-1, 3).min(0), image.reshape(-1, 3).max(0)
    assert (filled >= low - 1e-6).all() and (filled <= high + 1e-6).all()


@pytest.mark.parametrize(
    "options",
    [
        {"patch_size": 4},
        {"patch_size": 1},
        {"patch_size": 5.0},
        {"em_iterations": 0},
        {"search_iterations": 0},
    ],
)
def test_bad_options_raise_input_error(options):
    with pytest.raises(InputError):
        PatchMatchInpainter(**options)


def test_options_are_listed_by_the_registry():
    options = holefill.registry.method_options("patchmatch")
    assert options["patch_size"]["default"] == 5
    assert {"em_iterations", "search_iterations", "seed", "strategy"} <= set(options)
    assert "patch_size=5" in repr(holefill.create_inpainter("patchmatch"))
