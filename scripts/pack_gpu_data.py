"""Pack a training subset, validation photos and a VGG-19 file for a GPU machine with a small upload
budget (the project's device tool copies at most 64 MiB with the working tree).

    python scripts/pack_gpu_data.py --budget-mb 35 --out .device [--init runs/x/model.safetensors]
    python scripts/pack_gpu_data.py --side 144 --format webp --quality 70 --budget-mb 31 --no-vgg

Writes ``OUT/train/<class>/...`` (an even spread over every class folder of the training set, until
the byte budget: the files as they are, or each photo resized to ``--side`` px and re-encoded as
``--format`` at ``--quality``, which fits all 9,500 Imagenette photos in 30 MiB at 144 px, WebP
quality 70), ``OUT/val/`` (the 64 validation photos the trainer would pick) and, unless
``--no-vgg`` (the pixel-loss recipes need none), ``OUT/vgg19_to_relu4_1_fp16.pth`` (the shared
VGG-19 to relu4_1 in float16: half the bytes; the loader casts back to float32). Then, on the GPU
machine::

    HOLEFILL_VGG_WEIGHTS=.device/vgg19_to_relu4_1_fp16.pth holefill train pconv \\
        --data .device/train --val .device/val --config pconv_default --out /tmp/run --device cuda
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from holefill.train.data import list_training_images

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from shared_data import shared_dir  # noqa: E402 - the clone's helper, beside the benchmarks


def _spread(files: list[Path], count: int) -> list[Path]:
    if count >= len(files):
        return files
    return [files[i] for i in np.linspace(0, len(files) - 1, count).round().astype(int)]


@dataclass(frozen=True)
class Encoding:
    """How packed photos are stored: as they are (``side`` 0), or resized to ``side`` x ``side``
    (Lanczos; a centre square first) and re-encoded as ``format`` at ``quality``."""

    side: int = 0
    format: str = "webp"
    quality: int = 70

    def suffix(self, path: Path) -> str:
        return path.suffix if not self.side else ".webp" if self.format == "webp" else ".jpg"

    def encode(self, path: Path) -> bytes:
        if not self.side:
            return path.read_bytes()
        with Image.open(path) as photo:
            photo = ImageOps.fit(photo.convert("RGB"), (self.side, self.side), Image.LANCZOS)
        buffer = io.BytesIO()
        if self.format == "webp":
            photo.save(buffer, "WEBP", quality=self.quality, method=6)
        else:
            photo.save(buffer, "JPEG", quality=self.quality, optimize=True)
        return buffer.getvalue()


def pack_train(
    source: Path, out: Path, budget: int, encoding: Encoding = Encoding()
) -> tuple[int, int]:
    """Photos spread evenly over each class folder; the most per class that fits ``budget``."""
    classes = sorted(p for p in source.iterdir() if p.is_dir()) or [source]
    listed = {folder: list_training_images(folder) for folder in classes}
    encoded: dict[Path, bytes] = {}

    def size_of(path: Path) -> int:
        if not encoding.side:
            return path.stat().st_size
        if path not in encoded:
            encoded[path] = encoding.encode(path)
        return len(encoded[path])

    low, high = 0, max(len(files) for files in listed.values())
    while low < high:  # the largest per-class count within the budget
        middle = (low + high + 1) // 2
        size = sum(size_of(p) for files in listed.values() for p in _spread(files, middle))
        low, high = (middle, high) if size <= budget else (low, middle - 1)
    total = count = 0
    for folder, files in listed.items():
        target = out / folder.relative_to(source) if folder != source else out
        target.mkdir(parents=True, exist_ok=True)
        for path in _spread(files, low):
            data = encoded.get(path) or encoding.encode(path)
            (target / path.with_suffix(encoding.suffix(path)).name).write_bytes(data)
            total += len(data)
            count += 1
    return count, total


def main(argv: list[str] | None = None) -> int:
    shared = shared_dir()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=".device", help="pack folder (.device, git-ignored)")
    parser.add_argument("--budget-mb", type=float, default=35.0, help="training photos (35 MB)")
    parser.add_argument("--train", default=str(shared / "data" / "train" / "imagenette224"))
    parser.add_argument("--val", default=str(shared / "data" / "val" / "imagenet256"))
    parser.add_argument("--vgg", default=str(shared / "weights" / "vgg19_to_relu4_1.pth"))
    parser.add_argument("--init", help="also copy these weights (a warm start) into the pack")
    parser.add_argument("--side", type=int, default=0, help="resize photos to SIDE px (0: keep)")
    parser.add_argument("--format", choices=("webp", "jpeg"), default="webp", help="with --side")
    parser.add_argument("--quality", type=int, default=70, help="with --side (70)")
    parser.add_argument("--no-vgg", action="store_true", help="no VGG file (pixel-loss recipes)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"{out} is not empty; remove it or choose another --out", file=sys.stderr)
        return 2
    encoding = Encoding(args.side, args.format, args.quality)
    count, size = pack_train(Path(args.train), out / "train", int(args.budget_mb * 1e6), encoding)
    val = list_training_images(args.val)
    (out / "val").mkdir(parents=True)
    for path in _spread(val, 64):
        shutil.copy2(path, out / "val" / path.name)
    if not args.no_vgg:
        state = torch.load(args.vgg, map_location="cpu", weights_only=True)
        torch.save({k: v.half() for k, v in state.items()}, out / "vgg19_to_relu4_1_fp16.pth")
    if args.init:
        shutil.copy2(args.init, out / "init.safetensors")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(
        f"{out}: {count} training photos ({size / 1e6:.1f} MB), {min(64, len(val))} validation "
        f"photos{'' if args.no_vgg else ', VGG-19 fp16'}; {total / 2**20:.1f} MiB in all"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
