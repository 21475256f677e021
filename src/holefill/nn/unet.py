"""The partial-convolution U-Net of Liu et al. (2018).

References
----------
.. [1] G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao and B. Catanzaro, "Image Inpainting for
   Irregular Holes Using Partial Convolutions", ECCV 2018, Table of Section 3.4 and Section 4.2
   (batch-norm freezing for fine-tuning). https://arxiv.org/abs/1804.07723
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from holefill.errors import InputError
from holefill.nn.pconv import PartialConv2d

__all__ = ["PConvConfig", "PConvUNet"]

# The paper's encoder (Section 3.4): kernels 7, 5, 5, then 3; channels 64 ... 512.
_ENCODER_KERNELS = (7, 5, 5)
_ENCODER_CHANNELS = (64, 128, 256)
_DEEP_KERNEL, _DEEP_CHANNELS = 3, 512


@dataclass
class PConvConfig:
    """Shape of a :class:`PConvUNet`.

    Parameters
    ----------
    layers : int
        Encoder depth L (the decoder has L layers too); inputs must be multiples of ``2**L``.
    width : float
        Multiplier of every channel count (1.0 = the paper).
    max_channels : int
        Cap on encoder channels before ``width`` is applied (the paper: 512).
    in_channels, out_channels : int
        Image channels in and out.
    """

    layers: int = 8
    width: float = 1.0
    max_channels: int = 512
    in_channels: int = 3
    out_channels: int = 3

    def __post_init__(self) -> None:
        if self.layers < 1:
            raise InputError(f"PConvConfig.layers must be >= 1, got {self.layers}")
        if self.width <= 0:
            raise InputError(f"PConvConfig.width must be > 0, got {self.width}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (YAML/JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PConvConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`InputError`."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown PConvConfig keys: {unknown} (known: {sorted(known)})")
        return cls(**data)

    def encoder_channels(self) -> list[int]:
        """Output channels of encoder layers 1..L."""
        base = [*_ENCODER_CHANNELS, *[_DEEP_CHANNELS] * self.layers][: self.layers]
        return [max(1, round(min(c, self.max_channels) * self.width)) for c in base]

    def encoder_kernels(self) -> list[int]:
        """Kernel sizes of encoder layers 1..L."""
        return [*_ENCODER_KERNELS, *[_DEEP_KERNEL] * self.layers][: self.layers]


class _PConvBlock(nn.Module):
    """Partial convolution, then optional batch norm, then optional activation."""

    def __init__(
        self,
        conv: PartialConv2d,
        batch_norm: bool,
        activation: nn.Module | None,
    ) -> None:
        super().__init__()
        self.conv = conv
        self.bn = nn.BatchNorm2d(conv.out_channels) if batch_norm else None
        self.activation = activation if activation is not None else nn.Identity()

    def forward(self, x: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        out, new_valid = self.conv(x, valid)
        if self.bn is not None:
            out = self.bn(out)
        return self.activation(out), new_valid


class PConvUNet(nn.Module):
    """U-Net of partial convolutions that fills holes [1]_.

    Encoder: L stride-2 partial convolutions (kernels 7, 5, 5, 3, ...; channels 64, 128, 256,
    512, ... times ``width``), ReLU, batch norm on all but the first. Decoder: nearest 2x
    upsampling of features and mask, concatenation with the skip's features and masks (encoder
    layer i-1, the input image for the last layer), 3x3 partial convolution with per-channel
    masks, LeakyReLU(0.2) and batch norm on all but the last layer, which outputs the image.

    Parameters
    ----------
    config : PConvConfig, optional
        The architecture; the paper's by default.

    Notes
    -----
    :meth:`forward` takes and returns images on the [0, 1] scale; inside, the known pixels are
    mapped to [-1, 1] and hole pixels to 0 (NaN or any other hole content is never read).
    """

    def __init__(self, config: PConvConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else PConvConfig()
        self._encoder_bn_frozen = False
        self.encoder = nn.ModuleList(self._encoder_blocks())
        self.decoder = nn.ModuleList(self._decoder_blocks())

    @property
    def size_multiple(self) -> int:
        """Image height and width must be multiples of this (``2**layers``)."""
        return 2**self.config.layers

    def extra_repr(self) -> str:
        return f"config={self.config}"

    def _encoder_blocks(self) -> list[_PConvBlock]:
        cfg = self.config
        blocks, in_ch = [], cfg.in_channels
        layers = zip(cfg.encoder_channels(), cfg.encoder_kernels(), strict=True)
        for index, (out_ch, k) in enumerate(layers):
            conv = PartialConv2d(in_ch, out_ch, k, stride=2, padding=k // 2, bias=index == 0)
            blocks.append(_PConvBlock(conv, batch_norm=index > 0, activation=nn.ReLU()))
            in_ch = out_ch
        return blocks

    def _decoder_blocks(self) -> list[_PConvBlock]:
        """Decoder layers from the deepest up; layer j's skip is encoder layer L-1-j's output."""
        cfg = self.config
        skips = [cfg.in_channels, *cfg.encoder_channels()[:-1]]
        blocks, in_ch = [], cfg.encoder_channels()[-1]
        for skip_ch in reversed(skips):
            last = len(blocks) == cfg.layers - 1
            out_ch = cfg.out_channels if last else skip_ch
            conv = PartialConv2d(
                in_ch + skip_ch, out_ch, 3, padding=1, bias=last, multi_channel=True
            )
            activation = None if last else nn.LeakyReLU(0.2)
            blocks.append(_PConvBlock(conv, batch_norm=not last, activation=activation))
            in_ch = out_ch
        return blocks

    def forward(self, image: Tensor, valid: Tensor) -> Tensor:
        """Fill the holes of ``image``.

        Parameters
        ----------
        image : Tensor
            ``(B, in_channels, H, W)`` in [0, 1]; values where ``valid`` is 0 are ignored.
        valid : Tensor
            ``(B, 1, H, W)``, 1 where the pixel is known (``1 - hole``).

        Returns
        -------
        Tensor
            ``(B, out_channels, H, W)`` on the [0, 1] scale, not clamped.
        """
        self._check_inputs(image, valid)
        valid = valid.to(image.dtype)
        x = torch.where(valid > 0, image * 2 - 1, torch.zeros((), dtype=image.dtype))
        skips = [(x, valid)]
        for block in self.encoder:
            x, valid = block(x, valid)
            skips.append((x, valid))
        skips.pop()  # the deepest features are the decoder's input, not a skip
        for block in self.decoder:
            skip_x, skip_valid = skips.pop()
            x, valid = self._upsample_and_concat(x, valid, skip_x, skip_valid)
            x, valid = block(x, valid)
        return x * 0.5 + 0.5

    @staticmethod
    def _upsample_and_concat(
        x: Tensor, valid: Tensor, skip_x: Tensor, skip_valid: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Nearest 2x upsampling of features and mask, then per-channel concatenation."""
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        valid = F.interpolate(valid, scale_factor=2, mode="nearest")
        masks = [
            valid.expand(-1, x.shape[1], -1, -1),
            skip_valid.expand(-1, skip_x.shape[1], -1, -1),
        ]
        return torch.cat([x, skip_x], dim=1), torch.cat(masks, dim=1)

    def _check_inputs(self, image: Tensor, valid: Tensor) -> None:
        cfg = self.config
        if image.dim() != 4 or image.shape[1] != cfg.in_channels:
            raise InputError(
                f"image must be (B, {cfg.in_channels}, H, W), got {tuple(image.shape)}"
            )
        expected = (image.shape[0], 1, *image.shape[2:])
        if tuple(valid.shape) != expected:
            raise InputError(f"valid mask must be {expected}, got {tuple(valid.shape)}")
        height, width = image.shape[2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise InputError(
                f"PConvUNet with {cfg.layers} layers needs height and width that are multiples "
                f"of {self.size_multiple}, got {height}x{width}; pad or crop the image first"
            )

    def freeze_encoder_bn(self, frozen: bool = True) -> PConvUNet:
        """Freeze the encoder's batch norms (the paper's fine-tuning phase) or unfreeze them.

        Frozen batch norms use their running statistics and get no gradient; this survives later
        calls to :meth:`train`.
        """
        self._encoder_bn_frozen = frozen
        for bn in self._encoder_batch_norms():
            bn.requires_grad_(not frozen)
        return self.train(self.training)

    @property
    def encoder_bn_frozen(self) -> bool:
        """Whether :meth:`freeze_encoder_bn` is in effect."""
        return self._encoder_bn_frozen

    def train(self, mode: bool = True) -> PConvUNet:
        super().train(mode)
        if self._encoder_bn_frozen:
            for bn in self._encoder_batch_norms():
                bn.eval()
        return self

    def _encoder_batch_norms(self) -> list[nn.BatchNorm2d]:
        return [block.bn for block in self.encoder if block.bn is not None]

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (only those with ``requires_grad`` if ``trainable_only``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
