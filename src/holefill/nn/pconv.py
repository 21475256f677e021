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
from torch.autograd.function import once_differentiable

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
        if isinstance(padding, str):
            raise InputError("PartialConv2d takes a numeric padding, not 'same' or 'valid'")
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
        weight = self.weight
        compute_dtype = _autocast_dtype(x.device.type)
        if compute_dtype is None:
            out = self._convolve(x, valid, weight, ratio, new_valid)
        else:  # cast as autocast would, so the fused backward sees one dtype
            x, weight = x.to(compute_dtype), weight.to(compute_dtype)
            with torch.autocast(x.device.type, enabled=False):
                out = self._convolve(x, valid, weight, ratio, new_valid)
        return out, new_valid.to(x.dtype)

    def _convolve(
        self, x: Tensor, valid: Tensor, weight: Tensor, ratio: Tensor, new_valid: Tensor
    ) -> Tensor:
        geometry = (self.stride, self.padding, self.dilation)
        return _PartialConvFunction.apply(
            x, valid.to(x.dtype), weight, self.bias, ratio, new_valid, geometry
        )

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


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    """The autocast dtype active for ``device_type``, or None when autocast is off."""
    if not torch.is_autocast_enabled(device_type):
        return None
    return torch.get_autocast_dtype(device_type)


class _PartialConvFunction(torch.autograd.Function):
    """``conv(x * valid) * ratio + bias * new_valid`` with a backward that allocates little.

    Autograd through the plain expression would allocate three full-size temporaries in the
    backward (``grad * ratio``, ``grad * new_valid`` for the bias, ``grad_in * valid``); here the
    bias gradient is a batched matrix-vector product and the input gradient is masked in place.
    """

    @staticmethod
    def forward(ctx, x, valid, weight, bias, ratio, new_valid, geometry):
        stride, padding, dilation = geometry
        masked = x * valid
        out = F.conv2d(masked, weight, None, stride, padding, dilation)
        # float32 ratio: the product is rounded once, to the output dtype.
        out.mul_(ratio)
        if bias is not None:
            out.addcmul_(bias.view(1, -1, 1, 1).to(out.dtype), new_valid.to(out.dtype))
        ctx.save_for_backward(masked, valid, weight, ratio, new_valid)
        ctx.geometry = geometry
        ctx.bias_dtype = None if bias is None else bias.dtype
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        masked, valid, weight, ratio, new_valid = ctx.saved_tensors
        stride, padding, dilation = ctx.geometry
        need_x, _, need_weight, need_bias = ctx.needs_input_grad[:4]
        grad_x = grad_weight = grad_bias = None
        if need_x or need_weight:
            grad_raw = (grad_out * ratio).to(grad_out.dtype)
            grad_x, grad_weight, _ = torch.ops.aten.convolution_backward(
                grad_raw, masked, weight, None, stride, padding, dilation,
                False, (0, 0), 1, (need_x, need_weight, False),
            )  # fmt: skip
            if grad_x is not None:
                grad_x.mul_(valid)
        if need_bias and ctx.bias_dtype is not None:
            grad_bias = _masked_channel_sum(grad_out, new_valid).to(ctx.bias_dtype)
        return grad_x, None, grad_weight, grad_bias, None, None, None


def _masked_channel_sum(grad: Tensor, weights: Tensor) -> Tensor:
    """``(grad * weights).sum((0, 2, 3))`` for ``weights`` (B, 1, H, W), without a temporary."""
    batch, channels = grad.shape[:2]
    weights = weights.to(grad.dtype).reshape(batch, 1, -1)
    if grad.is_contiguous(memory_format=torch.channels_last) and not grad.is_contiguous():
        rows = grad.permute(0, 2, 3, 1).reshape(batch, -1, channels)  # a view
        return torch.bmm(weights, rows).sum((0, 1))
    rows = grad.contiguous().reshape(batch, channels, -1)
    return torch.bmm(rows, weights.transpose(1, 2)).sum((0, 2))
