"""holefill's PatchMatch completion against PyPatchMatch (the C++ reference), side by side.

Photos from the shared CBSD68 set are resized to 512x512 (cv2 INTER_AREA) and paired with shared
NVIDIA irregular masks (Liu et al. 2018) from the hole-ratio bins 0.1-0.2 ... 0.4-0.5, chosen by a
fixed seed. Every pair is filled by every method in turn (the order rotates from pair to pair so
machine load hits all alike); the script prints per-pair and mean time and PSNR (scikit-image, full
image, known pixels composited back for every method), the speed ratio and PSNR difference against
each reference setting, and the machine. OpenCV's Telea fill runs beside them as context: PSNR
rewards smooth fills, so the "hole detail" column (|Laplacian| in the hole against the original)
shows which method synthesises texture and which blurs.

PyPatchMatch's ``patch_size`` is a *radius*: its patches are ``2 * patch_size + 1`` wide. The issue's
setting ``patch_size=5`` (11x11 patches) is run, and ``patch_size=2`` (5x5, the same width as
holefill's ``patch_size=5``) beside it.

Run::

    python benchmarks/bench_patchmatch.py                  # 3 pairs per bin, 12 pairs
    python benchmarks/bench_patchmatch.py --pairs-per-bin 1
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from shared_data import shared_dir
from skimage.metrics import peak_signal_noise_ratio

import holefill

BINS = ("0.1-0.2", "0.2-0.3", "0.3-0.4", "0.4-0.5")
SIZE = 512


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import numba

    return (
        f"{cpu}; {os.cpu_count()} logical CPUs visible; {platform.platform()}; "
        f"Python {platform.python_version()}; numpy {np.__version__}; numba {numba.__version__}; "
        f"opencv {cv2.__version__}; torch threads {torch.get_num_threads()}"
    )


def choose_pairs(pairs_per_bin: int, seed: int) -> list[tuple[Path, Path, str, float]]:
    """(photo, mask, bin, hole ratio) tuples, the same for the same seed."""
    root = shared_dir() / "data"
    mask_dir = root / "masks" / "nvidia_irregular"
    with open(mask_dir / "masks.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    photos = sorted((root / "val" / "cbsd68").glob("*.png"))
    rng = np.random.default_rng(seed)
    pairs = []
    for bin_name in BINS:
        in_bin = sorted((row for row in rows if row["bin"] == bin_name), key=lambda r: r["file"])
        for index in rng.choice(len(in_bin), pairs_per_bin, replace=False):
            row = in_bin[index]
            photo = photos[rng.integers(len(photos))]
            pairs.append((photo, mask_dir / row["file"], bin_name, float(row["hole_ratio"])))
    return pairs


def load_pair(photo: Path, mask: Path) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 image and bool hole (True = missing), both 512x512."""
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)[:, :, ::-1]
    image = cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    hole = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) > 127
    hole = cv2.resize(hole.astype(np.uint8), (SIZE, SIZE), interpolation=cv2.INTER_NEAREST) > 0
    return np.ascontiguousarray(image), hole


