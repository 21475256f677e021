"""Hole masks for training and evaluation: measures, generators and mask folders.

A mask is a numpy bool array ``(H, W)``, **True = hole**. The bins and the border rule are those of
the NVIDIA irregular mask test set (Liu et al. 2018): six hole-ratio bins ``(lo, hi]`` from 0.01 to
0.6, and holes either kept at least 50 px from the border or not.

Three modules, one role each: :mod:`holefill.masks.measures` (hole ratio, bins, border test),
:mod:`holefill.masks.generate` (seeded generators) and :mod:`holefill.masks.folder` (mask folders
with their labels). Which mask values are holes is decided once, in :mod:`holefill.mask_rule`.
"""

from holefill.masks.folder import MaskFolder, MaskRecord
from holefill.masks.generate import (
    RandomSource,
    free_form_mask,
    mask_in_bin,
    noise_mask,
    random_training_mask,
    rectangle_mask,
)
from holefill.masks.measures import (
    BIN_LABELS,
    BORDER_DISTANCE,
    PCONV_BINS,
    bin_of,
    hole_ratio,
    touches_border,
)

__all__ = [
    "BIN_LABELS",
    "BORDER_DISTANCE",
    "PCONV_BINS",
    "MaskFolder",
    "MaskRecord",
    "RandomSource",
    "bin_of",
    "free_form_mask",
    "hole_ratio",
    "mask_in_bin",
    "noise_mask",
    "random_training_mask",
    "rectangle_mask",
    "touches_border",
]
