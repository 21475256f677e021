"""The bench report: tables shaped like the PConv paper's Table 1, JSON, a plot and image grids.

Rows are methods, columns are the hole-ratio bins, bins 0.1-0.6 together (the range issue 16
judges by) and all bins; each metric has its own block, and each block has rows for holes away
from the border (N), near it (B) and both (all). Cells are means over the pairs that succeeded,
medians for the hole texture ratio (a ratio: one near-flat truth would dominate a mean); the
out-of-palette cells show the truth's own rate over the same pairs beside the fill's. Everything
in ``summary.md`` is reproducible: timings, which vary between runs, are kept in ``summary.json``
and ``results.csv`` only.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from holefill.bench.metrics import METRICS
from holefill.bench.pairs import NO_BIN
from holefill.io import atomic_write_bytes
from holefill.masks import BIN_LABELS

ALL = "all"
#: Bins 0.1-0.2 ... 0.5-0.6 together: the hole sizes issue 16's table and targets use.
LARGE = "0.1-0.6"
_LARGE_BINS = BIN_LABELS[1:]
#: Metrics whose cells are medians; every other cell is a mean.
MEDIAN_METRICS = frozenset({"texture_ratio"})
#: Metrics shown in parentheses beside another's cells instead of in a table of their own:
#: ``{metric: (shown beside it, what the parentheses say)}``.
BESIDE = {
    "out_of_palette_pct": ("truth_out_of_palette_pct", "the truth's own rate, same pairs"),
}
#: Border groups: key, label in tables, which ``border`` values they hold.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (("N", ("0",)), ("B", ("1",)), (ALL, ("0", "1")))
_DECIMALS = {
    "l1_pct": 2,
    "psnr": 2,
    "ssim": 4,
    "psnr_hole": 2,
    "ssim_hole": 4,
    "vgg_dist": 4,
    "vgg_hole": 4,
    "texture_ratio": 3,
    "out_of_palette_pct": 2,
    "truth_out_of_palette_pct": 2,
    "lpips": 4,
}
PLOT_FILE = "psnr_ssim_vs_hole_ratio.png"
SCATTER_FILE = "psnr_vs_vgg_hole.png"
SCATTER_SIZE = (700, 560)  # pixels of the scatter plot PNG
PLOT_SIZE = (1200, 450)  # pixels of the plot PNG
GRID_PAD = 4
GRID_HEADER = 22
GRIDS_DIR = "grids"


@dataclass
class Summary:
    """Cell values per (metric, method, group, bin) (means; medians for :data:`MEDIAN_METRICS`),
    counts, failures, timings, and per (metric, method) the succeeded rows that lack the metric
    (rows of an earlier holefill version)."""

    methods: list[str]
    metrics: list[str]
    bins: list[str]
    values: dict[str, dict[str, dict[str, dict[str, float | None]]]]
    counts: dict[str, dict[str, dict[str, int]]]
    failures: list[dict[str, str]]
    seconds: dict[str, dict[str, float | None]]
    missing: dict[str, dict[str, int]]


def _bins(rows: list[dict[str, str]]) -> list[str]:
    extra = [NO_BIN] if any(row["bin"] not in BIN_LABELS for row in rows) else []
    return [*BIN_LABELS, *extra, LARGE, ALL]


def _in_cell(row: dict[str, str], borders: tuple[str, ...], bin_: str) -> bool:
    in_bin = (
        bin_ == ALL
        or row["bin"] == bin_
        or (bin_ == NO_BIN and row["bin"] not in BIN_LABELS)
        or (bin_ == LARGE and row["bin"] in _LARGE_BINS)
    )
    return row["border"] in borders and in_bin


def _aggregate(metric: str, cell: list[dict[str, str]]) -> float | None:
    """The cell's mean (median for :data:`MEDIAN_METRICS`) over rows that have the metric."""
    values = [float(row[metric]) for row in cell if row[metric] != ""]
    if not values:
        return None
    return float(np.median(values) if metric in MEDIAN_METRICS else np.mean(values))


def summarize(rows: list[dict[str, str]], methods: list[str], metrics: list[str]) -> Summary:
    """Aggregate results rows (see :data:`holefill.bench.run.RESULT_COLUMNS`)."""
    bins = _bins(rows)
    ok = [row for row in rows if row["status"] == "ok"]
    values: dict = {metric: {m: {} for m in methods} for metric in metrics}
    counts: dict = {m: {} for m in methods}
    missing: dict = {metric: {} for metric in metrics}
    for method in methods:
        mine = [row for row in ok if row["method"] == method]
        for metric in metrics:
            missing[metric][method] = sum(1 for row in mine if row[metric] == "")
        for group, borders in GROUPS:
            cells = {bin_: [r for r in mine if _in_cell(r, borders, bin_)] for bin_ in bins}
            counts[method][group] = {bin_: len(cell) for bin_, cell in cells.items()}
            for metric in metrics:
                values[metric][method][group] = {
                    bin_: _aggregate(metric, cell) for bin_, cell in cells.items()
                }
    failures = [row for row in rows if row["status"] != "ok"]
    seconds = {}
    for method in methods:
        times = [float(row["seconds"]) for row in ok if row["method"] == method]
        seconds[method] = {
            "mean": float(np.mean(times)) if times else None,
            "median": float(np.median(times)) if times else None,
        }
    return Summary(methods, metrics, bins, values, counts, failures, seconds, missing)


