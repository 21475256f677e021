"""Neural patch synthesis: feature matching, the energies, patch synthesis, the pyramid, the method."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SHARED_VGG19

import holefill
from holefill.errors import InputError, WeightsError
from holefill.methods.neural_patch import (
    PatchSettings,
    pyramid_sizes,
    save_content,
    synthesize_patches,
    texture_energy,
)
from holefill.nn.content import ContentNet, ContentNetConfig
from holefill.nn.texture import (
    LayerGeometry,
    RefineWeights,
    TextureEnergy,
    chroma_energy,
    content_energy,
    gaussian_blur,
    hole_at_stride,
    lowpass_energy,
    nearest_patches,
    patch_vectors,
    refine,
    tv_energy,
)
from holefill.nn.vgg import VGG19_PLAN

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IDENTITY = {"pixels": LayerGeometry(stride=1, radius=0)}


def _identity_net(image: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"pixels": image}


@pytest.fixture(scope="module")
def content_weights(tmp_path_factory):
    """A small untrained content network, so the tests need no shipped weights."""
    torch.manual_seed(0)
    config = ContentNetConfig(encoder=[8, 16, 16, 32, 32], bottleneck=32, decoder=[16, 16, 8, 8])
    path = tmp_path_factory.mktemp("content") / "tiny.safetensors"
    return str(save_content(ContentNet(config).state_dict(), config, path, dtype="float32"))


@pytest.fixture(scope="module")
def vgg_file():
    if not SHARED_VGG19.is_file():
        pytest.skip(f"shared VGG-19 not found at {SHARED_VGG19}")
    return str(SHARED_VGG19)


# -- patch matching ----------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_nearest_patches_equals_brute_force_ncc(chunk):
    generator = torch.Generator().manual_seed(1)
    target = torch.randn(37, 18, generator=generator)
    source = torch.randn(53, 18, generator=generator) * torch.rand(53, 1, generator=generator)
    found = nearest_patches(target, source, chunk=chunk)
    t, s = target.double().numpy(), source.double().numpy()
    scores = np.array([[a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in s] for a in t])
    assert found.tolist() == scores.argmax(axis=1).tolist()


def test_patch_vectors_are_replicate_padded_3x3_windows():
    features = torch.randn(1, 4, 6, 7)
    unfolded = F.unfold(F.pad(features, (1, 1, 1, 1), mode="replicate"), 3)  # (1, 4*9, 42)
    rows, cols = torch.tensor([0, 2, 5]), torch.tensor([0, 6, 3])
    vectors = patch_vectors(features, rows, cols)  # (3, 9, 4)
    expected = unfolded[0].view(4, 9, 42)[:, :, rows * 7 + cols].permute(2, 1, 0)
    assert torch.equal(vectors, expected)


def test_hole_at_stride_marks_cells_touching_the_hole():
    hole = torch.zeros(1, 1, 16, 20)
    hole[..., 5, 9] = 1
    cells = hole_at_stride(hole, 4, (4, 5))
    assert cells.nonzero().tolist() == [[1, 2]]


# -- the texture energy ------------------------------------------------------------------------


def _copied_hole_image():
    generator = torch.Generator().manual_seed(2)
    image = torch.rand(1, 3, 30, 60, generator=generator)
    image[..., 9:21, 39:51] = image[..., 9:21, 4:16]  # the hole and its rim copy a known block
    hole = torch.zeros(1, 1, 30, 60)
    hole[..., 10:20, 40:50] = 1
    return image, hole


def test_texture_energy_is_zero_when_hole_patches_copy_known_patches():
    image, hole = _copied_hole_image()
    energy = TextureEnergy(_identity_net, ["pixels"], hole, geometry=IDENTITY)
    energy.update_matches(image)
    assert energy(image).item() == pytest.approx(0.0, abs=1e-12)
    noisy = image + hole * 0.2 * torch.randn_like(image)
    assert energy(noisy).item() > 1e-3


def test_gradients_reach_only_hole_pixels():
    image, hole = _copied_hole_image()
    free = hole > 0.5
    start = image + hole * 0.1
    pixels = start.clone().requires_grad_(True)
    energy = TextureEnergy(_identity_net, ["pixels"], hole, geometry=IDENTITY)
    energy.update_matches(start)
    x = torch.where(free, pixels, start)
    total = content_energy(x, image, hole) + energy(x) + tv_energy(x, hole)
    total.backward()
    gradient = pixels.grad.abs().sum(dim=1, keepdim=True)
    assert gradient[~free].max() == 0
    assert (gradient[free] > 0).float().mean() > 0.9


def test_cropped_forward_equals_whole_image_features():
    from holefill.nn.texture import _feature_window
    from holefill.nn.vgg import build_feature_net

    net = build_feature_net("random", taps=("relu3_1", "relu4_1"))
    image = torch.rand(1, 3, 136, 144, generator=torch.Generator().manual_seed(3))
    hole = torch.zeros(1, 1, 136, 144)
    hole[..., 61:77, 67:83] = 1
    energy = TextureEnergy(net, ["relu3_1", "relu4_1"], hole)
    top, left, bottom, right = _feature_window(energy.hole, energy.geometry)
    assert (bottom - top) * (right - left) < 136 * 144
    whole, crop = net(image), net(image[..., top:bottom, left:right])
    for layer, stride in (("relu3_1", 4), ("relu4_1", 8)):
        rows, cols = hole_at_stride(hole, stride, whole[layer].shape[-2:]).nonzero(as_tuple=True)
        expected = patch_vectors(whole[layer], rows, cols)
        got = patch_vectors(crop[layer], rows - top // stride, cols - left // stride)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_missing_layer_is_an_error_not_a_substitution():
    hole = torch.zeros(1, 1, 20, 20)
    hole[..., 5:10, 5:10] = 1
    energy = TextureEnergy(_identity_net, ["other"], hole, geometry={"other": LayerGeometry(1, 0)})
    with pytest.raises(WeightsError, match="no layer 'other'"):
        energy.update_matches(torch.rand(1, 3, 20, 20))
    with pytest.raises(InputError, match="unknown feature layer"):
        TextureEnergy(_identity_net, ["relu9_1"], hole)


def test_texture_matches_equal_brute_force_ncc_on_a_tiny_feature_map():
    features = torch.rand(1, 5, 9, 11, generator=torch.Generator().manual_seed(4))
    hole = torch.zeros(1, 1, 9, 11)
    hole[..., 3:6, 4:7] = 1
    energy = TextureEnergy(_identity_net, ["pixels"], hole, geometry=IDENTITY)
    energy.update_matches(features)
    match = energy.matches["pixels"]
    padded = np.pad(features[0].numpy(), ((0, 0), (1, 1), (1, 1)), mode="edge")

    def patch(row: int, col: int) -> np.ndarray:  # offset-major, then channel
        return padded[:, row : row + 3, col : col + 3].transpose(1, 2, 0).reshape(-1)

    known = hole[0, 0].numpy() < 0.5
    sources = [
        (r, c)
        for r in range(9)
        for c in range(11)
        if known[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2].all()
    ]
    source_vectors = np.stack([patch(r, c) for r, c in sources]).astype(np.float64)
    for row, col, matched in zip(match.rows, match.cols, match.matched, strict=True):
        target = patch(int(row), int(col)).astype(np.float64)
        scores = source_vectors @ target / np.linalg.norm(source_vectors, axis=1)
        np.testing.assert_allclose(matched.reshape(-1).numpy(), source_vectors[scores.argmax()])
    assert len(match.rows) == 9


def test_gaussian_blur_equals_opencv():
    cv2 = pytest.importorskip("cv2")
    image = torch.rand(1, 3, 20, 23, generator=torch.Generator().manual_seed(5))
    for sigma in (0.8, 2.0):
        radius = int(np.ceil(3 * sigma))
        expected = cv2.GaussianBlur(
            image[0].permute(1, 2, 0).numpy(),
            (2 * radius + 1, 2 * radius + 1),
            sigma,
            borderType=cv2.BORDER_REFLECT_101,
        )
        got = gaussian_blur(image, sigma)[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5)
    assert gaussian_blur(image, 0) is image


def test_content_terms_by_hand():
    hole = torch.zeros(1, 1, 6, 6)
    hole[..., 2:4, 2:4] = 1
    grey = torch.full((1, 3, 6, 6), 0.5)
    brighter = grey + 0.1 * hole  # the same hue, brighter: no chroma change
    redder = grey + hole * torch.tensor([0.3, 0.0, 0.0]).view(1, 3, 1, 1)
    assert chroma_energy(brighter, grey, hole).item() == pytest.approx(0.0, abs=1e-12)
    # chroma of (0.3, 0, 0) is (0.3, 0, 0) - 0.299 * 0.3 = (0.2103, -0.0897, -0.0897)
    expected = (0.2103**2 + 2 * 0.0897**2) / 3
    assert chroma_energy(redder, grey, hole).item() == pytest.approx(expected, rel=1e-4)
    assert content_energy(redder, grey, hole).item() == pytest.approx(0.09 / 3)
    assert lowpass_energy(redder, grey, hole, 0).item() == content_energy(redder, grey, hole)
    # a low-pass of 2 px spreads the 2x2 change: less of it is left inside the hole
    assert lowpass_energy(redder, grey, hole, 2.0) < content_energy(redder, grey, hole)


# -- why the old optimisation made stripes and fringes ----------------------------------------


def _astronaut_crop():
    from PIL import Image

    path = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"
    if not path.is_file():
        pytest.skip("examples/astronaut.jpg is not in this checkout")
    pixels = np.asarray(Image.open(path).convert("RGB"))[300:396, 200:296]
    truth = torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)[None]
    hole = torch.zeros(1, 1, 96, 96)
    hole[..., 24:72, 24:72] = 1
    smooth = torch.where(hole > 0.5, gaussian_blur(truth, 4.0), truth)  # a PConv-like start
    return truth.contiguous(), hole, smooth.contiguous()


def _luma_chroma(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    luma = (image * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return luma, image - luma


def _high_frequency_share(grey: np.ndarray) -> float:
    """Share of the power spectrum above 1/8 cycle per pixel."""
    power = np.abs(np.fft.fft2(grey - grey.mean())) ** 2
    fy, fx = np.meshgrid(*(np.fft.fftfreq(n) for n in grey.shape), indexing="ij")
    return float(power[np.hypot(fy, fx) >= 1 / 8].sum() / power.sum())


def test_why_the_old_optimisation_made_stripes_and_fringes(vgg_file):
    """The old energy (pixel MSE + 0.1 x the normalised texture term + 0.3 TV) let the texture
    term's gradient through: it lies above 1/8 cycle/px and is strongly coloured, unlike the
    photo, and its optimum changes chroma more than luma (the fringes). The content term on low
    frequencies plus the chroma term keep the change's colour in line."""
    from holefill.nn.vgg import build_feature_net

    truth, hole, smooth = _astronaut_crop()
    layers = ("relu3_1", "relu4_1")
    net = build_feature_net("vgg19", weights=vgg_file, taps=layers)
    texture = TextureEnergy(net, layers, hole)
    texture.update_matches(smooth)
    pixels = smooth.clone().requires_grad_(True)
    texture(torch.where(hole > 0.5, pixels, smooth)).backward()
    gradient_luma, gradient_chroma = _luma_chroma(pixels.grad)
    photo_luma, photo_chroma = _luma_chroma(truth - gaussian_blur(truth, 2.0))
    # 1. the gradient lives at high frequencies (stripes) and in chroma (fringes)
    assert _high_frequency_share(gradient_luma[0, 0].numpy()) > 0.5
    assert _high_frequency_share(_luma_chroma(truth)[0][0, 0].numpy()) < 0.25
    gradient_colour = (gradient_chroma**2).sum() / (gradient_luma**2).sum()
    photo_colour = (photo_chroma**2).sum() / (photo_luma**2).sum()
    assert gradient_colour > 3 * photo_colour
    # 2. what the optimum does with it under the old weights and under holefill's
    old = RefineWeights(texture=0.1, tv=0.3, content=1.0, chroma=0.0, lowpass_sigma=0.0)
    colour_of_change = {}
    for name, weights in (("old", old), ("new", RefineWeights())):
        energy = TextureEnergy(net, layers, hole)
        result, _ = refine(smooth, hole, smooth, energy, iterations=12, weights=weights)
        luma, chroma = _luma_chroma(result - smooth)
        colour_of_change[name] = float((chroma**2).sum() / (luma**2).sum())
    assert colour_of_change["old"] > 1.0  # more hue change than brightness change: fringes
    assert colour_of_change["new"] < 0.3


