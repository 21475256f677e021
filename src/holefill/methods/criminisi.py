"""Exemplar-based inpainting by fill-front priority (Criminisi, Pérez & Toyama 2004).

The hole is filled one patch at a time. Every pixel ``p`` on the fill front (a hole pixel with a
known 4-neighbour) gets a priority ``P(p) = C(p) * D(p)``: the confidence term ``C(p)`` is the summed
confidence of the known pixels in the patch ``Ψp`` divided by the patch area, and the data term
``D(p) = |∇I⊥p · np| / α`` rewards fronts that a strong isophote (line of equal intensity) runs into
(α = 1 for images in [0, 1], the paper's 255 for 8-bit ones; the isophote is the strongest known
gradient in ``Ψp``, turned by 90°, and ``np`` the unit normal to the front). ``D`` gets a floor of
10⁻³ so that flat fronts are still ordered by confidence.
The front pixel of highest priority is filled by copying, into the unknown part of its patch, the
fully known source patch whose pixels best match (least sum of squared differences) the known part.
Filled pixels inherit the confidence of the patch that filled them, and the loop repeats.

Speed comes from doing all of it in one compiled loop: the exemplar search stops summing a
candidate as soon as it is worse than the best so far and, by default, looks at a window around the
target first; after each copy only the priorities the copy can change (a box of twice the patch
size) are recomputed, and the highest priority is kept per image row.
"""

from __future__ import annotations

import numba
import numpy as np

from holefill.errors import InputError
from holefill.inpainter import NumpyInpainter
from holefill.registry import Package, register_method

__all__ = ["CriminisiInpainter", "criminisi_inpaint"]

#: added to the data term so flat fronts (D = 0) are still ordered by confidence
_DATA_FLOOR = 1e-3
#: radius of the first, nearby exemplar scan: a good early match makes the later scan stop sooner
_NEAR_RADIUS = 12


