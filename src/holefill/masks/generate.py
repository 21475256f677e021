"""Hole-mask generators: free-form brush strokes, rectangles, masks in a PConv bin, training masks.

Every generator returns a numpy bool array ``(H, W)``, **True = hole**, and is seeded (a
``numpy.random.Generator``, an int seed, or None).

References
----------
.. [1] G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao and B. Catanzaro, "Image Inpainting for
   Irregular Holes Using Partial Convolutions", ECCV 2018.
.. [2] J. Yu, Z. Lin, J. Yang, X. Shen, X. Lu and T. S. Huang, "Free-Form Image Inpainting with
   Gated Convolution", ICCV 2019.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from holefill.errors import InputError
from holefill.masks.measures import (
    BIN_LABELS,
    BORDER_DISTANCE,
    PCONV_BINS,
)

RandomSource = np.random.Generator | int | None

# Stroke shape at a 256-px image, after the brush strokes of Yu et al. [2]_; scaled with the size.
_REFERENCE_SIZE = 256
_BRUSH_WIDTH = (12, 40)
_MEAN_ANGLE = 2 * math.pi / 5
_ANGLE_RANGE = 2 * math.pi / 15
_MIN_SCALE = 1 / 32  # below this a "shape" is a single pixel, so filling always makes progress


# ---------------------------------------------------------------------------------------------
# Generators
# ---------------------------------------------------------------------------------------------


def free_form_mask(
    height: int,
    width: int,
    *,
    rng: RandomSource = None,
    max_strokes: int = 4,
    max_vertices: int = 12,
    brush_width: tuple[int, int] | None = None,
) -> np.ndarray:
    """A mask of 1 to ``max_strokes`` random-walk brush strokes.

    Each stroke is a zig-zag random walk of 4 to ``max_vertices`` vertices drawn with ``cv2.line`` of
    one random width and round joints (``cv2.circle``), as the free-form masks of Yu et al. [2]_; such
    strokes stand in for the PConv training masks [1]_ (which came from video occlusions).

    Parameters
    ----------
    height, width : int
        Mask size in pixels.
    rng : numpy.random.Generator, int or None
        Random source or seed; the same seed gives the same mask.
    max_strokes : int
        Most strokes drawn.
    max_vertices : int
        Most vertices per stroke (at least 4 are used when this allows).
    brush_width : (int, int) or None
        Range of stroke widths in pixels; default ``(12, 40)`` at 256 px, scaled with
        ``min(height, width)``.

    Returns
    -------
    numpy.ndarray
        Bool ``(height, width)``, True = hole.

    Examples
    --------
    >>> free_form_mask(256, 256, rng=0).shape
    (256, 256)
    """
    _check_size(height, width)
    if max_strokes < 1 or max_vertices < 1:
        raise InputError("max_strokes and max_vertices must be at least 1")
    rng = np.random.default_rng(rng)
    brush = _Brush.for_image(height, width, max_vertices, brush_width)
    canvas = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(1, max_strokes + 1))):
        start = (int(rng.integers(height)), int(rng.integers(width)))
        brush.stroke(start, canvas.shape, rng).draw(canvas)
    return canvas.astype(bool)


def rectangle_mask(
    height: int,
    width: int,
    *,
    rng: RandomSource = None,
    count: int = 1,
    size_range: tuple[float, float] = (0.1, 0.5),
) -> np.ndarray:
    """A mask of ``count`` axis-aligned rectangular holes at random places.

    Parameters
    ----------
    height, width : int
        Mask size in pixels.
    rng : numpy.random.Generator, int or None
        Random source or seed.
    count : int
        Number of rectangles (they may overlap).
    size_range : (float, float)
        Each rectangle side is drawn uniformly in this fraction range of the image side.

    Returns
    -------
    numpy.ndarray
        Bool ``(height, width)``, True = hole.
    """
    _check_size(height, width)
    lo, hi = size_range
    if count < 0 or not 0 < lo <= hi <= 1:
        raise InputError("count must be 0 or more and size_range must satisfy 0 < lo <= hi <= 1")
    rng = np.random.default_rng(rng)
    canvas = np.zeros((height, width), np.uint8)
    for _ in range(count):
        rect_h = max(1, round(height * rng.uniform(lo, hi)))
        rect_w = max(1, round(width * rng.uniform(lo, hi)))
        top = int(rng.integers(0, height - rect_h + 1))
        left = int(rng.integers(0, width - rect_w + 1))
        canvas[top : top + rect_h, left : left + rect_w] = 1
    return canvas.astype(bool)


def mask_in_bin(
    height: int,
    width: int,
    bin: str | tuple[float, float],  # noqa: A002 - the name others code against
    *,
    rng: RandomSource = None,
    border: bool | None = None,
    max_tries: int = 10,
    border_distance: int = BORDER_DISTANCE,
) -> np.ndarray:
    """A free-form mask whose hole ratio falls in a bin ``(lo, hi]``.

    Random-walk strokes (see :func:`free_form_mask`) are added, each starting on a known pixel, until
    the hole ratio reaches a target drawn in the lower 80 % of the bin; a stroke that would overshoot
    the bin is undone and redrawn at half the size (down to single pixels), so the result always lands
    in the bin.

    Parameters
    ----------
    height, width : int
        Mask size in pixels.
    bin : str or (float, float)
        A label of :data:`BIN_LABELS` (``"0.1-0.2"``) or any interval ``(lo, hi)`` with
        ``0 <= lo < hi <= 1``.
    rng : numpy.random.Generator, int or None
        Random source or seed; the same seed gives the same mask.
    border : bool or None
        False: no hole within ``border_distance`` px of the border (the PConv "away from the border"
        masks [1]_; the image must be large enough for the bin, e.g. up to bin 0.3-0.4 at 256 px and
        all bins at 512 px). True: some hole within that distance. None: no constraint.
    max_tries : int
        Masks built before giving up (one almost always suffices).
    border_distance : int
        The border distance in pixels, 50 as in [1]_.

    Returns
    -------
    numpy.ndarray
        Bool ``(height, width)``, True = hole.

    Examples
    --------
    >>> hole_mask = mask_in_bin(256, 256, "0.3-0.4", rng=1)
    >>> bin_of(hole_mask.mean())
    '0.3-0.4'
    """
    _check_size(height, width)
    lo, hi = _parse_bin(bin)
    rng = np.random.default_rng(rng)
    n_pixels = height * width
    region = _fill_region(height, width, border, border_distance, lo)
    count_min, count_max = _count_range(lo, hi, n_pixels, region.capacity)
    brush = _Brush.for_image(height, width)
    for _ in range(max(1, max_tries)):
        target = int(rng.integers(count_min, count_min + int(0.8 * (count_max - count_min)) + 1))
        canvas = _fill(region, brush, target, count_max, rng)
        if canvas is not None:
            return region.paste(canvas)
    raise InputError(
        f"could not build a {height}x{width} mask in bin ({lo}, {hi}] in {max_tries} tries"
    )


def random_training_mask(height: int, width: int, rng: RandomSource) -> np.ndarray:
    """The PConv trainer's default mask: hole ratio uniform over 0.01-0.6 (all PConv bins).

    A target ratio ``r`` is drawn uniformly in (0.01, 0.58). Half of the masks are random-walk
    brush strokes filled to a ratio in ``[r, r + 0.02]`` (within 0.6), one in four of them with
    rectangles mixed in (half of the shapes), so models also see hard straight edges. The other
    half are :func:`noise_mask` holes at ratio ``r``: thin contour lines, blobs and blocks, the
    fragmented shapes of the NVIDIA occlusion masks that the brush never draws. Half of all masks
    then get hairline strokes and small dots on top (a few per cent of the image at most), which
    the NVIDIA masks are full of.
    """
    _check_size(height, width)
    rng = np.random.default_rng(rng)
    ratio = rng.uniform(0.01, 0.58)  # strokes fill to [r, r + 0.02]: never an empty range
    if rng.random() < 0.5:
        mask = noise_mask(height, width, ratio, rng)
    else:
        n_pixels = height * width
        region = _fill_region(height, width, None, BORDER_DISTANCE, ratio)
        count_min, count_max = _count_range(ratio, min(ratio + 0.02, 0.6), n_pixels, n_pixels)
        box_share = 0.5 if rng.random() < 0.25 else 0.0
        brush = _Brush.for_image(height, width)
        canvas = _fill(region, brush, count_min, count_max, rng, box_share=box_share)
        assert canvas is not None  # unconstrained filling always reaches the target
        mask = canvas.astype(bool)
    if rng.random() < 0.5:
        _add_specks(mask, rng)
    return mask


def _add_specks(mask: np.ndarray, rng: np.random.Generator) -> None:
    """Add, in place, what the NVIDIA test masks are full of and the brush never draws: hairline
    strokes 1-4 px wide (at 256 px) and scattered dots of radius 1-4 px, covering a few per cent of
    the image at most; skipped where they would push the hole ratio past 0.6."""
    height, width = mask.shape
    unit = min(height, width) / _REFERENCE_SIZE
    canvas = np.zeros((height, width), np.uint8)
    thin = _Brush.for_image(
        height, width, brush_width=(max(1, round(unit)), max(1, round(4 * unit)))
    )
    for _ in range(int(rng.integers(0, 7))):
        start = (int(rng.integers(height)), int(rng.integers(width)))
        thin.stroke(start, canvas.shape, rng, scale=float(rng.uniform(0.3, 1.0))).draw(canvas)
    for _ in range(int(rng.integers(0, 31))):
        radius = max(1, round(rng.uniform(1, 4) * unit))
        cv2.circle(canvas, (int(rng.integers(width)), int(rng.integers(height))), radius, 1, -1)
    specked = mask | canvas.astype(bool)
    if specked.mean() <= 0.6:  # stay within the PConv bins
        mask[...] = specked


def noise_mask(height: int, width: int, ratio: float, rng: RandomSource = None) -> np.ndarray:
    """A fragmented hole mask covering ``ratio`` of the image: the pixels with the highest scores
    of a smooth random field.

    The field is uniform noise on a coarse grid (4 to 32 cells across), enlarged bicubically
    (smooth blobs) or with nearest neighbour (blocks); half of the time the score is minus the
    distance to one of the field's level sets instead, which makes thin wandering bands that
    thicken as ``ratio`` grows. Taking the top ``ratio`` quantile hits the ratio exactly (up to
    ties), for any size.

    Returns
    -------
    numpy.ndarray
        Bool ``(height, width)``, True = hole.
    """
    _check_size(height, width)
    if not 0 < ratio < 1:
        raise InputError(f"ratio must be in (0, 1), got {ratio}")
    rng = np.random.default_rng(rng)
    blocky = rng.random() < 0.2
    field = _noise_field(height, width, rng, cv2.INTER_NEAREST if blocky else cv2.INTER_CUBIC)
    if not blocky:
        field += 0.5 * _noise_field(height, width, rng, cv2.INTER_CUBIC)  # a second octave
        if rng.random() < 0.5:
            field = -np.abs(field - np.float32(rng.uniform(0.5, 1.0)))
    if rng.random() < 0.5:  # gather the holes in one part of the image
        field += _noise_field(height, width, rng, cv2.INTER_CUBIC, cells=(2, 4))
    # ties (blocks) are broken by a smooth field, so the cut never speckles a block
    field += np.float32(1e-3) * _noise_field(height, width, rng, cv2.INTER_CUBIC, cells=(2, 5))
    count = max(1, round(ratio * height * width))
    threshold = np.partition(field, field.size - count, axis=None)[field.size - count]
    return field >= threshold


def _noise_field(
    height: int,
    width: int,
    rng: np.random.Generator,
    interpolation: int,
    cells: tuple[int, int] = (4, 33),
) -> np.ndarray:
    """Uniform noise on a coarse grid of ``cells`` (a random count in the range) across the
    longer side, enlarged to ``(height, width)`` float32."""
    across = int(rng.integers(*cells))
    longer = max(height, width)
    grid = rng.random(
        (max(2, round(across * height / longer)), max(2, round(across * width / longer)))
    )
    return cv2.resize(grid.astype(np.float32), (width, height), interpolation=interpolation)


# ---------------------------------------------------------------------------------------------
# Generator internals
# ---------------------------------------------------------------------------------------------


def _check_size(height: int, width: int) -> None:
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise InputError(f"mask size must be positive whole pixels, got {height}x{width}")


def _parse_bin(bin_: str | tuple[float, float]) -> tuple[float, float]:
    if isinstance(bin_, str):
        if bin_ not in BIN_LABELS:
            raise InputError(f"unknown bin {bin_!r}; use one of {', '.join(BIN_LABELS)}")
        return PCONV_BINS[BIN_LABELS.index(bin_)]
    try:
        lo, hi = (float(v) for v in bin_)
    except (TypeError, ValueError):
        raise InputError(f"a bin is a label or a (lo, hi) pair, got {bin_!r}") from None
    if not 0 <= lo < hi <= 1:
        raise InputError(f"a bin (lo, hi] needs 0 <= lo < hi <= 1, got ({lo}, {hi})")
    return lo, hi


def _count_range(lo: float, hi: float, n_pixels: int, capacity: int) -> tuple[int, int]:
    """Hole-pixel counts c with lo < c / n <= hi (exactly as the ratio is computed) and c <= capacity."""
    count_min = math.floor(lo * n_pixels)
    while count_min / n_pixels <= lo:
        count_min += 1
    while count_min > 0 and (count_min - 1) / n_pixels > lo:
        count_min -= 1
    count_max = math.floor(hi * n_pixels) + 1
    while count_max / n_pixels > hi:
        count_max -= 1
    count_max = min(count_max, capacity)
    if count_min > count_max:
        raise InputError(
            f"no mask of {n_pixels:,} pixels has a hole ratio in ({lo}, {hi}] with holes in the "
            f"allowed region of {capacity:,} pixels; use a larger image or another bin"
        )
    return count_min, count_max


@dataclass(frozen=True)
class _Region:
    """Where holes may go: the full image, or its interior away from the border."""

    height: int
    width: int
    margin: int  # 0, or the border distance when holes must stay inside
    frame: int  # > 0 when some hole must lie within this many px of the border

    @property
    def shape(self) -> tuple[int, int]:
        return self.height - 2 * self.margin, self.width - 2 * self.margin

    @property
    def capacity(self) -> int:
        return self.shape[0] * self.shape[1]

    def paste(self, canvas: np.ndarray) -> np.ndarray:
        if not self.margin:
            return canvas.astype(bool)
        hole_mask = np.zeros((self.height, self.width), bool)
        m = self.margin
        hole_mask[m : self.height - m, m : self.width - m] = canvas.astype(bool)
        return hole_mask


def _fill_region(height: int, width: int, border: bool | None, distance: int, lo: float) -> _Region:
    if distance < 0:
        raise InputError(f"the border distance must be 0 or more pixels, got {distance}")
    if border is None or (border and distance == 0):
        return _Region(height, width, 0, 0)
    if border:
        return _Region(height, width, 0, distance)
    if height <= 2 * distance or width <= 2 * distance:
        raise InputError(
            f"a {height}x{width} mask has no pixel {distance} px away from its border; holes away "
            f"from the border need both sides over {2 * distance} px"
        )
    region = _Region(height, width, distance, 0)
    if lo >= region.capacity / (height * width):
        raise InputError(
            f"holes kept {distance} px from the border of a {height}x{width} mask cover at most "
            f"{region.capacity / (height * width):.3f} of it, not more than {lo}; use a larger "
            "image or border=None"
        )
    return region


@dataclass(frozen=True)
class _Shape:
    """A shape ready to draw: a polyline stroke with round joints, or a filled box (width 0)."""

    points: list[tuple[int, int]]  # (x, y); a box is its top-left and bottom-right corners
    thickness: int

    def bbox(self, shape: tuple[int, int]) -> tuple[slice, slice]:
        pad = self.thickness // 2 + 1
        xs = [x for x, _ in self.points]
        ys = [y for _, y in self.points]
        return (
            slice(max(0, min(ys) - pad), min(shape[0], max(ys) + pad + 1)),
            slice(max(0, min(xs) - pad), min(shape[1], max(xs) + pad + 1)),
        )

    def draw(self, canvas: np.ndarray) -> None:
        if self.thickness == 0:
            cv2.rectangle(canvas, self.points[0], self.points[1], 1, -1)
            return
        radius = self.thickness // 2
        previous = self.points[0]
        cv2.circle(canvas, previous, radius, 1, -1)
        for point in self.points[1:]:
            cv2.line(canvas, previous, point, 1, self.thickness)
            cv2.circle(canvas, point, radius, 1, -1)
            previous = point


@dataclass(frozen=True)
class _Brush:
    """Random-walk brush strokes after Yu et al. [2]_, sized for one image."""

    width_range: tuple[int, int]
    step: float  # mean segment length
    max_vertices: int

    @classmethod
    def for_image(
        cls,
        height: int,
        width: int,
        max_vertices: int = 12,
        brush_width: tuple[int, int] | None = None,
    ) -> _Brush:
        unit = min(height, width) / _REFERENCE_SIZE
        if brush_width is None:
            brush_width = (
                max(1, round(_BRUSH_WIDTH[0] * unit)),
                max(1, round(_BRUSH_WIDTH[1] * unit)),
            )
        if not 1 <= brush_width[0] <= brush_width[1]:
            raise InputError(f"brush_width must be (lo, hi) with 1 <= lo <= hi, got {brush_width}")
        return cls(
            (int(brush_width[0]), int(brush_width[1])), math.hypot(height, width) / 8, max_vertices
        )

    def stroke(
        self,
        start: tuple[int, int],
        shape: tuple[int, int],
        rng: np.random.Generator,
        scale: float = 1.0,
    ) -> _Shape:
        """A zig-zag random walk from ``start`` (row, col) inside an image of ``shape``."""
        height, width = shape
        few = min(4, self.max_vertices)
        draw = rng.random(5).tolist()
        n_vertices = few + int(draw[0] * (self.max_vertices - few + 1))
        low, high = self.width_range
        thickness = max(1, round((low + int(draw[1] * (high - low + 1))) * scale))
        heading = draw[2] * 2 * math.pi
        angle_lo = _MEAN_ANGLE - draw[3] * _ANGLE_RANGE
        angle_hi = _MEAN_ANGLE + draw[4] * _ANGLE_RANGE
        turns = rng.uniform(angle_lo, angle_hi, n_vertices).tolist()
        lengths = rng.normal(self.step, self.step / 2, n_vertices).tolist()
        row, col = float(start[0]), float(start[1])
        points = [(start[1], start[0])]
        for index, (turn, length) in enumerate(zip(turns, lengths, strict=True)):
            angle = heading + (turn if index % 2 else -turn)  # zig-zag around the heading
            length = min(max(length, 0.0), 2 * self.step) * scale
            row = min(max(row + length * math.sin(angle), 0.0), height - 1.0)
            col = min(max(col + length * math.cos(angle), 0.0), width - 1.0)
            points.append((round(col), round(row)))
        return _Shape(points, thickness)


def _box(
    start: tuple[int, int], shape: tuple[int, int], rng: np.random.Generator, scale: float
) -> _Shape:
    """A filled rectangle centred on ``start``, sides 10-40 % of the image's (times ``scale``)."""
    height, width = shape
    draw = rng.random(2).tolist()
    half_h = max(0, round(height * (0.1 + 0.3 * draw[0]) * scale / 2))
    half_w = max(0, round(width * (0.1 + 0.3 * draw[1]) * scale / 2))
    row, col = start
    top_left = (max(0, col - half_w), max(0, row - half_h))
    bottom_right = (min(width - 1, col + half_w), min(height - 1, row + half_h))
    return _Shape([top_left, bottom_right], 0)


