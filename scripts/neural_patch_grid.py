"""The six-photo grid of docs/neural_patch.md: input, telea, patchmatch, pconv, neural_patch, truth.

The rows are chosen by rule, not by hand: from each ``holefill bench`` report given (its
``pairs.csv`` and ``run.json``), the first pair away from the border (``N``) in each of ``--bins``.
Each method fills the pair again through ``holefill.inpaint`` with the report's seed, so the tiles
are the report's fills.

Usage::

    python scripts/neural_patch_grid.py runs/bench256 runs/bench_cbsd \\
        --bins 0.2-0.3,0.3-0.4,0.4-0.5 -o docs/neural_patch_grid.jpg
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

import holefill
from holefill.bench.pairs import read_pairs
from holefill.bench.report import grid_png
from holefill.bench.run import prepare_pair

METHODS = ("telea", "patchmatch", "pconv", "neural_patch")


def rows_of(report: Path, bins: list[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    settings = json.loads((report / "run.json").read_text())
    pairs = read_pairs(report / "pairs.csv")
    chosen = []
    for bin_ in bins:
        index, pair = next((i, p) for i, p in enumerate(pairs) if p.bin == bin_ and not p.border)
        truth, hole = prepare_pair(pair, settings["size"])
        label = f"{pair.image.parent.name}/{pair.image.name} #{index}, hole {hole.mean():.0%}"
        chosen.append((label, truth, hole))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="holefill bench report folders")
    parser.add_argument("--bins", default="0.2-0.3,0.3-0.4,0.4-0.5")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/neural_patch_grid.jpg"))
    args = parser.parse_args()
    bins = args.bins.split(",")
    rows, labels = [], []
    for report in args.reports:
        for label, truth, hole in rows_of(report, bins):
            shown = np.where(hole[..., None], np.uint8(255), truth)
            fills = [holefill.inpaint(truth, hole, method=m, seed=args.seed) for m in METHODS]
            rows.append([shown, *fills, truth])
            labels.append(label)
            print(label)
    png = grid_png(rows, ["input (hole white)", *METHODS, "truth"], labels, args.tile)
    grid = Image.open(io.BytesIO(png)).convert("RGB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_name(args.out.name + ".part")
    grid.save(temporary, format="JPEG", quality=80)
    temporary.replace(args.out)
    print(f"{args.out}: {grid.width}x{grid.height}, {args.out.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
