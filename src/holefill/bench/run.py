"""Running the evaluation: prepare each pair, fill it with each method, measure, record, resume.

One task is one (pair, method). Its row goes to ``results.csv`` as soon as it is done, so an
interrupted run resumes where it stopped; a failure is recorded as a row with ``status=error`` and
the run goes on. Numpy methods (telea, patchmatch, ...) can run in a pool of worker processes, each
building its inpainters and metric networks once; torch methods run in the main process.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from holefill.bench.metrics import HOLE_METRICS, METRICS, MetricSuite, build_metrics
from holefill.bench.pairs import Pair, grid_pairs, pairs_csv_text
from holefill.errors import InputError
from holefill.io import DEFAULT_MAX_PIXELS, atomic_write_bytes

RESULT_COLUMNS = (
    "pair",
    "image",
    "mask",
    "hole_ratio",
    "bin",
    "border",
    "method",
    *METRICS,
    "seconds",
    "status",
    "error",
)
#: The columns of results files written before issue 16's hole metrics; still read (and resumed),
#: their rows keep those metrics empty.
LEGACY_RESULT_COLUMNS = tuple(column for column in RESULT_COLUMNS if column not in HOLE_METRICS)
RESULTS_FILE = "results.csv"
PAIRS_FILE = "pairs.csv"
RUN_FILE = "run.json"
OUTPUTS_DIR = "outputs"


@dataclass
class BenchConfig:
    """Everything that decides a bench run's numbers (and how it runs).

    ``size`` 0 keeps native sizes (the mask is resized to the image, nearest); otherwise the image
    is centre-cropped to a square and resized to ``size`` x ``size`` (area down, Lanczos up) and
    the mask likewise with nearest neighbour. ``method_options`` maps each method to its options.
    """

    out: Path
    pairs: list[Pair]
    method_options: dict[str, dict[str, Any]]
    size: int = 256
    seed: int = 0
    border_distance: int = 50
    grids: int = 2
    workers: int = 0  # worker processes for numpy methods; 0: all in this process
    max_pixels: int = DEFAULT_MAX_PIXELS
    vgg_weights: Path | None = None
    use_vgg: bool = True
    use_lpips: bool = True
    retry_errors: bool = False
    rerun: tuple[str, ...] = ()  # methods whose earlier rows are discarded and refilled
    progress: bool | None = None  # None: tqdm decides (off when not a terminal)

    @property
    def methods(self) -> list[str]:
        return list(self.method_options)


@dataclass
class RunOutcome:
    """What :func:`run_bench` did: rows of this report (all methods), tasks run, notes."""

    rows: list[dict[str, str]]
    ran: int
    skipped: int
    metrics: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[dict[str, str]]:
        return [row for row in self.rows if row["status"] != "ok"]


# ---------------------------------------------------------------------------------------------
# One task
# ---------------------------------------------------------------------------------------------


def prepare_pair(
    pair: Pair, size: int, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth ``(H, W, 3)`` uint8 RGB and hole ``(H, W)`` bool as evaluated.

    Both are decoded by the pipeline (:func:`holefill.pipeline.decode_image`, the mask rule of
    :func:`holefill.pipeline.read_hole`). With ``size`` > 0 both are centre-cropped to a square
    and resized to ``size`` (image: area when shrinking, Lanczos when enlarging; mask: nearest).
    With 0 the image keeps its size and the mask is resized to it (nearest). 16-bit images are
    evaluated in 8 bits (:func:`holefill.pipeline.to_8bit`), alpha is dropped.
    """
    from holefill.pipeline import decode_image, read_hole, to_8bit

    pixels = to_8bit(decode_image(pair.image, max_pixels=max_pixels).pixels)
    hole, _ = read_hole(pair.mask, max_pixels=max_pixels)
    if size:
        pixels = _square(pixels, size, mask=False)
        hole = _square(hole.astype(np.uint8), size, mask=True).astype(bool)
    elif hole.shape != pixels.shape[:2]:
        hole = _resize(hole.astype(np.uint8), pixels.shape[:2], mask=True).astype(bool)
    return np.ascontiguousarray(pixels), hole


