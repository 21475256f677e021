"""The content network of neural patch synthesis and its DCGAN-style discriminator.

Yang et al. [1]_ predict the coarse content of a hole with a variant of the Context Encoder of
Pathak et al. [2]_: a 128x128 input (the image with the hole blanked, plus the hole mask), an encoder
of 4x4 stride-2 convolutions, a **standard fully connected** bottleneck (instead of the Context
Encoder's channel-wise one), a decoder of 4x4 stride-2 transposed convolutions and ELU activations.
It is trained with the Context Encoder's joint loss, ``0.999 * L2 + 0.001 * adversarial``, against a
DCGAN discriminator [3]_. This network predicts the whole 128x128 image; callers composite the known
pixels back.

Sizes (defaults): encoder 128 -> 64 -> 32 -> 16 -> 8 -> 4 with 32, 64, 128, 256, 256 channels; the
bottleneck ``4*4*256 -> 768 -> 4*4*256``; decoder 128, 64, 32, 16 channels back to 128x128 RGB --
about 8.7 M parameters (17.5 MB as float16), most of them in the fully connected bottleneck.

References
----------
.. [1] C. Yang, X. Lu, Z. Lin, E. Shechtman, O. Wang and H. Li, "High-Resolution Image Inpainting
   using Multi-Scale Neural Patch Synthesis", CVPR 2017. https://arxiv.org/abs/1611.09969
.. [2] D. Pathak, P. Krahenbuhl, J. Donahue, T. Darrell and A. A. Efros, "Context Encoders: Feature
   Learning by Inpainting", CVPR 2016.
.. [3] A. Radford, L. Metz and S. Chintala, "Unsupervised Representation Learning with Deep
   Convolutional Generative Adversarial Networks", ICLR 2016.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from holefill.errors import InputError

__all__ = ["ContentNetConfig", "ContentNet", "Discriminator", "count_parameters"]


@dataclass
class ContentNetConfig:
    """Shape of a :class:`ContentNet` (and of its :class:`Discriminator`)."""

    size: int = 128  #: input and output side; a multiple of ``2 ** len(encoder)``
    encoder: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 256])
    bottleneck: int = 768  #: width of the fully connected layer
    decoder: list[int] = field(default_factory=lambda: [128, 64, 32, 16])
    batch_norm: bool = True  #: batch normalisation after the inner convolutions
    discriminator: list[int] = field(default_factory=lambda: [32, 64, 128, 256])

    def __post_init__(self) -> None:
        depth = len(self.encoder)
        if depth < 1 or len(self.decoder) != depth - 1:
            raise InputError(
                f"the content net needs len(decoder) == len(encoder) - 1, got "
                f"{len(self.decoder)} and {depth}"
            )
        if self.size % (2**depth):
            raise InputError(f"size {self.size} must be a multiple of 2**{depth}")
        if self.bottleneck < 1 or min(self.encoder + self.decoder + self.discriminator) < 1:
            raise InputError("channel counts and the bottleneck width must be positive")

    @property
    def code_side(self) -> int:
        """Side of the encoder's last feature map (4 for a 128 input and five layers)."""
        return self.size // 2 ** len(self.encoder)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ContentNetConfig:
        known = {spec.name for spec in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"unknown content-net config keys: {', '.join(unknown)}")
        return cls(**values)


def _down(in_channels: int, out_channels: int, norm: bool, activation: nn.Module) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(activation)
    return nn.Sequential(*layers)


def _up(in_channels: int, out_channels: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=not norm)
    ]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ELU())
    return nn.Sequential(*layers)


class ContentNet(nn.Module):
    """Context-Encoder-style content network with a fully connected bottleneck [1]_ [2]_.

    ``forward(image, hole)`` takes ``image`` ``(B, 3, S, S)`` in ``[0, 1]`` and ``hole``
    ``(B, 1, S, S)`` (1 = missing) and returns the predicted image ``(B, 3, S, S)`` in ``[0, 1]``
    (every pixel predicted; composite the known pixels back).

    Examples
    --------
    >>> net = ContentNet(ContentNetConfig())
    >>> image, hole = torch.rand(2, 3, 128, 128), torch.zeros(2, 1, 128, 128)
    >>> tuple(net(image, hole).shape)
    (2, 3, 128, 128)
    """

    def __init__(self, config: ContentNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ContentNetConfig()
        channels = [4, *config.encoder]
        norm = config.batch_norm
        self.encoder = nn.Sequential(
            *(
                _down(c_in, c_out, norm and i > 0, nn.ELU())
                for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:], strict=True))
            )
        )
        code = config.encoder[-1] * config.code_side**2
        self.bottleneck = nn.Sequential(
            nn.Flatten(),
            nn.Linear(code, config.bottleneck),
            nn.ELU(),
            nn.Linear(config.bottleneck, code),
            nn.ELU(),
        )
        ups = [config.encoder[-1], *config.decoder]
        self.decoder = nn.Sequential(
            *(_up(c_in, c_out, norm) for c_in, c_out in zip(ups[:-1], ups[1:], strict=True)),
            nn.ConvTranspose2d(ups[-1], 3, 4, 2, 1),
        )

    @property
    def size(self) -> int:
        return self.config.size

    def extra_repr(self) -> str:
        return f"size={self.config.size}, bottleneck={self.config.bottleneck}"

    def forward(self, image: Tensor, hole: Tensor) -> Tensor:
        if image.shape[-2:] != (self.size, self.size) or hole.shape[-2:] != image.shape[-2:]:
            raise InputError(
                f"the content net takes {self.size}x{self.size} inputs, got image "
                f"{tuple(image.shape)} and hole {tuple(hole.shape)}"
            )
        known = 1.0 - hole
        code = self.encoder(torch.cat([(image * 2 - 1) * known, hole], dim=1))
        side = self.config.code_side
        code = self.bottleneck(code).view(-1, self.config.encoder[-1], side, side)
        return torch.sigmoid(self.decoder(code))


class Discriminator(nn.Module):
    """DCGAN discriminator [3]_: 4x4 stride-2 convolutions with LeakyReLU(0.2) and batch norm,
    then one logit per image. Takes ``(B, 3, S, S)`` images in ``[0, 1]``."""

    def __init__(self, config: ContentNetConfig | None = None) -> None:
        super().__init__()
        config = config or ContentNetConfig()
        channels = [3, *config.discriminator]
        self.features = nn.Sequential(
            *(
                _down(c_in, c_out, config.batch_norm and i > 0, nn.LeakyReLU(0.2))
                for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:], strict=True))
            )
        )
        side = config.size // 2 ** len(config.discriminator)
        self.logit = nn.Conv2d(channels[-1], 1, side)

    def forward(self, image: Tensor) -> Tensor:
        return self.logit(self.features(image * 2 - 1)).flatten()


def count_parameters(module: nn.Module) -> int:
    """Number of trainable values in ``module``."""
    return sum(p.numel() for p in module.parameters())