# ---------------------------------------------------------------------------------------------
# summary.md / summary.json
# ---------------------------------------------------------------------------------------------


def _cell(value: float | None, decimals: int) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "inf"
    return f"{value:.{decimals}f}"


def _table(head: list[str], rows: list[list[str]], numeric_from: int) -> list[str]:
    align = [":--" if i < numeric_from else "--:" for i in range(len(head))]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _bin_heads(bins: list[str]) -> list[str]:
    return [{ALL: "all bins", LARGE: "bins 0.1-0.6"}.get(b, b) for b in bins]


def summary_markdown(summary: Summary, settings: dict[str, Any], notes: list[str]) -> str:
    """``summary.md``: settings, one table per metric, pairs per cell, failures, notes."""
    distance = settings["border_distance"]
    size = settings["size"]
    lines = ["# holefill bench: PConv protocol (Liu et al. 2018, Table 1)", ""]
    lines += [
        f"- {settings['pairs']} pairs (`pairs.csv`); "
        + (
            f"images centre-cropped to a square and resized to {size}×{size} (area down, Lanczos "
            "up), masks resized with nearest neighbour"
            if size
            else "images at their native sizes, masks resized to them with nearest neighbour"
        ),
        f"- pairing seed and method seed {settings['seed']}; holefill {settings['holefill']}",
        f"- N: every hole at least {distance} px from the border of the mask (at its native "
        f"size); B: some hole within {distance} px; all: both",
        "- cells are means over the pairs that succeeded (counts below), medians for the hole "
        "texture ratio; — where there are none",
        "- methods and options: "
        + "; ".join(
            f"`{m}` {json.dumps(o, sort_keys=True)}" for m, o in settings["method_options"].items()
        ),
        "",
    ]
    for metric in summary.metrics:
        if metric not in {beside for beside, _ in BESIDE.values()}:
            lines += _metric_block(summary, metric)
    lines += ["## Pairs per cell (succeeded)", ""]
    rows = [
        [method, group] + [str(summary.counts[method][group][b]) for b in summary.bins]
        for group, _ in GROUPS
        for method in summary.methods
    ]
    lines += _table(["method", "holes", *_bin_heads(summary.bins)], rows, 2) + [""]
    lines += _failure_lines(summary.failures)
    lines += ["## Not computed", ""]
    lines += [f"- {note}" for note in notes]
    lines += _missing_lines(summary)
    lines += [
        "- per-image seconds: in `summary.json` and `results.csv` (timings vary between "
        "runs, so this file leaves them out)",
        "",
    ]
    return "\n".join(lines)


def _metric_block(summary: Summary, metric: str) -> list[str]:
    """A metric's heading and table; a :data:`BESIDE` metric in parentheses in each cell."""
    title, better = METRICS[metric]
    median = "medians; " if metric in MEDIAN_METRICS else ""
    beside, label = BESIDE.get(metric, (None, ""))
    beside = beside if beside in summary.metrics else None
    after = f"; in parentheses: {label}" if beside else ""
    lines = [f"## {title} ({median}{better} is better{after})", ""]
    rows = []
    for group, _ in GROUPS:
        for method in summary.methods:
            cells = []
            for bin_ in summary.bins:
                text = _cell(summary.values[metric][method][group][bin_], _DECIMALS[metric])
                if beside and text != "—":
                    reference = summary.values[beside][method][group][bin_]
                    text += f" ({_cell(reference, _DECIMALS[beside])})"
                cells.append(text)
            rows.append([method, group, *cells])
    return lines + _table(["method", "holes", *_bin_heads(summary.bins)], rows, 2) + [""]


def _missing_lines(summary: Summary) -> list[str]:
    """Notes on rows of an earlier holefill version that lack a metric."""
    lines = []
    for metric in summary.metrics:
        for method, count in summary.missing[metric].items():
            if count:
                lines.append(
                    f"- {metric}: {count} rows of {method} come from an earlier holefill without "
                    f"it; its cells average the other rows (`--rerun {method}` refills them)"
                )
    return lines