# -- patch synthesis -------------------------------------------------------------------------


def _two_textures(height: int = 48, width: int = 96, seed: int = 0):
    """Green noise on the left half, red noise on the right half, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.float32)
    image[:, : width // 2] = (0.2, 0.6, 0.2)
    image[:, width // 2 :] = (0.7, 0.2, 0.2)
    image += rng.normal(0, 0.08, image.shape).astype(np.float32)
    return np.clip(image, 0, 1)


def _copied_from(filled: np.ndarray, region: np.ndarray, where: np.ndarray) -> float:
    """Share of the pixels at ``where`` whose colour equals a pixel's of ``region`` exactly."""
    palette = {tuple(p) for p in region.reshape(-1, 3)}
    return float(np.mean([tuple(p) in palette for p in filled[where]]))


@pytest.mark.parametrize("guide_colour", ["red", "green"])
def test_the_content_guide_chooses_which_patches_are_copied(guide_colour):
    image = _two_textures()
    hole = np.zeros(image.shape[:2], bool)
    hole[14:34, 10:38] = True  # inside the green half
    interior = np.zeros_like(hole)
    interior[18:30, 14:34] = True  # 4 px from the known pixels
    content = image.copy()
    content[hole] = (0.7, 0.2, 0.2) if guide_colour == "red" else (0.2, 0.6, 0.2)
    settings = PatchSettings(lowpass_sigma=0.0)  # pure copies: every colour is a known one
    filled = synthesize_patches(image, hole, content, settings=settings)
    red_half = np.zeros_like(hole)
    red_half[:, 48:] = True
    guided = red_half if guide_colour == "red" else ~red_half
    assert _copied_from(filled, image[guided & ~hole], interior) > 0.9
    assert _copied_from(filled, image[~hole], hole) == 1.0


