"""``holefill batch`` throughput and memory: local 1 and 2 workers against Ray with 2 CPUs.

Photos: the first ``--count`` (200) shared ImageNet validation photos, resized to 512x512 (bicubic)
and written once as JPEG (quality 95) to a temp folder; masks: shared NVIDIA irregular masks
(512x512, Liu et al. 2018), spread evenly over the six hole-ratio bins (0.01-0.6). Each
configuration runs as ``python -m holefill batch`` in a fresh output folder, for ``telea`` and a
heavy method (``--method``, default ``biharmonic``: the heavier of ``biharmonic`` and
``patchmatch`` on these pairs, about 1.4 against 1.1 CPU seconds per image, and the more uneven,
0.1-4.4 s with the hole size, the harder case for sharing work between workers; it keeps the run
under half an hour on 2 cores, where ``neural_patch``, about 15 s per image, would take hours):

* local, 1 worker (the reference); local, 2 workers; ray, 2 CPUs (a local Ray started by the job).

Figures per run: the job's own throughput (start-up included, from its summary line); the steady
throughput (images finished from 10% into the job to the last, over that time, from the results
log's millisecond timestamps: start-up and ramp excluded); the peak RSS and the CPU seconds summed
over the job's process tree (sampled every 0.5 s from /proc), and the cores it used (CPU seconds
over wall seconds: on a shared machine, fewer than the workers when others compete) and the
cores the rest of the machine kept busy meanwhile (``other``, from /proc/stat: well above 0.2
means another job competed and the figures are not clean). Then
``telea`` with 2 local workers runs on ``--many`` (1,000) items (the photos reused with other
masks) to show that the peak RSS does not grow with the collection.

Ray's workers run at nice 15 by default; the benchmark sets ``RAY_worker_niceness=0`` so that both
engines compete alike with other load on a shared machine.

Bars: 2 workers >= 1.7x one worker (heavy method, steady); Ray within 15% of local (2 workers,
steady); peak RSS at 1,000 items within 15% of 200.

Run::

    python benchmarks/bench_batch.py                     # 15 minutes on 2 idle cores
    python benchmarks/bench_batch.py --count 60 --many 300 --method patchmatch
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image
from shared_data import shared_dir

from holefill.registry import list_methods

SIZE = 512
CONFIGS = (("local", 1), ("local", 2), ("ray", 2))
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Run:
    method: str
    engine: str
    workers: int
    items: int
    job_throughput: float
    steady_throughput: float
    peak_rss_mib: float
    seconds: float
    cpu_seconds: float  # of the whole process tree, start-up included
    other_cores: float  # CPU the rest of the machine used meanwhile (another job: figures suffer)


def machine() -> str:
    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = [f"Python {platform.python_version()}"]
    for name in ("torch", "ray", "pyarrow"):
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            versions.append(f"{name} missing")
    return (
        f"{cpu}; {len(os.sched_getaffinity(0))} cores; {memory:.0f} GiB RAM; "
        f"{platform.platform()}; " + ", ".join(versions)
    )


def prepare(folder: Path, count: int, many: int) -> tuple[Path, Path]:
    """Photos at 512² (written once) and manifests of ``count`` and ``many`` items."""
    photos = sorted((shared_dir() / "data" / "val" / "imagenet256").glob("*"))[:count]
    masks = sorted((shared_dir() / "data" / "masks" / "nvidia_irregular").glob("*.png"))
    if len(photos) < count or len(masks) < many:
        raise SystemExit(f"need {count} photos and {many} masks under {shared_dir()}")
    images = folder / "images"
    images.mkdir(parents=True)
    for index, photo in enumerate(photos):
        resized = Image.open(photo).convert("RGB").resize((SIZE, SIZE), Image.BICUBIC)
        resized.save(images / f"{index:04d}.jpg", quality=95)
    return (
        _manifest(folder / f"jobs{count}.csv", images, masks, count, count),
        _manifest(folder / f"jobs{many}.csv", images, masks, count, many),
    )


def _manifest(path: Path, images: Path, masks: list[Path], photos: int, items: int) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "mask", "output"])
        for index in range(items):
            mask = masks[index * len(masks) // items]  # spread evenly over the hole-size bins
            writer.writerow([images / f"{index % photos:04d}.jpg", mask, f"{index:05d}.png"])
    return path


def _tree(root: int) -> tuple[int, dict[int, int]]:
    """Resident memory (bytes) of ``root`` and its descendants, and each one's CPU clock ticks."""
    parents, ticks = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(entry.name)
            parents[pid], ticks[pid] = int(fields[1]), int(fields[11]) + int(fields[12])
    tree, frontier = {root}, [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree.update(frontier)
    return sum(_rss(pid) for pid in tree), {pid: ticks[pid] for pid in tree if pid in ticks}


def _rss(pid: int) -> int:
    try:
        return int((Path("/proc") / str(pid) / "statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError):
        return 0


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (not idle, not waiting for I/O) since boot."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _steady(results: Path) -> float:
    """Images per second from the item finishing 10% into the job to the last (no start-up)."""
    with open(results, newline="") as handle:
        times = sorted(
            datetime.fromisoformat(row["finished"]).timestamp()
            for row in csv.DictReader(handle)
            if row["status"] == "ok"
        )
    first = len(times) // 10
    span = times[-1] - times[first] if times else 0.0
    return (len(times) - 1 - first) / span if span > 0 else 0.0


def run(manifest: Path, out: Path, method: str, engine: str, workers: int, items: int) -> Run:
    command = [
        sys.executable,
        "-m",
        "holefill",
        "batch",
        "--manifest",
        str(manifest),
        "--out",
        str(out),
        "--method",
        method,
        "--engine",
        engine,
        "--workers",
        str(workers),
        "--no-progress",
    ]
    environment = {**os.environ, "RAY_worker_niceness": "0"}  # Ray's default is nice 15
    start, busy = time.perf_counter(), _busy_seconds()
    job = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    )
    peak, cpu_ticks = [0], {}

    def sample() -> None:
        while job.poll() is None:
            rss, ticks = _tree(job.pid)
            peak[0] = max(peak[0], rss)
            cpu_ticks.update(ticks)
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = job.communicate()
    sampler.join()
    seconds, busy = time.perf_counter() - start, _busy_seconds() - busy
    if job.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({job.returncode}):\n{stderr[-2000:]}")
    summary = stdout.strip().splitlines()[-1]
    job_throughput = float(summary.rsplit("(", 1)[1].split()[0])
    cpu_seconds = sum(cpu_ticks.values()) / os.sysconf("SC_CLK_TCK")
    return Run(
        method,
        engine,
        workers,
        items,
        job_throughput,
        _steady(out / "results.csv"),
        peak[0] / 2**20,
        seconds,
        cpu_seconds,
        max(0.0, busy - cpu_seconds) / seconds,
    )


def _print_run(result: Run) -> None:
    print(
        f"{result.method:12s} {result.engine:6s} {result.workers:>7d} {result.items:>6d} "
        f"{result.job_throughput:>10.2f} {result.steady_throughput:>10.2f} "
        f"{result.peak_rss_mib:>10.0f} {result.seconds:>8.1f} {result.cpu_seconds:>8.1f} "
        f"{result.cpu_seconds / result.seconds:>6.2f} {result.other_cores:>6.2f}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    heavy = "biharmonic" if "biharmonic" in list_methods() else "patchmatch"
    parser.add_argument("--method", default=heavy, help=f"the heavy method ({heavy})")
    parser.add_argument("--count", type=int, default=200, help="photos (200)")
    parser.add_argument("--many", type=int, default=1000, help="items of the memory run (1000)")
    parser.add_argument("--skip-ray", action="store_true", help="local runs only")
    parser.add_argument(
        "--heavy-only",
        action="store_true",
        help="only the heavy method's runs (no telea runs, no memory run)",
    )
    args = parser.parse_args(argv)

    print(f"machine: {machine()}")
    print(f"load average before: {os.getloadavg()}")
    folder = Path(tempfile.mkdtemp(prefix="holefill-bench-batch-"))
    try:
        small, large = prepare(folder, args.count, args.many)
        print(
            f"{'method':12s} {'engine':6s} {'workers':>7s} {'items':>6s} {'job img/s':>10s} "
            f"{'steady':>10s} {'peak MiB':>10s} {'wall s':>8s} {'CPU s':>8s} {'cores':>6s} "
            f"{'other':>6s}",
            flush=True,
        )
        results: dict[tuple[str, str, int, int], Run] = {}
        for method in _methods(args):
            for engine, workers in CONFIGS:
                if engine == "ray" and args.skip_ray:
                    continue
                out = folder / f"out-{method}-{engine}-{workers}"
                result = run(small, out, method, engine, workers, args.count)
                results[method, engine, workers, args.count] = result
                _print_run(result)
                shutil.rmtree(out)
        if not args.heavy_only:
            many = run(large, folder / "out-many", "telea", "local", 2, args.many)
            results["telea", "local", 2, args.many] = many
            _print_run(many)
        _report(results, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"load average after: {os.getloadavg()}")
    return 0


def _methods(args: argparse.Namespace) -> tuple[str, ...]:
    return (args.method,) if args.heavy_only else ("telea", args.method)


def _report(results: dict, args: argparse.Namespace) -> None:
    _table(results)
    print("\nratios (steady throughput):")
    for method in _methods(args):
        one, two = results[method, "local", 1, args.count], results[method, "local", 2, args.count]
        line = f"  {method:12s} local 2 workers / 1 worker = {_ratio(two, one):.2f}x"
        if not args.skip_ray:
            ray = results[method, "ray", 2, args.count]
            line += f"; ray / local (2) = {_ratio(ray, two):.2f}"
            line += f" (job incl. start-up {ray.job_throughput / two.job_throughput:.2f})"
        print(line)
    bars = [
        f"2 workers >= 1.7x ({args.method}): "
        f"{_ratio(results[args.method, 'local', 2, args.count], results[args.method, 'local', 1, args.count]) >= 1.7}"
    ]
    if not args.skip_ray:
        ray, two = (
            results[args.method, "ray", 2, args.count],
            results[args.method, "local", 2, args.count],
        )
        bars.append(f"ray within 15% of local ({args.method}): {abs(_ratio(ray, two) - 1) <= 0.15}")
    if not args.heavy_only:
        small = results["telea", "local", 2, args.count].peak_rss_mib
        large = results["telea", "local", 2, args.many].peak_rss_mib
        print(
            f"peak RSS, telea local 2 workers: {args.count} items {small:.0f} MiB, "
            f"{args.many} items {large:.0f} MiB (ratio {large / small:.2f})"
        )
        bars.append(f"peak RSS flat (<= 1.15x): {large / small <= 1.15}")
    print("bars: " + "; ".join(bars))


def _table(results: dict) -> None:
    """The runs as a Markdown table (for docs/batch.md)."""
    print(
        "\n| method | engine | workers | images | images/s, steady | images/s, whole job "
        "| peak RSS MiB | wall s |\n|:--|:--|--:|--:|--:|--:|--:|--:|"
    )
    for run in results.values():
        print(
            f"| {run.method} | {run.engine} | {run.workers} | {run.items} "
            f"| {run.steady_throughput:.2f} | {run.job_throughput:.2f} "
            f"| {run.peak_rss_mib:.0f} | {run.seconds:.0f} |"
        )


def _ratio(run: Run, reference: Run) -> float:
    return run.steady_throughput / reference.steady_throughput


if __name__ == "__main__":
    sys.exit(main())
