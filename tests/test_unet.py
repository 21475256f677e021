"""PConvUNet: shapes, the paper's parameter count, hole independence, batch-norm freezing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from holefill.errors import InputError
from holefill.nn.unet import PConvConfig, PConvUNet


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids OpenMP spin-waits on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _inputs(size: tuple[int, int], batch: int = 2, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, *size, generator=generator)
    valid = torch.ones(batch, 1, *size)
    h, w = size
    valid[:, :, h // 4 : h // 2, w // 4 : w // 2] = 0
    return image, valid


@pytest.mark.parametrize(
    ("layers", "width", "size"),
    [(1, 0.25, (4, 6)), (3, 0.125, (16, 24)), (5, 0.0625, (32, 64)), (8, 0.03125, (256, 256))],
)
def test_output_shape(layers, width, size):
    model = PConvUNet(PConvConfig(layers=layers, width=width)).eval()
    assert model.size_multiple == 2**layers
    image, valid = _inputs(size, batch=1)
    with torch.no_grad():
        out = model(image, valid)
    assert out.shape == image.shape and torch.isfinite(out).all()


def test_paper_configuration():
    model = PConvUNet()
    count = model.num_parameters()
    print(f"PConvUNet paper config (layers=8, width=1): {count:,} parameters")
    assert 32_000_000 < count < 33_500_000
    cfg = model.config
    assert cfg.encoder_kernels() == [7, 5, 5, 3, 3, 3, 3, 3]
    assert cfg.encoder_channels() == [64, 128, 256, 512, 512, 512, 512, 512]
    decoder = [(b.conv.in_channels, b.conv.out_channels) for b in model.decoder]
    assert decoder == [(1024, 512)] * 4 + [(768, 256), (384, 128), (192, 64), (67, 3)]
    assert all(b.conv.multi_channel and b.conv.kernel_size == (3, 3) for b in model.decoder)
    assert model.encoder[0].bn is None and all(b.bn is not None for b in model.encoder[1:])
    assert model.decoder[-1].bn is None and model.decoder[-1].conv.bias is not None
    assert isinstance(model.decoder[0].activation, nn.LeakyReLU)
    assert model.size_multiple == 256


def test_width_and_cap():
    cfg = PConvConfig(layers=6, width=0.5, max_channels=256)
    assert cfg.encoder_channels() == [32, 64, 128, 128, 128, 128]
    assert PConvConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InputError, match="unknown"):
        PConvConfig.from_dict({"layers": 4, "depth": 3})


def test_hole_content_does_not_change_the_output():
    torch.manual_seed(0)
    model = PConvUNet(PConvConfig(layers=4, width=0.125))
    image, valid = _inputs((32, 32))
    other = image.clone()
    hole = valid.expand_as(image) == 0
    other[hole] = torch.rand(int(hole.sum()))
    for mode in (model.train, model.eval):
        mode()
        torch.testing.assert_close(model(image, valid), model(other, valid), rtol=0, atol=0)
    other[hole] = float("nan")  # the network never reads hole pixels
    assert torch.isfinite(model(other, valid)).all()


def test_far_known_pixels_ignore_the_hole_when_receptive_field_is_valid():
    # A 1-layer net's receptive field is small; pixels far from the hole only see valid inputs,
    # so their output equals that of the same image with no hole at all.
    torch.manual_seed(1)
    model = PConvUNet(PConvConfig(layers=1, width=0.25)).eval()
    image = torch.rand(1, 3, 32, 32)
    valid = torch.ones(1, 1, 32, 32)
    valid[..., 12:16, 12:16] = 0
    with torch.no_grad():
        holed, full = model(image, valid), model(image, torch.ones_like(valid))
    far = torch.ones(32, 32, dtype=torch.bool)
    far[4:24, 4:24] = False
    torch.testing.assert_close(holed[..., far], full[..., far])
    assert not torch.allclose(holed[..., 12:16, 12:16], full[..., 12:16, 12:16])


def test_rejects_sizes_that_are_not_multiples():
    model = PConvUNet(PConvConfig(layers=3, width=0.125))
    image, valid = _inputs((16, 20))
    with pytest.raises(InputError, match="multiples of 8"):
        model(image, valid)


def test_freeze_encoder_bn_survives_train():
    torch.manual_seed(2)
    model = PConvUNet(PConvConfig(layers=3, width=0.125))
    encoder_bns = [b.bn for b in model.encoder if b.bn is not None]
    before = [bn.running_mean.clone() for bn in encoder_bns]
    trainable = model.num_parameters(trainable_only=True)
    model.freeze_encoder_bn()
    model.train()
    assert model.encoder_bn_frozen
    assert all(not bn.training for bn in encoder_bns)
    assert all(b.bn.training for b in model.decoder if b.bn is not None)
    assert all(not p.requires_grad for bn in encoder_bns for p in bn.parameters())
    frozen_count = sum(p.numel() for bn in encoder_bns for p in bn.parameters())
    assert model.num_parameters(trainable_only=True) == trainable - frozen_count
    image, valid = _inputs((16, 16))
    model(image, valid).mean().backward()
    for bn, mean in zip(encoder_bns, before, strict=True):
        assert torch.equal(bn.running_mean, mean)
    assert model.encoder[0].conv.weight.grad is not None
    model.freeze_encoder_bn(False)
    model.train()
    assert all(bn.training and bn.weight.requires_grad for bn in encoder_bns)