def _square(array: np.ndarray, size: int, *, mask: bool) -> np.ndarray:
    height, width = array.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return _resize(array[top : top + side, left : left + side], (size, size), mask=mask)


def _resize(array: np.ndarray, shape: tuple[int, int], *, mask: bool) -> np.ndarray:
    import cv2

    if array.shape[:2] == tuple(shape):
        return array
    if mask:
        interpolation = cv2.INTER_NEAREST
    elif shape[0] * shape[1] < array.shape[0] * array.shape[1]:
        interpolation = cv2.INTER_AREA
    else:
        interpolation = cv2.INTER_LANCZOS4
    return cv2.resize(
        np.ascontiguousarray(array), (shape[1], shape[0]), interpolation=interpolation
    )


class _Worker:
    """Builds each method's inpainter and the metrics once, then evaluates tasks."""

    def __init__(
        self, config: BenchConfig, grid_indices: set[int], metrics: MetricSuite | None = None
    ) -> None:
        self.config = config
        self.grid_indices = grid_indices
        self.metrics = metrics or build_metrics(
            config.vgg_weights, use_vgg=config.use_vgg, use_lpips=config.use_lpips
        )
        self._inpainters: dict[str, Any] = {}

    def inpainter(self, method: str):
        """The pipeline's inpainter of ``method``, warmed up once in this process."""
        if method not in self._inpainters:
            from holefill.pipeline import load_method

            inpainter = load_method(method, **self.config.method_options[method])
            _warm_up(inpainter)
            self._inpainters[method] = inpainter
        return self._inpainters[method]

    def evaluate(self, index: int, method: str) -> dict[str, str]:
        """The results row of pair ``index`` filled by ``method``; errors become a row too."""
        pair = self.config.pairs[index]
        row = {
            "pair": str(index),
            "image": str(pair.image),
            "mask": str(pair.mask),
            "bin": pair.bin,
            "border": str(int(pair.border)),
            "method": method,
        }
        try:
            truth, hole = prepare_pair(pair, self.config.size, max_pixels=self.config.max_pixels)
            row["hole_ratio"] = f"{hole.mean():.6f}"
            filled, seconds = self.fill(method, truth, hole)
            values = self.metrics(filled, truth, hole, truth_key=(index, self.config.size))
            if index in self.grid_indices:
                save_output(self.config.out, method, index, filled)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded in its row
            row.update(status="error", error=f"{type(exc).__name__}: {exc}".replace("\n", " "))
            return _complete(row)
        row.update({name: _format(value) for name, value in values.items()})
        row.update(seconds=f"{seconds:.4f}", status="ok")
        return _complete(row)

    def fill(self, method: str, truth: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, float]:
        """Fill ``hole`` of ``truth`` through the pipeline; returns the result and the seconds
        the method took. A pair whose hole vanished at this size cannot be evaluated."""
        from holefill.pipeline import fill_image

        self.inpainter(method)  # warmed up before the timed fill
        result = fill_image(truth, hole, method, self.config.method_options[method])
        if result.empty:
            raise InputError("the mask has no hole pixels at this size")
        return result.pixels, result.seconds


def _warm_up(inpainter) -> None:
    """One tiny fill, so one-time costs (JIT compiling, lazy loading) stay out of the timings."""
    import torch

    image = torch.linspace(0, 1, 3 * 32 * 32).reshape(1, 3, 32, 32)
    hole = torch.zeros(1, 1, 32, 32)
    hole[..., 12:20, 12:20] = 1
    with contextlib.suppress(Exception):  # a real failure is recorded on the real pair
        inpainter.fill(image, hole)


def _format(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.6f}"


def _complete(row: dict[str, str]) -> dict[str, str]:
    return {column: row.get(column, "") for column in RESULT_COLUMNS}


