"""Frozen VGG feature extractors for perceptual and style losses.

Three networks, chosen by name in :func:`build_feature_net`:

- ``"vgg19"``: VGG-19 [1]_. A file in holefill's layout (``conv1_1.weight`` ..., the original
  Caffe weights: ``vgg19_to_relu4_1.pth``) runs with Caffe preprocessing (BGR, 0-255, mean
  subtracted) and raw-scale activations. A file in torchvision's layout (``features.N.weight``:
  ``vgg19-dcbb9e9d.pth`` in the torch hub cache, downloaded there only when the caller allows it)
  runs with ImageNet mean/std input and is named ``vgg19_torchvision`` (its activations have
  torchvision VGG-16's scale, so the losses leave them unscaled).
- ``"vgg16"``: the network of the partial-convolution paper [2]_ (taps pool1-pool3), with
  torchvision's published ImageNet weights ``vgg16-397923af.pth`` and ImageNet mean/std input.

Which file: :func:`holefill.weights.vgg19_file` (an explicit path, ``$HOLEFILL_VGG_WEIGHTS``, the
torch hub cache, the download only when asked for).
- ``"random"``: the VGG-19 layout with seeded random weights, for tests.

References
----------
.. [1] K. Simonyan and A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
   Recognition", ICLR 2015. https://arxiv.org/abs/1409.1556
.. [2] G. Liu et al., "Image Inpainting for Irregular Holes Using Partial Convolutions",
   ECCV 2018, Section 3.3. https://arxiv.org/abs/1804.07723
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from holefill.errors import InputError, WeightsError
from holefill.weights import (
    VGG16_URL,
    VGG19_URL,
    name_hash_prefix,
    verify_file,
    vgg16_file,
    vgg19_file,
)

__all__ = [
    "VGGFeatures",
    "build_feature_net",
    "VGG16_URL",
    "VGG19_URL",
    "VGG19_PLAN",
    "VGG16_PLAN",
]

_BLOCK_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}


def _plan(convs_per_block: Sequence[int]) -> tuple[str, ...]:
    layers: list[str] = []
    for block, count in enumerate(convs_per_block, start=1):
        layers += [f"conv{block}_{i}" for i in range(1, count + 1)] + [f"pool{block}"]
    return tuple(layers)


VGG19_PLAN = _plan((2, 2, 4, 4, 4))
VGG16_PLAN = _plan((2, 2, 3, 3, 3))


@dataclass(frozen=True)
class _Preprocess:
    """``(rgb01[:, order] * input_scale - mean) / std``, the network's expected input."""

    order: tuple[int, int, int]
    input_scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