def test_only_hole_pixels_change_and_the_seed_decides(rng):
    image = _two_textures(seed=1)
    hole = np.zeros(image.shape[:2], bool)
    hole[10:30, 40:60] = True
    content = np.where(hole[..., None], 0.5, image).astype(np.float32)
    first = synthesize_patches(image, hole, content, seed=3)
    assert np.array_equal(first[~hole], image[~hole])
    assert np.array_equal(first, synthesize_patches(image, hole, content, seed=3))
    assert not np.array_equal(first, synthesize_patches(image, hole, content, seed=4))
    assert first.dtype == np.float32 and first.min() >= 0 and first.max() <= 1


def _noise_beside_flat(seed: int = 0) -> np.ndarray:
    """Grey noise (sd 0.1 around 0.5) on the left half, flat 0.5 on the right: the same mean."""
    rng = np.random.default_rng(seed)
    image = np.full((48, 96, 3), 0.5, np.float32)
    image[:, :48] += rng.normal(0, 0.1, (48, 48, 1)).astype(np.float32)
    return np.clip(image, 0, 1)


def test_texture_energy_equals_a_scipy_reference_and_carries_into_the_hole():
    """Known pixels: the root of the Gaussian-weighted mean of (Sobel / 8)^2, here computed with
    SciPy; in the hole: its surroundings' value (Telea, in 16 bits)."""
    ndimage = pytest.importorskip("scipy.ndimage")
    cv2 = pytest.importorskip("cv2")
    image = _noise_beside_flat()
    hole = np.zeros(image.shape[:2], bool)
    hole[14:34, 10:34] = True
    energy = texture_energy(image, hole, sigma=3.0)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    squared = (ndimage.sobel(grey, 1) / 8) ** 2 + (ndimage.sobel(grey, 0) / 8) ** 2
    reference = np.sqrt(ndimage.gaussian_filter(squared, 3.0, truncate=4.0))
    assert energy[40, 40] == pytest.approx(reference[40, 40], rel=0.02)  # far from hole and edge
    assert energy[24, 80] < 1e-4  # the flat half
    noise_level = np.median(energy[38:46, 8:38])
    assert energy[hole].min() > 0.7 * noise_level and energy[hole].max() < 1.3 * noise_level
    assert energy.dtype == np.float32 and np.isfinite(energy).all()