def _failure_lines(failures: list[dict[str, str]]) -> list[str]:
    lines = [f"## Failures ({len(failures)})", ""]
    if not failures:
        return lines + ["none", ""]
    rows = [
        [f["method"], f["pair"], f["image"], f["mask"], f["error"].replace("|", "\\|")]
        for f in failures
    ]
    return lines + _table(["method", "pair", "image", "mask", "error"], rows, 5) + [""]


def summary_json(summary: Summary, settings: dict[str, Any], notes: list[str]) -> str:
    """``summary.json``: the same numbers as ``summary.md`` plus timings (None where empty)."""
    document = {
        "settings": settings,
        "bins": summary.bins,
        "groups": [group for group, _ in GROUPS],
        "metrics": _finite(summary.values),
        "aggregate": {m: "median" if m in MEDIAN_METRICS else "mean" for m in summary.metrics},
        "counts": summary.counts,
        "rows_without_metric": summary.missing,
        "seconds_per_image": summary.seconds,
        "failures": [
            {k: f[k] for k in ("method", "pair", "image", "mask", "error")}
            for f in summary.failures
        ],
        "notes": notes,
    }
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------------------------
# Plot
# ---------------------------------------------------------------------------------------------


def plot_png(rows: list[dict[str, str]], methods: list[str]) -> bytes:
    """PSNR and SSIM against the hole ratio: a dot per image, a line through the bin means."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width, height = PLOT_SIZE
    figure, axes = plt.subplots(1, 2, figsize=(width / 100, height / 100), dpi=100)
    ok = [row for row in rows if row["status"] == "ok" and row["psnr"] != "inf"]
    for axis, metric in zip(axes, ("psnr", "ssim"), strict=True):
        for number, method in enumerate(methods):
            mine = [row for row in ok if row["method"] == method]
            if not mine:
                continue
            ratio = np.array([float(row["hole_ratio"]) for row in mine])
            value = np.array([float(row[metric]) for row in mine])
            colour = f"C{number % 10}"
            axis.scatter(ratio, value, s=8, alpha=0.35, color=colour, linewidths=0)
            axis.plot(*_binned_means(ratio, value), "-o", color=colour, markersize=4, label=method)
        axis.set_xlabel("hole ratio (as evaluated)")
        axis.set_ylabel(METRICS[metric][0])
        axis.set_xlim(0, 0.65)
        axis.grid(True, alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8)
    figure.suptitle(
        "PSNR and SSIM over the whole image vs hole ratio (dots: images, lines: means per bin)",
        fontsize=10,
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def scatter_points(summary: Summary) -> tuple[str, list[tuple[str, float, float]]]:
    """``(bins, [(method, mean hole VGG distance, mean PSNR), ...])`` for the scatter plot:
    over bins 0.1-0.6 where some pair lies there, else over all bins; methods without a value
    are left out."""
    bin_ = LARGE if any(summary.counts[m][ALL][LARGE] for m in summary.methods) else ALL
    points = []
    for method in summary.methods:
        distance = summary.values["vgg_hole"][method][ALL][bin_]
        psnr = summary.values["psnr"][method][ALL][bin_]
        if distance is not None and psnr is not None and math.isfinite(psnr):
            points.append((method, distance, psnr))
    return bin_, points


def scatter_png(summary: Summary) -> bytes:
    """Mean PSNR against mean VGG distance over the hole, one labelled point per method (up and
    to the left is better: accurate and true to the texture)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bin_, points = scatter_points(summary)
    width, height = SCATTER_SIZE
    figure, axis = plt.subplots(figsize=(width / 100, height / 100), dpi=100)
    for number, (method, distance, psnr) in enumerate(points):
        axis.scatter([distance], [psnr], s=40, color=f"C{number % 10}")
        axis.annotate(method, (distance, psnr), xytext=(5, 4), textcoords="offset points")
    axis.set_xlabel(f"{METRICS['vgg_hole'][0]} (lower is better)")
    axis.set_ylabel("PSNR, whole image (dB)")
    axis.margins(0.2)
    axis.grid(True, alpha=0.3)
    pairs = "holes 0.1-0.6" if bin_ == LARGE else "all holes"
    axis.set_title(f"Means per method, {pairs} (better: up and left)", fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _binned_means(ratio: np.ndarray, value: np.ndarray) -> tuple[list[float], list[float]]:
    edges = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0]
    xs, ys = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (ratio > lo) & (ratio <= hi)
        if inside.any():
            xs.append(float(ratio[inside].mean()))
            ys.append(float(value[inside].mean()))
    return xs, ys


# ---------------------------------------------------------------------------------------------
# Grids
# ---------------------------------------------------------------------------------------------


