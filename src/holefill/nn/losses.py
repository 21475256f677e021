"""The loss of the partial-convolution paper (Liu et al. 2018, Section 3.3).

``L_total = L_valid + 6 L_hole + 0.05 L_perceptual + 120 (L_style_out + L_style_comp) + 0.1 L_tv``

- ``L_hole``, ``L_valid``: L1 on the hole / known pixels, averaged over all elements.
- ``L_perceptual``: sum over taps p of ``mean|Psi_p(I_out) - Psi_p(I_gt)|`` and the same for
  ``I_comp`` (``I_comp`` = the output in the hole, the target elsewhere).
- ``L_style_out`` / ``L_style_comp``: sum over taps of ``mean|G_p(I) - G_p(I_gt)|`` with the
  Gram matrix ``G_p = Psi_p Psi_p^T / (C_p H_p W_p)``.
- ``L_tv``: L1 of horizontal and vertical differences of ``I_comp`` over pixel pairs that both lie
  in the 1-pixel (3x3) dilation of the hole, divided by the number of elements of ``I_comp``.

holefill adds one optional term, off by default (weight 0, the paper's loss):

- ``L_ssim``: ``1 - SSIM(I_comp, I_gt)``, the mean structural similarity [3]_ over 7x7 uniform
  windows, per channel, exactly as :func:`skimage.metrics.structural_similarity` computes it with
  its defaults (``data_range`` 1). The mix of L1 and SSIM losses is known to improve both PSNR and
  SSIM of image restoration networks over L1 alone [4]_; holefill's pixel-loss fine-tuning phase
  (``configs/pconv_finetune.yaml``) uses it.

Feature scale
-------------
The paper used VGG-16 pool1-pool3 on ImageNet-normalised input. The local VGG-19 works on the raw
Caffe scale, where features are ~100-1000x larger, which would swamp the paper's loss weights
(style grows with the square of the scale). :data:`DEFAULT_VGG19_SCALES` divides each VGG-19 tap
(pool1, pool2 and relu3_1, the closest equivalents of VGG-16's pool1..pool3) by its mean
activation over a calibration set, so every tap has a mean of about 1, the magnitude of VGG-16's
ImageNet-normalised pool activations (~0.5-1).

Calibration (``calibrate_feature_scale``, target 1.0): the first 50 photos (sorted by name) of
``shared/data/val/imagenet256`` (256x256 RGB), ``build_feature_net("vgg19")``, mean activation per
tap over the 50 photos (per-photo mean, then average; spread across photos in brackets as the
standard deviation): pool1 127.9 (43.4), pool2 194.2 (76.4), relu3_1 112.9 (33.9). For
reference, relu1_1 19.9, relu2_1 116.4, relu4_1 461.6.

References
----------
.. [1] G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao and B. Catanzaro, "Image Inpainting for
   Irregular Holes Using Partial Convolutions", ECCV 2018. https://arxiv.org/abs/1804.07723
.. [2] L. A. Gatys, A. S. Ecker and M. Bethge, "Image Style Transfer Using Convolutional Neural
   Networks", CVPR 2016 (Gram matrices).
.. [3] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image Quality Assessment: From
   Error Visibility to Structural Similarity", IEEE TIP 13(4), 2004.
.. [4] H. Zhao, O. Gallo, I. Frosio and J. Kautz, "Loss Functions for Image Restoration With
   Neural Networks", IEEE TCI 3(1), 2017.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from holefill.errors import InputError

__all__ = [
    "DEFAULT_VGG19_SCALES",
    "LossWeights",
    "PConvLoss",
    "calibrate_feature_scale",
    "default_feature_scale",
    "gram_matrix",
    "pconv_loss",
    "ssim",
    "total_variation",
]

# Mean activation of each VGG-19 tap on 50 shared ImageNet photos (module docstring).
DEFAULT_VGG19_SCALES: dict[str, float] = {"pool1": 127.9, "pool2": 194.2, "relu3_1": 112.9}


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms; defaults are the paper's (Section 3.3)."""

    valid: float = 1.0
    hole: float = 6.0
    perceptual: float = 0.05
    style: float = 120.0
    tv: float = 0.1
    ssim: float = 0.0  # holefill's optional 1 - SSIM term (module docstring); 0 in the paper

    def to_dict(self) -> dict[str, float]:
        """Plain data (YAML/JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> LossWeights:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def default_feature_scale(feature_net: nn.Module) -> dict[str, float]:
    """Per-tap divisors for a feature net: :data:`DEFAULT_VGG19_SCALES` for ``vgg19``, else 1.

    Raises :class:`InputError` for a ``vgg19`` tap that has no calibrated scale.
    """
    taps = getattr(feature_net, "taps", ())
    if getattr(feature_net, "name", None) != "vgg19":
        return {tap: 1.0 for tap in taps}
    uncalibrated = [tap for tap in taps if tap not in DEFAULT_VGG19_SCALES]
    if uncalibrated:
        raise InputError(
            f"no calibrated VGG-19 scale for taps {uncalibrated} (calibrated: "
            f"{sorted(DEFAULT_VGG19_SCALES)}); pass feature_scale, see calibrate_feature_scale"
        )
    return {tap: DEFAULT_VGG19_SCALES[tap] for tap in taps}


def gram_matrix(features: Tensor) -> Tensor:
    """``Psi Psi^T / (C H W)`` per sample: ``(B, C, H, W) -> (B, C, C)``, in float32."""
    batch, channels, height, width = features.shape
    flat = features.float().reshape(batch, channels, height * width)
    return torch.bmm(flat, flat.transpose(1, 2)) / (channels * height * width)


def total_variation(image: Tensor, hole: Tensor) -> Tensor:
    """L1 of neighbour differences over pairs inside the 1-pixel dilation of ``hole``.

    Parameters
    ----------
    image : Tensor
        ``(B, C, H, W)``.
    hole : Tensor
        ``(B, 1, H, W)``, 1 where the pixel is missing.

    Returns
    -------
    Tensor
        Scalar: sum of ``|I[i, j+1] - I[i, j]|`` and ``|I[i+1, j] - I[i, j]|`` over pairs with both
        pixels in the dilated hole, divided by ``image.numel()``.
    """
    region = F.max_pool2d(hole.float(), 3, stride=1, padding=1)
    pairs_x = region[..., :, 1:] * region[..., :, :-1]
    pairs_y = region[..., 1:, :] * region[..., :-1, :]
    diff_x = (image[..., :, 1:] - image[..., :, :-1]).abs() * pairs_x
    diff_y = (image[..., 1:, :] - image[..., :-1, :]).abs() * pairs_y
    return (diff_x.sum() + diff_y.sum()) / image.numel()


def ssim(image: Tensor, target: Tensor, window: int = 7) -> Tensor:
    """Mean SSIM of two ``(B, C, H, W)`` batches on the [0, 1] scale, one value per sample.

    The definition of :func:`skimage.metrics.structural_similarity` with its defaults: uniform
    ``window`` x ``window`` windows, sample (N - 1) covariances, ``K1 = 0.01``, ``K2 = 0.03``,
    ``data_range = 1``, the mean taken over the windows that lie wholly inside the image and over
    the channels. Differentiable; computed in float32.
    """
    if image.shape != target.shape or image.dim() != 4:
        raise InputError(
            f"ssim needs equal (B, C, H, W) shapes, got {tuple(image.shape)} "
            f"and {tuple(target.shape)}"
        )
    if min(image.shape[-2:]) < window:
        raise InputError(f"ssim needs images of at least {window}x{window} pixels")
    x, y = image.float(), target.float()
    channels = x.shape[1]
    kernel = x.new_full((channels, 1, window, window), 1.0 / window**2)

    def mean(z: Tensor) -> Tensor:
        return F.conv2d(z, kernel, groups=channels)

    mu_x, mu_y = mean(x), mean(y)
    correction = window**2 / (window**2 - 1)
    var_x = (mean(x * x) - mu_x * mu_x) * correction
    var_y = (mean(y * y) - mu_y * mu_y) * correction
    cov = (mean(x * y) - mu_x * mu_y) * correction
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    )
    return ssim_map.mean((1, 2, 3))


def pconv_loss(
    output: Tensor,
    target: Tensor,
    valid: Tensor,
    feature_net: nn.Module | None,
    weights: LossWeights = LossWeights(),
    feature_scale: Mapping[str, float] | None = None,
) -> dict[str, Tensor]:
    """The partial-convolution paper's loss [1]_ and its terms.

    Parameters
    ----------
    output : Tensor
        Network output ``(B, 3, H, W)`` on the [0, 1] scale.
    target : Tensor
        Ground truth ``(B, 3, H, W)`` in [0, 1]; no gradient flows into it.
    valid : Tensor
        ``(B, 1, H, W)``, 1 where the pixel was known (``1 - hole``).
    feature_net : nn.Module or None
        Maps an RGB [0, 1] batch to ``{tap: features}`` (e.g. :func:`build_feature_net`).
        None only when the perceptual and style weights are both 0: the feature terms are then
        reported as 0 and no feature network runs (a pixel-loss fine-tuning on a CPU).
    weights : LossWeights
        Term weights (the paper's by default).
    feature_scale : mapping of str to float, optional
        Per-tap divisors applied to the features; default :func:`default_feature_scale`
        (the calibrated :data:`DEFAULT_VGG19_SCALES` for ``vgg19``, else no scaling).

    Returns
    -------
    dict of str to Tensor
        Scalars ``valid, hole, perceptual, style_out, style_comp, tv, ssim, total`` (float32);
        ``ssim`` is ``1 - SSIM(I_comp, I_gt)``, computed only when its weight is not 0.
    """
    _check_inputs(output, target, valid)
    target = target.detach()
    valid = valid.detach().to(output.dtype)
    hole = 1 - valid
    comp = valid * target + hole * output
    terms = {
        "valid": (valid * (output - target)).abs().float().mean(),
        "hole": (hole * (output - target)).abs().float().mean(),
    }
    if feature_net is None:
        if weights.perceptual or weights.style:
            raise InputError("perceptual and style weights need a feature network")
        zero = torch.zeros((), device=output.device)
        terms.update(perceptual=zero, style_out=zero, style_comp=zero)
    else:
        scale = dict(default_feature_scale(feature_net) if feature_scale is None else feature_scale)
        feats_out, feats_comp, feats_gt = _scaled_features(feature_net, output, comp, target, scale)
        terms.update(
            perceptual=_perceptual(feats_out, feats_gt) + _perceptual(feats_comp, feats_gt),
            style_out=_style(feats_out, feats_gt),
            style_comp=_style(feats_comp, feats_gt),
        )
    terms["tv"] = total_variation(comp.float(), hole)
    terms["ssim"] = (
        1 - ssim(comp, target).mean() if weights.ssim else torch.zeros((), device=output.device)
    )
    terms["total"] = (
        weights.valid * terms["valid"]
        + weights.hole * terms["hole"]
        + weights.perceptual * terms["perceptual"]
        + weights.style * (terms["style_out"] + terms["style_comp"])
        + weights.tv * terms["tv"]
        + weights.ssim * terms["ssim"]
    )
    return terms


def _check_inputs(output: Tensor, target: Tensor, valid: Tensor) -> None:
    if output.shape != target.shape or output.dim() != 4:
        raise InputError(
            f"output and target must be equal (B, C, H, W) shapes, got {tuple(output.shape)} "
            f"and {tuple(target.shape)}"
        )
    expected = (output.shape[0], 1, *output.shape[2:])
    if tuple(valid.shape) != expected:
        raise InputError(f"valid mask must be {expected}, got {tuple(valid.shape)}")


def _scaled_features(
    feature_net: nn.Module, output: Tensor, comp: Tensor, target: Tensor, scale: Mapping[str, float]
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    """Features of I_out, I_comp (one batch) and I_gt (no grad), each divided by its tap scale."""
    with torch.no_grad():
        feats_gt = feature_net(target)
    both = feature_net(torch.cat([output, comp]))
    batch = output.shape[0]
    missing = sorted(set(feats_gt) - set(scale))
    if missing:
        raise InputError(f"feature_scale has no divisor for taps {missing}")
    feats_out = {tap: f[:batch].float() / scale[tap] for tap, f in both.items()}
    feats_comp = {tap: f[batch:].float() / scale[tap] for tap, f in both.items()}
    feats_gt = {tap: f.float() / scale[tap] for tap, f in feats_gt.items()}
    return feats_out, feats_comp, feats_gt


def _perceptual(feats: Mapping[str, Tensor], feats_gt: Mapping[str, Tensor]) -> Tensor:
    return sum((feats[tap] - feats_gt[tap]).abs().mean() for tap in feats_gt)


def _style(feats: Mapping[str, Tensor], feats_gt: Mapping[str, Tensor]) -> Tensor:
    return sum(
        (gram_matrix(feats[tap]) - gram_matrix(feats_gt[tap])).abs().mean() for tap in feats_gt
    )


class PConvLoss(nn.Module):
    """:func:`pconv_loss` as a module that holds its (frozen) feature network.

    Parameters
    ----------
    feature_net : nn.Module or None
        E.g. ``build_feature_net("vgg19")``; None for pixel terms only (see :func:`pconv_loss`).
    weights : LossWeights, optional
        Term weights; the paper's by default.
    feature_scale : mapping of str to float, optional
        Per-tap divisors; :func:`default_feature_scale` of the net by default.
    """

    def __init__(
        self,
        feature_net: nn.Module | None,
        weights: LossWeights | None = None,
        feature_scale: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.feature_net = feature_net
        self.weights = weights if weights is not None else LossWeights()
        if feature_net is None and (self.weights.perceptual or self.weights.style):
            raise InputError("perceptual and style weights need a feature network")
        if feature_scale is None:
            feature_scale = {} if feature_net is None else default_feature_scale(feature_net)
        self.feature_scale = dict(feature_scale)

    def extra_repr(self) -> str:
        return f"weights={self.weights}, feature_scale={self.feature_scale}"

    def forward(self, output: Tensor, target: Tensor, valid: Tensor) -> dict[str, Tensor]:
        """See :func:`pconv_loss`."""
        return pconv_loss(output, target, valid, self.feature_net, self.weights, self.feature_scale)


def calibrate_feature_scale(
    feature_net: nn.Module, images: Iterable[Tensor], target: float = 1.0
) -> dict[str, float]:
    """Per-tap divisors that bring each tap's mean activation over ``images`` to ``target``.

    Parameters
    ----------
    feature_net : nn.Module
        Maps an RGB [0, 1] batch to ``{tap: features}``.
    images : iterable of Tensor
        Batches ``(B, 3, H, W)`` in [0, 1].
    target : float
        Wanted mean of each scaled tap.

    Returns
    -------
    dict of str to float
        ``{tap: mean activation / target}``, the mean taken per photo then averaged.
    """
    sums: dict[str, float] = {}
    count = 0
    with torch.no_grad():
        for batch in images:
            for tap, feats in feature_net(batch).items():
                sums[tap] = sums.get(tap, 0.0) + feats.float().mean((1, 2, 3)).sum().item()
            count += batch.shape[0]
    if count == 0:
        raise InputError("calibrate_feature_scale needs at least one image")
    return {tap: total / count / target for tap, total in sums.items()}
