"""Neural patch synthesis: is the texture refinement sharper than the content pass, and how fast?

For photos of the shared validation sets (``imagenet256`` at 256x256 and ``cbsd68`` at 481x321)
with a centred square hole of half the short side and with shared irregular masks (NVIDIA, bins
0.1-0.3, resized to the photo), the content pass (``iterations=0``: the content network alone) and
the refined result (the default settings) are compared inside the hole:

* **gradient energy**: mean squared gradient of the grey image inside the hole, without its 1-px
  seam with the known pixels (sharper = higher);
* **VGG distance** to the ground truth at the hole's feature positions, VGG-19 relu1_2, relu2_2,
  relu3_3 and relu4_1 (LPIPS's layers as far as the local VGG file goes), two ways: *perceptual*,
  the LPIPS recipe without learned weights (each position's feature vector scaled to unit length,
  squared difference summed over channels, averaged over positions and layers; Zhang et al. 2018);
  and *raw*, each layer's mean squared difference divided by the truth's mean squared activation
  (this one penalises any texture that is not pixel-aligned with the truth, so it favours blur);
* **PSNR** over the whole image (known pixels are identical, so only the hole differs).

The bars: refined gradient energy > content, refined perceptual VGG distance < content, refined
PSNR at most 0.5 dB below content. Then the time of one fill of a 512x512 photo with a centred 256x256 hole at
the default settings (2 threads, after one warm-up fill that pays the one-time imports and weight
loading). It prints the table and the machine and saves a grid (input | content | refined | truth)
to ``docs/neural_patch_grid.png`` (kept under 400 KB).

Usage::

    python benchmarks/bench_neural_patch.py [--count 6] [--threads 2] [--weights FILE]
        [--grid docs/neural_patch_grid.png] [--skip-timing] [--only-timing]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from shared_data import shared_dir

import holefill
from holefill.nn.texture import hole_at_stride

QUALITY_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_1")
STRIDES = {"relu1_2": 1, "relu2_2": 2, "relu3_3": 4, "relu4_1": 8}
MASK_BINS = ("0.1-0.2", "0.2-0.3")
GRID_LIMIT = 400 * 1024


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"{model}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {load}"
    )


# -- data ----------------------------------------------------------------------------------------


def _evenly(files: list[Path], count: int) -> list[Path]:
    picks = np.unique(np.linspace(0, len(files) - 1, min(count, len(files))).round().astype(int))
    return [files[i] for i in picks]


def photos(shared: Path, name: str, count: int) -> list[tuple[str, np.ndarray]]:
    folder = shared / "data" / "val" / name
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    return [(p.name, np.asarray(Image.open(p).convert("RGB"))) for p in _evenly(files, count)]


def centred_square(height: int, width: int) -> np.ndarray:
    side = min(height, width) // 2
    top, left = (height - side) // 2, (width - side) // 2
    hole = np.zeros((height, width), bool)
    hole[top : top + side, left : left + side] = True
    return hole


def irregular_masks(shared: Path, count: int) -> list[np.ndarray]:
    import csv

    folder = shared / "data" / "masks" / "nvidia_irregular"
    with (folder / "masks.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["bin"] in MASK_BINS and r["border"] == "0"]
    chosen = _evenly([folder / r["file"] for r in rows], count)
    return [np.asarray(Image.open(p).convert("L")) > 127 for p in chosen]


def resize_mask(hole: np.ndarray, height: int, width: int) -> np.ndarray:
    image = Image.fromarray(hole.astype(np.uint8) * 255)
    return np.asarray(image.resize((width, height), Image.Resampling.NEAREST)) > 127


# -- metrics -------------------------------------------------------------------------------------


def gradient_energy(image: np.ndarray, hole: np.ndarray) -> float:
    """Mean squared central-difference gradient of the grey image over the hole's pixels whose
    stencil holds only hole pixels (the 1-px seam with the known pixels measures the seam, not the
    fill's texture)."""
    from scipy.ndimage import binary_erosion

    grey = image.astype(np.float64).mean(axis=2) / 255
    dy, dx = np.gradient(grey)
    inside = binary_erosion(hole, np.ones((3, 3), bool))
    inside = inside if inside.any() else hole
    return float((dx**2 + dy**2)[inside].mean())


def psnr(truth: np.ndarray, result: np.ndarray) -> float:
    mse = np.mean((truth.astype(np.float64) - result.astype(np.float64)) ** 2) / 255**2
    return float(10 * np.log10(1 / max(mse, 1e-12)))


class VGGDistance:
    """Perceptual and raw VGG-19 feature distances inside the hole (see the module docstring)."""

    def __init__(self) -> None:
        from holefill.nn.vgg import build_feature_net

        self.net = build_feature_net("vgg19", taps=QUALITY_LAYERS)

    @staticmethod
    def _tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]

    @torch.no_grad()
    def __call__(
        self, truth: np.ndarray, result: np.ndarray, hole: np.ndarray
    ) -> tuple[float, float]:
        """``(perceptual, raw)`` distances of ``result`` to ``truth`` over ``hole``."""
        hole_t = torch.from_numpy(hole.astype(np.float32))[None, None]
        ours, theirs = self.net(self._tensor(result)), self.net(self._tensor(truth))
        perceptual, raw = [], []
        for layer in QUALITY_LAYERS:
            cells = hole_at_stride(hole_t, STRIDES[layer], ours[layer].shape[-2:])
            a, b = ours[layer][0][:, cells], theirs[layer][0][:, cells]  # (C, N)
            unit_a = a / a.norm(dim=0, keepdim=True).clamp_min(1e-10)
            unit_b = b / b.norm(dim=0, keepdim=True).clamp_min(1e-10)
            perceptual.append(float((unit_a - unit_b).pow(2).sum(dim=0).mean()))
            raw.append(float((a - b).pow(2).mean() / b.pow(2).mean().clamp_min(1e-12)))
        return float(np.mean(perceptual)), float(np.mean(raw))


