"""Image-quality metrics of the PConv evaluation (Liu et al. 2018, Table 1) and a VGG distance.

Every metric compares a filled uint8 RGB image with the ground truth of the same size:

* ``l1_pct``: mean absolute error over all pixels and channels on the [0, 1] scale, in percent (the
  paper's l1 (%));
* ``psnr`` and ``ssim``: over the whole image (the paper's convention), ``skimage.metrics`` with
  ``data_range=255`` and ``channel_axis=2`` (SSIM: 7x7 uniform window);
* ``psnr_hole``: PSNR of the hole pixels only; ``ssim_hole``: the SSIM map averaged over the hole;
* ``vgg_dist``: a perceptual distance in the form of the LPIPS "baseline" [2]_ without learned
  weights: VGG-19 features unit-normalised per pixel along channels, squared differences summed over
  channels and averaged over space, then averaged over relu1_1, relu2_1 and relu3_1 of the local
  VGG-19 (original Caffe weights, BGR 0-255 minus the ImageNet means); relu4_1 is left out as it
  more than doubles the cost on a CPU;
* ``lpips``: the real LPIPS (AlexNet, learned weights) only where the ``lpips`` package and its
  backbone weights are installed locally; nothing is downloaded.

References
----------
.. [1] G. Liu et al., "Image Inpainting for Irregular Holes Using Partial Convolutions", ECCV 2018.
.. [2] R. Zhang, P. Isola, A. A. Efros, E. Shechtman and O. Wang, "The Unreasonable Effectiveness
   of Deep Features as a Perceptual Metric", CVPR 2018.
.. [3] K. Simonyan and A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
   Recognition", ICLR 2015.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from holefill.errors import WeightsError

#: Metric columns, in report order, with (heading, better) for the summary.
METRICS: dict[str, tuple[str, str]] = {
    "l1_pct": ("ℓ1 (%)", "lower"),
    "psnr": ("PSNR (dB)", "higher"),
    "ssim": ("SSIM", "higher"),
    "psnr_hole": ("PSNR in the hole (dB)", "higher"),
    "ssim_hole": ("SSIM in the hole", "higher"),
    "vgg_dist": ("VGG distance (LPIPS-baseline form)", "lower"),
    "lpips": ("LPIPS (AlexNet, learned weights)", "lower"),
}
#: VGG-19 layers of the perceptual distance.
VGG_TAPS = ("relu1_1", "relu2_1", "relu3_1")
#: torchvision's AlexNet file that ``lpips.LPIPS(net="alex")`` loads from the torch hub cache.
_ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


def l1_percent(filled: np.ndarray, truth: np.ndarray) -> float:
    """Mean ``|filled - truth|`` over all pixels and channels, on the [0, 1] scale, times 100."""
    difference = np.abs(filled.astype(np.float64) - truth.astype(np.float64))
    return float(difference.mean() / 255.0 * 100.0)


def psnr_in(filled: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    """PSNR (dB, peak 255) over the pixels where ``hole`` is True, all channels."""
    difference = filled[hole].astype(np.float64) - truth[hole].astype(np.float64)
    mse = float(np.mean(difference**2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def image_metrics(filled: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    """ℓ1 (%), PSNR and SSIM over the whole image and over the hole.

    Parameters
    ----------
    filled, truth : numpy.ndarray
        ``(H, W, 3)`` uint8 RGB of the same size.
    hole : numpy.ndarray
        ``(H, W)`` bool, True where the pixels were missing.
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ssim, ssim_map = structural_similarity(truth, filled, data_range=255, channel_axis=2, full=True)
    return {
        "l1_pct": l1_percent(filled, truth),
        "psnr": float(peak_signal_noise_ratio(truth, filled, data_range=255)),
        "ssim": float(ssim),
        "psnr_hole": psnr_in(filled, truth, hole),
        "ssim_hole": float(ssim_map[hole].mean()),
    }


