"""Multi-scale neural patch synthesis: structure from a network, texture from the photo's patches.

Yang et al. [1]_ fill a hole in two stages: a network predicts the hole's content (its colours and
large shapes), then the texture of the photo's own patches is synthesised on top of it, coarse to
fine, up to full resolution. holefill does both on a CPU in seconds:

1. **Content.** The partial-convolution U-Net [2]_ (``content="pconv"``, the shipped network, as
   ``holefill fill -m pconv``) fills the hole at most ``content_side`` (512) px on the long side;
   the Context Encoder variant of [1]_ (``content="context_encoder"``, 128x128) is the other choice.
2. **Texture from patches** (:func:`synthesize_patches`). An image pyramid runs from one level below
   the content network's resolution up to the photo's own. At every level PatchMatch [3]_ matches
   each patch overlapping the hole to a patch of the known region under a *guided* distance: the
   content fill, blurred by ``guide_sigma`` px (at the content network's scale), must match the
   blurred source; the current fill counts with ``fill_weight``. Each hole pixel then copies the
   pixel of its best-matching patch (no averaging, so the copy stays sharp), and the matches pass
   to the next finer level. Only hole pixels change.
3. **Colour and structure stay the content network's.** The fill's low frequencies (a Gaussian of
   ``lowpass_sigma`` px at the content network's scale) are replaced by the content fill's, so the
   patches supply only the detail.
4. ``texture="neural"`` then refines the hole with the paper's neural patch energy
   (:func:`holefill.nn.texture.refine`): each 3x3 patch of VGG-19 relu3_1 and relu4_1 features in
   the hole is pulled towards its nearest patch outside it (normalised cross-correlation), with the
   content term on low frequencies, a chroma term and total variation, coarse to fine over the two
   finest levels up to ``neural_max_side``. It is slower; ``docs/neural_patch.md`` compares both.

Weights files of the Context Encoder (``content_default.safetensors``) are safetensors files whose
header carries ``format`` (``holefill-content``), ``config``
(:class:`~holefill.nn.content.ContentNetConfig` as JSON), ``step`` and ``weights_sha256``.
``holefill train content`` writes them.

References
----------
.. [1] C. Yang, X. Lu, Z. Lin, E. Shechtman, O. Wang and H. Li, "High-Resolution Image Inpainting
   using Multi-Scale Neural Patch Synthesis", CVPR 2017. https://arxiv.org/abs/1611.09969
.. [2] G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao and B. Catanzaro, "Image Inpainting for
   Irregular Holes Using Partial Convolutions", ECCV 2018.
.. [3] C. Barnes, E. Shechtman, A. Finkelstein and D. B. Goldman, "PatchMatch: A Randomized
   Correspondence Algorithm for Structural Image Editing", SIGGRAPH 2009.
.. [4] D. Pathak, P. Krahenbuhl, J. Donahue, T. Darrell and A. A. Efros, "Context Encoders: Feature
   Learning by Inpainting", CVPR 2016.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from numba import njit
from torch import Tensor

from holefill.errors import InputError, WeightsError
from holefill.inpainter import Inpainter
from holefill.methods.pconv import DEFAULT_WEIGHTS_NAME as PCONV_WEIGHTS_NAME
from holefill.registry import Package, PackagedWeights, register_method
from holefill.weights import (
    cached_network,
    load_network,
    packaged_file,
    read_weights,
    resolve_device,
    vgg19_file,
    write_weights,
)

FORMAT = "holefill-content"
DEFAULT_WEIGHTS_NAME = "content_default.safetensors"
CONTENTS = ("pconv", "context_encoder")
TEXTURES = ("patch", "neural")
#: how a user allows the VGG-19 download, for the message when no VGG-19 file is found
DOWNLOAD_HINT = "-p download_vgg=true (download_vgg=True in Python)"

__all__ = [
    "NeuralPatchInpainter",
    "PatchSettings",
    "synthesize_patches",
    "texture_energy",
    "pyramid_sizes",
    "save_content",
    "load_content",
    "read_content",
    "default_weights_path",
    "FORMAT",
]


def default_weights_path() -> Path:
    """The packaged content network (``holefill/weights/content_default.safetensors``)."""
    return packaged_file(DEFAULT_WEIGHTS_NAME)


# ---------------------------------------------------------------------------------------------
# The weights file
# ---------------------------------------------------------------------------------------------


def save_content(
    state_dict: dict[str, Tensor],
    config,
    path: str | os.PathLike,
    *,
    dtype: str = "float16",
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a :class:`~holefill.nn.content.ContentNet`'s ``state_dict`` and ``config`` as a
    ``holefill-content`` weights file: :func:`holefill.weights.write_weights`, whose parameters
    these are."""
    return write_weights(state_dict, config, path, FORMAT, dtype=dtype, metadata=metadata)