# Caffe VGG: BGR, 0-255, per-channel means (B, G, R) subtracted, no std.
CAFFE = _Preprocess((2, 1, 0), 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0))
# torchvision: RGB in [0, 1], ImageNet mean and std.
IMAGENET = _Preprocess((0, 1, 2), 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

_DEFAULT_TAPS = {
    "vgg19": ("pool1", "pool2", "relu3_1"),
    "vgg16": ("pool1", "pool2", "pool3"),
    "random": ("pool1", "pool2", "relu3_1"),
}


class VGGFeatures(nn.Module):
    """A frozen VGG trunk that returns the activations at the requested taps.

    Only the layers up to the deepest tap are built. Convolutions are 3x3 with zero padding 1,
    each followed by ReLU; ``poolN`` is a 2x2 max-pool.

    Parameters
    ----------
    plan : sequence of str
        Layer names in order: ``"convB_I"`` and ``"poolB"`` (e.g. :data:`VGG19_PLAN`).
    taps : sequence of str
        Outputs to return: ``"reluB_I"`` (after the ReLU of ``convB_I``) or ``"poolB"``.
    preprocess : _Preprocess
        How an RGB image in [0, 1] becomes the network's input (:data:`CAFFE` or :data:`IMAGENET`).
    name : str
        What the network is, for messages and for choosing loss scales.
    """

    def __init__(
        self,
        plan: Sequence[str],
        taps: Sequence[str],
        preprocess: _Preprocess,
        name: str = "vgg",
    ) -> None:
        super().__init__()
        self.name = name
        self.taps = tuple(taps)
        self.plan = _truncate_plan(plan, self.taps)
        self.convs = nn.ModuleDict(_make_convs(self.plan))
        self.register_buffer("input_scale", torch.tensor(preprocess.input_scale), persistent=False)
        self.register_buffer(
            "mean", torch.tensor(preprocess.mean).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(preprocess.std).view(1, 3, 1, 1), persistent=False)
        self.channel_order = list(preprocess.order)
        self.requires_grad_(False)
        self.eval()

    def extra_repr(self) -> str:
        return f"name={self.name!r}, taps={self.taps}"

    def train(self, mode: bool = True) -> VGGFeatures:
        """Always stays in eval mode: the network is frozen."""
        return super().train(False)

    def forward(self, rgb01: Tensor) -> dict[str, Tensor]:
        """Features of ``rgb01`` ``(B, 3, H, W)`` in [0, 1], RGB: ``{tap: activation}``."""
        if rgb01.dim() != 4 or rgb01.shape[1] != 3:
            raise InputError(f"VGG input must be (B, 3, H, W) RGB, got {tuple(rgb01.shape)}")
        x = (rgb01[:, self.channel_order] * self.input_scale - self.mean) / self.std
        features: dict[str, Tensor] = {}
        for layer in self.plan:
            if layer.startswith("pool"):
                x = F.max_pool2d(x, 2, 2)
                tap = layer
            else:
                x = F.relu(self.convs[layer](x))
                tap = "relu" + layer[4:]
            if tap in self.taps:
                features[tap] = x
        return {tap: features[tap] for tap in self.taps}

    def load_conv_weights(self, state: Mapping[str, Tensor], source: str) -> None:
        """Copy ``convB_I.weight`` / ``convB_I.bias`` tensors into the built layers.

        Raises :class:`WeightsError` naming ``source`` if a layer is missing or mis-shaped.
        """
        have = sorted({key.rsplit(".", 1)[0] for key in state})
        missing = [name for name in self.convs if f"{name}.weight" not in state]
        if missing:
            raise WeightsError(
                f"{source} has no weights for {missing} (needed for taps {list(self.taps)}); "
                f"it holds the layers {have}"
            )
        with torch.no_grad():
            for name, conv in self.convs.items():
                self._copy_conv(conv, name, state, source)

    @staticmethod
    def _copy_conv(conv: nn.Conv2d, name: str, state: Mapping[str, Tensor], source: str) -> None:
        for attr in ("weight", "bias"):
            value = state.get(f"{name}.{attr}")
            target = getattr(conv, attr)
            if value is None or tuple(value.shape) != tuple(target.shape):
                got = None if value is None else tuple(value.shape)
                raise WeightsError(
                    f"{source}: {name}.{attr} has shape {got}, expected {tuple(target.shape)}"
                )
            target.copy_(value)


def _tap_layer(tap: str) -> str:
    """The plan layer whose output a tap reads."""
    return "conv" + tap[4:] if tap.startswith("relu") else tap


def _truncate_plan(plan: Sequence[str], taps: Sequence[str]) -> tuple[str, ...]:
    if not taps:
        raise InputError("at least one VGG tap is needed")
    unknown = [tap for tap in taps if _tap_layer(tap) not in plan]
    if unknown:
        known = [("relu" + n[4:]) if n.startswith("conv") else n for n in plan]
        raise InputError(f"unknown VGG taps {unknown}; this network has {known}")
    last = max(plan.index(_tap_layer(tap)) for tap in taps)
    return tuple(plan[: last + 1])


def _make_convs(plan: Sequence[str]) -> dict[str, nn.Conv2d]:
    convs, in_ch = {}, 3
    for layer in plan:
        match = re.fullmatch(r"conv(\d)_\d", layer)
        if match:
            out_ch = _BLOCK_CHANNELS[int(match.group(1))]
            convs[layer] = nn.Conv2d(in_ch, out_ch, 3, padding=1)
            in_ch = out_ch
    return convs


def build_feature_net(
    name: str = "vgg19",
    weights: str | Path | None = None,
    taps: tuple[str, ...] | None = None,
    *,
    seed: int = 0,
    download: bool = False,
    download_hint: str = "",
) -> VGGFeatures:
    """Build a frozen feature network by name.

    Parameters
    ----------
    name : {"vgg19", "vgg16", "random"}
        See the module docstring.
    weights : str or Path, optional
        Weights file. Default: ``$HOLEFILL_VGG_WEIGHTS``, else torchvision's file in the torch
        hub cache (:func:`holefill.weights.vgg19_file`). Ignored for ``"random"``.
    taps : tuple of str, optional
        Outputs; defaults: vgg16 ``pool1, pool2, pool3`` (the paper), vgg19 and random
        ``pool1, pool2, relu3_1`` (their closest equivalents).
    seed : int
        Seed of the ``"random"`` network.
    download : bool
        Download torchvision's file into the torch hub cache when no file is found.
    download_hint : str
        How the caller's user allows the download, for the message when no file is found.

    Returns
    -------
    VGGFeatures
        In eval mode, with ``requires_grad`` False on every parameter.

    Raises
    ------
    WeightsError
        The file is missing, unreadable, fails its hash, or lacks the layers the taps need.
    """
    if name not in _DEFAULT_TAPS:
        raise InputError(f"unknown feature network {name!r}; choose from {sorted(_DEFAULT_TAPS)}")
    taps = tuple(taps) if taps is not None else _DEFAULT_TAPS[name]
    if name == "vgg19":
        path = vgg19_file(weights, download=download, download_hint=download_hint)
        state = _load_state(path)
        if any(key.startswith("features.") for key in state):  # torchvision's layout
            net = VGGFeatures(VGG19_PLAN, taps, IMAGENET, name="vgg19_torchvision")
            state = _torchvision_to_plan(state, VGG19_PLAN)
        else:
            net = VGGFeatures(VGG19_PLAN, taps, CAFFE, name="vgg19")
        net.load_conv_weights(state, str(path))
    elif name == "vgg16":
        path = vgg16_file(weights, download=download, download_hint=download_hint)
        net = VGGFeatures(VGG16_PLAN, taps, IMAGENET, name="vgg16")
        net.load_conv_weights(_torchvision_to_plan(_load_state(path), VGG16_PLAN), str(path))
    else:
        net = VGGFeatures(VGG19_PLAN, taps, IMAGENET, name="random")
        _init_random(net, seed)
    return net.requires_grad_(False).eval()


def _load_state(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise WeightsError(f"VGG weights file not found: {path}")
    prefix = name_hash_prefix(path)  # torch hub's name-<sha256 prefix>.pth
    if prefix is not None:
        verify_file(path, prefix, what="VGG weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean "unreadable"
        raise WeightsError(f"cannot read VGG weights {path}: {exc}") from exc
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return dict(state)


def _torchvision_to_plan(state: Mapping[str, Tensor], plan: Sequence[str]) -> dict[str, Tensor]:
    """Map torchvision's ``features.N.weight`` keys to ``convB_I.weight``.

    In torchvision's ``features`` every conv is followed by a ReLU module and every pool is one
    module, so conv k's index advances by 2 per conv and 1 per pool.
    """
    mapped, index = {}, 0
    for layer in plan:
        if layer.startswith("pool"):
            index += 1
            continue
        for attr in ("weight", "bias"):
            key = f"features.{index}.{attr}"
            if key in state:
                mapped[f"{layer}.{attr}"] = state[key]
        index += 2
    return mapped


def _init_random(net: VGGFeatures, seed: int) -> None:
    """Kaiming-normal weights (fan-out, ReLU), zero biases, from a private generator."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for conv in net.convs.values():
            fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
            std = (2.0 / fan_out) ** 0.5
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * std)
            conv.bias.zero_()
