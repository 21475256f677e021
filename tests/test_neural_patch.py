"""Neural patch synthesis: patch matching, the texture energy, the pyramid and the method."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SHARED_VGG19

import holefill
from holefill.errors import InputError, WeightsError
from holefill.methods.neural_patch import pyramid_sizes, save_content
from holefill.nn.content import ContentNet, ContentNetConfig
from holefill.nn.texture import (
    LayerGeometry,
    TextureEnergy,
    content_energy,
    hole_at_stride,
    nearest_patches,
    patch_vectors,
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


# -- the pyramid -------------------------------------------------------------------------------


def test_pyramid_sizes():
    assert pyramid_sizes(512, 512) == [(128, 128), (256, 256), (512, 512)]
    assert pyramid_sizes(300, 500) == [(75, 125), (150, 250), (300, 500)]
    assert pyramid_sizes(301, 503) == [(75, 126), (150, 252), (301, 503)]
    assert pyramid_sizes(100, 60) == [(100, 60)]
    assert pyramid_sizes(1024, 200)[0] == (128, 25) and len(pyramid_sizes(1024, 200)) == 4


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


def test_known_pixels_untouched_and_hole_refined(content_weights, vgg_file):
    image, hole = _photo_like(48, 64)
    content_only = holefill.create_inpainter(
        "neural_patch", weights=content_weights, vgg_weights=vgg_file, iterations=0
    )
    refined = holefill.create_inpainter(
        "neural_patch", weights=content_weights, vgg_weights=vgg_file, iterations=3, alpha=1.0
    )
    base, out = content_only.fill(image, hole), refined.fill(image, hole)
    known = (hole == 0).expand_as(image)
    assert torch.equal(out[known], image[known]) and torch.equal(base[known], image[known])
    inside = (hole > 0).expand_as(image)
    assert not torch.equal(out[inside], base[inside])
    assert out.min() >= 0 and out.max() <= 1


def test_multi_scale_levels_for_an_odd_size(content_weights, vgg_file, capsys):
    image, hole = _photo_like(75, 125, seed=1)
    inpainter = holefill.create_inpainter(
        "neural_patch",
        weights=content_weights,
        vgg_weights=vgg_file,
        iterations=[2, 1, 0],
        coarsest=31,
        layers=("relu3_1",),
        verbose=True,
        strategy="original",
    )
    out = inpainter.fill(image, hole)
    report = capsys.readouterr().err
    assert "scale 19x31: 2 iterations" in report
    assert "scale 38x62: 1 iterations" in report and "scale 75x125: 0 iterations" in report
    assert out.shape == image.shape


def test_layers_beyond_the_weights_file_are_an_error(content_weights, vgg_file):
    with pytest.raises(WeightsError, match="conv4_2|conv5"):
        holefill.create_inpainter(
            "neural_patch",
            weights=content_weights,
            vgg_weights=vgg_file,
            layers=("relu3_1", "relu5_1"),
        )


def test_bad_options(content_weights, vgg_file):
    with pytest.raises(InputError, match="content network"):
        holefill.create_inpainter("neural_patch", content="mystery")
    with pytest.raises(InputError, match="iterations"):
        holefill.create_inpainter("neural_patch", weights=content_weights, iterations=-1)
    with pytest.raises(WeightsError, match="not found"):
        holefill.create_inpainter("neural_patch", weights="/nonexistent/content.safetensors")


def test_pconv_as_content_network(tmp_path, vgg_file):
    unet = pytest.importorskip("holefill.nn.unet")
    from holefill.methods.pconv import save_pconv

    config = unet.PConvConfig(layers=3, width=0.25, max_channels=64)
    path = save_pconv(unet.PConvUNet(config).state_dict(), config, tmp_path / "pconv.safetensors")
    image, hole = _photo_like(40, 56, seed=2)
    inpainter = holefill.create_inpainter(
        "neural_patch", content="pconv", weights=str(path), vgg_weights=vgg_file, iterations=1
    )
    out = inpainter.fill(image, hole)
    known = (hole == 0).expand_as(image)
    assert torch.equal(out[known], image[known]) and torch.isfinite(out).all()


def test_torchvision_vgg19_file_works_as_the_feature_network(tmp_path, content_weights):
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
        "neural_patch", weights=content_weights, vgg_weights=str(path), iterations=2
    )
    filled = holefill.api.fill_pixels(image, hole, inpainter)
    assert filled.shape == image.shape and np.array_equal(filled[~hole], image[~hole])
