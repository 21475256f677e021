"""The pconv method: weights files, checks against their config, padding, the registry."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import holefill
from holefill.errors import InputError, WeightsError
from holefill.inpainter import Inpainter
from holefill.methods import pconv as pconv_module
from holefill.methods.pconv import PConvInpainter, load_pconv, read_pconv, save_pconv
from holefill.nn.unet import PConvConfig, PConvUNet

CONFIG = PConvConfig(layers=3, width=0.25, max_channels=64)
#: the network alone: no mirror averaging, no seam blend, float32 (the tests of the net's output)
PLAIN = {"tta": False, "seam": 0.0, "precision": "float32"}


@pytest.fixture(scope="module")
def tiny_net() -> PConvUNet:
    torch.manual_seed(0)
    net = PConvUNet(CONFIG)
    with torch.no_grad():  # non-trivial batch-norm statistics, so eval mode matters
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture
def weights(tiny_net, tmp_path):
    return save_pconv(
        tiny_net.state_dict(),
        CONFIG,
        tmp_path / "tiny.safetensors",
        dtype="float32",
        metadata={"step": "7"},
    )


def _odd_inputs():
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 37, 45, generator=generator)
    hole = torch.zeros(1, 1, 37, 45)
    hole[..., 10:22, 12:30] = 1
    return image, hole


def test_odd_size_is_padded_with_hole_and_cropped_back(tiny_net, weights):
    image, hole = _odd_inputs()
    inpainter = PConvInpainter(weights=str(weights), strategy="original", **PLAIN)
    assert inpainter.size_multiple == 8 and Inpainter.size_multiple == 1
    out = inpainter.fill(image, hole)
    assert out.shape == image.shape
    # reference: pad to 40x48 with padding marked as hole, run the net, crop, composite
    padded_image = F.pad(image, (0, 3, 0, 3))
    padded_hole = F.pad(hole, (0, 3, 0, 3), value=1.0)
    with torch.no_grad():
        raw = tiny_net(padded_image, 1 - padded_hole)[..., :37, :45].clamp(0, 1)
    expected = torch.where(hole > 0, raw, image)
    assert torch.equal(out, expected)
    assert torch.equal(out[hole.expand_as(out) == 0], image[hole.expand_as(image) == 0])


def test_crop_strategy_and_registry(weights):
    image, hole = _odd_inputs()
    out = holefill.create_inpainter("pconv", weights=str(weights), margin=4, **PLAIN).fill(
        image, hole
    )
    # the hole box (rows 10-21, cols 12-29) grown by max(4, 18 / 2) px, clipped to 37 x 45
    rows, cols = slice(1, 31), slice(3, 39)
    window = PConvInpainter(weights=str(weights), strategy="original", **PLAIN).fill(
        image[..., rows, cols], hole[..., rows, cols]
    )
    assert torch.equal(out[..., rows, cols], window)
    outside = torch.ones_like(hole, dtype=torch.bool)
    outside[..., rows, cols] = False
    assert torch.equal(out[outside.expand_as(out)], image[outside.expand_as(image)])
    assert "pconv" in holefill.list_methods()


def test_weights_load_once_per_file(weights):
    first = PConvInpainter(weights=str(weights))
    second = PConvInpainter(weights=str(weights), max_side=256)
    assert first.net is second.net
    assert load_pconv(weights) is not first.net  # the helper builds a fresh network
    assert not first.net.training


def test_header_carries_config_step_and_hash(weights):
    config, tensors, header = read_pconv(weights)
    assert config == CONFIG and header["step"] == "7" and header["format"] == "holefill-pconv"
    assert json.loads(header["config"]) == CONFIG.to_dict()
    assert header["weights_sha256"] == pconv_module.weights_digest(tensors)


def _rewrite(tmp_path, tiny_net, edit) -> str:
    state = dict(tiny_net.state_dict())
    edit(state)
    return str(save_pconv(state, CONFIG, tmp_path / "edited.safetensors", dtype="float32"))


def test_missing_or_misshapen_tensors_are_weights_errors(tmp_path, tiny_net):
    name = next(iter(tiny_net.state_dict()))
    missing = _rewrite(tmp_path, tiny_net, lambda state: state.pop(name))
    with pytest.raises(WeightsError, match=f"tensor '{name}' is missing"):
        load_pconv(missing)
    wrong = _rewrite(tmp_path, tiny_net, lambda state: state.update({name: torch.zeros(2, 2)}))
    with pytest.raises(WeightsError, match=f"tensor '{name}' has shape"):
        load_pconv(wrong)
    extra = _rewrite(tmp_path, tiny_net, lambda state: state.update({"stray": torch.zeros(1)}))
    with pytest.raises(WeightsError, match="unexpected tensor 'stray'"):
        load_pconv(extra)


def test_foreign_or_absent_files_are_weights_errors(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(WeightsError, match="not a holefill PConv weights file"):
        load_pconv(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        load_pconv(tmp_path / "junk.safetensors")
    monkeypatch.setattr(pconv_module, "default_weights_path", lambda: tmp_path / "absent.st")
    with pytest.raises(WeightsError, match="pass --weights"):
        PConvInpainter()


def test_half_precision_export_is_close(tmp_path, tiny_net):
    path = save_pconv(tiny_net.state_dict(), CONFIG, tmp_path / "half.safetensors")
    _, tensors, header = read_pconv(path)
    assert header["dtype"] == "float16"
    assert all(t.dtype == torch.float16 for t in tensors.values() if t.is_floating_point())
    image, hole = _odd_inputs()
    full = PConvInpainter(
        weights=str(
            save_pconv(
                tiny_net.state_dict(), CONFIG, tmp_path / "full.safetensors", dtype="float32"
            )
        ),
        strategy="original",
        **PLAIN,
    ).fill(image, hole)
    half = PConvInpainter(weights=str(path), strategy="original", **PLAIN).fill(image, hole)
    assert (full - half).abs().max() < 2e-2


# -- inference options: mirror averaging, the seam blend, precision ------------------------------


def _net_fill(net, image, hole):
    with torch.no_grad():
        return net(image, 1 - hole).clamp(0, 1)


def test_tta_is_the_mean_of_the_fill_and_the_mirrored_fill(tiny_net, weights):
    generator = torch.Generator().manual_seed(2)
    image = torch.rand(1, 3, 32, 40, generator=generator)
    hole = torch.zeros(1, 1, 32, 40)
    hole[..., 6:20, 5:17] = 1  # not symmetric: the mirrored fill differs
    options = {"seam": 0.0, "precision": "float32", "strategy": "original"}
    out = PConvInpainter(weights=str(weights), tta=True, **options).fill(image, hole)
    direct = _net_fill(tiny_net, image, hole)
    mirrored = _net_fill(tiny_net, image.flip(-1), hole.flip(-1)).flip(-1)
    assert (direct - mirrored)[hole.expand_as(direct) > 0].abs().max() > 1e-3
    expected = torch.where(hole > 0, (0.5 * (direct + mirrored)).clamp(0, 1), image)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    # and so the method commutes with mirroring, which neither pass alone does
    flipped = PConvInpainter(weights=str(weights), tta=True, **options).fill(
        image.flip(-1), hole.flip(-1)
    )
    torch.testing.assert_close(flipped.flip(-1), out, atol=1e-6, rtol=0)


def test_seam_blend_is_telea_at_the_edge_and_the_network_inside(weights, tiny_net):
    import cv2
    import numpy as np

    rows, cols = np.mgrid[0:48, 0:48]
    pixels = np.stack([rows * 4, cols * 4, (rows + cols) * 2], axis=2).astype(np.uint8)
    image = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255
    hole = torch.zeros(1, 1, 48, 48)
    hole[..., 8:40, 8:40] = 1
    options = {"tta": False, "precision": "float32", "strategy": "original"}
    out = PConvInpainter(weights=str(weights), seam=2.0, seam_weight=1.0, **options).fill(
        image, hole
    )
    telea = cv2.inpaint(pixels, hole[0, 0].numpy().astype(np.uint8), 3.0, cv2.INPAINT_TELEA)
    telea = torch.from_numpy(telea).permute(2, 0, 1)[None].float() / 255
    network = _net_fill(tiny_net, image, hole)
    # hole pixels next to a known one (distance 1): Telea's value alone
    torch.testing.assert_close(out[..., 8, 10:38], telea[..., 8, 10:38], atol=1e-6, rtol=0)
    # 8 px inside (distance 9): exp(-4) = 1.8 % of Telea
    expected = network + float(np.exp(-4.0)) * (telea - network)
    torch.testing.assert_close(out[..., 16, 16:32], expected[..., 16, 16:32], atol=1e-5, rtol=0)
    # known pixels untouched; seam 0 is the network alone
    assert torch.equal(out[..., :8, :], image[..., :8, :])
    plain = PConvInpainter(weights=str(weights), seam=0.0, **options).fill(image, hole)
    torch.testing.assert_close(plain, torch.where(hole > 0, network, image), atol=1e-6, rtol=0)


def test_bfloat16_is_close_to_float32_and_options_are_checked(weights):
    image, hole = _odd_inputs()
    options = {"tta": False, "seam": 0.0, "strategy": "original"}
    full = PConvInpainter(weights=str(weights), precision="float32", **options).fill(image, hole)
    brain = PConvInpainter(weights=str(weights), precision="bfloat16", **options).fill(image, hole)
    assert 0 < (full - brain).abs().max() < 0.05
    auto = PConvInpainter(weights=str(weights), precision="auto")
    expected = torch.bfloat16 if pconv_module._native_bfloat16(auto.device) else torch.float32
    assert auto.compute_dtype == expected
    with pytest.raises(InputError, match="precision"):
        PConvInpainter(weights=str(weights), precision="half")
    with pytest.raises(InputError, match="seam"):
        PConvInpainter(weights=str(weights), seam=-1)
    with pytest.raises(InputError, match="seam_weight"):
        PConvInpainter(weights=str(weights), seam_weight=1.5)
