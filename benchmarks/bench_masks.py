"""Milliseconds per mask for each generator of holefill.masks at 256 and 512 px.

The PConv trainer draws masks on the fly; the budget is under 2 ms for a 256x256 mask.
Run: ``python benchmarks/bench_masks.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from holefill.errors import InputError
from holefill.masks import (
    BIN_LABELS,
    free_form_mask,
    mask_in_bin,
    random_training_mask,
    rectangle_mask,
)


def _time_per_mask(make: Callable[[int], np.ndarray], repeats: int) -> tuple[float, float]:
    """Median and 99th-percentile milliseconds of ``make(seed)`` over ``repeats`` seeds."""
    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        make(seed)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 99))


def _generators(size: int) -> dict[str, Callable[[int], np.ndarray]]:
    generators: dict[str, Callable[[int], np.ndarray]] = {
        "free_form_mask": lambda seed: free_form_mask(size, size, rng=seed),
        "rectangle_mask": lambda seed: rectangle_mask(size, size, rng=seed),
        "random_training_mask": lambda seed: random_training_mask(size, size, seed),
    }
    for label in BIN_LABELS:
        for border in (None, False):
            name = f"mask_in_bin {label} border={border}"
            generators[name] = lambda seed, label=label, border=border: mask_in_bin(
                size, size, label, rng=seed, border=border
            )
    return generators


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300, help="masks per generator and size")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(f"{'generator':40s} {'size':>5s} {'median ms':>10s} {'p99 ms':>8s}")
    for size in (256, 512):
        for name, make in _generators(size).items():
            try:
                median, p99 = _time_per_mask(make, args.repeats)
            except InputError as error:  # e.g. high bins away from the border at 256 px
                print(f"{name:40s} {size:5d} {'n/a':>10s}   ({error})")
                continue
            print(f"{name:40s} {size:5d} {median:10.3f} {p99:8.3f}")


if __name__ == "__main__":
    main()
