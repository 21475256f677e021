"""Neural patch matching and the texture energy of multi-scale neural patch synthesis.

Yang et al. [1]_ make the texture inside a hole match the texture around it in the feature space of
a classification network: for every 3x3 feature patch centred in the hole, find its nearest
neighbour among the patches outside the hole by **normalised cross-correlation**, and penalise the
squared distance to it::

    E_texture(x) = sum over layers l of  w_l * mean_{i in hole}  || P_i(phi_l(x)) - P_nn(i)(phi_l(x)) ||^2

Matches are found with the features frozen (and recomputed every few iterations by the caller);
the energy is differentiated only through the hole patches, as in [1]_ and in CNNMRF [2]_.

Conventions: a feature network is a callable mapping an image ``(1, 3, H, W)`` in ``[0, 1]`` to a
dict ``{layer name: (1, C, H / stride, W / stride)}``; the hole mask is ``(1, 1, H, W)`` with 1 where
pixels are missing. Each layer's term is divided by the mean squared activation of its source
patches (measured at the first match), so terms of different layers -- and raw Caffe-scale VGG
activations -- weigh about the same; a layer's term is then about 0 for a perfect copy and about 1
for unrelated texture.

The full energy that :func:`refine` minimises over the hole's pixels adds a content term on low
frequencies only (:func:`lowpass_energy`), a chroma term (:func:`chroma_energy`) and total variation
(:func:`tv_energy`). Why those and not a plain pixel MSE: the texture term's gradient, back through
VGG-19's strided max-pools, lies almost wholly above 1/8 cycle per pixel, peaks on the 8-px grid of
relu4_1 and carries a large chroma part; against a plain MSE whose weight is ~100x smaller than the
normalised texture term's, and from a smooth start whose patches all match the same few sources,
the optimum is a repeated 8-px pattern with colour fringes (``tests/test_neural_patch.py`` measures
each of these).

Speed: the differentiable forward runs only over the hole's bounding box grown by each layer's
receptive-field radius (plus one patch), aligned to the deepest pooling grid so its features equal
those of the whole image there; the frozen forward for the source patches runs once per match.

References
----------
.. [1] C. Yang, X. Lu, Z. Lin, E. Shechtman, O. Wang and H. Li, "High-Resolution Image Inpainting
   using Multi-Scale Neural Patch Synthesis", CVPR 2017.
.. [2] C. Li and M. Wand, "Combining Markov Random Fields and Convolutional Neural Networks for
   Image Synthesis", CVPR 2016.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from holefill.errors import InputError, WeightsError

__all__ = [
    "LayerGeometry",
    "VGG19_GEOMETRY",
    "TextureEnergy",
    "nearest_patches",
    "patch_vectors",
    "hole_at_stride",
    "source_positions",
    "tv_energy",
    "content_energy",
    "lowpass_energy",
    "chroma_energy",
    "gaussian_blur",
    "refine",
]

FeatureNet = Callable[[Tensor], dict[str, Tensor]]

#: target patches x source patches scored at once (bounds the score matrix to 64 MB in float32)
DEFAULT_CHUNK = 4096 * 4096


@dataclass(frozen=True)
class LayerGeometry:
    """Where a layer's features sit on the image: ``stride`` pixels per feature position and the
    ``radius`` in pixels of a position's receptive field."""

    stride: int
    radius: int


#: VGG-19 taps (3x3 convs, padding 1, 2x2 max-pool after relu1_2, relu2_2, relu3_4, relu4_4)
VGG19_GEOMETRY: dict[str, LayerGeometry] = {
    "relu1_1": LayerGeometry(1, 1),
    "relu1_2": LayerGeometry(1, 2),
    "relu2_1": LayerGeometry(2, 5),
    "relu2_2": LayerGeometry(2, 7),
    "relu3_1": LayerGeometry(4, 12),
    "relu3_2": LayerGeometry(4, 16),
    "relu3_3": LayerGeometry(4, 20),
    "relu3_4": LayerGeometry(4, 24),
    "relu4_1": LayerGeometry(8, 34),
    "relu4_2": LayerGeometry(8, 42),
    "relu4_3": LayerGeometry(8, 50),
    "relu4_4": LayerGeometry(8, 58),
    "relu5_1": LayerGeometry(16, 74),
}