class VGGDistance:
    """The LPIPS-baseline distance on local VGG-19 features (no learned weights, no download).

    The network is :func:`holefill.nn.vgg.build_feature_net` ``("vgg19", weights, taps)``.

    Parameters
    ----------
    weights : path
        A VGG-19 state dict with keys ``conv1_1.weight`` ... (``vgg19_to_relu4_1.pth`` or its
        prefix ``vgg19_to_relu3_1.pth``).
    taps : tuple of str
        Layers averaged.

    Examples
    --------
    >>> from holefill.paths import default_local_vgg19
    >>> distance = VGGDistance(default_local_vgg19())  # doctest: +SKIP
    >>> image = np.zeros((64, 64, 3), np.uint8)
    >>> distance(image, image)  # doctest: +SKIP
    0.0
    """

    def __init__(self, weights: str | os.PathLike, taps: tuple[str, ...] = VGG_TAPS) -> None:
        from holefill.nn.vgg import build_feature_net

        self.path = Path(weights)
        if not self.path.is_file():
            raise WeightsError(f"{self.path}: VGG-19 weights not found")
        self.taps = tuple(taps)
        self._net = build_feature_net("vgg19", self.path, self.taps)

    def features(self, pixels: np.ndarray) -> list:
        """Tap activations of an ``(H, W, 3)`` uint8 RGB image."""
        import torch

        rgb01 = torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        with torch.no_grad():
            return list(self._net(rgb01).values())

    def __call__(self, filled: np.ndarray, truth: np.ndarray | list) -> float:
        """The distance; ``truth`` may be an image or its :meth:`features` (computed once)."""
        truth_features = self.features(truth) if isinstance(truth, np.ndarray) else truth
        distances = []
        for a, b in zip(self.features(filled), truth_features, strict=True):
            a = a / (a.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            distances.append(float((a - b).pow(2).sum(dim=1).mean()))
        return float(np.mean(distances))


def _lpips_backbone_file() -> Path | None:
    import torch

    path = Path(torch.hub.get_dir()) / "checkpoints" / _ALEXNET_FILE
    return path if path.is_file() else None


def _build_lpips():
    """The real LPIPS (AlexNet) or a reason why not; never downloads."""
    if importlib.util.find_spec("lpips") is None:
        return None, (
            "LPIPS not computed: the `lpips` package is not installed (its learned "
            "weights and the AlexNet backbone are needed; nothing is downloaded)"
        )
    if _lpips_backbone_file() is None:
        return None, (
            f"LPIPS not computed: the AlexNet backbone ({_ALEXNET_FILE}) is not in the "
            "torch hub cache, and holefill never downloads it"
        )
    import lpips

    return lpips.LPIPS(net="alex", verbose=False).eval(), None


@dataclass
class MetricSuite:
    """Every metric available here, built once per process; ``notes`` says what was skipped."""

    vgg: VGGDistance | None = None
    lpips_net: object | None = None
    notes: list[str] = field(default_factory=list)
    _truth: tuple[Any, list] | None = None  # (key, VGG features) of the last ground truth

    @property
    def columns(self) -> list[str]:
        """The metric columns this suite fills."""
        columns = ["l1_pct", "psnr", "ssim", "psnr_hole", "ssim_hole"]
        return (
            columns
            + ["vgg_dist"] * (self.vgg is not None)
            + ["lpips"] * (self.lpips_net is not None)
        )

    def __call__(
        self, filled: np.ndarray, truth: np.ndarray, hole: np.ndarray, truth_key: Any = None
    ) -> dict:
        """Every metric; ``truth_key`` names the ground truth so that its VGG features are
        computed once for several methods in a row."""
        values = image_metrics(filled, truth, hole)
        if self.vgg is not None:
            if truth_key is None or self._truth is None or self._truth[0] != truth_key:
                self._truth = (truth_key, self.vgg.features(truth))
            values["vgg_dist"] = self.vgg(filled, self._truth[1])
            if truth_key is None:
                self._truth = None
        if self.lpips_net is not None:
            values["lpips"] = self._lpips(filled, truth)
        return values

    def _lpips(self, filled: np.ndarray, truth: np.ndarray) -> float:
        import torch

        def scaled(pixels):
            return torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]

        with torch.no_grad():
            return float(self.lpips_net(scaled(filled), scaled(truth)))


def build_metrics(
    vgg_weights: str | os.PathLike | None, *, use_vgg: bool = True, use_lpips: bool = True
) -> MetricSuite:
    """The metric suite: the VGG distance when ``vgg_weights`` exists, LPIPS when installed.

    FID is never computed: it is a statistic of a whole set that needs Inception-v3 FID weights,
    which holefill does not ship or download.
    """
    suite = MetricSuite()
    if not use_vgg:
        suite.notes.append("VGG distance not computed (--no-vgg)")
    elif vgg_weights is None:
        suite.notes.append("VGG distance not computed: no VGG-19 weights given (--vgg-weights)")
    elif not Path(vgg_weights).is_file():
        suite.notes.append(f"VGG distance not computed: {vgg_weights} not found")
    else:
        suite.vgg = VGGDistance(vgg_weights)
    if use_lpips:
        suite.lpips_net, reason = _build_lpips()
        if reason:
            suite.notes.append(reason)
    suite.notes.append(
        "FID not computed: it needs the Inception-v3 FID weights, which are not "
        "available locally (and it is a set statistic, unreliable on a few hundred "
        "images)"
    )
    return suite
