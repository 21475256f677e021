"""The PConv loss against hand computations, and the VGG feature networks it uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from holefill.errors import InputError, WeightsError
from holefill.nn.losses import (
    DEFAULT_VGG19_SCALES,
    LossWeights,
    PConvLoss,
    calibrate_feature_scale,
    default_feature_scale,
    gram_matrix,
    pconv_loss,
    ssim,
    total_variation,
)
from holefill.nn.vgg import VGG16_PLAN, VGG19_PLAN, VGG19_URL, build_feature_net


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids OpenMP spin-waits on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class _Identity(nn.Module):
    """A 'feature network' whose only tap is the image itself, for hand-worked losses."""

    taps = ("image",)

    def forward(self, x):
        return {"image": x}


# ---------------------------------------------------------------- loss terms by hand


def test_all_terms_on_a_hand_worked_2x2_example():
    output = torch.tensor([[0.5, 0.2], [0.9, 0.1]]).view(1, 1, 2, 2)
    target = torch.tensor([[0.1, 0.2], [0.3, 0.4]]).view(1, 1, 2, 2)
    valid = torch.tensor([[0.0, 1.0], [1.0, 0.0]]).view(1, 1, 2, 2)
    terms = pconv_loss(output, target, valid, _Identity(), feature_scale={"image": 1.0})
    # I_comp = [[0.5, 0.2], [0.3, 0.1]]
    expected = {
        "hole": (0.4 + 0.3) / 4,
        "valid": (0.0 + 0.6) / 4,
        "perceptual": (0.4 + 0.0 + 0.6 + 0.3) / 4 + (0.4 + 0.0 + 0.0 + 0.3) / 4,
        # Gram = sum(x^2) / (C H W): out 1.11/4, gt 0.30/4, comp 0.39/4
        "style_out": abs(1.11 - 0.30) / 4,
        "style_comp": abs(0.39 - 0.30) / 4,
        # the dilated hole covers all 4 pixels: |0.2-0.5| + |0.1-0.3| + |0.3-0.5| + |0.1-0.2|
        "tv": (0.3 + 0.2 + 0.2 + 0.1) / 4,
    }
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value, abs=1e-6), name
    total = (
        expected["valid"]
        + 6 * expected["hole"]
        + 0.05 * expected["perceptual"]
        + 120 * (expected["style_out"] + expected["style_comp"])
        + 0.1 * expected["tv"]
    )
    assert terms["total"].item() == pytest.approx(total, rel=1e-6)


def test_gram_of_a_known_matrix():
    features = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]]).view(1, 2, 1, 3)
    expected = torch.tensor([[14.0, -1.0], [-1.0, 2.0]]) / (2 * 1 * 3)
    torch.testing.assert_close(gram_matrix(features)[0], expected)


def test_total_variation_hand_worked_4x4():
    image = torch.tensor(
        [[0.0, 1.0, 3.0, 6.0], [1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 2.0, 0.0], [5.0, 5.0, 5.0, 5.0]]
    ).view(1, 1, 4, 4)
    hole = torch.zeros(1, 1, 4, 4)
    hole[..., 1, 1] = 1  # dilated: rows 0-2 x cols 0-2
    # horizontal pairs: row 0: 1 + 2, row 1: 0 + 0, row 2: 2 + 2 -> 7
    # vertical pairs: col 0: 1 + 1, col 1: 0 + 1, col 2: 2 + 1 -> 6
    assert total_variation(image, hole).item() == pytest.approx(13 / 16)


def test_weights_give_the_weighted_sum():
    torch.manual_seed(0)
    output, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    valid = (torch.rand(2, 1, 8, 8) > 0.5).float()
    weights = LossWeights(valid=2.0, hole=3.0, perceptual=0.5, style=7.0, tv=11.0)
    terms = pconv_loss(output, target, valid, _Identity(), weights, {"image": 1.0})
    total = (
        2 * terms["valid"]
        + 3 * terms["hole"]
        + 0.5 * terms["perceptual"]
        + 7 * (terms["style_out"] + terms["style_comp"])
        + 11 * terms["tv"]
    )
    torch.testing.assert_close(terms["total"], total)
    assert LossWeights.from_dict(weights.to_dict()) == weights


def test_pixel_terms_only_without_a_feature_network():
    torch.manual_seed(0)
    output, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    valid = (torch.rand(2, 1, 8, 8) > 0.5).float()
    weights = LossWeights(valid=2.0, hole=3.0, perceptual=0.0, style=0.0, tv=11.0)
    full = pconv_loss(output, target, valid, _Identity(), weights, {"image": 1.0})
    pixel = pconv_loss(output, target, valid, None, weights)
    for name in ("valid", "hole", "tv", "total"):
        torch.testing.assert_close(pixel[name], full[name])
    assert pixel["perceptual"] == pixel["style_out"] == pixel["style_comp"] == 0
    torch.testing.assert_close(
        PConvLoss(None, weights)(output, target, valid)["total"], full["total"]
    )
    for bad in (LossWeights(perceptual=0.0), LossWeights(style=0.0)):
        with pytest.raises(InputError, match="need a feature network"):
            pconv_loss(output, target, valid, None, bad)
        with pytest.raises(InputError, match="need a feature network"):
            PConvLoss(None, bad)


def test_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    smooth = F.avg_pool2d(torch.rand(1, 3, 40, 36), 5, stride=1, padding=2)
    cases = [
        (torch.rand(2, 3, 24, 30), torch.rand(2, 3, 24, 30)),
        (smooth, (smooth + 0.05 * torch.randn_like(smooth)).clamp(0, 1)),
        (torch.rand(1, 1, 7, 9), torch.rand(1, 1, 7, 9)),
    ]
    for image, target in cases:
        ours = ssim(image.double(), target.double())
        for n in range(image.shape[0]):
            a = image[n].permute(1, 2, 0).double().numpy()
            b = target[n].permute(1, 2, 0).double().numpy()
            reference = structural_similarity(a, b, data_range=1.0, channel_axis=-1)
            assert ours[n].item() == pytest.approx(reference, abs=1e-5)
    same = torch.from_numpy(rng.random((1, 3, 16, 16))).float()
    assert ssim(same, same).item() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(InputError, match="at least 7x7"):
        ssim(torch.rand(1, 3, 6, 20), torch.rand(1, 3, 6, 20))


def test_ssim_term_is_one_minus_ssim_of_the_composite_and_trains_only_the_hole():
    torch.manual_seed(1)
    output = torch.rand(2, 3, 16, 16, requires_grad=True)
    target = torch.rand(2, 3, 16, 16)
    valid = (torch.rand(2, 1, 16, 16) > 0.4).float()
    base = LossWeights(valid=1.0, hole=6.0, perceptual=0.0, style=0.0, tv=0.1)
    with_ssim = LossWeights(**{**base.to_dict(), "ssim": 2.5})
    plain = pconv_loss(output, target, valid, None, base)
    mixed = pconv_loss(output, target, valid, None, with_ssim)
    assert plain["ssim"] == 0
    comp = valid * target + (1 - valid) * output
    expected = 1 - ssim(comp, target).mean()
    torch.testing.assert_close(mixed["ssim"], expected)
    torch.testing.assert_close(mixed["total"], plain["total"] + 2.5 * expected)
    (grad,) = torch.autograd.grad(mixed["ssim"], output)
    assert grad[valid.expand_as(grad) == 1].abs().max() == 0
    assert grad[valid.expand_as(grad) == 0].abs().max() > 0
    assert LossWeights.from_dict(base.to_dict() | {"ssim": 2.5}) == with_ssim
    older = {k: v for k, v in base.to_dict().items() if k != "ssim"}  # a config saved before
    assert LossWeights.from_dict(older) == base


def _naive_feature_terms(net, output, target, valid, scale):
    """Perceptual and style terms with each image through the net alone, Gram by einsum."""
    comp = valid * target + (1 - valid) * output
    feats = {name: net(image) for name, image in (("out", output), ("comp", comp), ("gt", target))}

    def gram(f):
        f = f.double()
        return torch.einsum("bchw,bdhw->bcd", f, f) / (f.shape[1] * f.shape[2] * f.shape[3])

    perceptual = style_out = style_comp = 0.0
    for tap, divisor in scale.items():
        gt = feats["gt"][tap] / divisor
        out, cmp = feats["out"][tap] / divisor, feats["comp"][tap] / divisor
        perceptual += (out - gt).abs().mean().item() + (cmp - gt).abs().mean().item()
        style_out += (gram(out) - gram(gt)).abs().mean().item()
        style_comp += (gram(cmp) - gram(gt)).abs().mean().item()
    return perceptual, style_out, style_comp


def test_feature_terms_match_naive_computation_and_scale():
    torch.manual_seed(1)
    net = build_feature_net("random")
    output, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    valid = torch.ones(2, 1, 16, 16)
    valid[..., 4:12, 3:9] = 0
    scale = {"pool1": 2.0, "pool2": 4.0, "relu3_1": 0.5}
    terms = pconv_loss(output, target, valid, net, feature_scale=scale)
    perceptual, style_out, style_comp = _naive_feature_terms(net, output, target, valid, scale)
    assert terms["perceptual"].item() == pytest.approx(perceptual, rel=1e-4)
    assert terms["style_out"].item() == pytest.approx(style_out, rel=1e-4)
    assert terms["style_comp"].item() == pytest.approx(style_comp, rel=1e-4)
    # doubling every divisor halves the perceptual term and quarters the style terms
    doubled = pconv_loss(
        output, target, valid, net, feature_scale={k: 2 * v for k, v in scale.items()}
    )
    assert doubled["perceptual"].item() == pytest.approx(perceptual / 2, rel=1e-4)
    assert doubled["style_out"].item() == pytest.approx(style_out / 4, rel=1e-4)


def test_gradients_flow_only_through_output():
    torch.manual_seed(2)
    net = build_feature_net("random")
    output = torch.rand(1, 3, 16, 16, requires_grad=True)
    target = torch.rand(1, 3, 16, 16, requires_grad=True)
    valid = torch.ones(1, 1, 16, 16, requires_grad=True)
    valid.data[..., 5:10, 5:10] = 0
    loss = PConvLoss(net)
    loss(output, target, valid)["total"].backward()
    assert target.grad is None and valid.grad is None
    assert all(p.grad is None and not p.requires_grad for p in net.parameters())
    assert torch.isfinite(output.grad).all() and output.grad.abs().sum() > 0


def test_module_and_function_agree_and_defaults():
    torch.manual_seed(3)
    net = build_feature_net("random")
    output, target = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    valid = (torch.rand(1, 1, 16, 16) > 0.3).float()
    module_terms = PConvLoss(net)(output, target, valid)
    function_terms = pconv_loss(output, target, valid, net)
    assert set(module_terms) == {
        "valid",
        "hole",
        "perceptual",
        "style_out",
        "style_comp",
        "tv",
        "ssim",
        "total",
    }
    for name, value in function_terms.items():
        torch.testing.assert_close(module_terms[name], value)
    with pytest.raises(InputError, match="valid mask"):
        pconv_loss(output, target, valid[:, :, :8], net)


# ---------------------------------------------------------------- VGG feature networks


def _photo(shared, size: int = 128) -> torch.Tensor:
    """The centre crop of a shared ImageNet photo, (1, 3, size, size) in [0, 1]."""
    image = np.asarray(Image.open(shared / "data/val/imagenet256/0000.jpg").convert("RGB"))
    top = (image.shape[0] - size) // 2
    crop = image[top : top + size, top : top + size].copy()
    return torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255


def _readme_vgg_features(weights_path, rgb01):
    """The loading example of shared/weights/README.md, verbatim apart from the path."""
    sd = torch.load(weights_path, map_location="cpu", weights_only=True)
    plan = ["conv1_1", "conv1_2", "M", "conv2_1", "conv2_2", "M",
            "conv3_1", "conv3_2", "conv3_3", "conv3_4", "M", "conv4_1"]  # fmt: skip
    convs = nn.ModuleDict(
        {
            n: nn.Conv2d(sd[n + ".weight"].shape[1], sd[n + ".weight"].shape[0], 3, padding=1)
            for n in plan
            if n != "M"
        }
    )
    convs.load_state_dict(sd)
    convs.requires_grad_(False).eval()
    x = rgb01[:, [2, 1, 0]] * 255.0 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    out = {}
    for n in plan:
        x = F.max_pool2d(x, 2, 2) if n == "M" else F.relu(convs[n](x))
        if n != "M":
            out["relu" + n[4:]] = x
    return out


def test_vgg19_matches_the_weights_readme_exactly(shared):
    weights = shared / "weights/vgg19_to_relu4_1.pth"
    photo = _photo(shared, 64)
    reference = _readme_vgg_features(weights, photo)
    taps = (*reference, "pool1", "pool2", "pool3")
    net = build_feature_net("vgg19", weights=weights, taps=taps)
    with torch.no_grad():
        features = net(photo)
    for tap, value in reference.items():
        assert torch.equal(features[tap], value), tap
    assert torch.equal(features["pool3"], F.max_pool2d(reference["relu3_4"], 2, 2))


def test_vgg19_file_from_the_environment_is_on_the_raw_caffe_scale(shared, monkeypatch):
    monkeypatch.setenv("HOLEFILL_VGG_WEIGHTS", str(shared / "weights/vgg19_to_relu4_1.pth"))
    net = build_feature_net("vgg19", taps=("relu4_1",))
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training
    with torch.no_grad():
        mean = net(_photo(shared))["relu4_1"].mean().item()
    assert 100 < mean < 2000  # hundreds: raw Caffe scale, not ImageNet-normalised


def test_vgg19_builds_only_the_layers_its_taps_need(shared):
    net = build_feature_net("vgg19", weights=shared / "weights/vgg19_to_relu4_1.pth")
    assert list(net.convs) == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"]
    assert list(net(torch.rand(1, 3, 32, 32))) == ["pool1", "pool2", "relu3_1"]
    shallow = build_feature_net(
        "vgg19", weights=shared / "weights/vgg19_to_relu3_1.pth", taps=("pool1",)
    )
    assert list(shallow.convs) == ["conv1_1", "conv1_2"]


@pytest.mark.parametrize(
    ("file", "tap"), [("vgg19_to_relu4_1.pth", "relu5_1"), ("vgg19_to_relu3_1.pth", "relu4_1")]
)
def test_vgg19_tap_beyond_the_file_is_an_error(shared, file, tap):
    with pytest.raises(WeightsError, match=file) as info:
        build_feature_net("vgg19", weights=shared / "weights" / file, taps=(tap,))
    assert "conv3_1" in str(info.value)  # names the layers the file has


def test_vgg19_scales_bring_taps_to_unit_magnitude(shared):
    net = build_feature_net("vgg19", weights=shared / "weights/vgg19_to_relu4_1.pth")
    scales = calibrate_feature_scale(net, [_photo(shared)])
    for tap, divisor in DEFAULT_VGG19_SCALES.items():
        assert 0.25 < scales[tap] / divisor < 4, tap  # one photo: same order as the 50-photo mean


def _fake_torchvision_vgg16(path, layers: int = 7, plan=VGG16_PLAN):
    """torchvision's key layout (``features.N``) for the first ``layers`` convs, random values."""
    generator = torch.Generator().manual_seed(0)
    state, index, in_ch = {}, 0, 3
    convs = [n for n in plan if n.startswith("conv")][:layers]
    for layer in plan:
        if layer.startswith("pool"):
            index += 1
            continue
        if layer not in convs:
            break
        out_ch = {"1": 64, "2": 128, "3": 256, "4": 512}[layer[4]]
        state[f"features.{index}.weight"] = (
            torch.randn(out_ch, in_ch, 3, 3, generator=generator) * 0.05
        )
        state[f"features.{index}.bias"] = torch.randn(out_ch, generator=generator) * 0.1
        index, in_ch = index + 2, out_ch
    state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored, as in the real file
    torch.save(state, path)
    return state


