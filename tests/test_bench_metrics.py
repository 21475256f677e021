"""The hole metrics of issue 16 (bench/metrics.py) against independent references: brute-force
loops on tiny images, a VGG forward pass written out with ``torch.nn.functional``, hand-worked
cases and invariances."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from holefill.bench.metrics import (
    HOLE_VGG_TAPS,
    VGG_TAPS,
    HoleVGGDistance,
    KnownPalette,
    VGGDistance,
    build_metrics,
    hole_texture_ratio,
    hole_weights,
    out_of_palette_pct,
    sobel_energy,
    texture_metrics,
)
from holefill.errors import InputError

#: VGG-19 up to conv4_1 as the shared weights README states it ("M": 2x2 max-pool).
_VGG19_TO_RELU4_1 = (
    ("conv1_1", 3, 64),
    ("conv1_2", 64, 64),
    "M",
    ("conv2_1", 64, 128),
    ("conv2_2", 128, 128),
    "M",
    ("conv3_1", 128, 256),
    ("conv3_2", 256, 256),
    ("conv3_3", 256, 256),
    ("conv3_4", 256, 256),
    "M",
    ("conv4_1", 256, 512),
)


def _random_vgg_file(path: Path, seed: int = 0) -> Path:
    """A VGG-19 state dict (conv1_1 ... conv4_1) of random weights with small positive biases,
    so that few features are dead."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for layer in _VGG19_TO_RELU4_1:
        if layer == "M":
            continue
        name, fan_in, fan_out = layer
        std = (2.0 / (9 * fan_in)) ** 0.5
        state[f"{name}.weight"] = torch.randn((fan_out, fan_in, 3, 3), generator=generator) * std
        state[f"{name}.bias"] = torch.rand(fan_out, generator=generator) * 0.2
    torch.save(state, path)
    return path


