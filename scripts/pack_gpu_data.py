"""Pack a training subset, validation photos and a VGG-19 file for a GPU machine with a small upload
budget (the project's device tool copies at most 64 MiB with the working tree).

    python scripts/pack_gpu_data.py --budget-mb 35 --out .device [--init runs/x/model.safetensors]

Writes ``OUT/train/<class>/...`` (an even spread over every class folder of the training set, whole
files, until the byte budget), ``OUT/val/`` (the 64 validation photos the trainer would pick) and
``OUT/vgg19_to_relu4_1_fp16.pth`` (the shared VGG-19 to relu4_1 in float16: half the bytes; the
loader casts back to float32). Then, on the GPU machine::

    HOLEFILL_VGG_WEIGHTS=.device/vgg19_to_relu4_1_fp16.pth holefill train pconv \\
        --data .device/train --val .device/val --config pconv_default --out /tmp/run --device cuda
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from holefill.train.data import list_training_images

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from shared_data import shared_dir  # noqa: E402 - the clone's helper, beside the benchmarks


def _spread(files: list[Path], count: int) -> list[Path]:
    if count >= len(files):
        return files
    return [files[i] for i in np.linspace(0, len(files) - 1, count).round().astype(int)]


def pack_train(source: Path, out: Path, budget: int) -> tuple[int, int]:
    """Whole photos spread evenly over each class folder; the most per class that fits."""
    classes = sorted(p for p in source.iterdir() if p.is_dir()) or [source]
    listed = {folder: list_training_images(folder) for folder in classes}
    low, high = 0, max(len(files) for files in listed.values())
    while low < high:  # the largest per-class count within the budget
        middle = (low + high + 1) // 2
        size = sum(p.stat().st_size for files in listed.values() for p in _spread(files, middle))
        low, high = (middle, high) if size <= budget else (low, middle - 1)
    total = count = 0
    for folder, files in listed.items():
        target = out / folder.relative_to(source) if folder != source else out
        target.mkdir(parents=True, exist_ok=True)
        for path in _spread(files, low):
            shutil.copy2(path, target / path.name)
            total += path.stat().st_size
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
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"{out} is not empty; remove it or choose another --out", file=sys.stderr)
        return 2
    count, size = pack_train(Path(args.train), out / "train", int(args.budget_mb * 1e6))
    val = list_training_images(args.val)
    (out / "val").mkdir(parents=True)
    for path in _spread(val, 64):
        shutil.copy2(path, out / "val" / path.name)
    state = torch.load(args.vgg, map_location="cpu", weights_only=True)
    torch.save({k: v.half() for k, v in state.items()}, out / "vgg19_to_relu4_1_fp16.pth")
    if args.init:
        shutil.copy2(args.init, out / "init.safetensors")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(
        f"{out}: {count} training photos ({size / 1e6:.1f} MB), {min(64, len(val))} validation "
        f"photos, VGG-19 fp16; {total / 2**20:.1f} MiB in all"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
