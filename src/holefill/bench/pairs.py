"""Evaluation pairs: which image is filled through which mask, and the mask's PConv labels.

A pair's ``bin`` and ``border`` describe the mask at its native size (as ``masks.csv`` of the NVIDIA
test masks does, Liu et al. 2018): a hole-ratio bin ``(lo, hi]`` from 0.01 to 0.6, and whether a
hole lies within 50 px of the border. Pairs come from a CSV (``image,mask``) or from a seeded,
deterministic drawing of masks per (bin, border) group, each paired with a different image.

References
----------
.. [1] G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao and B. Catanzaro, "Image Inpainting for
   Irregular Holes Using Partial Convolutions", ECCV 2018.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from holefill.errors import InputError
from holefill.io import list_images, read_mask
from holefill.masks import (
    BIN_LABELS,
    BORDER_DISTANCE,
    MaskFolder,
    bin_of,
    hole_ratio,
    touches_border,
)

#: Columns of a pairs CSV; ``image`` and ``mask`` are required, the rest are read when present.
PAIR_COLUMNS = ("image", "mask", "mask_hole_ratio", "bin", "border")
#: Label of masks outside every PConv bin (only explicit pairs can hold them).
NO_BIN = "other"


@dataclass(frozen=True)
class Pair:
    """An image, a mask, and the mask's labels at its native size.

    Paths are kept as written (relative ones are relative to the working directory) and the hole
    ratio is rounded to 6 decimals, so a written pairs file reads back to the same pairs.
    """

    image: Path
    mask: Path
    mask_hole_ratio: float
    bin: str
    border: bool

    @property
    def key(self) -> tuple[str, str]:
        """What identifies the pair in ``results.csv``."""
        return str(self.image), str(self.mask)


def draw_pairs(
    images_dir: str | os.PathLike,
    masks_dir: str | os.PathLike,
    *,
    per_bin: int | None = None,
    seed: int = 0,
    border_distance: int = BORDER_DISTANCE,
) -> list[Pair]:
    """Seeded pairs: ``per_bin`` masks of each (bin, border) group, each with its own image.

    Groups come in the order of :data:`holefill.masks.BIN_LABELS`, holes away from the border
    first. Within a group the masks are drawn without replacement (all of them when ``per_bin`` is
    None) and kept in file order. Images are taken in a seeded random order, one per pair, cycling
    when there are fewer images than pairs. Masks outside every bin are left out.

    Parameters
    ----------
    images_dir, masks_dir : path
        Folders of photos (searched recursively) and of mask PNGs (white = hole). A ``masks.csv``
        in ``masks_dir`` gives the labels; otherwise they are measured on each mask.
    per_bin : int, optional
        Masks per (bin, border) group.
    seed : int
        The same seed gives the same pairs; another seed, others.
    border_distance : int
        Holes within this many px of the border count as "border" (when measured).

    Returns
    -------
    list of Pair
    """
    if per_bin is not None and per_bin < 1:
        raise InputError(f"--per-bin must be at least 1, got {per_bin}")
    images = list_images(images_dir)
    if not images:
        raise InputError(f"{images_dir}: no images found")
    folder = MaskFolder(masks_dir, border_distance=border_distance)
    rng = np.random.default_rng(seed)
    image_order = rng.permutation(len(images))
    pairs: list[Pair] = []
    for label in BIN_LABELS:
        for border in (False, True):
            group = sorted(
                (r for r in folder if r.bin == label and r.border == border),
                key=lambda record: record.path.name,
            )
            if per_bin is not None and per_bin < len(group):
                picked = np.sort(rng.choice(len(group), size=per_bin, replace=False))
                group = [group[i] for i in picked]
            for record in group:
                image = images[image_order[len(pairs) % len(images)]]
                pairs.append(Pair(image, record.path, round(record.hole_ratio, 6), label, border))
    if not pairs:
        raise InputError(f"{masks_dir}: no mask has a hole ratio in a PConv bin (0.01, 0.6]")
    return pairs


def read_pairs(path: str | os.PathLike, *, border_distance: int = BORDER_DISTANCE) -> list[Pair]:
    """Pairs from a CSV with columns ``image,mask`` (and optionally ``mask_hole_ratio,bin,border``).

    Missing labels are taken from the ``masks.csv`` beside each mask, else measured on the mask.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such pairs file")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"image", "mask"} <= set(reader.fieldnames):
            raise InputError(f"{path}: a pairs file needs the columns image,mask")
        rows = list(reader)
    if not rows:
        raise InputError(f"{path}: no pairs in the file")
    labels = _MaskLabels(border_distance)
    return [
        _pair_from_row(row, labels, f"{path}, line {line}")
        for line, row in enumerate(rows, start=2)
    ]


