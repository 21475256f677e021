"""Image-quality metrics of the PConv evaluation (Liu et al. 2018, Table 1), VGG distances and
texture metrics of the hole.

Every metric compares a filled uint8 RGB image with the ground truth of the same size:

* ``l1_pct``: mean absolute error over all pixels and channels on the [0, 1] scale, in percent (the
  paper's l1 (%));
* ``psnr`` and ``ssim``: over the whole image (the paper's convention), ``skimage.metrics`` with
  ``data_range=255`` and ``channel_axis=2`` (SSIM: 7x7 uniform window);
* ``psnr_hole``: PSNR of the hole pixels only; ``ssim_hole``: the SSIM map averaged over the hole;
* ``vgg_dist``: a perceptual distance in the form of the LPIPS "baseline" [2]_ without learned
  weights: VGG-19 features unit-normalised per pixel along channels, squared differences summed over
  channels and averaged over space, then averaged over relu1_1, relu2_1 and relu3_1 of the local
  VGG-19 (original Caffe weights, BGR 0-255 minus the ImageNet means);
* ``vgg_hole``: the same form over the hole only, on relu1_2, relu2_2, relu3_4 and relu4_1: each
  tap's distance map is averaged with the hole fraction of each feature position as its weight
  (:func:`hole_weights`), then the taps are averaged (issue 16);
* ``texture_ratio``: :func:`hole_texture_ratio`, the fill's mean squared Sobel gradient over the
  hole divided by the truth's (1: as much texture as the truth; below 1: blur);
* ``out_of_palette_pct``: :func:`out_of_palette_pct`, the share of hole pixels whose CIELAB colour
  is more than 12 (CIE76) from every known colour of the image (colour fringes), and
  ``truth_out_of_palette_pct``, the same of the truth's own hole pixels (the rate a perfect fill has);
* ``lpips``: the real LPIPS (AlexNet, learned weights) only where the ``lpips`` package and its
  backbone weights are installed locally; nothing is downloaded.

:func:`texture_metrics` computes the hole metrics for other code and scripts, with a
:class:`HoleVGGDistance` built once.

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

from holefill.errors import InputError, WeightsError

#: Metric columns, in report order, with (heading, better) for the summary.
METRICS: dict[str, tuple[str, str]] = {
    "l1_pct": ("ℓ1 (%)", "lower"),
    "psnr": ("PSNR (dB)", "higher"),
    "ssim": ("SSIM", "higher"),
    "psnr_hole": ("PSNR in the hole (dB)", "higher"),
    "ssim_hole": ("SSIM in the hole", "higher"),
    "vgg_dist": ("VGG distance, whole image (LPIPS-baseline form)", "lower"),
    "vgg_hole": ("VGG distance over the hole (LPIPS-baseline form, relu1_2-relu4_1)", "lower"),
    "texture_ratio": ("Hole texture ratio (Sobel energy, fill / truth)", "closer to 1"),
    "out_of_palette_pct": ("Out-of-palette hole pixels (%, ΔE76 > 12)", "lower"),
    "truth_out_of_palette_pct": ("Out-of-palette hole pixels of the truth itself (%)", "reference"),
    "lpips": ("LPIPS (AlexNet, learned weights)", "lower"),
}
#: The columns issue 16 added; reports of earlier versions lack them (left empty there).
HOLE_METRICS = ("vgg_hole", "texture_ratio", "out_of_palette_pct", "truth_out_of_palette_pct")
#: VGG-19 layers of the whole-image perceptual distance (relu4_1 would more than double its cost
#: on a CPU, and the hole distance below has it).
VGG_TAPS = ("relu1_1", "relu2_1", "relu3_1")
#: VGG-19 layers of the distance over the hole (issue 16).
HOLE_VGG_TAPS = ("relu1_2", "relu2_2", "relu3_4", "relu4_1")
#: CIE76 distance (ΔE*ab) beyond which a hole colour is foreign to the image.
PALETTE_DELTA_E = 12.0
#: torchvision's AlexNet file that ``lpips.LPIPS(net="alex")`` loads from the torch hub cache.
_ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
#: ITU-R BT.601 luma weights (R, G, B), the weights of OpenCV's ``COLOR_RGB2GRAY``.
_LUMA_601 = np.array([0.299, 0.587, 0.114])


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


def _check_images(hole: np.ndarray, *images: np.ndarray) -> np.ndarray:
    """``hole`` as bool after checking that it and ``images`` (uint8 RGB) fit together."""
    hole = np.asarray(hole)
    for pixels in images:
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise InputError(
                f"metrics need (H, W, 3) uint8 RGB images, got {pixels.dtype} {pixels.shape}"
            )
        if pixels.shape[:2] != hole.shape:
            raise InputError(f"image {pixels.shape[:2]} and hole mask {hole.shape} differ in size")
    hole = hole.astype(bool)
    if not hole.any():
        raise InputError("the hole mask has no hole pixels: nothing to measure")
    return hole


# ---------------------------------------------------------------------------------------------
# VGG distances
# ---------------------------------------------------------------------------------------------


def tap_stride(tap: str) -> int:
    """Input pixels per feature position of a VGG tap: 1 for relu1_x, 2 for relu2_x/pool1, ..."""
    block = int(tap[4]) if tap.startswith("relu") else int(tap[4]) + 1
    return 2 ** (block - 1)


def hole_weights(hole: np.ndarray, stride: int) -> np.ndarray:
    """The hole fraction of each ``stride`` x ``stride`` cell: a weight in [0, 1] per position of
    a feature map that ``log2(stride)`` 2x2 max-pools made.

    This is area interpolation of the mask to ``(H // stride, W // stride)``, aligned with the
    pooling: the rows and columns the pooling drops (odd sizes) are dropped here too.
    """
    height, width = hole.shape[0] // stride, hole.shape[1] // stride
    cells = hole[: height * stride, : width * stride].astype(np.float64)
    return cells.reshape(height, stride, width, stride).mean(axis=(1, 3))


def _unit_difference_map(a, b):
    """LPIPS baseline per position: ``sum_c (a/|a| - b/|b|)^2``, norms over channels, ``(h, w)``."""
    a = a / (a.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
    b = b / (b.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
    return (a - b).pow(2).sum(dim=1)[0]


class VGGDistance:
    """The LPIPS-baseline distance on local VGG-19 features (no learned weights, no download).

    At each tap the features are unit-normalised over channels at each position, the squared
    difference is summed over channels (as the LPIPS baseline does, so a tap's value lies in
    [0, 4]) and averaged over the image, or over the hole with :func:`hole_weights` as weights;
    the taps are then averaged with equal weights. Scaling a tap's features by a positive factor
    leaves it unchanged. The network (:func:`holefill.nn.vgg.build_feature_net` ``("vgg19",
    weights, taps)``, Caffe preprocessing) is built once.

    Parameters
    ----------
    weights : path, optional
        A VGG-19 state dict with keys ``conv1_1.weight`` ... (``vgg19_to_relu4_1.pth``, or its
        prefix ``vgg19_to_relu3_1.pth`` for taps up to relu3_1). Default: the file
        :func:`holefill.weights.vgg19_file` finds (``$HOLEFILL_VGG_WEIGHTS``, or torchvision's
        file in the torch hub cache); nothing is downloaded.
    taps : tuple of str
        Layers averaged.

    Examples
    --------
    >>> distance = VGGDistance("shared/weights/vgg19_to_relu4_1.pth")  # doctest: +SKIP
    >>> image = np.zeros((64, 64, 3), np.uint8)
    >>> distance(image, image)  # doctest: +SKIP
    0.0
    """

    def __init__(
        self, weights: str | os.PathLike | None = None, taps: tuple[str, ...] = VGG_TAPS
    ) -> None:
        from holefill.nn.vgg import build_feature_net
        from holefill.weights import vgg19_file

        self.path = vgg19_file(weights)
        self.taps = tuple(taps)
        self._net = build_feature_net("vgg19", self.path, self.taps)

    def features(self, pixels: np.ndarray) -> dict:
        """Tap activations ``{tap: (1, C, h, w) tensor}`` of an ``(H, W, 3)`` uint8 RGB image."""
        import torch

        rgb01 = torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        with torch.no_grad():
            return self._net(rgb01)

    def tap_distances(
        self,
        filled: np.ndarray | dict,
        truth: np.ndarray | dict,
        hole: np.ndarray | None = None,
        taps: tuple[str, ...] | None = None,
    ) -> dict[str, float]:
        """The distance at each tap (default: all of :attr:`taps`), over the whole image or,
        with ``hole``, over the hole; ``filled`` and ``truth`` may be :meth:`features`."""
        filled_features = self._as_features(filled)
        truth_features = self._as_features(truth)
        distances = {}
        for tap in taps or self.taps:
            distance_map = _unit_difference_map(filled_features[tap], truth_features[tap])
            if hole is None:
                distances[tap] = float(distance_map.mean())
                continue
            weights = hole_weights(hole, tap_stride(tap))
            if weights.shape != tuple(distance_map.shape):
                raise InputError(f"hole mask {hole.shape} does not match the images' size")
            if weights.sum() > 0:  # else the hole lies in rows this tap's pooling dropped
                total = float((distance_map.double().numpy() * weights).sum())
                distances[tap] = total / float(weights.sum())
        if not distances:
            raise InputError("the hole mask has no hole pixels: nothing to measure")
        return distances

    def __call__(
        self, filled: np.ndarray | dict, truth: np.ndarray | dict, hole: np.ndarray | None = None
    ) -> float:
        """The distance, averaged over the taps; ``truth`` may be its :meth:`features`."""
        return _mean(self.tap_distances(filled, truth, hole))

    def _as_features(self, value: np.ndarray | dict) -> dict:
        return value if isinstance(value, dict) else self.features(value)


def _mean(tap_distances: dict[str, float]) -> float:
    return float(np.mean(list(tap_distances.values())))


class HoleVGGDistance(VGGDistance):
    """The VGG distance over the hole of issue 16: :class:`VGGDistance` on relu1_2, relu2_2,
    relu3_4 and relu4_1 with the hole required.

    Parameters
    ----------
    weights : path, optional
        ``vgg19_to_relu4_1.pth`` (default: as :class:`VGGDistance`).
    taps : tuple of str
        Layers averaged (default :data:`HOLE_VGG_TAPS`).

    Examples
    --------
    >>> distance = HoleVGGDistance()  # doctest: +SKIP
    >>> distance(filled, truth, hole)  # doctest: +SKIP
    0.42
    """

    def __init__(
        self, weights: str | os.PathLike | None = None, taps: tuple[str, ...] = HOLE_VGG_TAPS
    ) -> None:
        super().__init__(weights, taps)

    def __call__(
        self, filled: np.ndarray | dict, truth: np.ndarray | dict, hole: np.ndarray
    ) -> float:
        """The distance over ``hole`` (``(H, W)`` bool, True where pixels were missing)."""
        if hole is None:
            raise InputError("HoleVGGDistance needs the hole mask")
        return super().__call__(filled, truth, np.asarray(hole, dtype=bool))


# ---------------------------------------------------------------------------------------------
# Texture and colour of the hole
# ---------------------------------------------------------------------------------------------


def sobel_energy(pixels: np.ndarray, hole: np.ndarray) -> float:
    """Mean squared Sobel gradient ``gx^2 + gy^2`` of the grey image over the hole pixels.

    Grey is ITU-R BT.601 luma (``0.299 R + 0.587 G + 0.114 B``, OpenCV's ``RGB2GRAY`` weights)
    in float, 0-255, not rounded; the 3x3 Sobel kernels are OpenCV's (``cv2.Sobel``, ksize 3,
    unnormalised: a ramp of slope ``a`` gives ``8 a``), with the image border reflected
    (``BORDER_REFLECT_101``). Hole pixels next to known ones count: a seam is part of the fill.
    """
    import cv2

    grey = pixels.astype(np.float64) @ _LUMA_601
    gx = cv2.Sobel(grey, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    gy = cv2.Sobel(grey, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    return float((gx**2 + gy**2)[hole].mean())


def hole_texture_ratio(filled: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    """The fill's :func:`sobel_energy` over the hole divided by the truth's.

    1 means as much gradient energy as the truth; below 1 a blurred fill, above 1 added edges
    (stripes, noise, seams). A flat truth gives 1 for a flat fill and ``inf`` otherwise.

    Parameters
    ----------
    filled, truth : numpy.ndarray
        ``(H, W, 3)`` uint8 RGB of the same size.
    hole : numpy.ndarray
        ``(H, W)`` bool, True where the pixels were missing.

    Returns
    -------
    float
    """
    hole = _check_images(hole, filled, truth)
    return _ratio(sobel_energy(filled, hole), sobel_energy(truth, hole))


def _ratio(fill_energy: float, truth_energy: float) -> float:
    if truth_energy == 0:
        return 1.0 if fill_energy == 0 else math.inf
    return fill_energy / truth_energy


class KnownPalette:
    """The CIELAB colours of an image's known pixels, in a KD-tree, to test hole colours against.

    Colours are ``skimage.color.rgb2lab`` of the uint8 sRGB values (D65); the known pixels are
    reduced to their distinct RGB values before the conversion and the tree
    (``scipy.spatial.cKDTree``), so a 256² photo costs a few milliseconds.

    Parameters
    ----------
    pixels : numpy.ndarray
        ``(H, W, 3)`` uint8 RGB; only the pixels outside ``hole`` are used.
    hole : numpy.ndarray
        ``(H, W)`` bool, True where the pixels were missing.
    """

    def __init__(self, pixels: np.ndarray, hole: np.ndarray) -> None:
        from scipy.spatial import cKDTree

        hole = _check_images(hole, pixels)
        known = pixels[~hole]
        if len(known) == 0:
            raise InputError("the hole covers the whole image: there is no known colour")
        self.hole = hole
        self._tree = cKDTree(_lab(np.unique(known, axis=0)))

    def out_of_palette_pct(self, pixels: np.ndarray, threshold: float = PALETTE_DELTA_E) -> float:
        """Percent of ``pixels``' hole pixels more than ``threshold`` (ΔE76) from every known
        colour."""
        _check_images(self.hole, pixels)
        colours, counts = np.unique(pixels[self.hole], axis=0, return_counts=True)
        # the margin only keeps exact ties at the threshold in the tree's answer; the
        # comparison below decides
        nearest, _ = self._tree.query(_lab(colours), k=1, distance_upper_bound=threshold + 1e-6)
        outside = nearest > threshold
        return float(100.0 * counts[outside].sum() / counts.sum())


def _lab(colours: np.ndarray) -> np.ndarray:
    """CIELAB of ``(N, 3)`` uint8 sRGB colours, ``(N, 3)`` float64."""
    from skimage.color import rgb2lab

    return rgb2lab(colours[None].astype(np.float64) / 255.0)[0]


def out_of_palette_pct(
    filled: np.ndarray, truth: np.ndarray, hole: np.ndarray, threshold: float = PALETTE_DELTA_E
) -> float:
    """Percent of hole pixels of ``filled`` whose CIELAB colour is more than ``threshold`` (CIE76
    ΔE*ab, Euclidean in L*a*b*) from the colour of every known pixel of ``truth``.

    Colour fringes and invented hues show up here; the truth's own rate
    (``out_of_palette_pct(truth, truth, hole)``) is what a perfect fill scores.

    Parameters
    ----------
    filled, truth : numpy.ndarray
        ``(H, W, 3)`` uint8 RGB of the same size; the known pixels come from ``truth``.
    hole : numpy.ndarray
        ``(H, W)`` bool, True where the pixels were missing.
    threshold : float
        ΔE76 above which a colour is foreign (12).

    Returns
    -------
    float
        In percent, 0-100.
    """
    return KnownPalette(truth, hole).out_of_palette_pct(filled, threshold)


def texture_metrics(
    filled: np.ndarray,
    truth: np.ndarray,
    hole: np.ndarray,
    vgg: HoleVGGDistance | None = None,
) -> dict[str, float]:
    """The hole metrics of issue 16 for one fill.

    Parameters
    ----------
    filled, truth : numpy.ndarray
        ``(H, W, 3)`` uint8 RGB of the same size.
    hole : numpy.ndarray
        ``(H, W)`` bool, True where the pixels were missing.
    vgg : HoleVGGDistance, optional
        Build it once and pass it to have ``vgg_hole`` too.

    Returns
    -------
    dict
        ``texture_ratio``, ``out_of_palette_pct``, ``truth_out_of_palette_pct`` and, with
        ``vgg``, ``vgg_hole`` (see the module docstring).

    Examples
    --------
    >>> from holefill.bench.metrics import HoleVGGDistance, texture_metrics
    >>> vgg = HoleVGGDistance()  # doctest: +SKIP
    >>> texture_metrics(filled, truth, hole, vgg)  # doctest: +SKIP
    {'texture_ratio': 0.81, 'out_of_palette_pct': 0.4, 'truth_out_of_palette_pct': 0.1,
     'vgg_hole': 1.93}
    """
    hole = _check_images(hole, filled, truth)
    palette = KnownPalette(truth, hole)
    values = {
        "texture_ratio": hole_texture_ratio(filled, truth, hole),
        "out_of_palette_pct": palette.out_of_palette_pct(filled),
        "truth_out_of_palette_pct": palette.out_of_palette_pct(truth),
    }
    if vgg is not None:
        values["vgg_hole"] = vgg(filled, truth, hole)
    return values


# ---------------------------------------------------------------------------------------------
# The suite of the bench
# ---------------------------------------------------------------------------------------------


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
class _Truth:
    """What a ground truth costs to measure, kept while the methods of one pair run."""

    key: Any
    features: dict | None
    palette: KnownPalette
    truth_out_of_palette_pct: float
    sobel_energy: float


@dataclass
class MetricSuite:
    """Every metric available here, built once per process; ``notes`` says what was skipped.

    ``vgg`` computes both VGG distances from one forward pass (its taps are the union of
    :data:`VGG_TAPS` and, when ``hole_vgg``, :data:`HOLE_VGG_TAPS`).
    """

    vgg: VGGDistance | None = None
    hole_vgg: bool = False
    lpips_net: object | None = None
    notes: list[str] = field(default_factory=list)
    _truth: _Truth | None = None

    @property
    def columns(self) -> list[str]:
        """The metric columns this suite fills, in :data:`METRICS` order."""
        present = {"l1_pct", "psnr", "ssim", "psnr_hole", "ssim_hole", "texture_ratio"}
        present |= {"out_of_palette_pct", "truth_out_of_palette_pct"}
        present |= {"vgg_dist"} if self.vgg is not None else set()
        present |= {"vgg_hole"} if self.hole_vgg else set()
        present |= {"lpips"} if self.lpips_net is not None else set()
        return [name for name in METRICS if name in present]

    def __call__(
        self, filled: np.ndarray, truth: np.ndarray, hole: np.ndarray, truth_key: Any = None
    ) -> dict:
        """Every metric; ``truth_key`` names the ground truth (and its hole) so that what is
        measured of it alone is computed once for several methods in a row."""
        hole = _check_images(hole, filled, truth)
        known = self._truth_of(truth, hole, truth_key)
        values = image_metrics(filled, truth, hole)
        values["texture_ratio"] = _ratio(sobel_energy(filled, hole), known.sobel_energy)
        values["out_of_palette_pct"] = known.palette.out_of_palette_pct(filled)
        values["truth_out_of_palette_pct"] = known.truth_out_of_palette_pct
        if self.vgg is not None:
            features = self.vgg.features(filled)
            whole = self.vgg.tap_distances(features, known.features, taps=VGG_TAPS)
            values["vgg_dist"] = _mean(whole)
            if self.hole_vgg:
                in_hole = self.vgg.tap_distances(features, known.features, hole, HOLE_VGG_TAPS)
                values["vgg_hole"] = _mean(in_hole)
        if self.lpips_net is not None:
            values["lpips"] = self._lpips(filled, truth)
        if truth_key is None:
            self._truth = None
        return values

    def _truth_of(self, truth: np.ndarray, hole: np.ndarray, key: Any) -> _Truth:
        if key is None or self._truth is None or self._truth.key != key:
            palette = KnownPalette(truth, hole)
            self._truth = _Truth(
                key=key,
                features=self.vgg.features(truth) if self.vgg is not None else None,
                palette=palette,
                truth_out_of_palette_pct=palette.out_of_palette_pct(truth),
                sobel_energy=sobel_energy(truth, hole),
            )
        return self._truth

    def _lpips(self, filled: np.ndarray, truth: np.ndarray) -> float:
        import torch

        def scaled(pixels):
            return torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]

        with torch.no_grad():
            return float(self.lpips_net(scaled(filled), scaled(truth)))


def _vgg_plan_order(taps: tuple[str, ...]) -> tuple[str, ...]:
    from holefill.nn.vgg import VGG19_PLAN

    def position(tap: str) -> int:
        return VGG19_PLAN.index("conv" + tap[4:] if tap.startswith("relu") else tap)

    return tuple(sorted(set(taps), key=position))


def build_metrics(
    vgg_weights: str | os.PathLike | None, *, use_vgg: bool = True, use_lpips: bool = True
) -> MetricSuite:
    """The metric suite: the VGG distances when ``vgg_weights`` exists, LPIPS when installed.

    A VGG file that stops before conv4_1 (``vgg19_to_relu3_1.pth``) gives the whole-image
    distance only. FID is never computed: it is a statistic of a whole set that needs Inception-v3
    FID weights, which holefill does not ship or download.
    """
    suite = MetricSuite()
    if not use_vgg:
        suite.notes.append("VGG distances (whole image and hole) not computed (--no-vgg)")
    elif vgg_weights is None:
        suite.notes.append("VGG distances not computed: no VGG-19 weights given (--vgg-weights)")
    elif not Path(vgg_weights).is_file():
        suite.notes.append(f"VGG distances not computed: {vgg_weights} not found")
    else:
        try:
            suite.vgg = VGGDistance(vgg_weights, _vgg_plan_order(VGG_TAPS + HOLE_VGG_TAPS))
            suite.hole_vgg = True
        except WeightsError:
            suite.vgg = VGGDistance(vgg_weights, VGG_TAPS)
            suite.notes.append(
                f"VGG distance over the hole not computed: {vgg_weights} has no layers up to "
                "relu4_1 (use vgg19_to_relu4_1.pth)"
            )
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
