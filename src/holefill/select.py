"""Select an object from a click or a box, and grow or shrink a hole mask.

:func:`select_object` turns one click (or a box dragged around an object) into a hole mask of that
object, without a learned model: GrabCut [1]_ seeded by the click or the box, snapped to SLIC
superpixels [2]_ so the outline follows the photo's edges. :func:`grow_mask` dilates or erodes a
mask by a number of pixels (fills look better when the hole also covers the object's shadow and
halo). Both work on numpy arrays; ``holefill serve`` exposes them as ``POST /api/select`` and
``POST /api/grow``.

How a click becomes a mask: the photo is worked on at a longest side of ``work_side`` pixels.
Colour histograms of a disc around the click (the object) and of a frame along the photo's border
(the background) rate every superpixel; the superpixels rated object-like and connected to the
clicked one are GrabCut's "probably object", the rest "probably background", the click itself
"surely object". After GrabCut, each superpixel takes its majority label, the part connected to the
click is kept, holes inside it are filled, and the mask is scaled back to the photo's size.
A box skips the histograms: outside the box is "surely background", inside "probably object".

References
----------
.. [1] C. Rother, V. Kolmogorov and A. Blake, "GrabCut: Interactive Foreground Extraction using
   Iterated Graph Cuts", ACM SIGGRAPH 2004.
.. [2] R. Achanta, A. Shaji, K. Smith, A. Lucchi, P. Fua and S. Süsstrunk, "SLIC Superpixels
   Compared to State-of-the-art Superpixel Methods", IEEE TPAMI 34(11), 2012.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from scipy import ndimage
from skimage.segmentation import slic

from holefill.errors import InputError
from holefill.mask_rule import grow_hole

#: Colour histogram bins per channel for the click's first guess.
_HIST_BINS = 16
#: Superpixels per working image.
_SUPERPIXELS = 700
#: GrabCut stops iterating once fewer than this fraction of its pixels change label.
_SETTLED = 0.002


def select_object(
    image: np.ndarray,
    *,
    point: Sequence[float] | None = None,
    box: Sequence[float] | None = None,
    work_side: int = 512,
    iterations: int = 5,
) -> np.ndarray:
    """The mask of the object under a click or inside a box.

    Parameters
    ----------
    image : ndarray
        ``(H, W, 3)`` RGB or ``(H, W)`` grey, uint8 or uint16.
    point : (x, y), optional
        A pixel on the object (column, row; may be fractional).
    box : (left, top, right, bottom), optional
        A box around the object, in pixels, right and bottom exclusive. With ``point`` too, the
        point is taken as surely object.
    work_side : int
        Longest side the segmentation works at; the mask is scaled back to the image's size.
    iterations : int
        Most GrabCut iterations; it stops earlier once the outline has settled.

    Returns
    -------
    ndarray
        ``(H, W)`` bool, True on the object (a hole mask: True = fill here).

    Raises
    ------
    InputError
        Neither ``point`` nor ``box`` is given, or they lie outside the image, or the image is
        not a 2-D grey or RGB array of uint8/uint16.

    Examples
    --------
    >>> from holefill.select import select_object
    >>> hole = select_object(rgb, point=(412, 300))  # doctest: +SKIP
    >>> hole = select_object(rgb, box=(350, 220, 480, 390))  # doctest: +SKIP
    """
    rgb = _as_rgb8(image)
    height, width = rgb.shape[:2]
    if point is None and box is None:
        raise InputError("give a point (x, y) on the object or a box (left, top, right, bottom)")
    if work_side < 64:
        raise InputError(f"work_side must be >= 64, got {work_side}")
    if iterations < 1:
        raise InputError(f"iterations must be >= 1, got {iterations}")
    point = _check_point(point, width, height) if point is not None else None
    box = _check_box(box, width, height) if box is not None else None

    scale = min(1.0, work_side / max(height, width))
    small = rgb
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    fy, fx = small.shape[0] / height, small.shape[1] / width
    seed = None if point is None else (point[0] * fx, point[1] * fy)
    small_box = None
    if box is not None:
        small_box = _scaled_box(box, fx, fy, small.shape[:2])

    superpixels = slic(
        small, n_segments=_SUPERPIXELS, compactness=10, start_label=0, channel_axis=-1
    )
    if small_box is not None:
        trimap = _box_trimap(small.shape[:2], small_box)
    else:
        trimap = _click_trimap(small, superpixels, seed)
    if seed is not None:
        cv2.circle(trimap, _int_point(seed), _seed_radius(small.shape[:2]), cv2.GC_FGD, -1)
    selected = _grabcut(small, trimap, iterations)
    selected = _snap_to_superpixels(selected, superpixels)
    selected = _keep_object(selected, seed, small_box)
    if scale < 1:
        resized = cv2.resize(selected.astype(np.float32), (width, height), cv2.INTER_LINEAR)
        selected = resized > 0.5
    return selected


def grow_mask(hole: np.ndarray, pixels: int) -> np.ndarray:
    """Grow (``pixels`` > 0) or shrink (``pixels`` < 0) a hole mask by ``abs(pixels)``.

    A dilation or erosion by an elliptical kernel of diameter ``2 * abs(pixels) + 1``, exactly
    ``cv2.dilate`` / ``cv2.erode`` with ``cv2.getStructuringElement(cv2.MORPH_ELLIPSE, ...)``.

    Parameters
    ----------
    hole : ndarray
        ``(H, W)`` bool (True = hole) or any numeric array (non-zero = hole). The checked front
        of :func:`holefill.mask_rule.grow_hole`, the pipeline's ``dilate`` step.
    pixels : int
        How far the hole's outline moves: outwards if positive, inwards if negative.

    Returns
    -------
    ndarray
        ``(H, W)`` bool.
    """
    hole = np.asarray(hole)
    if hole.ndim != 2:
        raise InputError(f"a mask must be 2-D (H, W), got shape {hole.shape}")
    if int(pixels) != pixels:
        raise InputError(f"grow by a whole number of pixels, got {pixels}")
    return grow_hole(hole != 0, int(pixels))


# -- checks ---------------------------------------------------------------------------------


def _as_rgb8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"the image must be uint8 or uint16, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 2:
        raise InputError(f"the image must be (H, W, 3) RGB or (H, W) grey, got {image.shape}")
    image = image[..., :3]
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)  # colour statistics need no more than 8 bits
    return np.ascontiguousarray(image)


def _check_point(point: Sequence[float], width: int, height: int) -> tuple[float, float]:
    x, y = _numbers(point, 2, "point")
    if not (0 <= x < width and 0 <= y < height):
        raise InputError(f"the point ({x:g}, {y:g}) is outside the {width}x{height} image")
    return x, y


def _check_box(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    left, top, right, bottom = _numbers(box, 4, "box")
    left, right = sorted((left, right))
    top, bottom = sorted((top, bottom))
    left, top = max(0, int(np.floor(left))), max(0, int(np.floor(top)))
    right, bottom = min(width, int(np.ceil(right))), min(height, int(np.ceil(bottom)))
    if right - left < 2 or bottom - top < 2:
        raise InputError(
            f"the box must be at least 2x2 pixels inside the {width}x{height} image, "
            f"got {right - left}x{bottom - top}"
        )
    if (right - left) * (bottom - top) >= 0.98 * width * height:
        raise InputError("the box covers the whole image: draw it around one object")
    return left, top, right, bottom


def _numbers(values: Sequence[float], count: int, name: str) -> list[float]:
    try:
        numbers = [float(value) for value in values]
    except (TypeError, ValueError):
        raise InputError(f"the {name} must be {count} numbers, got {values!r}") from None
    if len(numbers) != count or not all(np.isfinite(numbers)):
        raise InputError(f"the {name} must be {count} finite numbers, got {values!r}")
    return numbers


# -- seeds ----------------------------------------------------------------------------------


def _seed_radius(shape: tuple[int, int]) -> int:
    return max(2, round(0.012 * max(shape)))


def _int_point(point: tuple[float, float]) -> tuple[int, int]:
    return int(point[0]), int(point[1])


def _scaled_box(box, fx: float, fy: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    left, top, right, bottom = box
    height, width = shape
    return (
        min(width - 1, int(left * fx)),
        min(height - 1, int(top * fy)),
        max(int(left * fx) + 1, min(width, int(np.ceil(right * fx)))),
        max(int(top * fy) + 1, min(height, int(np.ceil(bottom * fy)))),
    )


def _box_trimap(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    left, top, right, bottom = box
    trimap = np.full(shape, cv2.GC_BGD, np.uint8)
    trimap[top:bottom, left:right] = cv2.GC_PR_FGD
    return trimap


def _click_trimap(
    rgb: np.ndarray, superpixels: np.ndarray, seed: tuple[float, float]
) -> np.ndarray:
    """GrabCut's start from a click: object-like superpixels connected to the clicked one."""
    height, width = rgb.shape[:2]
    x, y = _int_point(seed)
    near_click = np.zeros((height, width), np.uint8)
    cv2.circle(near_click, (x, y), 3 * _seed_radius((height, width)), 1, -1)
    frame = max(2, round(0.04 * max(height, width)))
    border = np.ones((height, width), bool)
    border[frame:-frame, frame:-frame] = False
    border &= near_click == 0
    ratio = _log_likelihood_ratio(rgb, near_click.astype(bool), border)
    count = superpixels.max() + 1
    area = np.bincount(superpixels.ravel(), minlength=count)
    object_like = np.bincount(superpixels.ravel(), ratio.ravel(), count) / np.maximum(area, 1) > 0
    object_like[superpixels[y, x]] = True
    region = _connected_superpixels(superpixels, object_like, superpixels[y, x])
    trimap = np.where(region, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    trimap[border & ~region] = cv2.GC_BGD
    return trimap


def _log_likelihood_ratio(rgb: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """log p(colour | inside) - log p(colour | outside), from smoothed colour histograms."""
    step = 256 // _HIST_BINS
    index = rgb // step
    flat = (index[..., 0].astype(np.int32) * _HIST_BINS + index[..., 1]) * _HIST_BINS + index[
        ..., 2
    ]

    def density(where: np.ndarray) -> np.ndarray:
        counts = np.bincount(flat[where], minlength=_HIST_BINS**3).astype(np.float64)
        cube = ndimage.gaussian_filter(counts.reshape((_HIST_BINS,) * 3), 1.0)
        return cube.ravel() / max(cube.sum(), 1e-12) + 1e-6

    return (np.log(density(inside)) - np.log(density(outside)))[flat]


def _connected_superpixels(superpixels: np.ndarray, chosen: np.ndarray, start: int) -> np.ndarray:
    """Pixels of the chosen superpixels connected (4-neighbourhood) to superpixel ``start``."""
    labels, _ = ndimage.label(chosen[superpixels])
    return labels == labels[superpixels == start].max()


# -- segmentation ---------------------------------------------------------------------------


def _grabcut(rgb: np.ndarray, trimap: np.ndarray, iterations: int) -> np.ndarray:
    """GrabCut on a window around the possible object (the background model stays local)."""
    maybe_object = np.isin(trimap, (cv2.GC_FGD, cv2.GC_PR_FGD))
    selected = np.zeros(trimap.shape, bool)
    if not maybe_object.any():
        return selected
    rows, cols = _window(maybe_object)
    mask = np.ascontiguousarray(trimap[rows, cols])
    bgr = np.ascontiguousarray(rgb[rows, cols, ::-1])
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    mode = cv2.GC_INIT_WITH_MASK
    inside = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD))
    for _ in range(iterations):  # one at a time, to stop once the outline has settled
        try:
            cv2.grabCut(bgr, mask, None, *models, 1, mode)
        except cv2.error:  # one label has too few pixels to fit its colour model
            return maybe_object
        mode = cv2.GC_EVAL
        previous, inside = inside, np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD))
        if np.count_nonzero(previous != inside) < _SETTLED * inside.size:
            break
    selected[rows, cols] = inside
    return selected


