"""neural_patch: its time at 512², and whether a 2048² fill is as sharp as a 512² one.

1. **Time.** The bundled example resized to 512x512 with a centred 256x256 hole, filled with the
   default settings (median of ``--repeats`` fills after one warm-up that pays the imports and the
   weight loading), beside ``pconv`` (the content pass alone) timed the same way in the same run.
   Bar: neural_patch <= 5 s on 2 threads.
2. **High resolution.** Each photo of the shared ``val/hd`` folder, centre-cropped to a square and
   resized to 2048² and to 512², with the NVIDIA test mask whose hole ratio is closest to 25 % (away
   from the border) resized to each size. The hole texture ratio (mean squared Sobel gradient of
   the grey fill over the hole, divided by the truth's; 1 = as textured as the truth) is measured at
   both sizes, for neural_patch and for pconv (structure at <= 512 px, upscaled: the blur that
   neural_patch's full-resolution texture replaces). Bars: neural_patch's 2048² fill <= 60 s, and
   its ratio at 2048² within 0.2 of its ratio at 512² on the same photo.

It prints the machine and the load, since a busy machine inflates the times, and exits 1 when a
bar fails.

Usage::

    python benchmarks/bench_neural_patch.py [--threads 2] [--repeats 3] [--photos Wood,Aqua]
        [--skip-timing] [--skip-highres] [--save-fills DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from shared_data import REPOSITORY, shared_dir

import holefill
from holefill.bench.metrics import hole_texture_ratio

EXAMPLE = REPOSITORY / "examples" / "astronaut.jpg"
TIME_BAR_S = 5.0
HIGHRES_BAR_S = 60.0
RATIO_BAR = 0.2


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    return (
        f"{cpu}; {os.cpu_count()} logical CPUs; load average {load}; "
        f"Python {platform.python_version()}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )


def timed_fill(image: np.ndarray, hole: np.ndarray, method: str) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    filled = holefill.inpaint(image, hole, method=method)
    return filled, time.perf_counter() - started


def timing(repeats: int) -> bool:
    image = np.asarray(Image.open(EXAMPLE).convert("RGB").resize((512, 512), Image.LANCZOS))
    hole = np.zeros((512, 512), bool)
    hole[128:384, 128:384] = True
    medians = {}
    for method in ("pconv", "neural_patch"):
        timed_fill(image, hole, method)  # warm-up: imports, weights, numba compilation
        seconds = [timed_fill(image, hole, method)[1] for _ in range(repeats)]
        medians[method] = statistics.median(seconds)
        print(
            f"  {method:<13} 512², centred 256² hole: median {medians[method]:.2f} s "
            f"({', '.join(f'{s:.2f}' for s in seconds)})"
        )
    ratio = medians["neural_patch"] / medians["pconv"]
    passed = medians["neural_patch"] <= TIME_BAR_S
    print(
        f"  neural_patch / pconv: {ratio:.1f}x; bar neural_patch <= {TIME_BAR_S:.0f} s: "
        f"{'PASS' if passed else 'FAIL'}"
    )
    return passed


def square_photo(path: Path) -> Image.Image:
    """The photo's centred square."""
    with Image.open(path) as opened:
        photo = opened.convert("RGB")
    short = min(photo.size)
    left, top = (photo.width - short) // 2, (photo.height - short) // 2
    return photo.crop((left, top, left + short, top + short))


def quarter_mask(masks: Path) -> tuple[Image.Image, str]:
    """The NVIDIA test mask (away from the border) whose hole ratio is closest to 25 %."""
    with (masks / "masks.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["border"] == "0"]
    row = min(rows, key=lambda r: abs(float(r["hole_ratio"]) - 0.25))
    return Image.open(masks / row["file"]).convert("L"), row["file"]


def highres(names: list[str], save_fills: Path | None) -> bool:
    shared = shared_dir() / "data"
    mask, mask_name = quarter_mask(shared / "masks" / "nvidia_irregular")
    print(f"  mask {mask_name}; texture ratio = fill's hole gradient energy / truth's")
    print(
        f"  {'photo':<14}{'hole':>6}{'np 512²':>9}{'np 2048²':>10}{'|diff|':>8}{'np time':>9}"
        f"{'pconv 512²':>12}{'pconv 2048²':>13}"
    )
    passed = True
    for name in names:
        ratios, seconds = {}, 0.0
        square = square_photo(shared / "val" / "hd" / f"{name}.jpg")
        for side in (512, 2048):
            truth = np.asarray(square.resize((side, side), Image.LANCZOS))
            hole = np.asarray(mask.resize((side, side), Image.NEAREST)) > 127
            for method in ("neural_patch", "pconv"):
                filled, elapsed = timed_fill(truth, hole, method)
                ratios[method, side] = hole_texture_ratio(filled, truth, hole)
                if method == "neural_patch" and side == 2048:
                    seconds = elapsed
                if save_fills is not None:
                    save_fills.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(filled).save(save_fills / f"{name}_{side}_{method}.jpg")
        gap = abs(ratios["neural_patch", 2048] - ratios["neural_patch", 512])
        ok = seconds <= HIGHRES_BAR_S and gap <= RATIO_BAR
        passed &= ok
        print(
            f"  {name:<14}{hole.mean():>6.1%}{ratios['neural_patch', 512]:>9.2f}"
            f"{ratios['neural_patch', 2048]:>10.2f}{gap:>8.2f}{seconds:>8.1f}s"
            f"{ratios['pconv', 512]:>12.2f}{ratios['pconv', 2048]:>13.2f}  {'PASS' if ok else 'FAIL'}"
        )
    print(
        f"  bars: neural_patch 2048² <= {HIGHRES_BAR_S:.0f} s and |ratio 2048² - ratio 512²| "
        f"<= {RATIO_BAR}: {'PASS' if passed else 'FAIL'}"
    )
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--photos", help="comma-separated names in val/hd (default: all)")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-highres", action="store_true")
    parser.add_argument("--save-fills", type=Path, help="write the high-resolution fills here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hd = shared_dir() / "data" / "val" / "hd"
    names = args.photos.split(",") if args.photos else sorted(p.stem for p in hd.glob("*.jpg"))
    print(f"machine: {machine()}")
    passed = True
    if not args.skip_timing:
        print("time:")
        passed &= timing(args.repeats)
    if not args.skip_highres:
        print("high resolution:")
        passed &= highres(names, args.save_fills)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