# ---------------------------------------------------------------------------------------------
# Patch matching
# ---------------------------------------------------------------------------------------------


def nearest_patches(target: Tensor, source: Tensor, *, chunk: int = DEFAULT_CHUNK) -> Tensor:
    """Index of the best source patch for each target patch by normalised cross-correlation.

    The score of a pair is the dot product of the two patch vectors divided by both norms (the
    cosine of their angle, the matching rule of [1]_ [2]_). Scores are computed as matrix products
    in blocks of at most ``chunk`` pairs, so memory stays bounded for any number of patches.

    Parameters
    ----------
    target : Tensor
        ``(Nt, D)`` patch vectors.
    source : Tensor
        ``(Ns, D)`` patch vectors, ``Ns >= 1``.
    chunk : int
        Most target x source pairs scored at once.

    Returns
    -------
    Tensor
        ``(Nt,)`` int64 indices into ``source`` (the first of equal best scores).
    """
    if target.ndim != 2 or source.ndim != 2 or target.shape[1] != source.shape[1]:
        raise InputError(
            f"patch vectors must be (N, D) with equal D, got {tuple(target.shape)} "
            f"and {tuple(source.shape)}"
        )
    if source.shape[0] == 0:
        raise InputError("there are no source patches to match against")
    target = F.normalize(target.float(), dim=1)
    source = F.normalize(source.float(), dim=1)
    source_block = max(1, min(source.shape[0], chunk // max(1, min(target.shape[0], 1024))))
    target_block = max(1, chunk // source_block)
    best = torch.empty(target.shape[0], dtype=torch.long, device=target.device)
    for first in range(0, target.shape[0], target_block):
        rows = target[first : first + target_block]
        best_score = torch.full((rows.shape[0],), -math.inf, device=target.device)
        best_index = torch.zeros(rows.shape[0], dtype=torch.long, device=target.device)
        for start in range(0, source.shape[0], source_block):
            score, index = (rows @ source[start : start + source_block].T).max(dim=1)
            better = score > best_score
            best_score = torch.where(better, score, best_score)
            best_index = torch.where(better, index + start, best_index)
        best[first : first + rows.shape[0]] = best_index
    return best


def patch_vectors(features: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """The 3x3 patches of ``features`` ``(1, C, h, w)`` centred at ``(rows, cols)``.

    Features are padded by one position with replicate padding, so border positions have
    patches too. Returns ``(N, 9, C)``: offset (row-major over the 3x3 window), then channel.
    """
    padded = F.pad(features, (1, 1, 1, 1), mode="replicate")[0]
    channels, height, width = padded.shape
    flat = padded.reshape(channels, height * width)
    offsets = [(dy, dx) for dy in range(3) for dx in range(3)]
    index = torch.stack([(rows + dy) * width + (cols + dx) for dy, dx in offsets])  # (9, N)
    return flat[:, index.reshape(-1)].reshape(channels, 9, -1).permute(2, 1, 0)


def hole_at_stride(hole: Tensor, stride: int, shape: Sequence[int]) -> Tensor:
    """``(h, w)`` bool: feature positions whose ``stride`` x ``stride`` pixel cell touches the hole.

    Position ``(i, j)`` covers pixels ``[i*stride, (i+1)*stride)``; pixels past the last whole cell
    (dropped by the network's floor pooling) have no position.
    """
    pooled = F.max_pool2d(hole.float(), stride, stride, ceil_mode=True) if stride > 1 else hole
    height, width = int(shape[0]), int(shape[1])
    if pooled.shape[-2] < height or pooled.shape[-1] < width:
        raise InputError(
            f"features of size {height}x{width} do not fit a {tuple(hole.shape[-2:])} "
            f"image at stride {stride}"
        )
    return pooled[0, 0, :height, :width] > 0.5


def source_positions(hole_f: Tensor, max_sources: int) -> tuple[Tensor, Tensor]:
    """Centres of the 3x3 patches that lie wholly outside the hole, on a regular grid thinned
    (every ``step``-th row and column) so at most ``max_sources`` remain."""
    touched = F.max_pool2d(hole_f[None, None].float(), 3, 1, 1)[0, 0] > 0.5
    rows, cols = torch.nonzero(~touched, as_tuple=True)
    step = max(1, math.isqrt(rows.numel() // max(1, max_sources)))
    while True:
        keep = (rows % step == 0) & (cols % step == 0)
        if int(keep.sum()) <= max_sources:
            return rows[keep], cols[keep]
        step += 1


# ---------------------------------------------------------------------------------------------
# Energies
# ---------------------------------------------------------------------------------------------


#: Rec. 601 luma weights; chroma is what is left of a colour once its luma is taken out
LUMA = (0.299, 0.587, 0.114)


def content_energy(image: Tensor, content: Tensor, hole: Tensor) -> Tensor:
    """Mean squared difference to the content prediction over the hole's pixels and channels."""
    count = hole.sum().clamp_min(1) * image.shape[1]
    return ((image - content) ** 2 * hole).sum() / count


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` (kernel radius 3 sigma, reflected borders);
    ``sigma`` <= 0 returns ``image``."""
    if sigma <= 0:
        return image
    radius = min(max(1, math.ceil(3 * sigma)), min(image.shape[-2:]) - 1)
    taps = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = image.shape[1]
    out = F.pad(image, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def lowpass_energy(image: Tensor, content: Tensor, hole: Tensor, sigma: float) -> Tensor:
    """:func:`content_energy` of the two images' Gaussian low-passes (``sigma`` px): the content
    prediction keeps the colour and the large shapes and leaves the detail free."""
    return content_energy(gaussian_blur(image, sigma), gaussian_blur(content, sigma), hole)


def chroma_energy(image: Tensor, reference: Tensor, hole: Tensor) -> Tensor:
    """Mean squared difference of the chroma (RGB minus luma) over the hole's pixels: changes of
    brightness are free, changes of hue (the colour fringes) are not."""
    luma = image.new_tensor(LUMA).view(1, 3, 1, 1)
    chroma = image - (image * luma).sum(dim=1, keepdim=True)
    reference_chroma = reference - (reference * luma).sum(dim=1, keepdim=True)
    return content_energy(chroma, reference_chroma, hole)


def tv_energy(image: Tensor, hole: Tensor) -> Tensor:
    """Mean squared difference of neighbouring pixels over the pairs that touch the hole."""
    rows = torch.maximum(hole[..., 1:, :], hole[..., :-1, :])
    cols = torch.maximum(hole[..., :, 1:], hole[..., :, :-1])
    total = (((image[..., 1:, :] - image[..., :-1, :]) ** 2) * rows).sum() + (
        ((image[..., :, 1:] - image[..., :, :-1]) ** 2) * cols
    ).sum()
    count = (rows.sum() + cols.sum()).clamp_min(1) * image.shape[1]
    return total / count


@dataclass
class _LayerMatch:
    """One layer's frozen match: target centres, their matched source patches, the scale."""

    rows: Tensor
    cols: Tensor
    matched: Tensor  # (Nt, 9, C)
    scale: float
    sources: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))


class TextureEnergy:
    """The neural-patch texture energy of one image at one scale.

    Parameters
    ----------
    feature_net : callable
        Image ``(1, 3, H, W)`` -> ``{layer: features}``; must return every layer of ``layers``.
    layers : sequence of str
        The layers whose patches are matched (``relu3_1``, ``relu4_1`` in [1]_).
    hole : Tensor
        ``(1, 1, H, W)``, 1 = missing.
    geometry : dict, optional
        :class:`LayerGeometry` per layer; default :data:`VGG19_GEOMETRY`.
    layer_weights : sequence of float, optional
        Weight of each layer's term (default 1 each).
    max_sources : int
        Most source patches per layer (a regular grid is thinned to this many).
    chunk : int
        Most pairs scored at once by :func:`nearest_patches`.

    Raises
    ------
    InputError
        A layer without known geometry.
    WeightsError
        The feature network does not produce one of ``layers`` (never silently replaced).
    """

    def __init__(
        self,
        feature_net: FeatureNet,
        layers: Sequence[str],
        hole: Tensor,
        *,
        geometry: dict[str, LayerGeometry] | None = None,
        layer_weights: Sequence[float] | None = None,
        max_sources: int = 4096,
        chunk: int = DEFAULT_CHUNK,
    ) -> None:
        geometry = VGG19_GEOMETRY if geometry is None else geometry
        unknown = [layer for layer in layers if layer not in geometry]
        if unknown:
            raise InputError(
                f"unknown feature layer {unknown[0]!r}; known layers: {', '.join(geometry)}"
            )
        if not layers:
            raise InputError("the texture energy needs at least one feature layer")
        weights = list(layer_weights) if layer_weights is not None else [1.0] * len(layers)
        if len(weights) != len(layers):
            raise InputError(f"{len(layers)} layers but {len(weights)} layer weights")
        self.feature_net = feature_net
        self.layers = list(layers)
        self.weights = dict(zip(self.layers, weights, strict=True))
        self.geometry = {layer: geometry[layer] for layer in self.layers}
        self.hole = (hole > 0.5).float()
        self.max_sources = int(max_sources)
        self.chunk = int(chunk)
        self.matches: dict[str, _LayerMatch] = {}
        self._scales: dict[str, float] = {}
        self.window = _feature_window(self.hole, self.geometry)

    # -- matching ---------------------------------------------------------------------------
    def _features(self, image: Tensor) -> dict[str, Tensor]:
        features = self.feature_net(image)
        missing = [layer for layer in self.layers if layer not in features]
        if missing:
            raise WeightsError(
                f"the feature network has no layer {missing[0]!r} (it gives "
                f"{', '.join(features) or 'nothing'}); choose layers it provides"
            )
        return features

    @torch.no_grad()
    def update_matches(self, image: Tensor) -> None:
        """Recompute every layer's nearest source patch for each hole patch, from ``image``."""
        features = self._features(image.detach())
        self.matches = {}
        for layer in self.layers:
            match = self._match_layer(layer, features[layer])
            if match is not None:
                self.matches[layer] = match

    def _match_layer(self, layer: str, features: Tensor) -> _LayerMatch | None:
        hole_f = hole_at_stride(self.hole, self.geometry[layer].stride, features.shape[-2:])
        rows, cols = torch.nonzero(hole_f, as_tuple=True)
        src_rows, src_cols = source_positions(hole_f, self.max_sources)
        if rows.numel() == 0 or src_rows.numel() == 0:
            return None  # the layer is too coarse for this image: nothing to match
        source = patch_vectors(features, src_rows, src_cols)  # (Ns, 9, C)
        target = patch_vectors(features, rows, cols)
        nearest = nearest_patches(target.flatten(1), source.flatten(1), chunk=self.chunk)
        if layer not in self._scales:  # fixed per scale, so the energy does not jump
            self._scales[layer] = float(source.pow(2).mean().clamp_min(1e-12))
        return _LayerMatch(rows, cols, source[nearest], self._scales[layer], nearest)

    # -- the energy -------------------------------------------------------------------------
    def __call__(self, image: Tensor) -> Tensor:
        """The energy of ``image`` (differentiable) against the current matches."""
        if not self.matches:
            return image.new_zeros(())
        top, left, bottom, right = self.window
        features = self._features(image[..., top:bottom, left:right])
        total = image.new_zeros(())
        for layer, match in self.matches.items():
            stride = self.geometry[layer].stride
            # padding the crop by replicate where it is not the image border never reaches the
            # matched patches: the window holds a whole patch around each of them
            patches = patch_vectors(
                features[layer], match.rows - top // stride, match.cols - left // stride
            )
            distance = (patches - match.matched).pow(2).mean()
            total = total + self.weights[layer] * distance / match.scale
        return total


def _feature_window(hole: Tensor, geometry: dict[str, LayerGeometry]) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` of the image region whose features the energy needs: the
    hole's bounding box grown by the largest receptive-field radius plus one patch, its origin
    aligned to the coarsest stride (so its feature grid is the whole image's grid)."""
    height, width = hole.shape[-2:]
    rows = torch.nonzero(hole[0, 0].any(dim=1)).flatten()
    cols = torch.nonzero(hole[0, 0].any(dim=0)).flatten()
    if rows.numel() == 0:
        return 0, 0, height, width
    align = max(g.stride for g in geometry.values())
    grow = max(g.radius + 2 * g.stride for g in geometry.values())
    top = max(0, int(rows[0]) - grow) // align * align
    left = max(0, int(cols[0]) - grow) // align * align
    bottom = min(height, int(rows[-1]) + 1 + grow)
    right = min(width, int(cols[-1]) + 1 + grow)
    return top, left, bottom, right


# ---------------------------------------------------------------------------------------------
# The optimisation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefineWeights:
    """Weights of :func:`refine`'s energy (see its docstring); the defaults are holefill's."""

    texture: float = 0.3
    tv: float = 3.0
    content: float = 30.0
    chroma: float = 30.0
    lowpass_sigma: float = 2.0


def refine(
    start: Tensor,
    hole: Tensor,
    content: Tensor,
    texture: TextureEnergy,
    *,
    iterations: int,
    weights: RefineWeights = RefineWeights(),  # noqa: B008 - frozen, shared safely
    match_every: int = 5,
) -> tuple[Tensor, int]:
    """Minimise the neural patch synthesis energy over the hole's pixels of ``start``::

        E(x) = content * |G(x) - G(content)|^2  +  chroma * |chroma(x) - chroma(start)|^2
               + texture * E_texture(x)  +  tv * TV(x)

    (means over the hole; ``G`` a Gaussian low-pass of ``lowpass_sigma`` px) with L-BFGS and a
    strong-Wolfe line search, the nearest patches recomputed every ``match_every`` iterations.
    ``lowpass_sigma = 0`` and ``chroma = 0`` give the plain pixel MSE of Yang et al.

    Parameters
    ----------
    start : Tensor
        ``(1, 3, H, W)`` in [0, 1]: the starting image; its known pixels never change.
    hole : Tensor
        ``(1, 1, H, W)``, 1 = missing.
    content : Tensor
        ``(1, 3, H, W)``: the content prediction whose low frequencies the result keeps.
    texture : TextureEnergy
        The texture term, built for ``hole``.
    iterations : int
        L-BFGS iterations (0 returns ``start``).
    weights : RefineWeights
    match_every : int

    Returns
    -------
    (Tensor, int)
        The result, clamped to [0, 1], and the number of energy evaluations.
    """
    if iterations <= 0 or not hole.any():
        return start, 0
    free = hole > 0.5
    evaluations = 0
    with torch.enable_grad():
        pixels = start.detach().clone().contiguous().requires_grad_(True)
        optimizer = torch.optim.LBFGS(
            [pixels],
            lr=1.0,
            max_iter=1,
            history_size=10,
            tolerance_grad=0.0,
            tolerance_change=0.0,
            line_search_fn="strong_wolfe",
        )

        def closure() -> Tensor:
            nonlocal evaluations
            evaluations += 1
            optimizer.zero_grad()
            x = torch.where(free, pixels, start)
            energy = weights.content * lowpass_energy(x, content, hole, weights.lowpass_sigma)
            if weights.chroma:
                energy = energy + weights.chroma * chroma_energy(x, start, hole)
            if weights.texture:
                energy = energy + weights.texture * texture(x)
            if weights.tv:
                energy = energy + weights.tv * tv_energy(x, hole)
            energy.backward()
            return energy

        done = 0
        while done < iterations:
            texture.update_matches(torch.where(free, pixels.detach(), start).clamp(0, 1))
            steps = min(match_every, iterations - done)
            optimizer.param_groups[0].update(max_iter=steps, max_eval=steps * 5 // 4)
            optimizer.step(closure)
            done += steps
    return torch.where(free, pixels.detach().clamp(0, 1), start), evaluations