def _reference_features(state: dict, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """``{reluB_I: (C, h, w) float64}``: the Caffe forward pass of the weights README."""
    x = torch.from_numpy(pixels[..., ::-1].astype(np.float32).copy()).permute(2, 0, 1)[None]
    x = x - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    taps = {}
    with torch.no_grad():
        for layer in _VGG19_TO_RELU4_1:
            if layer == "M":
                x = F.max_pool2d(x, 2)
                continue
            name = layer[0]
            x = F.relu(F.conv2d(x, state[name + ".weight"], state[name + ".bias"], padding=1))
            taps["relu" + name[4:]] = x[0].numpy().astype(np.float64)
    return taps


def _brute_force_hole_distance(state, filled, truth, hole, taps) -> float:
    """Position by position: unit vectors over channels, squared difference summed over
    channels, weighted by the hole fraction of the input cell under the position."""
    ours, theirs = _reference_features(state, filled), _reference_features(state, truth)
    per_tap = []
    for tap in taps:
        stride = 2 ** (int(tap[4]) - 1)
        a, b = ours[tap], theirs[tap]
        total = weight_sum = 0.0
        for y in range(a.shape[1]):
            for x in range(a.shape[2]):
                cell = hole[y * stride : (y + 1) * stride, x * stride : (x + 1) * stride]
                weight = cell.sum() / stride**2
                u = a[:, y, x] / (np.sqrt(np.sum(a[:, y, x] ** 2)) + 1e-10)
                v = b[:, y, x] / (np.sqrt(np.sum(b[:, y, x] ** 2)) + 1e-10)
                total += weight * np.sum((u - v) ** 2)
                weight_sum += weight
        per_tap.append(total / weight_sum)
    return float(np.mean(per_tap))


def _photo(seed: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = [120 + 70 * np.sin(xx / (3 + c) + yy / 5 + seed) for c in range(3)]
    noise = rng.normal(0, 10, (height, width, 3))
    return np.clip(np.stack(channels, axis=2) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def random_vgg(tmp_path_factory) -> Path:
    return _random_vgg_file(tmp_path_factory.mktemp("vgg") / "random_vgg19.pth")


# ---------------------------------------------------------------------------------------------
# VGG distance over the hole
# ---------------------------------------------------------------------------------------------


def test_hole_weights_are_area_interpolation():
    rng = np.random.default_rng(0)
    hole = rng.random((64, 48)) < 0.3
    for stride in (1, 2, 4, 8):
        expected = cv2.resize(
            hole.astype(np.float64),
            (48 // stride, 64 // stride),
            interpolation=cv2.INTER_AREA,
        )
        assert hole_weights(hole, stride) == pytest.approx(expected, abs=1e-12)
    odd = rng.random((21, 19)) < 0.5  # 2x2 pooling drops the last row and column
    assert hole_weights(odd, 2).shape == (10, 9)
    assert hole_weights(odd, 2)[4, 3] == odd[8:10, 6:8].mean()


@pytest.mark.parametrize("weights", ["random", "shared"])
def test_hole_vgg_distance_matches_a_brute_force_loop(weights, random_vgg, request):
    if weights == "shared":
        path = request.getfixturevalue("shared") / "weights" / "vgg19_to_relu4_1.pth"
    else:
        path = random_vgg
    state = torch.load(path, map_location="cpu", weights_only=True)
    truth = _photo(1, 28, 20)  # relu4_1 at 3 x 2: the pooling drops a row and column
    filled = truth.copy()
    hole = np.zeros(truth.shape[:2], bool)
    hole[6:19, 3:12] = True
    filled[hole] = cv2.GaussianBlur(truth, (7, 7), 3)[hole]
    distance = HoleVGGDistance(path)
    expected = _brute_force_hole_distance(state, filled, truth, hole, HOLE_VGG_TAPS)
    assert distance(filled, truth, hole) == pytest.approx(expected, rel=1e-4)
    assert distance(filled, distance.features(truth), hole) == distance(filled, truth, hole)


def test_identical_images_are_at_distance_zero(random_vgg):
    truth = _photo(2, 32, 32)
    hole = np.zeros((32, 32), bool)
    hole[8:20, 10:30] = True
    assert HoleVGGDistance(random_vgg)(truth, truth, hole) == 0


def test_a_change_away_from_the_hole_is_not_seen_at_the_fine_taps(random_vgg):
    truth = _photo(3, 64, 64)
    hole = np.zeros((64, 64), bool)
    hole[8:24, 8:24] = True
    changed = truth.copy()
    changed[44:, 44:] = 255 - changed[44:, 44:]  # 20 px from the hole: beyond relu2_2's reach
    distance = VGGDistance(random_vgg, VGG_TAPS + HOLE_VGG_TAPS)
    in_hole = distance.tap_distances(changed, truth, hole)
    assert in_hole["relu1_2"] == pytest.approx(0, abs=1e-9)
    assert in_hole["relu2_2"] == pytest.approx(0, abs=1e-9)
    assert distance.tap_distances(changed, truth)["relu1_2"] > 0.01  # the whole image sees it


def test_scaling_the_features_leaves_the_distance_unchanged(random_vgg, tmp_path):
    """Every conv's weight x2 and bias x2^k scales the features of the k-th conv by 2^k (ReLU
    and max-pool are positively homogeneous): unit normalisation removes the factor."""
    state = torch.load(random_vgg, map_location="cpu", weights_only=True)
    scaled = {}
    for number, name in enumerate(sorted({key.rsplit(".", 1)[0] for key in state}), start=1):
        scaled[f"{name}.weight"] = state[f"{name}.weight"] * 2
        scaled[f"{name}.bias"] = state[f"{name}.bias"] * 2.0**number
    torch.save(scaled, tmp_path / "scaled.pth")
    truth = _photo(4, 32, 32)
    filled = cv2.GaussianBlur(truth, (5, 5), 2)
    hole = np.zeros((32, 32), bool)
    hole[4:20, 6:26] = True
    original = HoleVGGDistance(random_vgg)(filled, truth, hole)
    assert original > 0.01
    assert HoleVGGDistance(tmp_path / "scaled.pth")(filled, truth, hole) == pytest.approx(
        original, rel=1e-5
    )


def test_hole_vgg_distance_grows_with_blur(shared):
    truth = _photo(5, 48, 48)
    hole = np.zeros((48, 48), bool)
    hole[12:36, 12:36] = True
    distance = HoleVGGDistance(shared / "weights" / "vgg19_to_relu4_1.pth")
    values = []
    for sigma in (1, 2, 4):
        filled = truth.copy()
        filled[hole] = cv2.GaussianBlur(truth, (0, 0), sigma)[hole]
        values.append(distance(filled, truth, hole))
    assert 0 < values[0] < values[1] < values[2] < 4


# ---------------------------------------------------------------------------------------------
# Hole texture ratio
# ---------------------------------------------------------------------------------------------


def _grey_ramp(height: int, width: int, slope: float, axis: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    value = 20 + slope * (xx if axis == 1 else yy)
    return np.repeat(value[..., None], 3, axis=2).astype(np.uint8)


def test_texture_ratio_of_ramps():
    """A grey ramp of slope a has luma slope a (the weights sum to 1) and Sobel gradient 8a."""
    hole = np.zeros((20, 24), bool)
    hole[5:15, 6:18] = True
    truth = _grey_ramp(20, 24, 2, axis=1)
    assert sobel_energy(truth, hole) == pytest.approx((8 * 2) ** 2)
    vertical = _grey_ramp(20, 24, 3, axis=0)
    assert sobel_energy(vertical, hole) == pytest.approx((8 * 3) ** 2)
    assert hole_texture_ratio(_grey_ramp(20, 24, 1, axis=1), truth, hole) == pytest.approx(0.25)
    assert hole_texture_ratio(vertical, truth, hole) == pytest.approx(9 / 4)
    flat = np.full_like(truth, 90)
    assert hole_texture_ratio(flat, truth, hole) == 0
    assert hole_texture_ratio(flat, flat, hole) == 1
    assert hole_texture_ratio(truth, flat, hole) == np.inf


def test_texture_ratio_matches_a_brute_force_loop():
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    filled = rng.integers(60, 200, (9, 11, 3), dtype=np.uint8)
    hole = rng.random((9, 11)) < 0.4
    hole[0, 0] = hole[-1, 5] = True  # border pixels: the reflected border matters

    def energy(pixels):
        r, g, b = (pixels[..., c].astype(np.float64) for c in range(3))
        grey = np.pad(0.299 * r + 0.587 * g + 0.114 * b, 1, mode="reflect")  # BORDER_REFLECT_101
        kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
        total = []
        for y, x in zip(*np.nonzero(hole), strict=True):
            window = grey[y : y + 3, x : x + 3]
            total.append(np.sum(window * kx) ** 2 + np.sum(window * kx.T) ** 2)
        return np.mean(total)

    assert sobel_energy(filled, hole) == pytest.approx(energy(filled), rel=1e-12)
    assert hole_texture_ratio(filled, truth, hole) == pytest.approx(
        energy(filled) / energy(truth), rel=1e-12
    )


# ---------------------------------------------------------------------------------------------
# Out-of-palette rate
# ---------------------------------------------------------------------------------------------


def test_a_red_pixel_in_a_grey_image_is_out_of_palette():
    truth = np.full((10, 10, 3), 128, np.uint8)
    hole = np.zeros((10, 10), bool)
    hole[2:6, 2:7] = True  # 20 hole pixels
    filled = truth.copy()
    filled[3, 4] = (255, 0, 0)
    filled[4, 4] = (131, 128, 126)  # about 1.8 from the grey: in the palette
    assert out_of_palette_pct(filled, truth, hole) == pytest.approx(100 / 20)
    assert out_of_palette_pct(truth, truth, hole) == 0
    known_red = truth.copy()
    known_red[8, 8] = (250, 5, 0)  # a known pixel near pure red: red is in the palette now
    assert out_of_palette_pct(filled, known_red, hole) == 0


def _lightness_of_grey(value: int) -> float:
    """CIE L* of an sRGB grey (IEC 61966-2-1 and CIE 1976), written out."""
    c = value / 255
    linear = c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    return 116 * linear ** (1 / 3) - 16 if linear > (6 / 29) ** 3 else linear * (29 / 3) ** 3


def test_the_threshold_is_delta_e_12():
    """Greys in a black image: a grey is foreign exactly when its L* is above 12 (a* = b* = 0)."""
    greys = np.arange(256, dtype=np.uint8)
    truth = np.zeros((2, 256, 3), np.uint8)
    filled = truth.copy()
    filled[0] = greys[:, None]
    hole = np.zeros((2, 256), bool)
    hole[0] = True
    expected = np.mean([_lightness_of_grey(int(v)) > 12 for v in greys]) * 100
    assert 85 < expected < 90  # greys from 32 up
    assert out_of_palette_pct(filled, truth, hole) == pytest.approx(expected)
    assert out_of_palette_pct(filled, truth, hole, threshold=100.01) == 0  # white: L* 100


def test_out_of_palette_matches_a_brute_force_loop():
    from skimage.color import rgb2lab

    rng = np.random.default_rng(3)
    levels = np.array([0, 40, 90, 160, 230], np.uint8)
    truth = levels[rng.integers(0, 5, (12, 10, 3))]  # few colours: many repeats to deduplicate
    filled = levels[rng.integers(0, 5, (12, 10, 3))]
    hole = rng.random((12, 10)) < 0.35
    lab_truth, lab_filled = rgb2lab(truth), rgb2lab(filled)
    known = lab_truth[~hole]
    foreign = [
        np.min(np.sqrt(np.sum((known - colour) ** 2, axis=1))) > 12 for colour in lab_filled[hole]
    ]
    assert 0 < np.mean(foreign) < 1
    assert out_of_palette_pct(filled, truth, hole) == pytest.approx(100 * np.mean(foreign))
    palette = KnownPalette(truth, hole)
    assert palette.out_of_palette_pct(filled) == out_of_palette_pct(filled, truth, hole)


# ---------------------------------------------------------------------------------------------
# The helper for other code, and bad input
# ---------------------------------------------------------------------------------------------


def test_texture_metrics_gathers_the_hole_metrics(random_vgg):
    truth = _photo(6, 32, 32)
    hole = np.zeros((32, 32), bool)
    hole[8:24, 8:24] = True
    filled = cv2.inpaint(truth, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    vgg = HoleVGGDistance(random_vgg)
    values = texture_metrics(filled, truth, hole, vgg)
    assert values == {
        "texture_ratio": hole_texture_ratio(filled, truth, hole),
        "out_of_palette_pct": out_of_palette_pct(filled, truth, hole),
        "truth_out_of_palette_pct": out_of_palette_pct(truth, truth, hole),
        "vgg_hole": vgg(filled, truth, hole),
    }
    assert values["texture_ratio"] < 1  # Telea blurs
    assert "vgg_hole" not in texture_metrics(filled, truth, hole)


def test_the_bench_suite_agrees_with_the_helpers(random_vgg):
    truth = _photo(8, 40, 40)
    hole = np.zeros((40, 40), bool)
    hole[10:30, 5:25] = True
    filled = cv2.inpaint(truth, hole.astype(np.uint8), 3, cv2.INPAINT_NS)
    suite = build_metrics(random_vgg, use_lpips=False)
    for _ in range(2):  # the second call reuses the ground truth's features and palette
        values = suite(filled, truth, hole, truth_key="pair 0")
        assert values["vgg_hole"] == pytest.approx(
            HoleVGGDistance(random_vgg)(filled, truth, hole), rel=1e-6
        )
        assert values["vgg_dist"] == pytest.approx(VGGDistance(random_vgg)(filled, truth), rel=1e-6)
        for name, value in texture_metrics(filled, truth, hole).items():
            assert values[name] == value


def test_bad_input_is_a_clear_error(random_vgg):
    truth = _photo(9, 16, 16)
    hole = np.zeros((16, 16), bool)
    with pytest.raises(InputError, match="no hole pixels"):
        texture_metrics(truth, truth, hole)
    hole[4:8, 4:8] = True
    with pytest.raises(InputError, match="differ in size"):
        texture_metrics(truth, truth, hole[:8])
    with pytest.raises(InputError, match="uint8 RGB"):
        texture_metrics(truth.astype(np.float32), truth, hole)
    with pytest.raises(InputError, match="no known colour"):
        out_of_palette_pct(truth, truth, np.ones((16, 16), bool))
    with pytest.raises(InputError, match="hole mask"):
        HoleVGGDistance(random_vgg)(truth, truth, None)
