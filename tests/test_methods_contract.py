"""The contract every registered method keeps (shape, dtype, range, known pixels, determinism,
a fill better than a flat one), with the weights holefill ships."""

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


def _smooth(height: int, width: int) -> torch.Tensor:
    """A smooth colour ramp in [0.1, 0.9]: any sensible fill beats a flat mean there."""
    yy, xx = torch.meshgrid(
        torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij"
    )
    return (0.1 + 0.8 * torch.stack([xx, yy, (xx + yy) / 2]))[None]


#: exemplar methods copy known pixels: on a ramp a copy is no better than a flat fill
COPYING = {"criminisi"}


@pytest.mark.parametrize("name", METHODS)
def test_tiny_image(name):
    image = _smooth(12, 12)
    hole = torch.zeros(1, 1, 12, 12)
    hole[..., 3:5, 3:5] = 1
    out = _make(name).fill(image, hole)
    known = (hole == 0).expand_as(image)
    assert out.shape == image.shape and torch.equal(out[known], image[known])
    filled = out[0].permute(1, 2, 0)[hole[0, 0] > 0]  # (4, 3) hole pixels
    if name in COPYING:  # each filled pixel is a copy of a known one
        sources = image[0].permute(1, 2, 0)[hole[0, 0] == 0]
        assert all((sources == pixel).all(dim=1).any() for pixel in filled)
        return
    truth = image[0].permute(1, 2, 0)[hole[0, 0] > 0]
    flat = image[known].reshape(3, -1).mean(dim=1)
    error, flat_error = (filled - truth).abs().mean(), (flat - truth).abs().mean()
    assert error < flat_error, f"{name}: {error:.3f} vs a flat mean fill's {flat_error:.3f}"


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