def _fill(
    region: _Region,
    brush: _Brush,
    target: int,
    count_max: int,
    rng: np.random.Generator,
    *,
    box_share: float = 0.0,
    max_shapes: int = 4000,
) -> np.ndarray | None:
    """Add shapes until ``target <= holes <= count_max``; None if the shape budget runs out.

    Every shape starts on a known pixel, so each adds at least one hole pixel; an overshooting shape
    is undone (within its bounding box) and the scale halved, regrown by 1.25x after each success.
    With ``region.frame`` the shapes start in the border frame until one is kept.
    """
    canvas = np.zeros(region.shape, np.uint8)
    count, scale, touching = 0, 1.0, region.frame == 0
    for _ in range(max_shapes):
        if count >= target and touching:
            return canvas
        start = _known_pixel(canvas, rng, 0 if touching else region.frame)
        if start is None:
            return None
        if scale < _MIN_SCALE:  # single pixels: the last few holes of a nearly full bin
            canvas[start] = 1
            count, scale, touching = count + 1, scale * 1.25, True
            continue
        if box_share and rng.random() < box_share:
            shape = _box(start, canvas.shape, rng, scale)
        else:
            shape = brush.stroke(start, canvas.shape, rng, scale)
        window = shape.bbox(canvas.shape)
        before = canvas[window].copy()
        shape.draw(canvas)
        added = cv2.countNonZero(canvas[window]) - cv2.countNonZero(before)
        if count + added > count_max:
            canvas[window] = before
            scale /= 2
            continue
        count, scale, touching = count + added, min(1.0, scale * 1.25), True
    return None