def output_path(out: Path, method: str, index: int) -> Path:
    """Where the filled image of pair ``index`` by ``method`` is kept (grid pairs only)."""
    return Path(out) / OUTPUTS_DIR / method / f"{index:05d}.png"


def save_output(out: Path, method: str, index: int, filled: np.ndarray) -> None:
    from holefill.io import encode_image

    atomic_write_bytes(output_path(out, method, index), encode_image(filled, "PNG"))


# ---------------------------------------------------------------------------------------------
# Worker processes
# ---------------------------------------------------------------------------------------------

_PROCESS_WORKER: _Worker | None = None


def _init_process(config: BenchConfig, grid_indices: set[int]) -> None:
    import cv2
    import torch

    torch.set_num_threads(1)  # the pool is the parallelism
    cv2.setNumThreads(1)
    global _PROCESS_WORKER
    _PROCESS_WORKER = _Worker(config, grid_indices)


def _process_task(index: int, methods: list[str]) -> list[dict[str, str]]:
    assert _PROCESS_WORKER is not None
    return [_PROCESS_WORKER.evaluate(index, method) for method in methods]


def _in_pool(method: str) -> bool:
    """Numpy (CPU) methods run in worker processes; torch methods stay in the main process."""
    from holefill.inpainter import NumpyInpainter
    from holefill.registry import get_method_class

    return issubclass(get_method_class(method), NumpyInpainter)


# ---------------------------------------------------------------------------------------------
# results.csv
# ---------------------------------------------------------------------------------------------


def read_results(path: Path) -> list[dict[str, str]]:
    """Rows of a results file; a half-written last line (an interrupted run) is ignored.

    A file of an earlier version (:data:`LEGACY_RESULT_COLUMNS`) is read with the hole metrics
    empty.
    """
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            return []
        if list(reader.fieldnames) not in (list(RESULT_COLUMNS), list(LEGACY_RESULT_COLUMNS)):
            raise InputError(
                f"{path}: not a results file of this holefill version (columns "
                "differ); use a new --out folder"
            )
        return [
            _complete(row)
            for row in reader
            if None not in row.values() and row["status"] in ("ok", "error")
        ]


def _is_legacy(path: Path) -> bool:
    with path.open(newline="") as handle:
        return next(csv.reader(handle), None) == list(LEGACY_RESULT_COLUMNS)


def _row_key(row: dict[str, str]) -> tuple[str, str, str]:
    return row["image"], row["mask"], row["method"]