def _window(region: np.ndarray, grow: float = 0.35) -> tuple[slice, slice]:
    """The bounding box of ``region`` widened by ``grow`` of its size on each side."""
    rows, cols = np.nonzero(region)
    height, width = region.shape
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    pad_y = max(8, round(grow * (bottom - top)))
    pad_x = max(8, round(grow * (right - left)))
    return (
        slice(max(0, top - pad_y), min(height, bottom + pad_y)),
        slice(max(0, left - pad_x), min(width, right + pad_x)),
    )


def _snap_to_superpixels(
    selected: np.ndarray, superpixels: np.ndarray, sure: float = 0.75
) -> np.ndarray:
    """Superpixels mostly selected become whole, mostly not selected become empty.

    Where a superpixel straddles the object's outline (``1 - sure`` to ``sure`` of it selected)
    GrabCut's pixels are kept: superpixels on texture do not always follow the outline.
    """
    count = superpixels.max() + 1
    area = np.maximum(np.bincount(superpixels.ravel(), minlength=count), 1)
    fraction = np.bincount(superpixels.ravel(), selected.ravel().astype(np.float64), count) / area
    per_pixel = fraction[superpixels]
    return np.where(per_pixel >= sure, True, np.where(per_pixel <= 1 - sure, False, selected))


def _keep_object(
    selected: np.ndarray,
    seed: tuple[float, float] | None,
    box: tuple[int, int, int, int] | None,
) -> np.ndarray:
    """The part under the click (or the sizeable parts inside the box), its holes filled."""
    labels, count = ndimage.label(selected)
    if count == 0:
        return selected
    if seed is not None and labels[_int_point(seed)[1], _int_point(seed)[0]]:
        keep = labels == labels[_int_point(seed)[1], _int_point(seed)[0]]
    else:
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        sizes[0] = 0
        keep = np.isin(labels, np.nonzero(sizes >= 0.1 * sizes.max())[0])
    if box is not None:
        left, top, right, bottom = box
        inside = np.zeros_like(keep)
        inside[top:bottom, left:right] = True
        keep &= inside
    return ndimage.binary_fill_holes(keep)
