"""Click-to-select: IoU and seconds of one click on a textured disc over a textured background.

The bar (issue 19): one click inside the disc of a 1024x1024 synthetic photo gives a mask with
IoU >= 0.8 against the disc, in under 2 s. The photo is :func:`textured_disc_photo`; the clicks are
spread over the disc (centre, half radius, near the edge), one photo per seed.
Run: ``python benchmarks/bench_select.py [--size 1024] [--seeds 5] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import cv2
import numpy as np

from holefill.select import select_object


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to zero mean and unit standard deviation."""
    noise = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
    return (noise - noise.mean()) / (noise.std() + 1e-8)


def textured_disc_photo(size: int = 1024, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic photo: a textured disc on a textured background, and the disc's mask.

    The background mixes green, brown and grey-blue patches (blobs about ``size / 25`` across)
    with fine grain; the disc is orange-red with diagonal stripes, its own blotches and the same
    grain, so neither region is flat and both share some colours at their extremes.

    Parameters
    ----------
    size : int
        Side of the square photo in pixels.
    seed : int
        Seed of the textures and of the disc's position and radius.

    Returns
    -------
    image : ndarray
        ``(size, size, 3)`` uint8 RGB.
    disc : ndarray
        ``(size, size)`` bool, True inside the disc.
    """
    rng = np.random.default_rng(seed)
    scale = size / 1024
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    palette = np.array([[70, 120, 50], [120, 95, 60], [90, 105, 125]], np.float32)
    weights = np.stack([_smooth_noise(rng, (size, size), 40 * scale) for _ in palette])
    weights = np.exp(2.5 * weights)
    weights /= weights.sum(axis=0)
    background = np.tensordot(weights, palette, axes=([0], [0]))
    background += 28 * _smooth_noise(rng, (size, size), 1.2 * scale)[..., None]

    radius = size * rng.uniform(0.14, 0.22)
    centre = rng.uniform(radius + 0.08 * size, size - radius - 0.08 * size, 2)
    disc = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2
    period = 18 * scale
    stripes = np.sin((xx + yy) * (2 * np.pi / period / np.sqrt(2)))
    blotches = _smooth_noise(rng, (size, size), 10 * scale)
    foreground = np.array([200, 90, 45], np.float32) + np.stack(
        [30 * stripes + 20 * blotches, 25 * stripes + 15 * blotches, 10 * stripes], axis=2
    )
    foreground += 28 * _smooth_noise(rng, (size, size), 1.2 * scale)[..., None]
    image = np.where(disc[..., None], foreground, background)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), disc


def click_points(disc: np.ndarray) -> list[tuple[int, int]]:
    """``(x, y)`` points inside ``disc``: its centre, halfway out and 80 % of the way out."""
    rows, cols = np.nonzero(disc)
    cy, cx = rows.mean(), cols.mean()
    radius = np.sqrt(disc.sum() / np.pi)
    points = [(cx, cy), (cx + 0.5 * radius, cy), (cx - 0.35 * radius, cy + 0.35 * radius)]
    points += [(cx, cy - 0.8 * radius)]
    return [(int(round(x)), int(round(y))) for x, y in points]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="side of the photo (1024)")
    parser.add_argument("--seeds", type=int, default=5, help="photos, one per seed (5)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per click (3)")
    args = parser.parse_args()
    load = os.getloadavg()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, Python {platform.python_version()}, "
        f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} OpenCV threads"
    )
    print(f"{'seed':>4s} {'click (x, y)':>14s} {'IoU':>6s} {'median s':>9s} {'max s':>7s}")
    ious, times = [], []
    for seed in range(args.seeds):
        image, disc = textured_disc_photo(args.size, seed)
        for point in click_points(disc):
            seconds = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                selected = select_object(image, point=point)
                seconds.append(time.perf_counter() - start)
            ious.append(iou(selected, disc))
            times.extend(seconds)
            print(
                f"{seed:4d} {str(point):>14s} {ious[-1]:6.3f} "
                f"{np.median(seconds):9.3f} {max(seconds):7.3f}"
            )
    print(
        f"all {len(ious)} clicks at {args.size}x{args.size}: IoU min {min(ious):.3f}, "
        f"mean {np.mean(ious):.3f} (bar >= 0.8); seconds median {np.median(times):.3f}, "
        f"max {max(times):.3f} (bar < 2)"
    )


if __name__ == "__main__":
    main()