class _ResultsLog:
    """Appends rows to results.csv as they come (flushed), so nothing done is lost."""

    def __init__(self, path: Path) -> None:
        new = not path.is_file() or path.stat().st_size == 0
        if not new:
            with path.open("rb") as handle:  # a torn last line must not glue onto the next row
                handle.seek(-1, os.SEEK_END)
                torn = handle.read(1) != b"\n"
        self._handle = path.open("a", newline="")
        if not new and torn:
            self._handle.write("\n")
        self._writer = csv.DictWriter(self._handle, fieldnames=RESULT_COLUMNS, lineterminator="\n")
        if new:
            self._writer.writeheader()

    def add(self, row: dict[str, str]) -> None:
        self._writer.writerow(row)
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def write_results(path: Path, rows: Iterable[dict[str, str]]) -> None:
    """Rewrite the results file atomically (sorted by method then pair)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode())


def _sorted_rows(rows: list[dict[str, str]], methods: list[str]) -> list[dict[str, str]]:
    latest = {_row_key(row): row for row in rows}  # a retried task replaces its old row
    order = {name: i for i, name in enumerate(methods)}

    def key(row):
        return order.get(row["method"], len(order)), row["method"], int(row["pair"])

    return sorted(latest.values(), key=key)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _run_record(config: BenchConfig, metric_columns: list[str]) -> dict[str, Any]:
    from holefill import __version__

    return {
        "holefill": __version__,
        "size": config.size,
        "seed": config.seed,
        "border_distance": config.border_distance,
        "metrics": metric_columns,
        "methods": {name: _plain(opts) for name, opts in config.method_options.items()},
        "code": {name: method_fingerprint(name) for name in config.methods},
    }


def method_fingerprint(method: str) -> str:
    """The first 12 hex digits of the sha256 of the method's module source."""
    import hashlib
    import inspect

    from holefill.registry import get_method_class

    source = Path(inspect.getfile(get_method_class(method))).read_bytes()
    return hashlib.sha256(source).hexdigest()[:12]


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _check_report_dir(config: BenchConfig, record: dict[str, Any]) -> dict[str, Any]:
    """Refuse folders that are not this run's report; return the merged run record."""
    out = Path(config.out)
    run_file = out / RUN_FILE
    if not run_file.is_file():
        if out.is_dir() and any(out.iterdir()):
            raise InputError(
                f"{out} is not empty and holds no {RUN_FILE}: not a holefill bench "
                "report; choose a new --out folder"
            )
        return record
    previous = json.loads(run_file.read_text())
    legacy_metrics = [name for name in record["metrics"] if name not in HOLE_METRICS]
    if previous.get("metrics") == legacy_metrics:  # a report from before the hole metrics
        previous["metrics"] = record["metrics"]
    for name in ("size", "seed", "border_distance", "metrics"):
        if previous.get(name) != record[name]:
            raise InputError(
                f"{out} holds a run with {name}={previous.get(name)!r}, not {record[name]!r}; "
                "use the same settings to resume, or a new --out folder"
            )
    for method, options in record["methods"].items():
        if method in previous["methods"] and previous["methods"][method] != options:
            raise InputError(
                f"{out} holds {method} results with options {previous['methods'][method]}, not "
                f"{options}; use the same options to resume, or a new --out folder"
            )
    pairs_text = pairs_csv_text(config.pairs)
    if (out / PAIRS_FILE).is_file() and (out / PAIRS_FILE).read_text() != pairs_text:
        raise InputError(
            f"{out}/{PAIRS_FILE} holds other pairs; resume with --pairs "
            f"{out / PAIRS_FILE}, or use a new --out folder"
        )
    merged = dict(previous)
    merged["methods"] = {**previous["methods"], **record["methods"]}
    merged["code"] = {**record["code"], **previous.get("code", {})}
    for method in config.methods:
        if method in config.rerun:
            merged["code"][method] = record["code"][method]
        elif merged["code"][method] != record["code"][method]:
            warnings.warn(
                f"the code of {method} changed since its rows in {out} were computed; pass "
                f"--rerun {method} to refill them",
                stacklevel=2,
            )
    return merged


def run_bench(config: BenchConfig) -> RunOutcome:
    """Evaluate every (pair, method) not yet in ``results.csv``; returns all rows of the report.

    Writes ``run.json``, ``pairs.csv`` and ``results.csv`` into ``config.out`` (rewritten sorted at
    the end) and the filled images of the grid pairs under ``outputs/``.
    """
    from tqdm import tqdm

    out = Path(config.out)
    probe = build_metrics(config.vgg_weights, use_vgg=config.use_vgg, use_lpips=config.use_lpips)
    record = _check_report_dir(config, _run_record(config, probe.columns))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / RUN_FILE, (json.dumps(record, indent=2) + "\n").encode())
    atomic_write_bytes(out / PAIRS_FILE, pairs_csv_text(config.pairs).encode())

    results_path = out / RESULTS_FILE
    existing = read_results(results_path)
    if existing and _is_legacy(results_path):  # new rows need the new header
        write_results(results_path, existing)
    done = {
        _row_key(row)
        for row in existing
        if row["method"] not in config.rerun and (row["status"] == "ok" or not config.retry_errors)
    }
    tasks = [  # pair by pair, so each ground truth goes through the VGG once
        (index, method)
        for index, pair in enumerate(config.pairs)
        for method in config.methods
        if (*pair.key, method) not in done
    ]
    grid_indices = set(grid_pairs(config.pairs, config.grids))
    new_rows: list[dict[str, str]] = []
    log = _ResultsLog(results_path)
    try:
        disable = None if config.progress is None else not config.progress
        with tqdm(total=len(tasks), desc="bench", unit="fill", disable=disable) as bar:
            for row in _evaluate_all(config, tasks, grid_indices, probe):
                log.add(row)
                new_rows.append(row)
                bar.set_postfix_str(f"{row['method']} {row['status']}", refresh=False)
                bar.update()
    finally:
        log.close()
    all_methods = config.methods + sorted(set(record["methods"]) - set(config.methods))
    rows = _sorted_rows(existing + new_rows, all_methods)
    write_results(results_path, rows)
    pair_keys = {pair.key for pair in config.pairs}
    rows = [
        row
        for row in rows
        if (row["image"], row["mask"]) in pair_keys and row["method"] in config.methods
    ]
    return RunOutcome(
        rows,
        ran=len(tasks),
        skipped=len(config.pairs) * len(config.methods) - len(tasks),
        metrics=probe.columns,
        notes=probe.notes,
    )