def ours(patch_size: int, seed: int):
    inpainter = holefill.create_inpainter("patchmatch", patch_size=patch_size, seed=seed)

    def run(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        hole_tensor = torch.from_numpy(hole)[None, None].float()
        out = inpainter.fill(tensor, hole_tensor)[0].permute(1, 2, 0).numpy()
        return np.round(out * 255).astype(np.uint8)

    return run


def pypatchmatch(radius: int, seed: int):
    from patchmatch import patch_match

    def run(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        patch_match.set_random_seed(seed)
        return patch_match.inpaint(image, hole.astype(np.uint8) * 255, patch_size=radius)

    return run


def telea(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """OpenCV's fast-marching fill (Telea 2004): context for what PSNR rewards."""
    return cv2.inpaint(image, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)


def hole_detail(image: np.ndarray, out: np.ndarray, hole: np.ndarray) -> float:
    """Mean |Laplacian| in the hole, output over original: about 1 for texture, << 1 for blur."""

    def detail(rgb: np.ndarray) -> float:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return float(np.abs(cv2.Laplacian(gray, cv2.CV_32F))[hole].mean())

    return detail(out) / max(detail(image), 1e-6)


def warm_up(method) -> float:
    """One call on a tiny image: numba compiles (or loads its cache) here, outside the timings."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    hole = np.zeros((32, 32), bool)
    hole[12:20, 12:20] = True
    start = time.perf_counter()
    method(image, hole)
    return time.perf_counter() - start


def cold_compile_seconds() -> float:
    """The warm-up in a fresh interpreter with an empty numba cache: the full JIT compile."""
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); import bench_patchmatch as b; "
        "run = b.ours(5, 0); print(b.warm_up(run))"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        result = subprocess.run(
            [sys.executable, "-c", code, str(Path(__file__).parent)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    return float(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs-per-bin", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patch-size", type=int, default=5, help="holefill patch width")
    parser.add_argument(
        "--reference-radii",
        default="5,2",
        help="PyPatchMatch patch_size values (radii), comma separated",
    )
    args = parser.parse_args()

    methods = {"holefill": ours(args.patch_size, args.seed)}
    try:
        from patchmatch import patch_match

        if not patch_match.patchmatch_available:
            raise ImportError("native library failed to load")
        for radius in (int(r) for r in args.reference_radii.split(",")):
            methods[f"pypatchmatch r={radius}"] = pypatchmatch(radius, args.seed)
    except ImportError as error:
        print(f"PyPatchMatch unavailable ({error}); timing holefill alone")
    methods["telea (context)"] = telea

    print("machine:", machine())
    print(
        f"holefill patch_size={args.patch_size} (width); PyPatchMatch patch_size=r is a radius "
        f"(width 2r+1); pairs seed {args.seed}"
    )
    print(f"holefill JIT compile, empty numba cache: {cold_compile_seconds():.2f} s")
    print(
        f"holefill warm-up here (cache load), excluded from timings: "
        f"{warm_up(methods['holefill']):.2f} s"
    )

    pairs = choose_pairs(args.pairs_per_bin, args.seed)
    names = list(methods)
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    scores = {name: [] for name in names}
    detail = {name: [] for name in names}
    print("\nper pair: wall seconds, PSNR dB (full image, known pixels composited back)")
    print(f"{'pair':<22}{'bin':>8}{'hole':>7}" + "".join(f"{n:>20}" for n in names))
    for index, (photo, mask, bin_name, ratio) in enumerate(pairs):
        image, hole = load_pair(photo, mask)
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            out = methods[name](image, hole)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
            out = np.where(hole[..., None], out, image)
            scores[name].append(peak_signal_noise_ratio(image, out, data_range=255))
            detail[name].append(hole_detail(image, out, hole))
        cells = "".join(f"{wall[n][-1]:>9.2f} s {scores[n][-1]:>6.2f} dB" for n in names)
        print(f"{photo.stem + '+' + mask.stem:<22}{bin_name:>8}{ratio:>7.3f}{cells}")

    print(f"\nmeans over {len(pairs)} pairs (hole detail: |Laplacian| in the hole vs the original)")
    for name in names:
        print(
            f"  {name:<18} wall {np.mean(wall[name]):6.2f} s  cpu {np.mean(cpu[name]):6.2f} s  "
            f"PSNR {np.mean(scores[name]):6.2f} dB  hole detail {np.mean(detail[name]):.2f}"
        )
    for name in names[1:]:
        speed = np.mean(wall[name]) / np.mean(wall["holefill"])
        speed_cpu = np.mean(cpu[name]) / np.mean(cpu["holefill"])
        per_pair = np.array(wall[name]) / np.array(wall["holefill"])
        gain = np.mean(scores["holefill"]) - np.mean(scores[name])
        bar = ""
        if name.startswith("pypatchmatch"):
            met = speed >= 1 and gain >= -0.3
            bar = f"  bar (>= 1.00x, >= -0.30 dB): {'met' if met else 'NOT met'}"
        print(
            f"vs {name}: holefill {speed:.2f}x as fast (wall; cpu {speed_cpu:.2f}x; per pair "
            f"{per_pair.min():.2f}-{per_pair.max():.2f}x), PSNR holefill - it {gain:+.2f} dB{bar}"
        )


if __name__ == "__main__":
    main()