def _torchvision_features(state, length: int, pools: tuple[int, ...]) -> nn.Sequential:
    """torchvision's ``vgg.features[:length]`` built by hand: conv, ReLU, and max-pools at
    ``pools``, with the weights of ``state``."""
    modules = []
    for index in range(length):
        if f"features.{index}.weight" in state:
            weight = state[f"features.{index}.weight"]
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1)
            conv.load_state_dict({"weight": weight, "bias": state[f"features.{index}.bias"]})
            modules.append(conv)
        else:
            modules.append(nn.MaxPool2d(2, 2) if index in pools else nn.ReLU())
    return nn.Sequential(*modules)


def test_vgg16_loads_torchvision_layout(tmp_path, monkeypatch):
    monkeypatch.delenv("HOLEFILL_VGG_WEIGHTS", raising=False)
    path = tmp_path / "my_vgg16.pth"
    state = _fake_torchvision_vgg16(path)
    net = build_feature_net("vgg16", weights=path)
    assert torch.equal(net.convs["conv1_1"].weight, state["features.0.weight"])
    assert torch.equal(net.convs["conv3_3"].bias, state["features.14.bias"])
    # independent reference: torchvision's nn.Sequential layout up to pool3 (index 16)
    reference = _torchvision_features(state, 17, pools=(4, 9, 16))
    image = torch.rand(1, 3, 32, 32)
    normalised = (image - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    with torch.no_grad():
        features = net(image)
        torch.testing.assert_close(features["pool1"], reference[:5](normalised))
        torch.testing.assert_close(features["pool3"], reference(normalised))
    # the same file through $HOLEFILL_VGG_WEIGHTS
    monkeypatch.setenv("HOLEFILL_VGG_WEIGHTS", str(path))
    assert torch.equal(
        build_feature_net("vgg16").convs["conv2_1"].weight, state["features.5.weight"]
    )


def test_vgg16_hash_mismatch_in_hub_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("HOLEFILL_VGG_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    _fake_torchvision_vgg16(tmp_path / "checkpoints" / "vgg16-397923af.pth", layers=2)
    with pytest.raises(WeightsError, match="397923af"):
        build_feature_net("vgg16")


def test_vgg16_offline_and_absent_says_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.delenv("HOLEFILL_VGG_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    calls = []

    def offline(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError, match="--vgg-weights PATH") as info:
        build_feature_net("vgg16", download_hint="--download-vgg")
    assert "HOLEFILL_VGG_WEIGHTS" in str(info.value) and "--download-vgg" in str(info.value)
    assert calls == []  # nothing is downloaded unless the caller allows it
    with pytest.raises(WeightsError, match="could not be downloaded.*--vgg-weights PATH"):
        build_feature_net("vgg16", download=True)
    assert calls == [("https://download.pytorch.org/models/vgg16-397923af.pth", "397923af")]


def test_random_net_is_seeded_and_frozen():
    first, second = build_feature_net("random", seed=3), build_feature_net("random", seed=3)
    assert torch.equal(first.convs["conv2_1"].weight, second.convs["conv2_1"].weight)
    other = build_feature_net("random", seed=4)
    assert not torch.equal(first.convs["conv2_1"].weight, other.convs["conv2_1"].weight)
    assert not any(p.requires_grad for p in first.parameters())
    with pytest.raises(InputError, match="unknown VGG taps"):
        build_feature_net("random", taps=("relu9_1",))
    with pytest.raises(InputError, match="unknown feature network"):
        build_feature_net("resnet")


def test_vgg19_in_torchvision_layout_runs_with_imagenet_input(tmp_path, monkeypatch):
    monkeypatch.delenv("HOLEFILL_VGG_WEIGHTS", raising=False)
    path = tmp_path / "vgg19-torchvision.pth"
    state = _fake_torchvision_vgg16(path, layers=9, plan=VGG19_PLAN)  # conv1_1 ... conv4_1
    net = build_feature_net("vgg19", weights=path, taps=("relu4_1",))
    assert net.name == "vgg19_torchvision"
    assert torch.equal(net.convs["conv3_4"].weight, state["features.16.weight"])
    assert torch.equal(net.convs["conv4_1"].bias, state["features.19.bias"])
    # independent reference: torchvision's vgg19.features[:21] (up to relu4_1)
    reference = _torchvision_features(state, 21, pools=(4, 9, 18))
    image = torch.rand(1, 3, 24, 24)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(net(image)["relu4_1"], reference((image - mean) / std))
    # torchvision-scale activations: the losses leave them unscaled, like VGG-16's
    assert default_feature_scale(build_feature_net("vgg19", weights=path)) == {
        "pool1": 1.0,
        "pool2": 1.0,
        "relu3_1": 1.0,
    }


def test_vgg19_without_a_local_file_comes_from_the_hub_cache(tmp_path, monkeypatch):
    import hashlib
    import shutil

    import holefill.weights

    monkeypatch.delenv("HOLEFILL_VGG_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    # the "published" file: a small torchvision-layout VGG-19 whose name carries its own hash,
    # so the real hash check runs on it, as it would on vgg19-dcbb9e9d.pth
    published = tmp_path / "published.pth"
    _fake_torchvision_vgg16(published, layers=5, plan=VGG19_PLAN)
    prefix = hashlib.sha256(published.read_bytes()).hexdigest()[:8]
    url = f"https://download.example/models/vgg19-{prefix}.pth"
    assert VGG19_URL.endswith("/vgg19-dcbb9e9d.pth")  # the real one, patched below
    monkeypatch.setitem(holefill.weights.PUBLISHED, "VGG-19", (url, "1 MB"))
    calls = []

    def download(source, dst, hash_prefix=None, progress=True):  # a local stand-in for the network
        calls.append((source, hash_prefix))
        shutil.copyfile(published, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    with pytest.raises(WeightsError, match="needs a VGG-19 file"):
        build_feature_net("vgg19", taps=("relu3_1",))  # not allowed to download
    assert calls == []
    net = build_feature_net("vgg19", taps=("relu3_1",), download=True)
    assert calls == [(url, prefix)] and net.name == "vgg19_torchvision"
    build_feature_net("vgg19", taps=("relu3_1",))
    assert len(calls) == 1  # the second time it is in the cache
    with (tmp_path / "hub" / "checkpoints" / f"vgg19-{prefix}.pth").open("ab") as stream:
        stream.write(b"damage")
    with pytest.raises(WeightsError, match=f"not the expected {prefix}"):
        build_feature_net("vgg19", taps=("relu3_1",))  # the published hash is checked on load

    def offline(source, dst, hash_prefix=None, progress=True):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty-hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError, match="VGG-19 weights are not in .*--vgg-weights PATH"):
        build_feature_net("vgg19", download=True)
