"""Forward + backward time of PartialConv2d against nn.Conv2d (the bar: at most 1.2x).

Run: ``python benchmarks/bench_partialconv.py [--device cpu|cuda] [--repeats N]``.
Default problem: 64 -> 64 channels, 3x3, 256x256, batch 4, a random mask with ~30% holes.
The two layers are timed alternately in the same run, and the median of the repeats is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from holefill.nn.pconv import PartialConv2d


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--channels", type=int, default=64)
    return parser.parse_args()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_once(step: Callable[[], None], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    step()
    _sync(device)
    return time.perf_counter() - start


def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line for line in lines if line.startswith("model name")]
    model = names[0].split(":", 1)[1].strip() if names else platform.machine()
    return f"{model}, {torch.get_num_threads()} torch threads, load average {_load()}"


def _load() -> str:
    try:
        return " ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    args = _parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    shape = (args.batch, args.channels, args.size, args.size)
    x = torch.randn(shape, device=device, requires_grad=True)
    valid = (torch.rand(args.batch, 1, args.size, args.size, device=device) > 0.3).float()
    conv = nn.Conv2d(args.channels, args.channels, 3, padding=1).to(device)
    pconv = PartialConv2d(args.channels, args.channels, 3, padding=1).to(device)
    grad = torch.randn(shape, device=device)

    def conv_step() -> None:
        conv(x).backward(grad)

    def pconv_step() -> None:
        pconv(x, valid)[0].backward(grad)

    for step in (conv_step, pconv_step):  # warm-up
        _time_once(step, device)
    times: dict[str, list[float]] = {"nn.Conv2d": [], "PartialConv2d": []}
    for _ in range(args.repeats):
        times["nn.Conv2d"].append(_time_once(conv_step, device))
        times["PartialConv2d"].append(_time_once(pconv_step, device))
    medians = {name: statistics.median(values) for name, values in times.items()}

    print(f"machine: {_machine(device)}; torch {torch.__version__}")
    print(f"problem: forward+backward, {args.channels}->{args.channels}, 3x3, {shape}")
    for name, value in medians.items():
        print(f"{name:>14}: {value * 1e3:8.1f} ms (median of {args.repeats})")
    print(f"ratio PartialConv2d / nn.Conv2d: {medians['PartialConv2d'] / medians['nn.Conv2d']:.3f}")


if __name__ == "__main__":
    main()
