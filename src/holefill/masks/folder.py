"""Folders of mask files, such as the NVIDIA irregular test masks [1]_, with their PConv labels.

References
----------
.. [1] G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao and B. Catanzaro, "Image Inpainting for
   Irregular Holes Using Partial Convolutions", ECCV 2018.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from holefill.errors import InputError
from holefill.io import read_mask, resize_mask
from holefill.masks.measures import (
    BIN_LABELS,
    BORDER_DISTANCE,
    bin_of,
    hole_ratio,
    touches_border,
)

_MASK_CSV = "masks.csv"
_CSV_COLUMNS = ("file", "hole_ratio", "bin", "border")


@dataclass(frozen=True)
class MaskRecord:
    """One mask file of a :class:`MaskFolder`, with its hole ratio, PConv bin and border flag."""

    path: Path
    hole_ratio: float
    bin: str | None
    border: bool


class MaskFolder:
    """A folder of mask PNGs (white = hole, binarised at 127), such as the NVIDIA test masks [1]_.

    With a ``masks.csv`` (columns ``file,hole_ratio,bin,border``) the records are its rows, in its
    order; without one they are computed from the PNGs (sorted by name), with
    :func:`touches_border` at ``border_distance``.

    Parameters
    ----------
    path : str or os.PathLike
        The folder.
    border_distance : int
        Border distance used when the csv is absent.

    Examples
    --------
    >>> folder = MaskFolder("shared/data/masks/nvidia_irregular")  # doctest: +SKIP
    >>> {label: len(records) for label, records in folder.by_bin().items()}  # doctest: +SKIP
    {'0.01-0.1': 200, '0.1-0.2': 200, ...}
    """

    def __init__(self, path: str | os.PathLike, *, border_distance: int = BORDER_DISTANCE) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(f"{self.path}: mask folder not found")
        csv_path = self.path / _MASK_CSV
        if csv_path.is_file():
            self.records = _read_mask_csv(csv_path)
        else:
            self.records = tuple(_measure(p, border_distance) for p in _mask_pngs(self.path))
        if not self.records:
            raise InputError(f"{self.path}: no mask PNGs in this folder")

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[MaskRecord]:
        return iter(self.records)

    def __getitem__(self, index: int) -> MaskRecord:
        return self.records[index]

    def __repr__(self) -> str:
        return f"MaskFolder({str(self.path)!r}, {len(self)} masks)"

    def by_bin(self) -> dict[str, list[MaskRecord]]:
        """Records per PConv bin, every label of :data:`BIN_LABELS` in order (masks outside all bins
        are left out)."""
        groups: dict[str, list[MaskRecord]] = {label: [] for label in BIN_LABELS}
        for record in self.records:
            if record.bin in groups:
                groups[record.bin].append(record)
        return groups

    def load(
        self, record: MaskRecord | str | os.PathLike, size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """The mask as bool ``(H, W)`` (True = hole), resized nearest-neighbour to ``size`` =
        ``(height, width)`` when given. ``record`` may also be a file name in the folder."""
        path = record.path if isinstance(record, MaskRecord) else self.path / record
        hole_mask = read_mask(path, threshold=127)
        if size is not None and hole_mask.shape != tuple(size):
            hole_mask = resize_mask(hole_mask, (int(size[0]), int(size[1])))
        return hole_mask


def _mask_pngs(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() == ".png" and not p.name.startswith(".")
    )


def _measure(path: Path, border_distance: int) -> MaskRecord:
    hole_mask = read_mask(path, threshold=127)
    ratio = hole_ratio(hole_mask)
    return MaskRecord(path, ratio, bin_of(ratio), touches_border(hole_mask, border_distance))


def _read_mask_csv(csv_path: Path) -> tuple[MaskRecord, ...]:
    folder = csv_path.parent
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not set(_CSV_COLUMNS) <= set(reader.fieldnames):
            raise InputError(f"{csv_path}: needs the columns {','.join(_CSV_COLUMNS)}")
        records = []
        for line, row in enumerate(reader, start=2):
            path = folder / row["file"]
            if not path.is_file():
                raise InputError(f"{csv_path}, line {line}: {row['file']} is not in the folder")
            try:
                ratio = float(row["hole_ratio"])
                border = bool(int(row["border"]))
            except ValueError:
                raise InputError(
                    f"{csv_path}, line {line}: hole_ratio must be a number and border 0 or 1"
                ) from None
            records.append(MaskRecord(path, ratio, row["bin"] or None, border))
    return tuple(records)