def _pair_from_row(row: dict[str, str], labels: _MaskLabels, where: str) -> Pair:
    image, mask = Path(row["image"]), Path(row["mask"])
    if not row["image"] or not row["mask"]:
        raise InputError(f"{where}: image and mask must both be given")
    if row.get("bin") and row.get("border") not in (None, "") and row.get("mask_hole_ratio"):
        try:
            return Pair(
                image, mask, float(row["mask_hole_ratio"]), row["bin"], bool(int(row["border"]))
            )
        except ValueError:
            raise InputError(
                f"{where}: mask_hole_ratio must be a number and border 0 or 1"
            ) from None
    ratio, label, border = labels.of(mask)
    return Pair(image, mask, ratio, label, border)


class _MaskLabels:
    """Hole ratio, bin and border of mask files: from their folder's masks.csv, else measured."""

    def __init__(self, border_distance: int) -> None:
        self.border_distance = border_distance
        self._csv: dict[Path, dict[str, tuple[float, str, bool]]] = {}

    def of(self, mask: Path) -> tuple[float, str, bool]:
        known = self._folder_csv(mask.parent).get(mask.name)
        if known is not None:
            return known
        if not mask.is_file():  # the pair's evaluation records the error
            return float("nan"), NO_BIN, False
        try:
            hole_mask = read_mask(mask)
        except InputError:
            return float("nan"), NO_BIN, False
        ratio = hole_ratio(hole_mask)
        return (
            round(ratio, 6),
            bin_of(ratio) or NO_BIN,
            touches_border(hole_mask, self.border_distance),
        )

    def _folder_csv(self, folder: Path) -> dict[str, tuple[float, str, bool]]:
        if folder not in self._csv:
            self._csv[folder] = {}
            if (folder / "masks.csv").is_file():
                records = MaskFolder(folder, border_distance=self.border_distance).records
                self._csv[folder] = {
                    r.path.name: (r.hole_ratio, r.bin or NO_BIN, r.border) for r in records
                }
        return self._csv[folder]


def pairs_csv_text(pairs: list[Pair]) -> str:
    """The pairs as CSV text (the format :func:`read_pairs` reads)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PAIR_COLUMNS)
    for pair in pairs:
        writer.writerow(
            [pair.image, pair.mask, f"{pair.mask_hole_ratio:.6f}", pair.bin, int(pair.border)]
        )
    return buffer.getvalue()


def grid_pairs(pairs: list[Pair], per_bin: int) -> list[int]:
    """Indices of up to ``per_bin`` pairs per bin for the grids, alternating away from / near the
    border, in pair order."""
    chosen: list[int] = []
    for label in (*BIN_LABELS, NO_BIN):
        away = [i for i, p in enumerate(pairs) if p.bin == label and not p.border]
        near = [i for i, p in enumerate(pairs) if p.bin == label and p.border]
        mixed = [i for both in zip(away, near, strict=False) for i in both]
        mixed += away[len(near) :] + near[len(away) :]
        chosen += mixed[:per_bin]
    return sorted(chosen)