def read_content(path: str | os.PathLike):
    """``(config, tensors, header)`` of a content-network file, without building the network."""
    from holefill.nn.content import ContentNetConfig

    return read_weights(
        path,
        FORMAT,
        ContentNetConfig,
        what="content-network weights",
        kind="content-network",
        export_hint="export one with `holefill train content ... --out RUN`",
    )


def load_content(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Build a :class:`~holefill.nn.content.ContentNet` from a weights file (eval mode, float32)."""
    from holefill.nn.content import ContentNet

    return load_network(path, read_content, ContentNet, device)


def _content_net(path: Path, device: torch.device):
    return cached_network("content", path, device, lambda: load_content(path, device))


def _feature_net(vgg_weights: Path, layers: tuple[str, ...], device: torch.device):
    from holefill.nn.vgg import build_feature_net

    return cached_network(
        "vgg19",
        vgg_weights,
        device,
        lambda: build_feature_net("vgg19", weights=vgg_weights, taps=layers).to(device),
        layers,
    )


# ---------------------------------------------------------------------------------------------
# The pyramid
# ---------------------------------------------------------------------------------------------


def pyramid_sizes(
    height: int, width: int, *, content_side: int = 512, coarser: int = 1, min_side: int = 1
) -> list[tuple[int, int]]:
    """Sizes of the synthesis pyramid, coarsest first, each level half the next (rounded up).

    Levels halve from the photo's size until ``coarser`` levels lie below the first one the
    content network sees whole (longest side <= ``content_side``), or until a shorter side would
    drop below ``min_side``.

    Examples
    --------
    >>> pyramid_sizes(256, 256)
    [(128, 128), (256, 256)]
    >>> pyramid_sizes(1536, 2048)
    [(192, 256), (384, 512), (768, 1024), (1536, 2048)]
    """
    if height < 1 or width < 1 or content_side < 1 or coarser < 0:
        raise InputError(f"invalid pyramid request {height}x{width} at content side {content_side}")
    sizes = [(height, width)]
    below = -1 if max(height, width) > content_side else 0
    while below < coarser:
        next_size = ((sizes[0][0] + 1) // 2, (sizes[0][1] + 1) // 2)
        if min(next_size) < min_side or next_size == sizes[0]:
            break
        sizes.insert(0, next_size)
        if max(next_size) <= content_side:
            below += 1
    return sizes


def _shrink(image: Tensor, hole: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Area-downscaled image and hole; a pixel is hole if any pixel under it was."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image, hole
    small_hole = (F.interpolate(hole, size=size, mode="area") > 0).to(image.dtype)
    return F.interpolate(image, size=size, mode="area"), small_hole


def _resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic (antialiased when shrinking) resize to ``size``, clamped to [0, 1]."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    shrink = size[0] < image.shape[-2] or size[1] < image.shape[-1]
    return F.interpolate(
        image, size=size, mode="bicubic", align_corners=False, antialias=shrink
    ).clamp(0, 1)


# ---------------------------------------------------------------------------------------------
# Texture from the photo's patches
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatchSettings:
    """Settings of :func:`synthesize_patches` (see :class:`NeuralPatchInpainter`)."""

    patch_size: int = 7
    iterations: tuple[int, ...] = (6, 3, 2, 1)
    guide_sigma: float = 4.0
    lowpass_sigma: float = 2.5
    fill_weight: float = 0.5
    energy_weight: float = 2.0
    energy_sigma: float = 4.0
    coarser_levels: int = 1


@dataclass(frozen=True)
class _Level:
    """One scale: known pixels, hole, content fill, and the size over the content network's."""

    image: np.ndarray
    hole: np.ndarray
    content: np.ndarray
    scale: float


def synthesize_patches(
    image: np.ndarray,
    hole: np.ndarray,
    content: np.ndarray,
    *,
    content_scale: float = 1.0,
    settings: PatchSettings = PatchSettings(),  # noqa: B008 - frozen, shared safely
    seed: int = 0,
) -> np.ndarray:
    """Fill ``hole`` with the photo's own patches, guided by a content fill, coarse to fine.

    At every level of :func:`pyramid_sizes`, PatchMatch (Barnes et al. 2009) matches each patch
    overlapping the hole to a wholly known patch under the distance
    ``|G(content) - G(source)|^2 + energy_weight^2 |T(target) - T(source)|^2
    + fill_weight^2 |fill - source|^2`` (``G``: a Gaussian of ``guide_sigma * scale`` px; ``T``:
    :func:`texture_energy`, carried into the hole from its edge; the first search of the
    coarsest level leaves the fill out); each hole pixel copies the pixel of the best-matching
    patch over it, and the matches are doubled for the next level (Wexler et al. 2007).
    Finally each hole pixel takes the content fill's low frequencies (a Gaussian of
    ``lowpass_sigma * content_scale`` px) plus the detail (the known pixels minus their own
    Gaussian) of the pixel the matches copied: the copies' seams carry no steps of brightness.

    Parameters
    ----------
    image : (H, W, 3) float32 array in [0, 1]
        Hole pixels are ignored.
    hole : (H, W) bool array
        True where pixels are missing.
    content : (H, W, 3) float32 array in [0, 1]
        The content network's fill (its known pixels are ``image``'s).
    content_scale : float
        The photo's size over the size the content network worked at (>= 1; 4 for a 2048-px photo
        whose content was predicted at 512 px): the guide and low-pass widths scale with it.
    settings : PatchSettings
    seed : int
        The same seed gives the same fill.

    Returns
    -------
    (H, W, 3) float32 array
        The completed image; known pixels are returned unchanged.
    """
    from holefill.methods.patchmatch import _usable_radius

    image = np.ascontiguousarray(image, dtype=np.float32)
    hole = np.ascontiguousarray(hole, dtype=bool)
    content = np.where(hole[..., None], content, image).astype(np.float32)
    radius = _usable_radius(hole, settings.patch_size // 2)
    if not hole.any() or radius == 0:  # no known patch to copy from: the content is the fill
        return content
    levels = _levels(image, hole, content, content_scale, settings, radius)
    filled, matches = _match_and_copy(levels, radius, settings, seed)
    sigma = settings.lowpass_sigma * content_scale
    if sigma > 0:  # the known pixels' detail, pasted by the same matches, on the content's base
        detail = image - _known_lowpass(image, hole, sigma)
        filled = np.clip(_paste(detail, levels[-1], matches, radius) + _blur(content, sigma), 0, 1)
    return np.where(hole[..., None], filled, image).astype(np.float32)


def _known_lowpass(image: np.ndarray, hole: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian of the known pixels alone (normalised convolution: the hole does not leak in)."""
    known = (~hole).astype(np.float32)
    weight = np.maximum(_blur(known, sigma), 1e-6)[..., None]
    return _blur(image * known[..., None], sigma) / weight


def texture_energy(image: np.ndarray, hole: np.ndarray, sigma: float) -> np.ndarray:
    """How textured the photo is around each pixel, carried from the known region into the hole.

    The root of the local mean squared gradient of the grey image (Sobel, divided by 8: grey
    levels per pixel), averaged with a Gaussian of ``sigma`` px over known pixels only, then
    filled into the hole by Telea's method (OpenCV) from the hole's edge. The patch distance of
    :func:`synthesize_patches` compares it, so that a hole among grass takes grass, not the
    smoother patches that a plain sum of squared differences prefers.

    Parameters
    ----------
    image : (H, W, 3) float32 array in [0, 1]
    hole : (H, W) bool array
    sigma : float
        Width of the local average, in px.

    Returns
    -------
    (H, W) float32 array
    """
    grey = cv2.cvtColor(np.ascontiguousarray(image, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    measured = cv2.erode(
        (~hole).astype(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE
    ).astype(np.float32)  # pixels whose 3x3 Sobel window is wholly known
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 8
    weight = _blur(measured, sigma)
    local = _blur((gx * gx + gy * gy) * measured, sigma) / np.maximum(weight, 1e-6)
    unknown = (weight < 0.5).astype(np.uint8)
    energy = np.sqrt(np.maximum(local, 0)).astype(np.float32)
    top = float(energy.max())
    if unknown.any() and not unknown.all() and top > 0:
        # in 16 bits: OpenCV's float32 Telea returns values far outside the input's range
        levels = np.rint(energy * (65535 / top)).astype(np.uint16)
        filled = cv2.inpaint(levels, unknown, 3, cv2.INPAINT_TELEA)
        energy = np.where(unknown > 0, filled.astype(np.float32) * (top / 65535), energy)
    return energy.astype(np.float32)


def _levels(
    image: np.ndarray,
    hole: np.ndarray,
    content: np.ndarray,
    content_scale: float,
    settings: PatchSettings,
    radius: int,
) -> list[_Level]:
    """The pyramid, coarsest first, without levels too small for a patch to copy from."""
    from holefill.methods.patchmatch import _source_centres

    height, width = hole.shape
    side = max(height, width) / max(content_scale, 1e-6)
    sizes = pyramid_sizes(
        height,
        width,
        content_side=max(1, round(side)),
        coarser=settings.coarser_levels,
        min_side=4 * (2 * radius + 1),
    )
    levels = [_Level(image, hole, content, content_scale)]
    for size in reversed(sizes[:-1]):
        finer = levels[0]
        small_image, small_hole = _halve(finer.image, finer.hole, size)
        if not small_hole.any() or not _source_centres(small_hole, radius).any():
            break
        small_content = cv2.resize(finer.content, size[::-1], interpolation=cv2.INTER_AREA)
        levels.insert(0, _Level(small_image, small_hole, small_content, finer.scale / 2))
    return levels


def _halve(
    image: np.ndarray, hole: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Area-shrink to ``size``: a pixel is the mean of its known part, and hole if any of it was."""
    known = (~hole).astype(np.float32)
    known_fraction = cv2.resize(known, size[::-1], interpolation=cv2.INTER_AREA)
    known_sum = cv2.resize(image * known[..., None], size[::-1], interpolation=cv2.INTER_AREA)
    small_hole = known_fraction < 1 - 1e-3
    small_image = known_sum / np.maximum(known_fraction, 1e-6)[..., None]
    small_image[small_hole] = 0
    return np.ascontiguousarray(small_image, dtype=np.float32), small_hole


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


@dataclass(frozen=True)
class _Matches:
    """The finest level's matches: target patch centres, their sources and distances."""

    targets: np.ndarray
    nnf: np.ndarray
    distance: np.ndarray


def _paste(source: np.ndarray, level: _Level, matches: _Matches, radius: int) -> np.ndarray:
    """``source``'s pixels under the matched patches, put on the hole (zero elsewhere): the best
    match's pixel at the content network's resolution, beyond it a vote of the matches weighted
    by their distances (sharp copies there would show their seams)."""
    from holefill.methods.patchmatch import _rows, _vote

    source = np.ascontiguousarray(source, dtype=np.float32)
    out = np.zeros_like(source)
    targets, nnf, distance = matches.targets, matches.nnf, matches.distance
    if level.scale > 1:
        scores = distance[targets[:, 0], targets[:, 1]]
        sigma2 = max(float(np.median(scores)), 1e-6)
        weights = np.exp(-np.minimum(scores / (2 * sigma2), 40.0)).astype(np.float32)
        _vote(_rows(source), level.hole, targets, nnf, weights, radius, _rows(out))
    else:
        _copy_best(_rows(source), level.hole, targets, nnf, distance, radius, _rows(out))
    return out


def _match_and_copy(
    levels: list[_Level], radius: int, settings: PatchSettings, seed: int
) -> tuple[np.ndarray, _Matches]:
    """Guided PatchMatch and best-patch copying at every level; returns the finest fill and its
    matches."""
    from holefill.methods.patchmatch import (
        _COHERENCE,
        _patchmatch,
        _random_nnf,
        _rows,
        _source_centres,
        _target_centres,
        _upsample_nnf,
        _vote,
    )

    filled = nnf = matches = None
    for index, level in enumerate(levels):
        source_ok = _source_centres(level.hole, radius)
        targets = _target_centres(level.hole, radius)
        guide = _blur(level.content, settings.guide_sigma * level.scale)
        if settings.energy_weight > 0:
            energy = texture_energy(level.image, level.hole, settings.energy_sigma * level.scale)
            guide = np.concatenate([guide, settings.energy_weight * energy[..., None]], axis=2)
        if nnf is None:
            filled = level.content
            nnf = _random_nnf(level.hole.shape, targets, source_ok, seed)
        else:  # the coarse matches, doubled, copy the fine pixels: a sharp start
            nnf, _ = _upsample_nnf(nnf, targets, source_ok, radius, seed + index)
            filled = np.array(level.image, order="C")
            ones = np.ones(len(targets), np.float32)
            _vote(_rows(level.image), level.hole, targets, nnf, ones, radius, _rows(filled))
        searches = settings.iterations[min(index, len(settings.iterations) - 1)]
        for iteration in range(max(searches, 1)):  # 0 searches: only the distances, for copying
            weight = 0.0 if index == 0 and iteration == 0 else settings.fill_weight
            features = np.concatenate([weight * filled, guide], axis=2)
            distance = np.full(level.hole.shape, np.inf, np.float32)
            sweeps = 0 if searches == 0 else 3 if index == 0 else 2
            _patchmatch(
                _rows(features),
                source_ok,
                targets,
                radius,
                sweeps,
                seed + 7919 * index + iteration,
                _COHERENCE,
                nnf,
                distance,
                _search_radius(index, level, radius),
            )
            matches = _Matches(targets, nnf, distance)
            pasted = _paste(level.image, level, matches, radius)
            filled = np.where(level.hole[..., None], pasted, level.image)
    return filled, matches


def _search_radius(index: int, level: _Level, radius: int) -> int:
    """Past the content network's resolution the matches doubled from the level below are only
    refined, within one patch width (faster, and the copies stay coherent); 0: everywhere."""
    return 2 * radius + 1 if index and level.scale > 1 else 0


@njit(cache=True)
def _copy_best(rows, hole, targets, nnf, distance, radius, out):
    """Each hole pixel copies its value from the matched patch over it with the least distance
    (the first in raster order on ties): the copy stays as sharp as the source."""
    height, width = hole.shape
    channels = rows.shape[1] // width
    best = np.full((height, width), np.inf, np.float32)
    for k in range(targets.shape[0]):
        ty, tx = targets[k, 0], targets[k, 1]
        sy, sx = nnf[ty, tx, 0], nnf[ty, tx, 1]
        score = distance[ty, tx]
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                y, x = ty + dy, tx + dx
                if hole[y, x] and score < best[y, x]:
                    best[y, x] = score
                    for c in range(channels):
                        out[y, channels * x + c] = rows[sy + dy, channels * (sx + dx) + c]


# ---------------------------------------------------------------------------------------------
# The method
# ---------------------------------------------------------------------------------------------


@dataclass
class _Timing:
    """Seconds spent per stage, for ``verbose``."""

    content: float = 0.0
    patches: float = 0.0
    levels: list[tuple[tuple[int, int], int, int, float]] = field(default_factory=list)

    def report(self) -> str:
        lines = [
            f"neural_patch: content {self.content:.2f} s",
            f"neural_patch: patch synthesis {self.patches:.2f} s",
        ]
        for size, iterations, evaluations, seconds in self.levels:
            lines.append(
                f"neural_patch: neural patch energy at {size[0]}x{size[1]}: {iterations} "
                f"iterations ({evaluations} evaluations), {seconds:.2f} s"
            )
        whole = self.content + self.patches + sum(level[3] for level in self.levels)
        lines.append(f"neural_patch: total {whole:.2f} s")
        return "\n".join(lines)


@register_method(
    "neural_patch",
    summary="Multi-scale neural patch synthesis (Yang et al. 2017): PConv content, texture "
    "from the photo's own patches at full resolution",
    needs=(
        PackagedWeights(PCONV_WEIGHTS_NAME),
        Package("numba"),
        Package("cv2", "opencv-python-headless"),
    ),
)
class NeuralPatchInpainter(Inpainter):
    """Fill holes by multi-scale neural patch synthesis [1]_ on a content network.

    Parameters
    ----------
    content : {"pconv", "context_encoder"}
        Content network: the shipped partial-convolution U-Net (``holefill fill -m pconv``) or the
        Context Encoder variant of [1]_ (128x128, ``holefill train content``).
    texture : {"patch", "neural"}
        ``patch``: texture copied from the photo's patches (:func:`synthesize_patches`).
        ``neural``: that, then refined with the neural patch energy of [1]_ on VGG-19 features
        (slower; needs the VGG-19 file).
    weights : str, optional
        Weights of the content network (PConv weights, or a ``.safetensors`` file from
        ``holefill train content`` with ``content="context_encoder"``). Default: the packaged file.
    vgg_weights : str, optional
        VGG-19 file for ``texture="neural"`` (``vgg19_to_relu4_1.pth`` or torchvision's
        ``vgg19-dcbb9e9d.pth``); default ``$HOLEFILL_VGG_WEIGHTS``, else torchvision's file in the
        torch hub cache.
    download_vgg : bool
        With ``texture="neural"`` and no VGG-19 file found, download torchvision's (548 MB) into
        the torch hub cache; without it that is an error that says how to give a file.
    content_side : int
        Longest side the content network works at (PConv; larger windows are shrunk for it).
    patch_size : int
        Width of the square patches (odd, >= 3).
    iterations : int or sequence of int
        Search-and-copy iterations per pyramid level, coarsest first (levels past the list's end
        use its last entry).
    guide_sigma : float
        Blur of the content guide in the patch distance, in px at the content network's scale.
    lowpass_sigma : float
        Frequencies below a Gaussian of this many px (at the content network's scale) come from
        the content network, the rest from the patches; 0 keeps the patches' own.
    fill_weight : float
        Weight of the current fill against the guide's 1 in the patch distance.
    energy_weight : float
        Weight of the texture-energy channel (:func:`texture_energy`) in the patch distance: it
        steers textured parts of the hole to textured sources; 0 leaves it out.
    energy_sigma : float
        Width in px (at the content network's scale) of the local average of that energy.
    neural_iterations : int or sequence of int
        L-BFGS iterations of the neural patch energy per level (``texture="neural"``), finest
        levels last: ``(10, 5)`` runs 10 at the second finest level and 5 at the finest.
    alpha, beta, content_weight, chroma_weight : float
        Weights of the texture, total-variation, low-frequency content and chroma terms of
        :func:`holefill.nn.texture.refine`.
    layers : sequence of str
        VGG-19 layers of the neural patch term (``relu3_1``, ``relu4_1`` as in [1]_).
    match_every : int
        L-BFGS iterations between two recomputations of the nearest feature patches.
    max_sources : int
        Most candidate source feature patches per layer (a thinned regular grid beyond).
    neural_max_side : int
        Longest side the neural patch energy is optimised at; finer levels get its change
        upscaled.
    device : str
        ``cpu``, ``cuda`` or ``auto`` (the networks; patch synthesis runs on the CPU).
    verbose : bool
        Print the time spent per stage.
    strategy, max_side, margin, seed
        See :class:`~holefill.inpainter.Inpainter`. ``crop`` (default) processes a window around
        each hole region at full resolution (up to ``max_side``, 4096 px); the same seed gives
        the same fill.

    References
    ----------
    .. [1] C. Yang, X. Lu, Z. Lin, E. Shechtman, O. Wang and H. Li, "High-Resolution Image
       Inpainting using Multi-Scale Neural Patch Synthesis", CVPR 2017.

    Examples
    --------
    >>> import holefill, torch
    >>> inpainter = holefill.create_inpainter("neural_patch")  # doctest: +SKIP
    >>> image, hole = torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)  # doctest: +SKIP
    >>> hole[..., 24:40, 24:40] = 1  # doctest: +SKIP
    >>> inpainter.fill(image, hole).shape  # doctest: +SKIP
    torch.Size([1, 3, 64, 64])
    """

    name = "neural_patch"
    default_strategy = "crop"
    default_max_side = 4096

    def __init__(
        self,
        *,
        content: str = "pconv",
        texture: str = "patch",
        weights: str | None = None,
        vgg_weights: str | None = None,
        download_vgg: bool = False,
        content_side: int = 512,
        patch_size: int = 7,
        iterations: int | Sequence[int] = (6, 3, 2, 1),
        guide_sigma: float = 4.0,
        lowpass_sigma: float = 2.5,
        fill_weight: float = 0.5,
        energy_weight: float = 2.0,
        energy_sigma: float = 4.0,
        neural_iterations: int | Sequence[int] = (10, 5),
        alpha: float = 0.3,
        beta: float = 3.0,
        content_weight: float = 30.0,
        chroma_weight: float = 30.0,
        layers: Sequence[str] = ("relu3_1", "relu4_1"),
        match_every: int = 5,
        max_sources: int = 4096,
        neural_max_side: int = 1024,
        device: str = "cpu",
        verbose: bool = False,
        strategy: str | None = None,
        max_side: int | None = None,
        margin: int = 32,
        seed: int = 0,
    ) -> None:
        super().__init__(strategy=strategy, max_side=max_side, margin=margin, seed=seed)
        if content not in CONTENTS:
            raise InputError(f"unknown content network {content!r}; use {' or '.join(CONTENTS)}")
        if texture not in TEXTURES:
            raise InputError(f"unknown texture {texture!r}; use {' or '.join(TEXTURES)}")
        if patch_size < 3 or patch_size % 2 == 0:
            raise InputError(f"patch_size must be an odd number >= 3, got {patch_size}")
        if min(guide_sigma, lowpass_sigma, fill_weight, energy_weight, alpha, beta) < 0:
            raise InputError(
                "guide_sigma, lowpass_sigma, fill_weight, energy_weight, alpha and beta must be >= 0"
            )
        if energy_sigma <= 0:
            raise InputError(f"energy_sigma must be > 0, got {energy_sigma}")
        if min(content_weight, chroma_weight) < 0:
            raise InputError("content_weight and chroma_weight must be >= 0")
        if content_side < 16 or neural_max_side < 16 or match_every < 1 or max_sources < 1:
            raise InputError(
                "content_side and neural_max_side must be >= 16, match_every and max_sources >= 1"
            )
        self.content, self.texture = content, texture
        self.content_side = int(content_side)
        self.patches = PatchSettings(
            patch_size=int(patch_size),
            iterations=tuple(_iteration_list(iterations, "iterations")),
            guide_sigma=float(guide_sigma),
            lowpass_sigma=float(lowpass_sigma),
            fill_weight=float(fill_weight),
            energy_weight=float(energy_weight),
            energy_sigma=float(energy_sigma),
        )
        self.neural_iterations = _iteration_list(neural_iterations, "neural_iterations")
        self.alpha, self.beta = float(alpha), float(beta)
        self.content_weight, self.chroma_weight = float(content_weight), float(chroma_weight)
        self.layers = _layer_tuple(layers, "layers")
        self.match_every, self.max_sources = int(match_every), int(max_sources)
        self.neural_max_side, self.verbose = int(neural_max_side), bool(verbose)
        self.device = resolve_device(device)
        self.content_model = self._load_content(weights)
        self.vgg_weights = None
        if texture == "neural":  # fail now on a missing file or layer
            self.vgg_weights = vgg19_file(
                vgg_weights, download=bool(download_vgg), download_hint=DOWNLOAD_HINT
            )
            _feature_net(self.vgg_weights, self.layers, self.device)

    def __repr__(self) -> str:
        return (
            f"NeuralPatchInpainter(content={self.content!r}, texture={self.texture!r}, "
            f"patches={self.patches}, device={str(self.device)!r}, "
            f"strategy={self.strategy!r}, max_side={self.max_side}, seed={self.seed})"
        )

    # -- setup ------------------------------------------------------------------------------
    def _load_content(self, weights: str | None):
        if self.content == "pconv":
            from holefill.methods.pconv import PConvInpainter

            return PConvInpainter(
                weights=weights,
                device=str(self.device),
                strategy="resize",
                max_side=self.content_side,
            )
        path = Path(weights) if weights else default_weights_path()
        if not path.is_file():
            raise WeightsError(
                f"no content-network weights: {path} not found; pass weights=FILE.safetensors "
                "(--weights) or train one with `holefill train content`"
            )
        return _content_net(path, self.device)

    # -- the algorithm ----------------------------------------------------------------------
    def _fill(self, image: Tensor, hole: Tensor) -> Tensor:
        return torch.cat(
            [self._fill_single(image[i : i + 1], hole[i : i + 1]) for i in range(image.shape[0])]
        )

    def _fill_single(self, image: Tensor, hole: Tensor) -> Tensor:
        timing, source_device = _Timing(), image.device
        hole = hole.to(self.device)
        image = image.to(self.device) * (1 - hole)  # nothing of the hole's old pixels may leak in
        started = time.perf_counter()
        content, content_scale = self._predict_content(image, hole)
        timing.content = self._elapsed(started)
        started = time.perf_counter()
        filled = synthesize_patches(
            _to_array(image),
            _to_array(hole)[..., 0] > 0.5,
            _to_array(content),
            content_scale=content_scale,
            settings=self.patches,
            seed=self.seed,
        )
        result = torch.from_numpy(filled).permute(2, 0, 1)[None].to(self.device)
        timing.patches = time.perf_counter() - started
        if self.texture == "neural":
            result = self._refine(result, hole, content, content_scale, timing)
        if self.verbose:
            print(timing.report(), file=sys.stderr, flush=True)
        return result.to(source_device)

    def _elapsed(self, started: float) -> float:
        """Seconds since ``started``, after the GPU's queued work when timing is printed."""
        if self.verbose and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - started

    @torch.no_grad()
    def _predict_content(self, image: Tensor, hole: Tensor) -> tuple[Tensor, float]:
        """The content fill at full size (known pixels composited back) and the full size over
        the size the network saw."""
        height, width = image.shape[-2:]
        if self.content == "pconv":
            predicted = self.content_model.fill(image, hole)
            return predicted, max(height, width) / min(max(height, width), self.content_side)
        side = self.content_model.size
        if min(image.shape[-2:]) >= side:
            small, small_hole = _shrink(image, hole, (side, side))
        else:  # a small window: enlarge it; a pixel near the hole counts as hole
            small = _resize(image, (side, side))
            small_hole = (
                F.interpolate(hole, size=(side, side), mode="bilinear", align_corners=False) > 0
            ).float()
        predicted = _resize(self.content_model(small, small_hole).float(), (height, width))
        return torch.where(hole > 0.5, predicted, image), max(height, width) / side

    def _refine(
        self, filled: Tensor, hole: Tensor, content: Tensor, content_scale: float, timing: _Timing
    ) -> Tensor:
        """The neural patch energy, coarse to fine over the finest levels up to
        ``neural_max_side``; each level starts from the patch fill plus the change made below."""
        from holefill.nn.texture import RefineWeights, TextureEnergy, refine

        height, width = filled.shape[-2:]
        sizes = [
            size
            for size in pyramid_sizes(
                height,
                width,
                content_side=self.neural_max_side,
                coarser=len(self.neural_iterations) - 1,
            )
            if max(size) <= self.neural_max_side
        ][-len(self.neural_iterations) :]
        change = None
        for size, iterations in zip(sizes, self.neural_iterations[-len(sizes) :], strict=True):
            started = time.perf_counter()
            known, level_hole = _shrink(filled * (1 - hole), hole, size)
            base = torch.where(level_hole > 0.5, _resize(filled, size), known)
            start = base if change is None else (base + _resize_change(change, size)).clamp(0, 1)
            start = torch.where(level_hole > 0.5, start, known)
            texture = TextureEnergy(
                _feature_net(self.vgg_weights, self.layers, self.device),
                self.layers,
                level_hole,
                max_sources=self.max_sources,
            )
            weights = RefineWeights(
                texture=self.alpha,
                tv=self.beta,
                content=self.content_weight,
                chroma=self.chroma_weight,
                lowpass_sigma=self.patches.lowpass_sigma * content_scale * size[0] / height,
            )
            refined, evaluations = refine(
                start,
                level_hole,
                _resize(content, size),
                texture,
                iterations=iterations,
                weights=weights,
                match_every=self.match_every,
            )
            change = (refined - base) * level_hole
            timing.levels.append((size, iterations, evaluations, self._elapsed(started)))
        if change is None:
            return filled
        return torch.where(
            hole > 0.5, (filled + _resize_change(change, (height, width))), filled
        ).clamp(0, 1)


def _resize_change(change: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear upscaling of a signed change (no clamping)."""
    if tuple(change.shape[-2:]) == tuple(size):
        return change
    return F.interpolate(change, size=size, mode="bilinear", align_corners=False)


def _to_array(tensor: Tensor) -> np.ndarray:
    """``(1, C, H, W)`` -> ``(H, W, C)`` float32 on the CPU."""
    return np.ascontiguousarray(tensor[0].permute(1, 2, 0).float().cpu().numpy())


def _iteration_list(iterations: int | Sequence[int], name: str) -> list[int]:
    values = [iterations] if isinstance(iterations, int | float) else list(iterations)
    if not values or any(int(v) != v or v < 0 for v in values):
        raise InputError(f"{name} must be an integer >= 0 or a list of them, got {iterations!r}")
    return [int(v) for v in values]


def _layer_tuple(layers: Sequence[str], name: str) -> tuple[str, ...]:
    if isinstance(layers, str):
        layers = [part.strip() for part in layers.split(",") if part.strip()]
    layers = tuple(layers)
    if not layers:
        raise InputError(f"{name} must name at least one VGG-19 layer (e.g. relu3_1)")
    return layers
