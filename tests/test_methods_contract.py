"""The contract every registered method keeps (shape, dtype, range, known pixels, determinism)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import holefill
from holefill.errors import NothingToFillFromError

# Options that keep each method quick on tiny images; methods not listed run with defaults.
FAST_OPTIONS: dict[str, dict] = {
    "neural_patch": {"iterations": 3},
}

METHODS = holefill.list_methods()


def _make(name: str, **extra):
    """The method with its fast options; a method not ready here (no VGG-19 file, no packaged
    weights) is skipped with the registry's reason, never downloaded."""
    if not name.ready:
        pytest.skip(f"{name} is not ready: {name.reason}")
    return holefill.create_inpainter(name, **{**FAST_OPTIONS.get(name, {}), **extra})


def _inputs(height: int, width: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, height, width, generator=generator)
    hole = torch.zeros(1, 1, height, width)
    hole[
        ...,
        height // 3 : height // 3 + max(1, height // 4),
        width // 3 : width // 3 + max(1, width // 4),
    ] = 1
    return image, hole


def test_core_methods_registered():
    for name in ("telea", "navier_stokes", "biharmonic", "patchmatch", "criminisi"):
        assert name in METHODS


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("size", [(40, 56), (33, 47)])
def test_fill_contract(name, size):
    image, hole = _inputs(*size)
    out = _make(name).fill(image, hole)
    assert out.shape == image.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    known = hole == 0
    assert torch.equal(out.expand_as(image)[known.expand_as(image)], image[known.expand_as(image)])
    # the hole is actually filled with something other than the (random) input there
    assert not torch.equal(out[hole.expand_as(image) > 0], image[hole.expand_as(image) > 0])


@pytest.mark.parametrize("name", METHODS)
def test_seeded_determinism(name):
    image, hole = _inputs(36, 36, seed=1)
    first = _make(name, seed=3).fill(image, hole)
    second = _make(name, seed=3).fill(image, hole)
    assert torch.equal(first, second)


@pytest.mark.parametrize("name", METHODS)
def test_tiny_image(name):
    image, hole = _inputs(12, 12)
    hole.zero_()
    hole[..., 5:7, 5:7] = 1
    out = _make(name).fill(image, hole)
    assert out.shape == image.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("name", METHODS)
def test_empty_mask_returns_input(name):
    image, hole = _inputs(24, 24)
    hole.zero_()
    with pytest.warns(UserWarning, match="empty"):
        out = _make(name).fill(image, hole)
    assert torch.equal(out, image)


@pytest.mark.parametrize("name", METHODS)
def test_full_mask_is_an_error(name):
    image, hole = _inputs(24, 24)
    with pytest.raises(NothingToFillFromError):
        _make(name).fill(image, torch.ones_like(hole))


@pytest.mark.parametrize("name", METHODS)
def test_numpy_api_uint8_known_pixels_bit_identical(name, smooth_image, square_hole):
    _make(name)  # skips a method that is not ready
    out = holefill.inpaint(smooth_image, square_hole, method=name, **FAST_OPTIONS.get(name, {}))
    assert out.dtype == np.uint8 and out.shape == smooth_image.shape
    assert np.array_equal(out[~square_hole], smooth_image[~square_hole])
    # a plausible fill of a smooth image: close to the truth on average
    error = np.abs(out[square_hole].astype(float) - smooth_image[square_hole]).mean()
    assert error < 40, f"{name} fill error {error:.1f} levels"