def grid_size(n_rows: int, n_columns: int, tile: int) -> tuple[int, int]:
    """``(width, height)`` of a grid of ``n_rows`` x ``n_columns`` tiles of ``tile`` px."""
    return (GRID_PAD + n_columns * (tile + GRID_PAD), GRID_HEADER + n_rows * (tile + GRID_PAD))


def _fit(pixels: np.ndarray, tile: int) -> np.ndarray:
    """The image scaled to fit a ``tile`` square, centred on grey."""
    from PIL import Image

    height, width = pixels.shape[:2]
    scale = tile / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(pixels)
    if size != (width, height):
        image = image.resize(size, Image.Resampling.LANCZOS)
    canvas = np.full((tile, tile, 3), 128, np.uint8)
    top, left = (tile - size[1]) // 2, (tile - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = np.asarray(image)
    return canvas


def grid_png(
    rows: list[list[np.ndarray | None]], headings: list[str], row_labels: list[str], tile: int
) -> bytes:
    """A grid image: one row per pair, columns ``headings``; a missing tile (failed fill) is
    drawn as a dark grey square with a cross."""
    from PIL import Image, ImageDraw

    width, height = grid_size(len(rows), len(headings), tile)
    grid = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for column, heading in enumerate(headings):
        draw.text((GRID_PAD + column * (tile + GRID_PAD) + 2, 5), heading, fill=(0, 0, 0))
    for number, (tiles, label) in enumerate(zip(rows, row_labels, strict=True)):
        top = GRID_HEADER + number * (tile + GRID_PAD)
        for column, pixels in enumerate(tiles):
            left = GRID_PAD + column * (tile + GRID_PAD)
            if pixels is None:
                draw.rectangle((left, top, left + tile - 1, top + tile - 1), fill=(60, 60, 60))
                draw.line((left, top, left + tile - 1, top + tile - 1), fill=(200, 0, 0), width=3)
                continue
            grid.paste(Image.fromarray(_fit(pixels, tile)), (left, top))
        draw.rectangle((GRID_PAD, top, GRID_PAD + 6 * len(label) + 4, top + 13), fill=(0, 0, 0))
        draw.text((GRID_PAD + 2, top + 1), label, fill=(255, 255, 255))
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG")
    return buffer.getvalue()


def write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# The whole report
# ---------------------------------------------------------------------------------------------


def write_grids(config, indices: list[int]) -> list[Path]:
    """One grid per bin, ``grids/<bin>.png``: input with the hole in white | each method |
    ground truth, for the pairs ``indices``."""
    from holefill.bench.run import ensure_outputs, prepare_pair

    outputs = ensure_outputs(config, indices)
    tile = config.size or 256
    headings = ["input", *config.methods, "ground truth"]
    written = []
    for bin_ in (*BIN_LABELS, NO_BIN):
        mine = [i for i in indices if config.pairs[i].bin == bin_]
        if not mine:
            continue
        rows, labels = [], []
        for index in mine:
            pair = config.pairs[index]
            try:
                truth, hole = prepare_pair(pair, config.size)
                shown = np.where(hole[..., None], np.uint8(255), truth)
            except Exception:  # noqa: BLE001 - the failure is in results.csv and the summary
                truth = shown = None
            rows.append([shown, *[outputs.get((index, m)) for m in config.methods], truth])
            labels.append(f"#{index} {'B' if pair.border else 'N'}")
        path = Path(config.out) / GRIDS_DIR / f"{bin_}.png"
        atomic_write_bytes(path, grid_png(rows, headings, labels, tile))
        written.append(path)
    return written


def write_report(config, outcome) -> dict[str, Path]:
    """Write ``summary.md``, ``summary.json``, the plot and the grids; returns their paths."""
    from holefill import __version__
    from holefill.bench.pairs import grid_pairs
    from holefill.bench.run import config_summary

    out = Path(config.out)
    metrics = outcome.metrics
    settings = {**config_summary(config), "holefill": __version__}
    summary = summarize(outcome.rows, config.methods, metrics)
    paths = {
        "summary.md": out / "summary.md",
        "summary.json": out / "summary.json",
        "plot": out / PLOT_FILE,
    }
    write_text(paths["summary.md"], summary_markdown(summary, settings, outcome.notes))
    write_text(paths["summary.json"], summary_json(summary, settings, outcome.notes))
    atomic_write_bytes(paths["plot"], plot_png(outcome.rows, config.methods))
    if "vgg_hole" in metrics:  # else the notes say why there is no distance to plot
        paths["scatter"] = out / SCATTER_FILE
        atomic_write_bytes(paths["scatter"], scatter_png(summary))
    if config.grids > 0:
        for path in write_grids(config, grid_pairs(config.pairs, config.grids)):
            paths[f"grid {path.stem}"] = path
    return paths
