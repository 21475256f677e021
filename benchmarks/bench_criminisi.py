"""Criminisi exemplar-based inpainting: holefill vs the reference ``exemplar-based-inpainting``.

Both implementations run at the same patch size on shared photos with ~10% NVIDIA irregular holes
(fixed pairs): three ImageNet photos at 256², two CBSD68 photos resized and centre-cropped to 512².
For each pair it prints the time and PSNR (full image, known pixels composited back) of the
reference and of holefill -- default options, and with the whole-image exemplar search on the whole
image -- then the speed ratio and PSNR difference measured in the same run, and the machine.

The reference is ``pip install --no-deps exemplar-based-inpainting==0.2.0 rich`` (its declared
``opencv-python`` would clash with the headless OpenCV holefill uses); it is not a holefill
dependency. It runs in-process on the uint8 BGR image, as its command line does, with its defaults
except the progress bar. On OpenCV 5 it crashes whenever two source patches tie for the best match
(with every ``patch_preference``): ``cv2.findNonZero`` now returns ``(N, 2)`` points where OpenCV 4
returned ``(N, 1, 2)``. The script hands the reference module a view of ``cv2`` whose
``findNonZero`` returns the OpenCV 4 shape; nothing else of it changes. Without the reference
installed the script times holefill only.

Usage::

    python benchmarks/bench_criminisi.py            # 3 pairs at 256², 2 at 512² (minutes)
    python benchmarks/bench_criminisi.py --quick    # 1 pair at each size
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numba
import numpy as np
import torch
from shared_data import shared_dir
from skimage.metrics import peak_signal_noise_ratio

from holefill import create_inpainter

#: (photo, NVIDIA mask, side); masks have hole ratios 0.09-0.10 at 512², border=1 for 01201/01307
PAIRS_256 = [
    ("imagenet256/0001.jpg", "00034.png"),
    ("imagenet256/0100.jpg", "00243.png"),
    ("imagenet256/0200.jpg", "01201.png"),
]
PAIRS_512 = [("cbsd68/101085.png", "00360.png"), ("cbsd68/102061.png", "01307.png")]


@dataclass
class Result:
    seconds: float  # wall clock
    cpu_seconds: float  # this process, all threads (the reference's OpenCV calls may use several)
    psnr: float


def timed(function, *args):
    """``function(*args)`` with its wall-clock and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = function(*args)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def load_pair(photo: str, mask: str, side: int) -> tuple[np.ndarray, np.ndarray]:
    """An RGB uint8 photo resized (shorter side) and centre-cropped to ``side``², and its hole mask."""
    data = shared_dir() / "data"
    bgr = cv2.imread(str(data / "val" / photo), cv2.IMREAD_COLOR)
    height, width = bgr.shape[:2]
    if (height, width) != (side, side):
        scale = side / min(height, width)
        size = (max(side, round(width * scale)), max(side, round(height * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        top, left = (bgr.shape[0] - side) // 2, (bgr.shape[1] - side) // 2
        bgr = bgr[top : top + side, left : left + side]
    mask = cv2.imread(str(data / "masks" / "nvidia_irregular" / mask), cv2.IMREAD_GRAYSCALE)
    mask = cv2.resize(mask, (side, side), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(bgr[:, :, ::-1]), mask > 127


def psnr(truth: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> float:
    """PSNR over the full image, known pixels composited back, values in [0, 1]."""
    truth = truth.astype(np.float64) / 255.0
    result = np.where(hole[..., None], filled.astype(np.float64), truth)
    return float(peak_signal_noise_ratio(truth, result, data_range=1.0))


class _OpenCV4Points:
    """``cv2`` as the reference module sees it: ``findNonZero`` with OpenCV 4's ``(N, 1, 2)`` shape."""

    def __getattr__(self, name: str):
        return getattr(cv2, name)

    @staticmethod
    def findNonZero(image: np.ndarray) -> np.ndarray | None:  # noqa: N802 (OpenCV's name)
        points = cv2.findNonZero(image)
        return None if points is None else points.reshape(-1, 1, 2)


def run_reference(rgb: np.ndarray, hole: np.ndarray, patch_size: int) -> Result:
    from exemplar_based_inpainting import inpainter as reference

    if int(cv2.__version__.split(".")[0]) >= 5:
        reference.cv2 = _OpenCV4Points()
    inpainter = reference.Inpainter(patch_size=patch_size, show_progress_bar=False)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    with contextlib.redirect_stdout(io.StringIO()):  # its hidden progress bar still prints lines
        out, seconds, cpu_seconds = timed(inpainter.inpaint, bgr, hole.astype(np.uint8) * 255)
    return Result(seconds, cpu_seconds, psnr(rgb, out[:, :, ::-1] / 255.0, hole))


def run_holefill(rgb: np.ndarray, hole: np.ndarray, **options) -> Result:
    inpainter = create_inpainter("criminisi", **options)
    image = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    mask = torch.from_numpy(hole.astype(np.float32))[None, None]
    out, seconds, cpu_seconds = timed(inpainter.fill, image, mask)
    return Result(seconds, cpu_seconds, psnr(rgb, out[0].permute(1, 2, 0).numpy(), hole))


def reference_available() -> bool:
    try:
        import exemplar_based_inpainting.inpainter  # noqa: F401
    except ImportError:
        return False
    return True


def warm_up() -> None:
    """Compile (or load from cache) the numba kernels so that no timing below includes it."""
    rgb = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    hole = np.zeros((24, 24), bool)
    hole[10:14, 10:14] = True
    run_holefill(rgb, hole, search_filled=True)


def machine() -> str:
    load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs{load}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
        f"OpenCV {cv2.__version__}, torch threads {torch.get_num_threads()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one pair at each size")
    parser.add_argument("--patch-size", type=int, default=9)
    parser.add_argument("--no-reference", action="store_true", help="time holefill only")
    args = parser.parse_args()

    with_reference = not args.no_reference and reference_available()
    if not with_reference and not args.no_reference:
        print(
            "reference not installed: pip install --no-deps exemplar-based-inpainting==0.2.0 rich"
        )
    pairs = [(p, m, 256) for p, m in PAIRS_256[: 1 if args.quick else None]]
    pairs += [(p, m, 512) for p, m in PAIRS_512[: 1 if args.quick else None]]
    configs = {"holefill": {}, "holefill full search": {"search_radius": 0, "strategy": "original"}}
    print(f"machine: {machine()}")
    print(f"patch size {args.patch_size} for every implementation; times exclude numba compilation")
    warm_up()

    print(
        f"{'pair':<34} {'hole':>5} {'implementation':<21} {'wall s':>7} {'CPU s':>7} "
        f"{'PSNR dB':>7} {'speed-up':>8} {'dPSNR':>6}"
    )
    summary: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    for photo, mask_file, side in pairs:
        rgb, hole = load_pair(photo, mask_file, side)
        label = f"{side}² {Path(photo).name}+{mask_file}"
        reference = run_reference(rgb, hole, args.patch_size) if with_reference else None
        if reference is not None:
            print(
                f"{label:<34} {hole.mean():5.1%} {'reference':<21} {reference.seconds:7.2f} "
                f"{reference.cpu_seconds:7.2f} {reference.psnr:7.2f}"
            )
        for name, options in configs.items():
            ours = run_holefill(rgb, hole, patch_size=args.patch_size, **options)
            line = (
                f"{label:<34} {hole.mean():5.1%} {name:<21} {ours.seconds:7.2f} "
                f"{ours.cpu_seconds:7.2f} {ours.psnr:7.2f}"
            )
            if reference is not None:
                speed_up = reference.seconds / ours.seconds
                summary[name].append((speed_up, ours.psnr - reference.psnr))
                line += f" {speed_up:7.1f}x {ours.psnr - reference.psnr:+6.2f}"
            print(line, flush=True)
    for name, rows in summary.items():
        if rows:
            speed_ups, differences = np.array(rows).T
            print(
                f"{name}: wall-clock speed-up vs reference min {speed_ups.min():.1f}x, geometric mean "
                f"{np.exp(np.log(speed_ups).mean()):.1f}x; PSNR difference mean "
                f"{differences.mean():+.2f} dB, worst {differences.min():+.2f} dB"
            )
    print(f"machine at the end: {machine()}")


if __name__ == "__main__":
    main()
