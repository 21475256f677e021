"""PatchMatch image completion: randomized nearest-neighbour fields inside coarse-to-fine EM.

The hole is filled by the space-time completion of Wexler, Shechtman & Irani (2007): at every
scale of an image pyramid, alternate

1. a nearest-neighbour field (NNF) search that matches each *target* patch (one overlapping the
   hole) to a *source* patch (one lying wholly in the known region), and
2. a voting step that sets every hole pixel to the similarity-weighted mean of what the matched
   patches overlapping it say,

then carry the completed image and the NNF to the next finer scale. The NNF search is PatchMatch
(Barnes, Shechtman, Finkelstein & Goldman 2009): random initialisation, propagation of good
matches from scan-order neighbours, and random search at exponentially shrinking radii.

The tight loops are compiled with numba (cached on disk); everything is single-threaded and
seeded, so the same seed gives bit-identical output.

References
----------
.. [1] Barnes, C., Shechtman, E., Finkelstein, A. and Goldman, D. B. "PatchMatch: A Randomized
       Correspondence Algorithm for Structural Image Editing". ACM Transactions on Graphics
       (SIGGRAPH) 28(3), 2009.
.. [2] Wexler, Y., Shechtman, E. and Irani, M. "Space-Time Completion of Video". IEEE
       Transactions on Pattern Analysis and Machine Intelligence 29(3), 2007.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numba import njit

from holefill.errors import InputError
from holefill.inpainter import NumpyInpainter
from holefill.registry import Package, register_method

# Settings measured on benchmarks/bench_patchmatch.py (PSNR against PyPatchMatch) and on the
# periodic textures of tests/test_patchmatch.py.
#: the pyramid stops once no hole pixel is more than this many patch radii from the known region
_COARSEST_THICKNESS = 2.0
#: ... or after this many halvings: smaller images hold too few example patches to copy structure
_MAX_DEPTH = 2
#: ... or before the shorter side drops below this many patch widths
_MIN_SIDE_PATCHES = 4
#: a coarse pixel is known if at least this fraction of it is (its value: the known part's mean)
_KNOWN_FRACTION = 0.25
#: EM iterations added per level below the finest, and the fewest the coarsest level gets
_EM_PER_DEPTH = 2
_COARSEST_EM = 8
#: PatchMatch sweeps added per level below the finest, and the most any level gets
_SWEEPS_PER_DEPTH = 1
_MAX_SWEEPS = 7
#: random-search matches must be this much closer to replace the current one (Hertzmann et al.)
_COHERENCE = 0.2
#: voting weights exp(-d / (2 sigma^2)) take sigma^2 at this percentile of the patch distances
_SIGMA_PERCENTILE = 50.0


@register_method(
    "patchmatch",
    summary="PatchMatch (Barnes et al. 2009) inside coarse-to-fine EM completion "
    "(Wexler et al. 2007)",
    needs=(Package("numba"), Package("cv2", "opencv-python-headless")),
)
class PatchMatchInpainter(NumpyInpainter):
    """Fill holes by PatchMatch [1]_ inside coarse-to-fine EM completion [2]_.

    Parameters
    ----------
    patch_size : int
        Width of the square patches in pixels (odd, >= 3). Images where no patch that wide lies
        wholly in the known region use the widest that does.
    em_iterations : int
        Search-and-vote iterations at the finest scale; coarser scales run more.
    search_iterations : int
        PatchMatch sweeps (propagation and random search) per EM iteration at the finest scale.
    strategy, max_side, margin, seed
        See :class:`holefill.inpainter.Inpainter`. The same ``seed`` gives bit-identical output.

    References
    ----------
    .. [1] Barnes et al. "PatchMatch: A Randomized Correspondence Algorithm for Structural Image
           Editing". SIGGRAPH 2009.
    .. [2] Wexler, Shechtman & Irani. "Space-Time Completion of Video". IEEE TPAMI 2007.

    Examples
    --------
    >>> import torch, holefill
    >>> image, hole = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    >>> hole[..., 12:18, 12:18] = 1
    >>> holefill.create_inpainter("patchmatch").fill(image, hole).shape
    torch.Size([1, 3, 32, 32])
    """

    name = "patchmatch"
    default_strategy = "crop"
    default_max_side = 1024

    def __init__(
        self,
        *,
        patch_size: int = 5,
        em_iterations: int = 2,
        search_iterations: int = 2,
        strategy: str | None = None,
        max_side: int | None = None,
        margin: int = 32,
        seed: int = 0,
    ) -> None:
        super().__init__(strategy=strategy, max_side=max_side, margin=margin, seed=seed)
        _check_options(patch_size, em_iterations, search_iterations)
        self.patch_size = int(patch_size)
        self.em_iterations = int(em_iterations)
        self.search_iterations = int(search_iterations)

    def __repr__(self) -> str:
        return (
            f"{super().__repr__()[:-1]}, patch_size={self.patch_size}, "
            f"em_iterations={self.em_iterations}, "
            f"search_iterations={self.search_iterations})"
        )

    def _fill_array(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return complete(
            image,
            hole,
            patch_size=self.patch_size,
            em_iterations=self.em_iterations,
            search_iterations=self.search_iterations,
            seed=self.seed,
        )


def complete(
    image: np.ndarray,
    hole: np.ndarray,
    *,
    patch_size: int = 5,
    em_iterations: int = 2,
    search_iterations: int = 2,
    seed: int = 0,
) -> np.ndarray:
    """Fill ``hole`` in ``image`` by PatchMatch inside coarse-to-fine EM completion.

    Parameters
    ----------
    image : (H, W, 3) float array in ``[0, 1]``
    hole : (H, W) bool array
        True where pixels are missing.
    patch_size, em_iterations, search_iterations, seed
        As for :class:`PatchMatchInpainter`.

    Returns
    -------
    (H, W, 3) float32 array
        The completed image; known pixels are returned unchanged.

    References
    ----------
    Barnes et al., SIGGRAPH 2009 (PatchMatch); Wexler, Shechtman & Irani, TPAMI 2007 (completion).
    """
    _check_options(patch_size, em_iterations, search_iterations)
    image = np.ascontiguousarray(image, dtype=np.float32)
    hole = np.ascontiguousarray(hole, dtype=bool)
    if image.ndim != 3 or image.shape[2] != 3 or hole.shape != image.shape[:2]:
        raise InputError(
            f"expected an (H, W, 3) image and an (H, W) hole mask, got "
            f"{image.shape} and {hole.shape}"
        )
    if not hole.any():
        return image.copy()
    seed %= 2**32
    radius = _usable_radius(hole, patch_size // 2)
    if radius == 0:  # no patch lies wholly in the known region: a diffusion fill is all we can do
        return _telea(image, hole)
    pyramid = _pyramid(image, hole, radius)
    coarsest = len(pyramid) - 1
    filled, nnf = _telea(pyramid[coarsest].image, pyramid[coarsest].hole), None
    for depth in range(coarsest, -1, -1):
        level = pyramid[depth]
        if nnf is not None:
            filled, nnf = _upsample(filled, nnf, level, radius, seed + depth)
        iterations, sweeps = _schedule(depth, coarsest, em_iterations, search_iterations)
        filled, nnf = _em(filled, level, radius, nnf, iterations, sweeps, seed + 7919 * depth)
    return np.where(hole[..., None], filled, image).astype(np.float32)


def _schedule(
    depth: int, coarsest: int, em_iterations: int, search_iterations: int
) -> tuple[int, int]:
    """EM iterations and PatchMatch sweeps per EM iteration at ``depth`` (0 = finest).

    Coarse levels are cheap and settle the structure, so they iterate more (as in PyPatchMatch).
    """
    iterations = em_iterations + _EM_PER_DEPTH * depth
    if depth == coarsest:
        iterations = max(iterations, _COARSEST_EM)
    return iterations, min(search_iterations + _SWEEPS_PER_DEPTH * depth, _MAX_SWEEPS)


def _check_options(patch_size: int, em_iterations: int, search_iterations: int) -> None:
    for name, value in [
        ("patch_size", patch_size),
        ("em_iterations", em_iterations),
        ("search_iterations", search_iterations),
    ]:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise InputError(f"{name} must be an integer, got {value!r}")
    if patch_size < 3 or patch_size % 2 == 0:
        raise InputError(f"patch_size must be an odd number >= 3, got {patch_size}")
    if em_iterations < 1:
        raise InputError(f"em_iterations must be >= 1, got {em_iterations}")
    if search_iterations < 1:
        raise InputError(f"search_iterations must be >= 1, got {search_iterations}")


# -- the pyramid ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Level:
    """One scale: the image (hole pixels unreliable), its hole, and which patches are sources."""

    image: np.ndarray
    hole: np.ndarray
    source_ok: np.ndarray  # (H, W) bool: the patch centred here lies wholly in the known region
    targets: np.ndarray  # (N, 2) int32, raster order: patch centres whose patch overlaps the hole


def _level(image: np.ndarray, hole: np.ndarray, radius: int) -> _Level:
    return _Level(image, hole, _source_centres(hole, radius), _target_centres(hole, radius))


def _source_centres(hole: np.ndarray, radius: int) -> np.ndarray:
    """Centres of patches wholly inside the image and wholly known."""
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    known = (~hole).astype(np.uint8)
    return cv2.erode(known, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0


def _target_centres(hole: np.ndarray, radius: int) -> np.ndarray:
    """Centres of patches inside the image that overlap the hole, as ``(N, 2)`` rows and columns.

    Every hole pixel lies in at least one: the patch centred on it, moved inside the image.
    """
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    near = cv2.dilate(hole.astype(np.uint8), kernel) > 0
    inside = np.zeros_like(near)
    inside[radius : hole.shape[0] - radius, radius : hole.shape[1] - radius] = True
    return np.argwhere(near & inside).astype(np.int32)


def _usable_radius(hole: np.ndarray, radius: int) -> int:
    """The largest radius <= ``radius`` at which the image holds a source patch, else 0."""
    while radius >= 1 and not _source_centres(hole, radius).any():
        radius -= 1
    return radius


def _pyramid(image: np.ndarray, hole: np.ndarray, radius: int) -> list[_Level]:
    """Levels finest first, down to where the hole is a few pixels thick (see the settings)."""
    levels = [_level(image, hole, radius)]
    thickness = float(cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3).max())
    min_side = _MIN_SIDE_PATCHES * (2 * radius + 1)
    while thickness > _COARSEST_THICKNESS * radius and len(levels) <= _MAX_DEPTH:
        coarse_image, coarse_hole = _downsample(levels[-1].image, levels[-1].hole)
        coarse = _level(coarse_image, coarse_hole, radius)
        if min(coarse_hole.shape) < min_side or not coarse.source_ok.any() or not coarse_hole.any():
            break
        levels.append(coarse)
        thickness /= 2
    return levels


def _downsample(image: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Halve the size; a coarse pixel is known if enough of it is, and is the mean of its known part."""
    size = ((image.shape[1] + 1) // 2, (image.shape[0] + 1) // 2)
    known = (~hole).astype(np.float32)
    known_fraction = cv2.resize(known, size, interpolation=cv2.INTER_AREA)
    known_sum = cv2.resize(image * known[..., None], size, interpolation=cv2.INTER_AREA)
    coarse_hole = known_fraction < _KNOWN_FRACTION
    coarse_image = known_sum / np.maximum(known_fraction, 1e-6)[..., None]
    coarse_image[coarse_hole] = 0
    return np.ascontiguousarray(coarse_image, dtype=np.float32), coarse_hole


def _telea(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """A quick diffusion fill (Telea 2004) to start the coarsest scale from."""
    image8 = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    filled = cv2.inpaint(image8, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    filled = filled.astype(np.float32) / 255
    return np.where(hole[..., None], filled, image).astype(np.float32)


def _upsample(
    coarse_filled: np.ndarray, coarse_nnf: np.ndarray, level: _Level, radius: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Start ``level`` from the coarse solution: the NNF doubled, the image voted from it."""
    height, width = level.hole.shape
    upscaled = cv2.resize(coarse_filled, (width, height), interpolation=cv2.INTER_LINEAR)
    filled = np.where(level.hole[..., None], upscaled, level.image).astype(np.float32)
    nnf, inherited = _upsample_nnf(coarse_nnf, level.targets, level.source_ok, radius, seed)
    if inherited.any():
        # fine pixels copied through the inherited matches are sharper than the interpolation
        filled = _voted(filled, level, nnf, inherited.astype(np.float32), radius)
    return filled, nnf


# -- expectation-maximisation at one scale -------------------------------------------------------
def _em(
    filled: np.ndarray,
    level: _Level,
    radius: int,
    nnf: np.ndarray | None,
    iterations: int,
    search_iterations: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Alternate NNF search and voting ``iterations`` times; returns the image and the NNF."""
    if nnf is None:
        nnf = _random_nnf(level.hole.shape, level.targets, level.source_ok, seed)
    for iteration in range(iterations):
        nnf, distance = _nearest_neighbour_field(
            filled,
            level.source_ok,
            level.targets,
            radius,
            search_iterations,
            seed + iteration,
            nnf,
            _COHERENCE,
        )
        filled = _vote_step(filled, level, nnf, distance, radius)
    return filled, nnf


def _nearest_neighbour_field(
    image: np.ndarray,
    source_ok: np.ndarray,
    targets: np.ndarray,
    radius: int,
    iterations: int,
    seed: int,
    nnf: np.ndarray | None = None,
    coherence: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """PatchMatch: the closest source patch (SSD) of each target patch.

    Parameters
    ----------
    image : (H, W, 3) float32
    source_ok : (H, W) bool
        Centres of the patches a target may match.
    targets : (N, 2) int32
        Centres of the patches to match, in raster order, each at least ``radius`` from the border.
    radius : int
        Patches are ``2 * radius + 1`` pixels wide.
    iterations : int
        Sweeps of propagation and random search.
    nnf : (H, W, 2) int32, optional
        Starting field (source centre per target centre); random if omitted.
    coherence : float
        A match found by random search replaces the current one only if its distance is below
        ``1 - coherence`` times the current one: matches propagated from neighbours (coherent
        ones, which vote alike) are favoured, as with the coherence parameter of Hertzmann et
        al.'s Image Analogies (2001). 0 searches for the exact nearest neighbours.

    Returns
    -------
    nnf : (H, W, 2) int32
        The source centre matched to each target centre (-1 elsewhere).
    distance : (H, W) float32
        The SSD of each target patch to its match (``inf`` elsewhere).
    """
    image = np.ascontiguousarray(image, dtype=np.float32)
    if nnf is None:
        nnf = _random_nnf(source_ok.shape, targets, source_ok, seed)
    nnf = nnf.copy()
    distance = np.full(source_ok.shape, np.inf, np.float32)
    _patchmatch(
        _rows(image), source_ok, targets, radius, iterations, seed, coherence, nnf, distance
    )
    return nnf, distance


def _random_nnf(
    shape: tuple[int, int], targets: np.ndarray, source_ok: np.ndarray, seed: int
) -> np.ndarray:
    """A field matching every target to a uniformly random source patch."""
    sources = np.argwhere(source_ok).astype(np.int32)
    rng = np.random.default_rng(seed)
    nnf = np.full((*shape, 2), -1, np.int32)
    picks = sources[rng.integers(0, len(sources), len(targets))]
    nnf[targets[:, 0], targets[:, 1]] = picks
    return nnf


def _upsample_nnf(
    coarse_nnf: np.ndarray, targets: np.ndarray, source_ok: np.ndarray, radius: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each fine target takes its coarse parent's source, doubled, at the same sub-pixel phase.

    Targets whose parent had no match, or whose candidate is not a source, get a random source.
    Returns the field and, per target, whether it inherited its match.
    """
    rows, cols = targets[:, 0], targets[:, 1]
    coarse_h, coarse_w = coarse_nnf.shape[:2]
    parent = coarse_nnf[np.minimum(rows // 2, coarse_h - 1), np.minimum(cols // 2, coarse_w - 1)]
    source_rows = 2 * parent[:, 0] + rows % 2
    source_cols = 2 * parent[:, 1] + cols % 2
    height, width = source_ok.shape
    inside = (parent[:, 0] >= 0) & (source_rows < height - radius) & (source_cols < width - radius)
    good = inside.copy()
    good[inside] = source_ok[source_rows[inside], source_cols[inside]]
    nnf = _random_nnf(source_ok.shape, targets, source_ok, seed)
    nnf[rows[good], cols[good], 0] = source_rows[good]
    nnf[rows[good], cols[good], 1] = source_cols[good]
    return nnf, good


def _vote_step(
    filled: np.ndarray, level: _Level, nnf: np.ndarray, distance: np.ndarray, radius: int
) -> np.ndarray:
    """Set each hole pixel to the weighted mean of the matched patches' votes (Wexler et al.)."""
    target_distance = distance[level.targets[:, 0], level.targets[:, 1]]
    sigma2 = max(float(np.percentile(target_distance, _SIGMA_PERCENTILE)), 1e-6)
    # clipped so that a pixel whose every match is poor still gets their plain mean
    weights = np.exp(-np.minimum(target_distance / (2 * sigma2), 40.0)).astype(np.float32)
    return _voted(filled, level, nnf, weights, radius)


def _voted(
    filled: np.ndarray, level: _Level, nnf: np.ndarray, weights: np.ndarray, radius: int
) -> np.ndarray:
    """A copy of ``filled`` whose hole pixels are the ``weights``-weighted votes of the matches."""
    out = np.array(filled, dtype=np.float32, order="C")
    _vote(_rows(filled), level.hole, level.targets, nnf, weights, radius, _rows(out))
    return out


def _rows(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` as ``(H, W * 3)``, a view: what the kernels index."""
    return image.reshape(image.shape[0], -1)


# -- numba kernels -------------------------------------------------------------------------------
# Images reach the kernels as (H, W * C) float32 rows, so a patch row is one contiguous run. C is
# 3 for RGB; neural_patch appends guide channels.


@njit(cache=True, fastmath=True, inline="always")
def _patch_ssd(rows, ty, tx, sy, sx, radius, bound, channels):
    """SSD between the patches centred at (ty, tx) and (sy, sx); stops early past ``bound``."""
    width = channels * (2 * radius + 1)
    t0 = channels * (tx - radius)
    s0 = channels * (sx - radius)
    total = np.float32(0.0)
    for dy in range(-radius, radius + 1):
        target_row = rows[ty + dy]
        source_row = rows[sy + dy]
        for i in range(width):
            diff = target_row[t0 + i] - source_row[s0 + i]
            total += diff * diff
        if total >= bound:
            return total
    return total


@njit(cache=True, inline="always")
def _next_random(state):
    """One step of Knuth's 64-bit linear congruential generator (wrapping int64 arithmetic)."""
    return state * 6364136223846793005 + 1442695040888963407


@njit(cache=True, inline="always")
def _uniform(state, low, high):
    """A random integer in ``[low, high]`` from the generator state's high bits."""
    return low + ((((state >> 33) & 0x7FFFFFFF) * (high - low + 1)) >> 31)


@njit(cache=True, inline="always")
def _try(rows, nnf, distance, ty, tx, sy, sx, radius, keep, channels):
    """Adopt source (sy, sx) for target (ty, tx) if closer than ``keep`` times the current match."""
    bound = distance[ty, tx] * keep
    d = _patch_ssd(rows, ty, tx, sy, sx, radius, bound, channels)
    if d < bound:
        distance[ty, tx] = d
        nnf[ty, tx, 0] = sy
        nnf[ty, tx, 1] = sx


@njit(cache=True)
def _patchmatch(
    rows, source_ok, targets, radius, iterations, seed, coherence, nnf, distance, max_search=0
):
    """Barnes et al.: alternate forward and backward sweeps of propagation and random search.

    A random-search candidate must beat the current match by the factor ``1 - coherence``; the
    search starts ``max_search`` px around the match (0: the whole image).
    """
    height, width = source_ok.shape
    channels = rows.shape[1] // width
    keep = np.float32(1.0 - coherence)
    count = targets.shape[0]
    state = np.int64(seed) * 2654435761 + 1
    for k in range(count):
        ty, tx = targets[k, 0], targets[k, 1]
        sy, sx = nnf[ty, tx, 0], nnf[ty, tx, 1]
        distance[ty, tx] = _patch_ssd(rows, ty, tx, sy, sx, radius, np.inf, channels)
    max_step = max_search if max_search > 0 else max(height, width)
    for iteration in range(iterations):
        step = 1 if iteration % 2 == 0 else -1
        for j in range(count):
            k = j if step == 1 else count - 1 - j
            ty, tx = targets[k, 0], targets[k, 1]
            # propagation: the scan-order neighbour's match, shifted by one pixel
            if nnf[ty, tx - step, 0] >= 0:
                sy, sx = nnf[ty, tx - step, 0], nnf[ty, tx - step, 1] + step
                if radius <= sx < width - radius and source_ok[sy, sx]:
                    _try(rows, nnf, distance, ty, tx, sy, sx, radius, 1.0, channels)
            if nnf[ty - step, tx, 0] >= 0:
                sy, sx = nnf[ty - step, tx, 0] + step, nnf[ty - step, tx, 1]
                if radius <= sy < height - radius and source_ok[sy, sx]:
                    _try(rows, nnf, distance, ty, tx, sy, sx, radius, 1.0, channels)
            # random search in windows around the best match, halving, clipped to the sources
            search = max_step
            while search >= 1:
                by, bx = nnf[ty, tx, 0], nnf[ty, tx, 1]
                state = _next_random(state)
                sy = _uniform(
                    state, max(by - search, radius), min(by + search, height - 1 - radius)
                )
                state = _next_random(state)
                sx = _uniform(state, max(bx - search, radius), min(bx + search, width - 1 - radius))
                if source_ok[sy, sx]:
                    _try(rows, nnf, distance, ty, tx, sy, sx, radius, keep, channels)
                search //= 2


@njit(cache=True)
def _vote(rows, hole, targets, nnf, weights, radius, out):
    """Weighted average, per hole pixel, of what every matched patch covering it says."""
    height, width = hole.shape
    channels = rows.shape[1] // width
    total = np.zeros((height, channels * width), np.float32)
    weight_sum = np.zeros((height, width), np.float32)
    for k in range(targets.shape[0]):
        ty, tx = targets[k, 0], targets[k, 1]
        sy, sx = nnf[ty, tx, 0], nnf[ty, tx, 1]
        w = weights[k]
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                if hole[ty + dy, tx + dx]:
                    weight_sum[ty + dy, tx + dx] += w
                    for c in range(channels):
                        value = rows[sy + dy, channels * (sx + dx) + c]
                        total[ty + dy, channels * (tx + dx) + c] += w * value
    for y in range(height):
        for x in range(width):
            if hole[y, x] and weight_sum[y, x] > 0:
                for c in range(channels):
                    out[y, channels * x + c] = total[y, channels * x + c] / weight_sum[y, x]