# -- the comparison ------------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    psnr: list[tuple[float, float]] = field(default_factory=list)
    energy: list[tuple[float, float]] = field(default_factory=list)
    vgg: list[tuple[float, float]] = field(default_factory=list)
    raw: list[tuple[float, float]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def means(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (np.mean(self.psnr, axis=0), np.mean(self.energy, axis=0), np.mean(self.vgg, axis=0))

    def passes(self) -> tuple[bool, bool, bool]:
        (p_c, p_r), (e_c, e_r), (v_c, v_r) = self.means()
        return e_r > e_c, v_r < v_c, p_r >= p_c - 0.5


def compare(cases, content, refined, distance: VGGDistance, label: str, examples: list) -> Row:
    row = Row(label)
    for name, image, hole in cases:
        base = holefill.api.fill_pixels(image, hole, content)
        started = time.perf_counter()
        final = holefill.api.fill_pixels(image, hole, refined)
        row.seconds.append(time.perf_counter() - started)
        row.psnr.append((psnr(image, base), psnr(image, final)))
        row.energy.append((gradient_energy(base, hole), gradient_energy(final, hole)))
        (vgg_base, raw_base), (vgg_final, raw_final) = (
            distance(image, base, hole),
            distance(image, final, hole),
        )
        row.vgg.append((vgg_base, vgg_final))
        row.raw.append((raw_base, raw_final))
        print(
            f"  {label} {name}: PSNR {row.psnr[-1][0]:.2f} -> {row.psnr[-1][1]:.2f} dB, "
            f"VGG perceptual {row.vgg[-1][0]:.3f} -> {row.vgg[-1][1]:.3f}, "
            f"raw {row.raw[-1][0]:.3f} -> {row.raw[-1][1]:.3f}, "
            f"{row.seconds[-1]:.1f} s",
            flush=True,
        )
        if len(examples) < 8 and name == cases[0][0]:
            examples.append((image, hole, base, final))
    return row


def print_table(rows: list[Row]) -> None:
    print(
        "\n| set / hole | n | PSNR content | PSNR refined | grad. energy content | "
        "grad. energy refined | VGG perc. content | VGG perc. refined | VGG raw content | "
        "VGG raw refined | s / image | bars |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        (p_c, p_r), (e_c, e_r), (v_c, v_r) = row.means()
        r_c, r_r = np.mean(row.raw, axis=0)
        bars = (
            "pass"
            if all(row.passes())
            else "FAIL "
            + ",".join(
                name
                for name, ok in zip(("sharper", "vgg", "psnr"), row.passes(), strict=True)
                if not ok
            )
        )
        print(
            f"| {row.label} | {len(row.psnr)} | {p_c:.2f} | {p_r:.2f} | {e_c * 1e3:.3f} | "
            f"{e_r * 1e3:.3f} | {v_c:.4f} | {v_r:.4f} | {r_c:.3f} | {r_r:.3f} | "
            f"{np.mean(row.seconds):.1f} | {bars} |"
        )
    print("(gradient energy x 1e3)")


# -- the grid ------------------------------------------------------------------------------------


def _tile(image: np.ndarray, hole: np.ndarray, side: int) -> Image.Image:
    rows, cols = np.nonzero(hole)
    height, width = hole.shape
    crop = min(height, width)
    top = int(np.clip((rows.min() + rows.max()) // 2 - crop // 2, 0, height - crop))
    left = int(np.clip((cols.min() + cols.max()) // 2 - crop // 2, 0, width - crop))
    patch = image[top : top + crop, left : left + crop]
    return Image.fromarray(patch).resize((side, side), Image.Resampling.LANCZOS)


def save_grid(examples: list, path: Path, side: int = 192) -> int:
    lines = []
    for image, hole, base, final in examples:
        masked = np.where(hole[..., None], 255, image).astype(np.uint8)
        lines.append([_tile(x, hole, side) for x in (masked, base, final, image)])
    grid = Image.new("RGB", (4 * side + 6, len(lines) * side + 2 * (len(lines) - 1)), "white")
    for r, tiles in enumerate(lines):
        for c, tile in enumerate(tiles):
            grid.paste(tile, (c * (side + 2), r * (side + 2)))
    data = _encode_png(grid)
    while len(data) > GRID_LIMIT:
        grid = grid.resize(
            (int(grid.width * 0.9), int(grid.height * 0.9)), Image.Resampling.LANCZOS
        )
        data = _encode_png(grid)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)


def _encode_png(grid: Image.Image) -> bytes:
    buffer = io.BytesIO()
    grid.save(buffer, "PNG", optimize=True)
    if buffer.tell() > GRID_LIMIT:  # photos compress poorly losslessly: use a 256-colour palette
        buffer = io.BytesIO()
        grid.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            buffer, "PNG", optimize=True
        )
    return buffer.getvalue()


# -- timing --------------------------------------------------------------------------------------


def reference_seconds(repeats: int = 2) -> float:
    """Time of one VGG-19 forward and backward pass to relu4_1 over a 512x512 image: the unit the
    fill's time is also given in, so figures from machines under different load compare."""
    from holefill.nn.vgg import build_feature_net

    net = build_feature_net("vgg19", taps=("relu4_1",))
    image = torch.rand(1, 3, 512, 512, requires_grad=True)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        net(image)["relu4_1"].sum().backward()
        best = min(best, time.perf_counter() - started)
    return best


def time_512(shared: Path, options: dict) -> float:
    name, photo = photos(shared, "cbsd68", 1)[0]
    side = min(photo.shape[:2])
    photo = np.asarray(
        Image.fromarray(photo[:side, :side]).resize((512, 512), Image.Resampling.BICUBIC)
    )
    hole = centred_square(512, 512)
    inpainter = holefill.api.get_inpainter("neural_patch", **options, verbose=True)
    warm_image = np.ascontiguousarray(photo[::4, ::4])
    started = time.perf_counter()
    holefill.api.fill_pixels(warm_image, hole[::4, ::4], inpainter)
    print(
        f"warm-up fill (128x128, one-time imports and weights): "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    reference = reference_seconds()
    started, cpu = time.perf_counter(), time.process_time()
    holefill.api.fill_pixels(photo, hole, inpainter)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    reference = min(reference, reference_seconds())
    print(
        f"512x512 photo ({name}) with a centred 256x256 hole, default settings: "
        f"{seconds:.1f} s wall, {cpu:.1f} s CPU (bar: <= 30 s); = {seconds / reference:.1f} x "
        f"one VGG-19 relu4_1 forward+backward at 512x512 ({reference:.2f} s here)",
        flush=True,
    )
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=6, help="photos per set (6)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--weights", help="content-network weights (default: the packaged file)")
    parser.add_argument(
        "--content", default="default", help="content network: default or pconv (with --weights)"
    )
    parser.add_argument("--grid", default="docs/neural_patch_grid.png")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--only-timing", action="store_true")
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="refinement option, e.g. -p alpha=0.1 (repeatable)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    shared = shared_dir()
    if not shared.is_dir():
        print(f"shared data not found at {shared}", file=sys.stderr)
        return 1
    from holefill.cli import _parse_value

    options = {"weights": args.weights} if args.weights else {}
    options["content"] = args.content
    refine_options = dict(options)
    for item in args.param:
        key, _, value = item.partition("=")
        refine_options[key] = _parse_value(value)
    print(f"machine: {machine()}", flush=True)
    if not args.only_timing:
        content = holefill.api.get_inpainter("neural_patch", **options, iterations=0)
        refined = holefill.api.get_inpainter("neural_patch", **refine_options)
        print(f"content pass: {content!r}\nrefined: {refined!r}", flush=True)
        distance = VGGDistance()
        masks = irregular_masks(shared, args.count)
        rows, examples = [], []
        for set_name in ("imagenet256", "cbsd68"):
            images = photos(shared, set_name, args.count)
            centred = [(n, im, centred_square(*im.shape[:2])) for n, im in images]
            irregular = [
                (n, im, resize_mask(m, *im.shape[:2]))
                for (n, im), m in zip(images, masks, strict=False)
            ]
            for hole_name, cases in (("centre 50%", centred), ("irregular", irregular)):
                rows.append(
                    compare(cases, content, refined, distance, f"{set_name} {hole_name}", examples)
                )
        print_table(rows)
        size = save_grid(examples, Path(args.grid))
        print(f"grid: {args.grid} ({size / 1024:.0f} KB)")
    if not args.skip_timing:
        time_512(shared, refine_options)
    print(f"machine: {machine()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