def criminisi_inpaint(
    image: np.ndarray,
    hole: np.ndarray,
    *,
    patch_size: int = 9,
    search_radius: int = 80,
    search_filled: bool = False,
) -> np.ndarray:
    """Fill ``hole`` in ``image`` by exemplar-based inpainting (Criminisi et al. 2004).

    Parameters
    ----------
    image : ndarray, shape (H, W, 3)
        Float image in ``[0, 1]``; values under the hole are ignored.
    hole : ndarray of bool, shape (H, W)
        True where pixels are missing.
    patch_size : int
        Side of the square patches, odd (the paper uses 9). Where the known region holds no fully
        known patch of that size (tiny images), the largest odd size that has one is used.
    search_radius : int
        Exemplars are searched among source patches whose centre is at most this many pixels from
        the target (rows and columns); 0 searches the whole image. When the window holds no source
        patch the whole image is searched.
    search_filled : bool
        Also take exemplars from pixels filled earlier (the paper copies only from the source
        region, the known part of the input).

    Returns
    -------
    ndarray, shape (H, W, 3), float32
        The image with the hole filled; known pixels are unchanged.

    References
    ----------
    .. [1] A. Criminisi, P. Pérez and K. Toyama, "Region filling and object removal by
       exemplar-based image inpainting", IEEE Transactions on Image Processing 13(9), 2004.

    Examples
    --------
    >>> image = np.zeros((32, 32, 3), np.float32); image[:, 16:] = 1.0
    >>> hole = np.zeros((32, 32), bool); hole[12:20, 12:20] = True
    >>> filled = criminisi_inpaint(image, hole)
    >>> float(filled[16, 13, 0]), float(filled[16, 18, 0])
    (0.0, 1.0)
    """
    _check_arrays(image, hole)
    _check_options(patch_size, search_radius)
    hole = np.ascontiguousarray(hole, dtype=np.bool_)
    if hole.all():
        raise InputError("the hole covers the whole image: there are no known pixels to fill from")
    work = np.ascontiguousarray(image, dtype=np.float32).copy()
    work[hole] = 0.0
    if not hole.any():
        return work
    half, valid_source = _usable_patch(hole, patch_size // 2)
    unknown = hole.copy()
    _fill_loop(work, unknown, valid_source, half, int(search_radius), bool(search_filled))
    if unknown.any():  # unreachable: a source patch always exists once the patch has shrunk
        raise RuntimeError("criminisi: the fill stopped with pixels left unfilled")
    return work


@register_method(
    "criminisi",
    summary="Exemplar-based filling by fill-front priority (Criminisi et al. 2004)",
    needs=(Package("numba"),),
)
class CriminisiInpainter(NumpyInpainter):
    """Exemplar-based filling by fill-front priority (Criminisi, Pérez & Toyama 2004).

    See :func:`criminisi_inpaint` for the algorithm. Deterministic: equal priorities go to the first
    front pixel in raster order, equal matches to the candidate nearest the target, then the first
    in raster order; ``seed`` has no effect.

    Parameters
    ----------
    patch_size : int
        Side of the square patches, odd (default 9, as in the paper).
    search_radius : int
        Half-side of the exemplar search window around the target; 0 searches the whole image.
    search_filled : bool
        Also copy from pixels filled earlier, not only from the known input.
    strategy, max_side, margin, seed
        See :class:`holefill.inpainter.Inpainter`.
    """

    name = "criminisi"
    default_strategy = "crop"
    default_max_side = 1024

    def __init__(
        self,
        *,
        patch_size: int = 9,
        search_radius: int = 80,
        search_filled: bool = False,
        strategy: str | None = None,
        max_side: int | None = None,
        margin: int = 32,
        seed: int = 0,
    ) -> None:
        super().__init__(strategy=strategy, max_side=max_side, margin=margin, seed=seed)
        _check_options(patch_size, search_radius)
        self.patch_size = int(patch_size)
        self.search_radius = int(search_radius)
        self.search_filled = bool(search_filled)

    def __repr__(self) -> str:
        return (
            f"{super().__repr__()[:-1]}, patch_size={self.patch_size}, "
            f"search_radius={self.search_radius}, search_filled={self.search_filled})"
        )

    def _fill_array(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return criminisi_inpaint(
            image,
            hole,
            patch_size=self.patch_size,
            search_radius=self.search_radius,
            search_filled=self.search_filled,
        )


# -- checks and set-up ---------------------------------------------------------------------------
def _check_options(patch_size: int, search_radius: int) -> None:
    for name, value in (("patch_size", patch_size), ("search_radius", search_radius)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InputError(f"{name} must be an integer, got {value!r}")
    if patch_size < 1 or patch_size % 2 == 0:
        raise InputError(f"patch_size must be an odd integer >= 1, got {patch_size}")
    if search_radius < 0:
        raise InputError(f"search_radius must be >= 0 (0 = whole image), got {search_radius}")


def _check_arrays(image: np.ndarray, hole: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"image must have shape (H, W, 3), got {image.shape}")
    if hole.shape != image.shape[:2]:
        raise InputError(f"hole mask {hole.shape} and image {image.shape[:2]} differ in size")


def _valid_centres(blocked: np.ndarray, half: int) -> np.ndarray:
    """Centres whose ``(2 half + 1)²`` patch lies inside the image and holds no blocked pixel."""
    height, width = blocked.shape
    size = 2 * half + 1
    valid = np.zeros((height, width), dtype=np.bool_)
    if height < size or width < size:
        return valid
    integral = np.pad(blocked.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    counts = (
        integral[size:, size:]
        - integral[:-size, size:]
        - integral[size:, :-size]
        + integral[:-size, :-size]
    )
    valid[half : height - half, half : width - half] = counts == 0
    return valid


def _usable_patch(hole: np.ndarray, half: int) -> tuple[int, np.ndarray]:
    """The largest half-size ``<= half`` with at least one fully known source patch, and its centres."""
    for candidate in range(half, -1, -1):
        valid = _valid_centres(hole, candidate)
        if valid.any():
            return candidate, valid
    raise InputError("the hole covers the whole image: there are no known pixels to fill from")


# -- priority terms ------------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _box(row, col, reach, height, width):
    """Inclusive (top, bottom, left, right) of the pixels within ``reach`` of (row, col), clipped."""
    return (
        max(row - reach, 0),
        min(row + reach, height - 1),
        max(col - reach, 0),
        min(col + reach, width - 1),
    )


@numba.njit(cache=True, nogil=True)
def _is_front(hole, row, col):
    """A hole pixel with a known 4-neighbour inside the image."""
    height, width = hole.shape
    if not hole[row, col]:
        return False
    return (
        (row > 0 and not hole[row - 1, col])
        or (row < height - 1 and not hole[row + 1, col])
        or (col > 0 and not hole[row, col - 1])
        or (col < width - 1 and not hole[row, col + 1])
    )


@numba.njit(cache=True, nogil=True)
def _confidence_term(confidence, hole, row, col, half):
    """C(p): summed confidence of the known pixels of the patch over its area (clipped at borders)."""
    top, bottom, left, right = _box(row, col, half, hole.shape[0], hole.shape[1])
    total = 0.0
    for r in range(top, bottom + 1):
        for c in range(left, right + 1):
            if not hole[r, c]:
                total += confidence[r, c]
    return total / ((bottom - top + 1) * (right - left + 1))


@numba.njit(cache=True, nogil=True)
def _gradient_at(grey, hole, row, col):
    """Grey-level gradient (d/drow, d/dcol) from known pixels only: central, else one-sided, else 0."""
    height, width = grey.shape
    if hole[row, col]:
        return 0.0, 0.0
    up = row > 0 and not hole[row - 1, col]
    down = row < height - 1 and not hole[row + 1, col]
    left = col > 0 and not hole[row, col - 1]
    right = col < width - 1 and not hole[row, col + 1]
    return (
        _difference(
            grey[row - 1, col] if up else 0.0,
            grey[row, col],
            grey[row + 1, col] if down else 0.0,
            up,
            down,
        ),
        _difference(
            grey[row, col - 1] if left else 0.0,
            grey[row, col],
            grey[row, col + 1] if right else 0.0,
            left,
            right,
        ),
    )


@numba.njit(cache=True, nogil=True)
def _difference(before, here, after, has_before, has_after):
    if has_before and has_after:
        return 0.5 * (after - before)
    if has_after:
        return after - here
    if has_before:
        return here - before
    return 0.0


@numba.njit(cache=True, nogil=True)
def _hole_at(hole, row, col):
    """The hole mask as 0/1, replicated beyond the image border."""
    height, width = hole.shape
    return 1.0 if hole[min(max(row, 0), height - 1), min(max(col, 0), width - 1)] else 0.0


@numba.njit(cache=True, nogil=True)
def _front_normal(hole, row, col):
    """Unit normal to the front at a pixel: the normalised Sobel gradient of the hole mask."""
    d_row = d_col = 0.0
    for k, weight in ((-1, 1.0), (0, 2.0), (1, 1.0)):
        d_row += weight * (_hole_at(hole, row + 1, col + k) - _hole_at(hole, row - 1, col + k))
        d_col += weight * (_hole_at(hole, row + k, col + 1) - _hole_at(hole, row + k, col - 1))
    norm = np.sqrt(d_row * d_row + d_col * d_col)
    if norm == 0.0:
        return 0.0, 0.0
    return d_row / norm, d_col / norm


@numba.njit(cache=True, nogil=True)
def _data_term(grad_row, grad_col, hole, row, col, half):
    """D(p) = |∇I⊥ · n| with α = 1 for a [0, 1] image; the isophote is the strongest known one in Ψp."""
    top, bottom, left, right = _box(row, col, half, hole.shape[0], hole.shape[1])
    best, iso_row, iso_col = -1.0, 0.0, 0.0
    for r in range(top, bottom + 1):
        for c in range(left, right + 1):
            strength = grad_row[r, c] ** 2 + grad_col[r, c] ** 2
            if not hole[r, c] and strength > best:
                best, iso_row, iso_col = strength, grad_row[r, c], grad_col[r, c]
    normal_row, normal_col = _front_normal(hole, row, col)
    # the isophote is the gradient turned by 90 degrees: (-d/dcol, d/drow)
    return abs(-iso_col * normal_row + iso_row * normal_col)


@numba.njit(cache=True, nogil=True)
def _priority(confidence, grad_row, grad_col, hole, row, col, half):
    """P(p) = C(p) * D(p) on the front (D floored), -1 elsewhere."""
    if not _is_front(hole, row, col):
        return -1.0
    return _confidence_term(confidence, hole, row, col, half) * (
        _data_term(grad_row, grad_col, hole, row, col, half) + _DATA_FLOOR
    )


# -- exemplar search -----------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _target_pixels(image, hole, row, col, half):
    """Offsets and colours of the known pixels of the (border-clipped) target patch."""
    top, bottom, left, right = _box(row, col, half, hole.shape[0], hole.shape[1])
    size = (2 * half + 1) ** 2
    offsets = np.empty((size, 2), dtype=np.int64)
    colours = np.empty((size, 3), dtype=np.float32)
    count = 0
    for r in range(top, bottom + 1):
        for c in range(left, right + 1):
            if not hole[r, c]:
                offsets[count, 0], offsets[count, 1] = r - row, c - col
                colours[count] = image[r, c]
                count += 1
    return offsets[:count], colours[:count]


@numba.njit(cache=True, nogil=True)
def _scan(image, valid, offsets, colours, row, col, half, radius, best):
    """Least-SSD valid source centre within ``radius`` of (row, col) (0 = anywhere), improving ``best``.

    ``best`` is (ssd, squared distance, centre row, centre col); ties in SSD go to the nearer centre,
    then to the first in raster order, so the result does not depend on the scan order.
    """
    height, width = valid.shape
    best_ssd, best_distance, best_row, best_col = best
    top, bottom = half, height - 1 - half
    left, right = half, width - 1 - half
    if radius > 0:
        top, bottom = max(top, row - radius), min(bottom, row + radius)
        left, right = max(left, col - radius), min(right, col + radius)
    for source_row in range(top, bottom + 1):
        for source_col in range(left, right + 1):
            if not valid[source_row, source_col]:
                continue
            ssd = 0.0
            for k in range(offsets.shape[0]):
                pixel = image[source_row + offsets[k, 0], source_col + offsets[k, 1]]
                for channel in range(3):
                    difference = pixel[channel] - colours[k, channel]
                    ssd += difference * difference
                if ssd > best_ssd:  # early termination: already worse than the best
                    break
            if ssd > best_ssd:
                continue
            distance = (source_row - row) ** 2 + (source_col - col) ** 2
            if (
                ssd < best_ssd
                or distance < best_distance
                or (
                    distance == best_distance
                    and (
                        source_row < best_row or (source_row == best_row and source_col < best_col)
                    )
                )
            ):
                best_ssd, best_distance, best_row, best_col = ssd, distance, source_row, source_col
    return best_ssd, best_distance, best_row, best_col


@numba.njit(cache=True, nogil=True)
def _best_exemplar(image, hole, valid, row, col, half, radius):
    """Centre of the valid source patch minimising SSD over the known pixels of the target patch.

    Returns (-1, -1) when no valid source patch exists.
    """
    offsets, colours = _target_pixels(image, hole, row, col, half)
    best = (np.inf, np.iinfo(np.int64).max, -1, -1)
    near = _NEAR_RADIUS if radius == 0 else min(radius, _NEAR_RADIUS)
    best = _scan(image, valid, offsets, colours, row, col, half, near, best)
    best = _scan(image, valid, offsets, colours, row, col, half, radius, best)
    if best[2] < 0 and radius > 0:  # nothing in the window: search the whole image
        best = _scan(image, valid, offsets, colours, row, col, half, 0, best)
    return best[2], best[3]


# -- the fill loop -------------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _copy_patch(image, grey, hole, confidence, row, col, source_row, source_col, half, value):
    """Copy the source patch into the unknown pixels of the target; return how many were filled."""
    top, bottom, left, right = _box(row, col, half, hole.shape[0], hole.shape[1])
    filled = 0
    for r in range(top, bottom + 1):
        for c in range(left, right + 1):
            if hole[r, c]:
                image[r, c] = image[source_row + r - row, source_col + c - col]
                grey[r, c] = (image[r, c, 0] + image[r, c, 1] + image[r, c, 2]) / 3.0
                confidence[r, c] = value
                hole[r, c] = False
                filled += 1
    return filled


@numba.njit(cache=True, nogil=True)
def _grow_valid(hole, valid, row, col, half):
    """After a copy at (row, col): mark source centres whose patch has become fully known."""
    height, width = hole.shape
    for r in range(max(row - 2 * half, half), min(row + 2 * half, height - 1 - half) + 1):
        for c in range(max(col - 2 * half, half), min(col + 2 * half, width - 1 - half) + 1):
            if not valid[r, c]:
                valid[r, c] = not hole[r - half : r + half + 1, c - half : c + half + 1].any()


@numba.njit(cache=True, nogil=True)
def _refresh_gradients(grey, hole, grad_row, grad_col, row, col, half):
    """Recompute the gradients a copy at (row, col) can change (all of them when ``row < 0``)."""
    height, width = hole.shape
    top, bottom, left, right = (
        _box(row, col, half + 1, height, width) if row >= 0 else (0, height - 1, 0, width - 1)
    )
    for r in range(top, bottom + 1):
        for c in range(left, right + 1):
            grad_row[r, c], grad_col[r, c] = _gradient_at(grey, hole, r, c)


@numba.njit(cache=True, nogil=True)
def _refresh_priorities(
    confidence, grad_row, grad_col, hole, priority, row_best, row_best_col, row, col, half
):
    """Recompute the priorities a copy at (row, col) can change, and those rows' maxima.

    A priority reads its patch, whose gradients read one pixel further: the reach is 2 half + 1.
    """
    height, width = hole.shape
    top, bottom, left, right = (
        _box(row, col, 2 * half + 1, height, width) if row >= 0 else (0, height - 1, 0, width - 1)
    )
    for r in range(top, bottom + 1):
        for c in range(left, right + 1):
            priority[r, c] = _priority(confidence, grad_row, grad_col, hole, r, c, half)
        row_best_col[r] = np.argmax(priority[r])
        row_best[r] = priority[r, row_best_col[r]]


@numba.njit(cache=True, nogil=True)
def _fill_loop(image, hole, valid, half, radius, search_filled):
    """Fill ``hole`` in ``image`` in place, highest priority first, until nothing is missing."""
    height, width = hole.shape
    grey = (image[:, :, 0] + image[:, :, 1] + image[:, :, 2]).astype(np.float64) / 3.0
    confidence = np.where(hole, 0.0, 1.0)
    grad_row, grad_col = np.zeros((height, width)), np.zeros((height, width))
    priority = np.full((height, width), -1.0)
    row_best, row_best_col = np.full(height, -1.0), np.zeros(height, dtype=np.int64)
    _refresh_gradients(grey, hole, grad_row, grad_col, -1, -1, half)
    _refresh_priorities(
        confidence, grad_row, grad_col, hole, priority, row_best, row_best_col, -1, -1, half
    )
    remaining = hole.sum()
    while remaining > 0:
        row = np.argmax(row_best)  # first maximum in raster order: deterministic ties
        col = row_best_col[row]
        if row_best[row] < 0.0:
            break
        source_row, source_col = _best_exemplar(image, hole, valid, row, col, half, radius)
        if source_row < 0:
            break
        value = _confidence_term(confidence, hole, row, col, half)
        remaining -= _copy_patch(
            image, grey, hole, confidence, row, col, source_row, source_col, half, value
        )
        if search_filled:
            _grow_valid(hole, valid, row, col, half)
        _refresh_gradients(grey, hole, grad_row, grad_col, row, col, half)
        _refresh_priorities(
            confidence, grad_row, grad_col, hole, priority, row_best, row_best_col, row, col, half
        )
