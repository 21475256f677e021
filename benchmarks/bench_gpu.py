"""GPU timings that need nothing but the repository: ``neural_patch`` on a 512x512 photo with a
centred 256x256 hole (default settings) and the ``pconv`` network on one 512x512 image.

Uses the bundled example photo (``examples/astronaut.jpg``), so it runs on a bare GPU machine
that has no copy of the shared data. Each figure follows a warm-up fill (CUDA context, cuDNN
autotuning, weights) and waits for the GPU before the clock stops.

    python benchmarks/bench_gpu.py [--device cuda] [--pconv-weights FILE] [--size 512]

``neural_patch`` needs a VGG-19 file (``--vgg-weights`` / ``HOLEFILL_VGG_WEIGHTS``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import holefill.api as api

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"


def _timed(device: str, work) -> float:
    started = time.perf_counter()
    work()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--pconv-weights", help="PConv weights (default: the packaged file)")
    parser.add_argument("--vgg-weights", help="VGG-19 file for neural_patch")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10, help="pconv fills timed (10)")
    args = parser.parse_args(argv)
    if args.vgg_weights:
        os.environ["HOLEFILL_VGG_WEIGHTS"] = args.vgg_weights
    device, size = args.device, args.size
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"device: {name}, torch {torch.__version__}", flush=True)
    photo = np.asarray(Image.open(EXAMPLE).convert("RGB").resize((size, size)))
    hole = np.zeros((size, size), bool)
    hole[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = True

    options = {"weights": args.pconv_weights} if args.pconv_weights else {}
    try:
        pconv = api.get_inpainter("pconv", device=device, **options)
    except Exception as exc:  # noqa: BLE001 - no packaged weights: report and go on
        print(f"pconv skipped: {exc}")
    else:
        for _ in range(3):
            _timed(device, lambda: api.fill_pixels(photo, hole, pconv))
        times = [
            _timed(device, lambda: api.fill_pixels(photo, hole, pconv)) for _ in range(args.repeats)
        ]
        print(f"pconv {size}x{size} fill: median {statistics.median(times) * 1000:.1f} ms")

    refine = api.get_inpainter("neural_patch", device=device, verbose=True)
    small = np.ascontiguousarray(photo[::4, ::4])
    warm = _timed(device, lambda: api.fill_pixels(small, hole[::4, ::4], refine))
    print(f"neural_patch warm-up fill ({size // 4}x{size // 4}): {warm:.1f} s", flush=True)
    for run in (1, 2):
        seconds = _timed(device, lambda: api.fill_pixels(photo, hole, refine))
        print(
            f"neural_patch {size}x{size}, centred {size // 2}x{size // 2} hole, default "
            f"settings, run {run}: {seconds:.2f} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
