"""PartialConv2d against a hand-worked example and a naive per-window reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from holefill.errors import InputError
from holefill.layers import PartialConv2d


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids OpenMP spin-waits on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _naive_partial_conv(x, valid, weight, bias, stride, padding, dilation, multi_channel):
    """Liu et al. (2018) eq. 1-2 one window at a time, in float64.

    sum(1) = C_in*k*k for a per-channel mask, k*k for a single-channel one (NVIDIA's convention).
    """
    x, valid, weight = x.double(), valid.double(), weight.double()
    k_h, k_w = weight.shape[2:]
    mask = valid.expand_as(x) if multi_channel else valid
    window_size = k_h * k_w * (x.shape[1] if multi_channel else 1)
    xp = F.pad(x, (padding,) * 4)
    mp = F.pad(mask, (padding,) * 4)
    out_h = (x.shape[2] + 2 * padding - dilation * (k_h - 1) - 1) // stride + 1
    out_w = (x.shape[3] + 2 * padding - dilation * (k_w - 1) - 1) // stride + 1
    out = torch.zeros(x.shape[0], weight.shape[0], out_h, out_w, dtype=torch.float64)
    new_valid = torch.zeros(x.shape[0], 1, out_h, out_w, dtype=torch.float64)
    for b in range(x.shape[0]):
        for i in range(out_h):
            for j in range(out_w):
                rows = slice(i * stride, i * stride + dilation * (k_h - 1) + 1, dilation)
                cols = slice(j * stride, j * stride + dilation * (k_w - 1) + 1, dilation)
                patch, patch_mask = xp[b, :, rows, cols], mp[b, :, rows, cols]
                count = patch_mask.sum()
                if count == 0:
                    continue
                masked = patch * patch_mask  # single-channel mask broadcasts over channels
                raw = (weight * masked).sum(dim=(1, 2, 3))
                out[b, :, i, j] = raw * window_size / count
                if bias is not None:
                    out[b, :, i, j] += bias.double()
                new_valid[b, 0, i, j] = 1
    return out, new_valid


def _ones_layer() -> PartialConv2d:
    layer = PartialConv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    return layer


def test_hand_worked_5x5_example():
    # Image: x[i, j] = 5i + j + 1 (1 ... 25). Hole: the top-left 2x2 block.
    image = torch.arange(1.0, 26.0).view(1, 1, 5, 5)
    valid = torch.ones(1, 1, 5, 5)
    valid[..., :2, :2] = 0
    out, new_valid = _ones_layer()(image, valid)
    # (0, 0): the window's in-image pixels (0,0),(0,1),(1,0),(1,1) are all holes -> 0.
    assert out[0, 0, 0, 0].item() == 0.0
    # (1, 1): rows 0-2 x cols 0-2, valid 3, 8, 11, 12, 13 -> 47 * 9/5.
    assert out[0, 0, 1, 1].item() == pytest.approx(47 * 9 / 5)
    # (3, 3): rows 2-4 x cols 2-4, all valid: 13+14+15+18+19+20+23+24+25 = 171, ratio 1.
    assert out[0, 0, 3, 3].item() == pytest.approx(171.0)
    # (4, 4): corner, 4 in-image pixels 19, 20, 24, 25, all valid -> 88 * 9/4 (padding counts
    # as missing, the border re-weighting).
    assert out[0, 0, 4, 4].item() == pytest.approx(88 * 9 / 4)
    # Every window but (0, 0) reaches a valid pixel, e.g. (0, 1) sees (0, 2) and (1, 2).
    expected_mask = torch.ones(1, 1, 5, 5)
    expected_mask[0, 0, 0, 0] = 0
    assert torch.equal(new_valid, expected_mask)


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "multi_channel", "mask_channels", "bias"),
    [
        (1, 1, 1, False, 1, True),
        (2, 1, 1, False, 1, True),
        (1, 2, 2, False, 1, False),
        (2, 2, 2, True, 4, True),
        (1, 1, 1, True, 4, False),
        (1, 1, 1, True, 1, True),
    ],
)
def test_matches_naive_reference(stride, padding, dilation, multi_channel, mask_channels, bias):
    torch.manual_seed(0)
    layer = PartialConv2d(
        4, 5, 3, stride=stride, padding=padding, dilation=dilation, bias=bias,
        multi_channel=multi_channel,
    )  # fmt: skip
    x = torch.randn(2, 4, 9, 11)
    valid = (torch.rand(2, mask_channels, 9, 11) > 0.5).float()
    valid[:, :, :6, :6] = 0  # a block large enough for all-hole windows
    out, new_valid = layer(x, valid)
    ref_out, ref_valid = _naive_partial_conv(
        x, valid, layer.weight.detach(), layer.bias, stride, padding, dilation, multi_channel
    )
    assert torch.equal(new_valid.double(), ref_valid)
    assert (ref_valid == 0).any()
    torch.testing.assert_close(out.double(), ref_out, rtol=1e-5, atol=1e-5)


def test_all_valid_equals_conv2d_in_the_interior():
    torch.manual_seed(1)
    layer = PartialConv2d(3, 6, 3, padding=1)
    conv = nn.Conv2d(3, 6, 3, padding=1)
    conv.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, 10, 12)
    out, new_valid = layer(x, torch.ones(2, 1, 10, 12))
    expected = conv(x)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1])
    assert not torch.allclose(out[..., 0, :], expected[..., 0, :])  # border re-weighted
    assert torch.equal(new_valid, torch.ones_like(new_valid))


def test_gradients_finite_with_all_hole_windows():
    torch.manual_seed(2)
    layer = PartialConv2d(3, 4, 3, padding=1)
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    valid = torch.ones(1, 1, 8, 8)
    valid[..., 2:7, 2:7] = 0  # the window centred at (4, 4) sees no valid input
    out, new_valid = layer(x, valid)
    assert new_valid[0, 0, 4, 4] == 0 and out[0, :, 4, 4].eq(0).all()
    out.square().sum().backward()
    for grad in (x.grad, layer.weight.grad, layer.bias.grad):
        assert torch.isfinite(grad).all()
    assert x.grad[..., 2:7, 2:7].eq(0).all()  # hole pixels get no gradient
    assert x.grad.abs().sum() > 0


def test_gradients_match_autograd_of_the_formula():
    torch.manual_seed(3)
    layer = PartialConv2d(3, 4, 3, stride=2, padding=1, multi_channel=True).double()
    x = torch.randn(2, 3, 7, 9, dtype=torch.float64, requires_grad=True)
    valid = (torch.rand(2, 3, 7, 9) > 0.4).double()
    out, _ = layer(x, valid)
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, (x, layer.weight, layer.bias), grad_out)
    ones = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    count = F.conv2d(valid.sum(1, keepdim=True), ones, stride=2, padding=1)
    has_valid = (count > 0).double()
    ratio = 27 / count.clamp_min(1) * has_valid
    ref = F.conv2d(x * valid, layer.weight, None, 2, 1) * ratio
    ref = ref + layer.bias.view(1, -1, 1, 1) * has_valid
    ref_grads = torch.autograd.grad(ref, (x, layer.weight, layer.bias), grad_out)
    for got, want in zip(grads, ref_grads, strict=True):  # the layer's ratio is float32
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def _random_case(seed: int = 4):
    torch.manual_seed(seed)
    layer = PartialConv2d(8, 16, 3, padding=1, multi_channel=True)
    x = torch.rand(2, 8, 16, 16)
    valid = (torch.rand(2, 8, 16, 16) > 0.3).float()
    return layer, x, valid


def test_bfloat16_agrees_with_float32():
    layer, x, valid = _random_case()
    reference, ref_valid = layer(x, valid)
    out, new_valid = layer.to(torch.bfloat16)(x.bfloat16(), valid.bfloat16())
    assert out.dtype == torch.bfloat16
    assert torch.equal(new_valid.float(), ref_valid)  # counts up to 72 stay exact
    torch.testing.assert_close(out.float(), reference, rtol=0.05, atol=0.05)


def test_float16_and_autocast_agree_with_float32():
    layer, x, valid = _random_case(5)
    reference, _ = layer(x, valid)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, new_valid = layer(x, valid)
    assert out.dtype == torch.bfloat16 and new_valid.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference, rtol=0.05, atol=0.05)
    half_layer = PartialConv2d(8, 16, 3, padding=1, multi_channel=True)
    half_layer.load_state_dict(layer.state_dict())
    try:
        out16, _ = half_layer.half()(x.half(), valid.half())
    except RuntimeError as exc:  # float16 convolution is not built on every CPU
        pytest.skip(f"float16 conv2d unavailable on this CPU: {exc}")
    torch.testing.assert_close(out16.float(), reference, rtol=0.01, atol=0.01)


def test_channels_last_agrees_with_contiguous():
    layer, x, valid = _random_case(6)
    x = x.requires_grad_()
    out, _ = layer(x, valid)
    out.square().sum().backward()
    grads = (x.grad.clone(), layer.weight.grad.clone(), layer.bias.grad.clone())
    layer.zero_grad()
    x_cl = x.detach().to(memory_format=torch.channels_last).requires_grad_()
    out_cl, _ = layer(x_cl, valid.to(memory_format=torch.channels_last))
    out_cl.square().sum().backward()
    torch.testing.assert_close(out_cl, out)
    for got, want in zip((x_cl.grad, layer.weight.grad, layer.bias.grad), grads, strict=True):
        torch.testing.assert_close(got, want)


def test_no_state_between_calls_and_repr():
    layer = PartialConv2d(2, 3, 3, padding=1, multi_channel=True)
    assert "window_ones" not in layer.state_dict()
    assert "multi_channel=True" in repr(layer)
    x = torch.rand(1, 2, 6, 6)
    first, _ = layer(x, torch.ones(1, 2, 6, 6))
    layer(torch.rand(2, 2, 8, 8), torch.zeros(2, 1, 8, 8))  # a different call in between
    again, _ = layer(x, torch.ones(1, 2, 6, 6))
    assert torch.equal(first, again)


def test_rejects_bad_masks():
    layer = PartialConv2d(3, 4, 3, padding=1)
    with pytest.raises(InputError, match="channel"):
        layer(torch.rand(1, 3, 8, 8), torch.ones(1, 3, 8, 8))
    with pytest.raises(InputError, match="spatial"):
        layer(torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 7))