def _known_pixel(
    canvas: np.ndarray, rng: np.random.Generator, frame: int = 0
) -> tuple[int, int] | None:
    """A random known (0) pixel of ``canvas``, within ``frame`` px of its border when ``frame``."""
    height, width = canvas.shape
    for _ in range(16):
        if frame:
            row, col = _frame_pixel(height, width, frame, rng)
        else:
            draw = rng.random(2).tolist()
            row, col = int(draw[0] * height), int(draw[1] * width)
        if not canvas[row, col]:
            return row, col
    allowed = canvas == 0
    if frame and height > 2 * frame and width > 2 * frame:
        allowed[frame:-frame, frame:-frame] = False
    rows, cols = np.nonzero(allowed)
    if rows.size == 0:
        return None
    pick = int(rng.integers(rows.size))
    return int(rows[pick]), int(cols[pick])


def _frame_pixel(height: int, width: int, frame: int, rng: np.random.Generator) -> tuple[int, int]:
    """A random pixel within ``frame`` px of the border (a random side, depth and position)."""
    draw = rng.random(4).tolist()
    row, col = int(draw[0] * height), int(draw[1] * width)
    depth = int(draw[2] * min(frame, height, width))
    side = int(draw[3] * 4)
    if side == 0:
        row = depth
    elif side == 1:
        row = height - 1 - depth
    elif side == 2:
        col = depth
    else:
        col = width - 1 - depth
    return row, col