def test_a_plain_patch_distance_copies_flat_patches_into_texture():
    """Why the texture-energy channel: under a sum of squared differences a noisy target is closer
    to a flat patch of its mean than to any other noisy patch, and the content network's fill is
    such a mean. Without the channel a hole in noise gets the flat half's patches (no gradient at
    all); with it, noise as strong as the truth's."""
    image = _noise_beside_flat()
    hole = np.zeros(image.shape[:2], bool)
    hole[12:36, 10:38] = True
    inner = np.zeros_like(hole)
    inner[16:32, 14:34] = True
    content = np.where(hole[..., None], 0.5, image).astype(np.float32)  # the mean, as PConv's
    ratios = {}
    for weight in (0.0, PatchSettings().energy_weight):
        filled = synthesize_patches(
            image, hole, content, settings=PatchSettings(energy_weight=weight)
        )
        ratios[weight] = _gradient_energy(filled, inner) / _gradient_energy(image, inner)
    assert ratios[0.0] < 0.05
    assert 0.8 < ratios[PatchSettings().energy_weight] < 1.25


def test_copies_bring_their_detail_not_their_brightness():
    """Two flat halves, 0.3 and 0.7, and a content fill of 0.5 that matches neither: every hole
    pixel is the content's low frequencies plus the detail (known pixels minus their Gaussian
    over known pixels) of some known pixel, so the copies carry no brightness of their own and
    no seam between copies from the two halves shows."""
    cv2 = pytest.importorskip("cv2")
    image = np.full((48, 128, 3), 0.3, np.float32)
    image[:, 64:] = 0.7
    hole = np.zeros(image.shape[:2], bool)
    hole[14:34, 16:44] = True
    content = np.where(hole[..., None], 0.5, image).astype(np.float32)
    sigma = PatchSettings().lowpass_sigma
    filled = synthesize_patches(image, hole, content)

    def blur(array: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(array, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)

    known = (~hole).astype(np.float32)
    detail = image[..., 0] - blur(image[..., 0] * known) / np.maximum(blur(known), 1e-6)
    details = np.sort(detail[~hole])
    added = (filled[..., 0] - blur(content[..., 0]))[hole]
    nearest = details[np.clip(np.searchsorted(details, added), 0, len(details) - 1)]
    below = details[np.clip(np.searchsorted(details, added) - 1, 0, len(details) - 1)]
    assert np.minimum(abs(added - nearest), abs(added - below)).max() < 1e-4
    assert np.median(abs(added)) < 1e-4  # most copies come from flat parts: no detail at all


def _stripes(size: int) -> np.ndarray:
    """Diagonal stripes of period 8 px at size 64 (scaled with ``size``) on a colour ramp."""
    yy, xx = np.mgrid[0:size, 0:size] * (64 / size)
    wave = 0.5 + 0.25 * np.sin(2 * np.pi * (xx + yy) / 8)
    ramp = np.stack([0.3 + 0.4 * xx / 64, 0.5 * np.ones_like(xx), 0.7 - 0.4 * yy / 64], axis=2)
    return np.clip(ramp * 0.5 + wave[..., None] * 0.5, 0, 1).astype(np.float32)


def _gradient_energy(image: np.ndarray, where: np.ndarray) -> float:
    grey = image.mean(axis=2)
    dy, dx = np.gradient(grey)
    return float((dx**2 + dy**2)[where].mean())


@pytest.mark.parametrize("content_scale", [1, 4])
def test_detail_from_the_patches_colour_from_the_content(content_scale):
    """The content is a blur that is too bright by 0.1 in the hole (at 4x: predicted at a quarter
    of the size, as PConv predicts a 2048-px photo at 512): the fill keeps the content's mean and
    takes the truth's detail at full resolution."""
    cv2 = pytest.importorskip("cv2")
    size = 64 * content_scale
    truth = _stripes(size)
    hole = np.zeros((size, size), bool)
    hole[size // 4 : size // 2, size // 4 : 3 * size // 4] = True
    small = cv2.resize(truth, (64, 64), interpolation=cv2.INTER_AREA)
    blurred = cv2.resize(cv2.GaussianBlur(small, (0, 0), 3), (size, size))
    content = np.where(hole[..., None], np.clip(blurred + 0.1, 0, 1), truth).astype(np.float32)
    filled = synthesize_patches(truth, hole, content, content_scale=content_scale)
    inside = cv2.erode(hole.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert filled[inside].mean() - truth[inside].mean() == pytest.approx(0.1, abs=0.03)
    ratio = _gradient_energy(filled, inside) / _gradient_energy(truth, inside)
    # the 8-px stripes lie partly below the low-pass (a Gaussian of 2.5 px keeps 85 % of their
    # amplitude as detail); the rest is the content's, which blurred them: 0.73 at the least
    assert 0.5 < ratio < 1.3
    assert _gradient_energy(content, inside) / _gradient_energy(truth, inside) < 0.1


# -- the pyramid -------------------------------------------------------------------------------


def test_pyramid_sizes():
    assert pyramid_sizes(256, 256) == [(128, 128), (256, 256)]
    assert pyramid_sizes(321, 481) == [(161, 241), (321, 481)]
    assert pyramid_sizes(1536, 2048) == [(192, 256), (384, 512), (768, 1024), (1536, 2048)]
    assert pyramid_sizes(1536, 2048, coarser=0)[0] == (384, 512)
    assert pyramid_sizes(100, 60, min_side=40) == [(100, 60)]
    assert pyramid_sizes(9, 9, content_side=4, coarser=5) == [
        (1, 1),
        (2, 2),
        (3, 3),
        (5, 5),
        (9, 9),
    ]


# -- the method --------------------------------------------------------------------------------


def _photo_like(height: int, width: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(
        torch.linspace(0, 6, height), torch.linspace(0, 9, width), indexing="ij"
    )
    stripes = torch.stack([torch.sin(xx + yy), torch.cos(2 * xx), torch.sin(3 * yy)]) * 0.3 + 0.5
    image = (stripes + 0.05 * torch.randn(3, height, width, generator=generator)).clamp(0, 1)
    hole = torch.zeros(1, 1, height, width)
    hole[..., height // 3 : height // 3 + height // 4, width // 3 : width // 3 + width // 4] = 1
    return image[None], hole


def test_known_pixels_untouched_and_the_fill_seeded():
    image, hole = _photo_like(48, 64)
    out = holefill.create_inpainter("neural_patch", seed=1).fill(image, hole)
    known = (hole == 0).expand_as(image)
    assert torch.equal(out[known], image[known])
    assert torch.equal(out, holefill.create_inpainter("neural_patch", seed=1).fill(image, hole))
    other = holefill.create_inpainter("neural_patch", seed=2).fill(image, hole)
    assert not torch.equal(out, other) and torch.equal(other[known], image[known])


def test_neural_texture_changes_only_the_hole(vgg_file, capsys):
    image, hole = _photo_like(64, 80, seed=3)
    options = {
        "vgg_weights": vgg_file,
        "neural_iterations": [2, 2],
        "layers": ("relu3_1",),
        "strategy": "original",
    }
    patch_only = holefill.create_inpainter("neural_patch", strategy="original").fill(image, hole)
    neural = holefill.create_inpainter(
        "neural_patch", texture="neural", verbose=True, **options
    ).fill(image, hole)
    report = capsys.readouterr().err
    assert "neural patch energy at 32x40: 2 iterations" in report
    assert "neural patch energy at 64x80: 2 iterations" in report
    known = (hole == 0).expand_as(image)
    assert torch.equal(neural[known], image[known])
    assert not torch.equal(neural, patch_only)


def test_high_resolution_detail_is_not_an_upsampled_blur():
    """A photo 4x the content network's working size: PConv alone (at that size) paints an
    upsampled blur; neural_patch's detail comes from the full-resolution patches."""
    size = 128
    truth = torch.from_numpy(_stripes(size)).permute(2, 0, 1)[None]
    hole = torch.zeros(1, 1, size, size)
    hole[..., 40:88, 32:96] = 1
    pconv = holefill.create_inpainter("pconv", strategy="resize", max_side=32).fill(truth, hole)
    filled = holefill.create_inpainter("neural_patch", content_side=32).fill(truth, hole)
    inside = hole[0, 0].numpy() > 0.5

    def ratio(image: torch.Tensor) -> float:
        array = image[0].permute(1, 2, 0).numpy()
        return _gradient_energy(array, inside) / _gradient_energy(
            truth[0].permute(1, 2, 0).numpy(), inside
        )

    assert ratio(pconv) < 0.3
    assert 0.6 < ratio(filled) < 1.5


def test_layers_beyond_the_weights_file_are_an_error(vgg_file):
    with pytest.raises(WeightsError, match="conv4_2|conv5"):
        holefill.create_inpainter(
            "neural_patch", texture="neural", vgg_weights=vgg_file, layers=("relu3_1", "relu5_1")
        )


def test_bad_options(content_weights):
    with pytest.raises(InputError, match="content network"):
        holefill.create_inpainter("neural_patch", content="mystery")
    with pytest.raises(InputError, match="texture"):
        holefill.create_inpainter("neural_patch", texture="mystery")
    with pytest.raises(InputError, match="iterations"):
        holefill.create_inpainter("neural_patch", iterations=-1)
    with pytest.raises(InputError, match="patch_size"):
        holefill.create_inpainter("neural_patch", patch_size=4)
    with pytest.raises(WeightsError, match="not found"):
        holefill.create_inpainter(
            "neural_patch", content="context_encoder", weights="/nonexistent/content.safetensors"
        )


def test_context_encoder_as_content_network(content_weights):
    image, hole = _photo_like(40, 56, seed=2)
    inpainter = holefill.create_inpainter(
        "neural_patch", content="context_encoder", weights=content_weights
    )
    out = inpainter.fill(image, hole)
    known = (hole == 0).expand_as(image)
    assert torch.equal(out[known], image[known]) and torch.isfinite(out).all()


def test_torchvision_vgg19_file_works_as_the_feature_network(tmp_path):
    # torchvision's layout (features.N): the file real users get from the torch hub cache
    generator = torch.Generator().manual_seed(0)
    state, index, in_ch = {}, 0, 3
    for layer in VGG19_PLAN[: VGG19_PLAN.index("conv4_1") + 1]:
        if layer.startswith("pool"):
            index += 1
            continue
        out_ch = {"1": 64, "2": 128, "3": 256, "4": 512}[layer[4]]
        state[f"features.{index}.weight"] = (
            torch.randn(out_ch, in_ch, 3, 3, generator=generator) / 20
        )
        state[f"features.{index}.bias"] = torch.zeros(out_ch)
        index, in_ch = index + 2, out_ch
    path = tmp_path / "vgg19-torchvision-layout.pth"
    torch.save(state, path)
    rng = np.random.default_rng(0)
    image = (rng.random((64, 80, 3)) * 255).astype(np.uint8)
    hole = np.zeros((64, 80), bool)
    hole[20:40, 30:50] = True
    inpainter = holefill.create_inpainter(
        "neural_patch", texture="neural", vgg_weights=str(path), neural_iterations=2
    )
    filled = holefill.api.fill_pixels(image, hole, inpainter)
    assert filled.shape == image.shape and np.array_equal(filled[~hole], image[~hole])