def _evaluate_all(
    config: BenchConfig,
    tasks: list[tuple[int, str]],
    grid_indices: set[int],
    metrics: MetricSuite,
) -> Iterator[dict[str, str]]:
    """Rows of ``tasks`` as they finish: torch methods here, numpy methods in the pool."""
    in_pool = {method: config.workers > 0 and _in_pool(method) for method in config.methods}
    pooled = [task for task in tasks if in_pool[task[1]]]
    local = [task for task in tasks if not in_pool[task[1]]]
    if local:
        worker = _Worker(config, grid_indices, metrics)
        for index, method in local:
            yield evaluate_task(worker, index, method)
    if not pooled:
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # fork after torch/OpenMP start can hang
    with ProcessPoolExecutor(
        max_workers=config.workers,
        mp_context=context,
        initializer=_init_process,
        initargs=(config, grid_indices),
    ) as pool:
        by_pair: dict[int, list[str]] = {}
        for index, method in pooled:  # a pair's methods together: its ground truth is shared
            by_pair.setdefault(index, []).append(method)
        futures = [pool.submit(_process_task, index, methods) for index, methods in by_pair.items()]
        for future in as_completed(futures):
            yield from future.result()


def evaluate_task(worker: _Worker, index: int, method: str) -> dict[str, str]:
    """One (pair, method) in this process (a seam for tests that count method calls)."""
    return worker.evaluate(index, method)


def ensure_outputs(config: BenchConfig, indices: list[int]) -> dict[tuple[int, str], np.ndarray]:
    """Filled images of ``indices`` for every method: the kept files, re-filled where missing
    (pairs whose row came from an earlier run with fewer grids). Failed fills are left out."""
    from PIL import Image

    found: dict[tuple[int, str], np.ndarray] = {}
    worker: _Worker | None = None
    for method in config.methods:
        for index in indices:
            path = output_path(config.out, method, index)
            if not path.is_file():
                worker = worker or _Worker(config, set(indices))
                worker.evaluate(index, method)  # writes the file when the fill succeeds
            if path.is_file():
                with Image.open(path) as image:
                    found[index, method] = np.asarray(image.convert("RGB"))
    return found


def config_summary(config: BenchConfig) -> dict[str, Any]:
    """The settings a report states (no output folder, so reports compare byte for byte)."""
    return {
        "pairs": len(config.pairs),
        "size": config.size,
        "seed": config.seed,
        "border_distance": config.border_distance,
        "methods": config.methods,
        "method_options": {m: _plain(o) for m, o in config.method_options.items()},
    }


__all__ = [
    "BenchConfig",
    "RunOutcome",
    "run_bench",
    "prepare_pair",
    "read_results",
    "ensure_outputs",
    "config_summary",
    "RESULT_COLUMNS",
]
