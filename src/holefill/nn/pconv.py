"""The partial convolution layer of Liu et al. (2018).

References
----------
.. [1] G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao and B. Catanzaro, "Image Inpainting for
   Irregular Holes Using Partial Convolutions", ECCV 2018. https://arxiv.org/abs/1804.07723
.. [2] NVIDIA/partialconv, ``models/partialconv2d.py`` (the authors' reference implementation,
   whose ``sum(1)`` convention this layer follows).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from holefill.errors import InputError

__all__ = ["PartialConv2d"]

# Window counts below this are treated as "no valid input" (guards the division).
_COUNT_EPS = 1e-6


class PartialConv2d(nn.Conv2d):
    """A convolution that only sees valid pixels and re-weights for the ones it missed [1]_.

    For each window: ``out = W^T (X * M) * sum(1) / sum(M) + b`` if the window holds any valid
    input, else 0 (bias included); the updated mask is 1 where the window saw a valid input.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, bias
        As in :class:`torch.nn.Conv2d` (zero padding, no groups).
    multi_channel : bool
        If False, ``valid`` has one channel shared by every input channel and ``sum(1) = k*k``.
        If True, ``valid`` may hold one mask per input channel (``(B, C_in, H, W)``) and
        ``sum(1) = C_in*k*k``; a single-channel mask is then broadcast over the channels.
        This is the convention of the authors' code [2]_.

    Notes
    -----
    The window counts come from one single-channel convolution of the (channel-summed) mask with
    a ones kernel, run without autograd since masks carry no gradient. Counts and the re-weighting
    ratio are computed in float32, so float16/bfloat16 inputs stay exact for counts up to 2**24.
    The layer keeps no state between calls.

    Examples
    --------
    >>> layer = PartialConv2d(3, 8, 3, padding=1)
    >>> image, valid = torch.rand(1, 3, 16, 16), torch.ones(1, 1, 16, 16)
    >>> out, new_valid = layer(image, valid)
    >>> tuple(out.shape), tuple(new_valid.shape)
    ((1, 8, 16, 16), (1, 1, 16, 16))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        multi_channel: bool = False,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=bias,
        )
        self.multi_channel = multi_channel
        self.register_buffer("window_ones", torch.ones(1, 1, *self.kernel_size), persistent=False)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, multi_channel={self.multi_channel}"

    def forward(self, x: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """Convolve the valid part of ``x``.

        Parameters
        ----------
        x : Tensor
            Features ``(B, C_in, H, W)``.
        valid : Tensor
            1 where ``x`` is known: ``(B, 1, H, W)``, or ``(B, C_in, H, W)`` if ``multi_channel``.

        Returns
        -------
        out : Tensor
            ``(B, C_out, H', W')``, 0 (bias included) where a window saw no valid input.
        new_valid : Tensor
            ``(B, 1, H', W')`` in ``x``'s dtype, 1 where the window saw at least one valid input.
        """
        self._check_inputs(x, valid)
        ratio, new_valid = self._window_ratio(valid)
        valid = valid.to(x.dtype)
        raw = F.conv2d(x * valid, self.weight, None, self.stride, self.padding, self.dilation)
        # In place: conv2d's backward does not need its output; the float32 ratio is applied
        # before rounding to the output dtype.
        out = raw.mul_(ratio)
        if self.bias is not None:
            out = out.addcmul_(self.bias.view(1, -1, 1, 1), new_valid.to(out.dtype))
        return out, new_valid.to(x.dtype)

    def _window_ratio(self, valid: Tensor) -> tuple[Tensor, Tensor]:
        """``sum(1) / sum(M)`` per window (0 where no valid input) and the updated mask."""
        with torch.no_grad():
            per_pixel = valid.float()
            if per_pixel.shape[1] > 1:
                per_pixel = per_pixel.sum(1, keepdim=True)
            count = F.conv2d(
                per_pixel, self.window_ones.float(), None, self.stride, self.padding, self.dilation
            )
            # sum(1): k*k per mask channel (C_in*k*k for a per-channel mask, else k*k).
            window_size = float(self.window_ones.numel() * valid.shape[1])
            new_valid = (count > _COUNT_EPS).float()
            ratio = (window_size / count.clamp_min(_COUNT_EPS)).mul_(new_valid)
        return ratio, new_valid

    def _check_inputs(self, x: Tensor, valid: Tensor) -> None:
        if x.dim() != 4 or valid.dim() != 4:
            raise InputError(
                f"PartialConv2d expects 4-D (B, C, H, W) tensors, got x {tuple(x.shape)} "
                f"and valid {tuple(valid.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise InputError(f"expected {self.in_channels} input channels, got {x.shape[1]}")
        mask_channels = (1, self.in_channels) if self.multi_channel else (1,)
        if valid.shape[1] not in mask_channels:
            raise InputError(
                f"valid mask must have {' or '.join(map(str, mask_channels))} channel(s) "
                f"(multi_channel={self.multi_channel}), got {valid.shape[1]}"
            )
        if valid.shape[0] != x.shape[0] or valid.shape[2:] != x.shape[2:]:
            raise InputError(
                f"valid mask {tuple(valid.shape)} does not match the input {tuple(x.shape)} "
                "in batch or spatial size"
            )
