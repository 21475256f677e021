"""Evaluation in the protocol of the PConv paper (Liu et al. 2018, Table 1).

``holefill bench`` fills pairs of photos and masks with each method, measures ℓ1 (%), PSNR, SSIM
(whole image and hole only) and a VGG perceptual distance per hole-ratio bin and border group, and
writes ``results.csv``, ``summary.md``/``summary.json``, a plot and image grids. See
:func:`holefill.bench.run.run_bench` and :mod:`holefill.bench.cli`.
"""

from holefill.bench.pairs import Pair, draw_pairs, read_pairs
from holefill.bench.run import BenchConfig, run_bench

__all__ = ["BenchConfig", "Pair", "draw_pairs", "read_pairs", "run_bench"]
