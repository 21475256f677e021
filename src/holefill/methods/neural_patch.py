"""Multi-scale neural patch synthesis: a content network, then VGG-19 texture optimisation.

Yang et al. [1]_ fill a hole in two stages. A content network (a Context Encoder [2]_ variant,
:class:`~holefill.nn.content.ContentNet`) predicts the hole's coarse content at 128x128. Then, from
coarse to fine over an image pyramid, the hole's pixels ``x`` are optimised with L-BFGS to minimise::

    E(x) = ||x - x0||^2_hole  +  alpha * E_texture(x)  +  beta * TV(x)

where ``x0`` is the content prediction (at the coarsest scale) or the upsampled result of the
previous scale, and ``E_texture`` (:class:`~holefill.nn.texture.TextureEnergy`) pulls each 3x3 VGG-19
feature patch in the hole towards its most similar patch outside the hole (normalised
cross-correlation, matches recomputed every ``match_every`` iterations). Only hole pixels are free;
known pixels never change.

Weights files (``content_default.safetensors``) are safetensors files whose header carries
``format`` (``holefill-content``), ``config`` (:class:`~holefill.nn.content.ContentNetConfig` as
JSON), ``step`` and ``weights_sha256``. ``holefill train content`` writes them.

References
----------
.. [1] C. Yang, X. Lu, Z. Lin, E. Shechtman, O. Wang and H. Li, "High-Resolution Image Inpainting
   using Multi-Scale Neural Patch Synthesis", CVPR 2017. https://arxiv.org/abs/1611.09969
.. [2] D. Pathak, P. Krahenbuhl, J. Donahue, T. Darrell and A. A. Efros, "Context Encoders: Feature
   Learning by Inpainting", CVPR 2016.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from holefill.errors import InputError, WeightsError
from holefill.inpainter import Inpainter
from holefill.registry import PackagedWeights, VGG19File, register_method
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
CONTENTS = ("default", "pconv")
#: how a user allows the VGG-19 download, for the message when no VGG-19 file is found
DOWNLOAD_HINT = "-p download_vgg=true (download_vgg=True in Python)"

__all__ = [
    "NeuralPatchInpainter",
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


def pyramid_sizes(height: int, width: int, coarsest: int = 128) -> list[tuple[int, int]]:
    """Sizes of the synthesis pyramid, coarsest first, each level twice the one before.

    The number of levels makes the coarsest level's longest side closest to ``coarsest``
    (512 -> 128, 256, 512; 300x500 -> 75x125, 150x250, 300x500; up to about 180 px: one level).

    Examples
    --------
    >>> pyramid_sizes(512, 512)
    [(128, 128), (256, 256), (512, 512)]
    """
    if height < 1 or width < 1 or coarsest < 1:
        raise InputError(f"invalid pyramid request {height}x{width} at coarsest {coarsest}")
    levels = max(1, round(math.log2(max(height, width) / coarsest)) + 1)
    return [
        (max(1, round(height / 2**k)), max(1, round(width / 2**k))) for k in reversed(range(levels))
    ]


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


@dataclass
class _Timing:
    """Seconds spent per stage, for ``verbose``."""

    content: float = 0.0
    levels: list[tuple[tuple[int, int], int, float, float]] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"neural_patch: content {self.content:.2f} s"]
        for size, iterations, matching, total in self.levels:
            lines.append(
                f"neural_patch: scale {size[0]}x{size[1]}: {iterations} iterations, "
                f"matching {matching:.2f} s, optimisation {total - matching:.2f} s"
            )
        whole = self.content + sum(level[3] for level in self.levels)
        lines.append(f"neural_patch: total {whole:.2f} s")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The method
# ---------------------------------------------------------------------------------------------


@register_method(
    "neural_patch",
    summary="Multi-scale neural patch synthesis (Yang et al. 2017): content net + VGG-19 "
    "texture optimisation",
    needs=(PackagedWeights(DEFAULT_WEIGHTS_NAME), VGG19File(DOWNLOAD_HINT)),
)
class NeuralPatchInpainter(Inpainter):
    """Fill holes by multi-scale neural patch synthesis [1]_.

    Parameters
    ----------
    content : {"default", "pconv"}
        Content network: ``default`` is holefill's Context-Encoder variant (128x128); ``pconv``
        uses the partial-convolution U-Net (``holefill fill -m pconv``) instead.
    weights : str, optional
        Weights of the content network (a ``.safetensors`` file from ``holefill train content``, or
        PConv weights with ``content="pconv"``). Default: the packaged file.
    vgg_weights : str, optional
        VGG-19 file (``vgg19_to_relu4_1.pth`` or torchvision's ``vgg19-dcbb9e9d.pth``); default
        ``$HOLEFILL_VGG_WEIGHTS``, else torchvision's file in the torch hub cache.
    download_vgg : bool
        With no VGG-19 file found, download torchvision's (548 MB) into the torch hub cache;
        without it that is an error that says how to give a file.
    iterations : int or sequence of int
        L-BFGS iterations per scale: one number for every scale, or a list from the coarsest scale
        on (scales past its end use its last entry). 0 skips the optimisation (content only).
    alpha : float
        Weight of the texture term (each layer's term is normalised, see
        :class:`~holefill.nn.texture.TextureEnergy`).
    beta : float
        Weight of the total-variation term.
    layers : sequence of str
        VGG-19 layers of the texture term (``relu3_1``, ``relu4_1`` as in [1]_).
    finest_layers : sequence of str, optional
        Layers at the finest scale when the pyramid has several (fewer layers there is faster);
        None: ``layers``.
    match_every : int
        L-BFGS iterations between two recomputations of the nearest patches.
    coarsest : int
        Longest side of the coarsest scale (about; see :func:`pyramid_sizes`).
    max_sources : int
        Most candidate source patches per layer (a thinned regular grid beyond).
    device : str
        ``cpu``, ``cuda`` or ``auto``.
    verbose : bool
        Print the time spent on the content network, matching and optimisation per scale.
    strategy, max_side, margin, seed
        See :class:`~holefill.inpainter.Inpainter`. ``crop`` (default) processes a window around
        each hole region with the hole in its middle; windows are worked at most at ``max_side``
        (512) px.

    References
    ----------
    .. [1] C. Yang, X. Lu, Z. Lin, E. Shechtman, O. Wang and H. Li, "High-Resolution Image
       Inpainting using Multi-Scale Neural Patch Synthesis", CVPR 2017.

    Examples
    --------
    >>> import holefill, torch
    >>> inpainter = holefill.create_inpainter("neural_patch", iterations=2)  # doctest: +SKIP
    >>> image, hole = torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)  # doctest: +SKIP
    >>> hole[..., 24:40, 24:40] = 1  # doctest: +SKIP
    >>> inpainter.fill(image, hole).shape  # doctest: +SKIP
    torch.Size([1, 3, 64, 64])
    """

    name = "neural_patch"
    default_strategy = "crop"
    default_max_side = 512

    def __init__(
        self,
        *,
        content: str = "default",
        weights: str | None = None,
        vgg_weights: str | None = None,
        download_vgg: bool = False,
        iterations: int | Sequence[int] = (16, 8, 3),
        alpha: float = 0.1,
        beta: float = 0.3,
        layers: Sequence[str] = ("relu3_1", "relu4_1"),
        finest_layers: Sequence[str] | None = ("relu3_1",),
        match_every: int = 4,
        coarsest: int = 128,
        max_sources: int = 4096,
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
        self.iterations = _iteration_list(iterations)
        if alpha < 0 or beta < 0:
            raise InputError(f"alpha and beta must be >= 0, got {alpha} and {beta}")
        if match_every < 1 or coarsest < 8 or max_sources < 1:
            raise InputError("match_every and max_sources must be >= 1 and coarsest >= 8")
        self.content, self.alpha, self.beta = content, float(alpha), float(beta)
        self.layers = _layer_tuple(layers, "layers")
        self.finest_layers = (
            self.layers if finest_layers is None else _layer_tuple(finest_layers, "finest_layers")
        )
        self.match_every, self.coarsest = int(match_every), int(coarsest)
        self.max_sources, self.verbose = int(max_sources), bool(verbose)
        self.device = resolve_device(device)
        self.vgg_weights = vgg19_file(
            vgg_weights, download=bool(download_vgg), download_hint=DOWNLOAD_HINT
        )
        self.content_model = self._load_content(weights)
        for layer_set in {self.layers, self.finest_layers}:  # fail now on a missing layer
            _feature_net(self.vgg_weights, layer_set, self.device)

    def __repr__(self) -> str:
        return (
            f"NeuralPatchInpainter(content={self.content!r}, iterations={self.iterations}, "
            f"alpha={self.alpha}, beta={self.beta}, layers={self.layers}, "
            f"device={str(self.device)!r}, strategy={self.strategy!r}, "
            f"max_side={self.max_side})"
        )

    # -- setup ------------------------------------------------------------------------------
    def _load_content(self, weights: str | None):
        if self.content == "pconv":
            from holefill.methods.pconv import PConvInpainter

            return PConvInpainter(weights=weights, device=str(self.device), strategy="resize")
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
        sizes = pyramid_sizes(*image.shape[-2:], coarsest=self.coarsest)
        started = time.perf_counter()
        result = self._predict_content(image, hole, sizes[0])
        timing.content = self._elapsed(started)
        for index, size in enumerate(sizes):
            known, level_hole = _shrink(image, hole, size)
            start = torch.where(level_hole > 0.5, _resize(result, size), known)
            layers = self.finest_layers if index == len(sizes) - 1 and index else self.layers
            iterations = self.iterations[min(index, len(self.iterations) - 1)]
            started = time.perf_counter()
            result, matching = self._synthesize(start, level_hole, iterations, layers)
            timing.levels.append((size, iterations, matching, self._elapsed(started)))
        if self.verbose:
            print(timing.report(), file=sys.stderr, flush=True)
        return result.to(source_device)

    def _elapsed(self, started: float) -> float:
        """Seconds since ``started``, after the GPU's queued work when timing is printed."""
        if self.verbose and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - started

    @torch.no_grad()
    def _predict_content(self, image: Tensor, hole: Tensor, size: tuple[int, int]) -> Tensor:
        """The content prediction at ``size``, known pixels composited back."""
        if self.content == "pconv":
            predicted = self.content_model.fill(image, hole)
        else:
            side = self.content_model.size
            if min(image.shape[-2:]) >= side:
                small, small_hole = _shrink(image, hole, (side, side))
            else:  # a small window: enlarge it; a pixel near the hole counts as hole
                small = _resize(image, (side, side))
                small_hole = (
                    F.interpolate(hole, size=(side, side), mode="bilinear", align_corners=False) > 0
                ).float()
            predicted = self.content_model(small, small_hole)
        known, level_hole = _shrink(image, hole, size)
        return torch.where(level_hole > 0.5, _resize(predicted.float(), size), known)

    def _synthesize(
        self, start: Tensor, hole: Tensor, iterations: int, layers: tuple[str, ...]
    ) -> tuple[Tensor, float]:
        """L-BFGS on the hole pixels at one scale; returns the result and the matching time."""
        from holefill.nn.texture import TextureEnergy, content_energy, tv_energy

        if iterations <= 0 or not hole.any():
            return start, 0.0
        texture = TextureEnergy(
            _feature_net(self.vgg_weights, layers, self.device),
            layers,
            hole,
            max_sources=self.max_sources,
        )
        free = hole > 0.5
        with torch.enable_grad():
            pixels = start.detach().clone().requires_grad_(True)
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
                optimizer.zero_grad()
                x = torch.where(free, pixels, start)
                energy = content_energy(x, start, hole)
                if self.alpha:
                    energy = energy + self.alpha * texture(x)
                if self.beta:
                    energy = energy + self.beta * tv_energy(x, hole)
                energy.backward()
                return energy

            matching, done = 0.0, 0
            while done < iterations:
                started = time.perf_counter()
                texture.update_matches(torch.where(free, pixels.detach(), start).clamp(0, 1))
                matching += self._elapsed(started)
                steps = min(self.match_every, iterations - done)
                optimizer.param_groups[0].update(max_iter=steps, max_eval=steps * 5 // 4)
                optimizer.step(closure)
                done += steps
        result = torch.where(free, pixels.detach().clamp(0, 1), start)
        return result, matching


def _iteration_list(iterations: int | Sequence[int]) -> list[int]:
    values = [iterations] if isinstance(iterations, int | float) else list(iterations)
    if not values or any(int(v) != v or v < 0 for v in values):
        raise InputError(
            f"iterations must be an integer >= 0 or a list of them, got {iterations!r}"
        )
    return [int(v) for v in values]


def _layer_tuple(layers: Sequence[str], name: str) -> tuple[str, ...]:
    if isinstance(layers, str):
        layers = [part.strip() for part in layers.split(",") if part.strip()]
    layers = tuple(layers)
    if not layers:
        raise InputError(f"{name} must name at least one VGG-19 layer (e.g. relu3_1)")
    return layers
