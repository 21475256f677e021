"""``holefill bench``: evaluate methods in the PConv protocol; argument parsing only.

Example::

    holefill bench --images "$HOLEFILL_SHARED/data/val/imagenet256" \\
        --masks "$HOLEFILL_SHARED/data/masks/nvidia_irregular" --methods telea,navier_stokes \\
        --per-bin 10 --out reports/bench256
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from holefill.errors import InputError

EXIT_FAILURES = 1  # the report was written, but some pairs failed


def build_parser() -> argparse.ArgumentParser:
    from holefill.cli import (
        add_limit_arguments,
        add_method_arguments,
        add_quiet_argument,
        add_workers_argument,
    )

    parser = argparse.ArgumentParser(
        prog="holefill bench",
        description="Evaluate inpainting methods in the protocol of Liu et al. 2018 (Table 1): "
        "ℓ1, PSNR and SSIM per hole-ratio bin, holes away from / near the border.",
        epilog="Resumable: run the same command again to finish an interrupted run or to add "
        "methods. Method options: flags below apply to every method that takes them; "
        "-p KEY=VALUE likewise; -p METHOD.KEY=VALUE to one method. Exit code 1: some pairs "
        "failed (see summary.md).",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--images", help="folder of ground-truth photos (searched recursively)")
    data.add_argument(
        "--masks",
        help="folder of mask PNGs (white = hole), with or without a "
        "masks.csv (file,hole_ratio,bin,border)",
    )
    data.add_argument(
        "--pairs",
        help="CSV of image,mask pairs (e.g. a report's pairs.csv) instead of --images/--masks",
    )
    data.add_argument("--per-bin", type=int, help="masks per (bin, border) group (default: all)")
    data.add_argument(
        "--size",
        type=int,
        default=256,
        help="centre-crop images to a square and resize to SIZE x SIZE (256); 0 keeps native sizes",
    )
    data.add_argument(
        "--border-distance",
        type=int,
        default=50,
        help="holes within this many px of the border are 'B' (50, measured on "
        "the mask at its native size when there is no masks.csv)",
    )
    run = parser.add_argument_group("run")
    run.add_argument("--methods", help="comma-separated methods (see `holefill methods`)")
    run.add_argument(
        "-o",
        "--out",
        required=True,
        help="report folder (created; resumed if it holds a report of the same settings)",
    )
    add_workers_argument(run, help_suffix="; torch methods run in this process")
    run.add_argument("--grids", type=int, default=2, help="pairs per bin shown in grids (2)")
    run.add_argument(
        "--retry-errors",
        action="store_true",
        help="redo pairs recorded as errors (default: keep them)",
    )
    run.add_argument(
        "--rerun",
        default="",
        help="comma-separated methods whose earlier rows are refilled (after their code changed)",
    )
    run.add_argument("--no-vgg", action="store_true", help="skip the VGG distance (faster)")
    run.add_argument(
        "--no-lpips", action="store_true", help="skip the real LPIPS even where it is installed"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_quiet_argument(run)
    add_limit_arguments(run)
    add_method_arguments(parser)
    for action in parser._actions:  # two method flags also serve the bench itself
        if action.dest == "seed":
            action.help = "seed of the pairing and of every method (0)"
        elif action.dest == "vgg_weights":
            action.help = (
                "VGG-19 weights of the VGG distance (and of methods that take it); "
                "default $HOLEFILL_VGG_WEIGHTS; without either, no VGG distance"
            )
        elif action.dest == "method":
            action.help = "one method (same as --methods)"
    return parser


def parse_methods(args: argparse.Namespace) -> list[str]:
    """The methods of ``--methods`` / ``--method``, checked against the registry."""
    from holefill.registry import list_methods

    names: list[str] = []
    for text in (args.methods, args.method):
        for name in (text or "").split(","):
            if name.strip() and name.strip() not in names:
                names.append(name.strip())
    if not names:
        raise InputError("no methods given: pass --methods telea,patchmatch,...")
    available = list_methods()
    unknown = [name for name in names if name not in available]
    if unknown:
        raise InputError(f"unknown method {', '.join(unknown)}; available: {', '.join(available)}")
    return names


def resolve_method_options(
    methods: list[str], options: dict[str, Any], seed: int
) -> dict[str, dict[str, Any]]:
    """Options per method: ``KEY`` goes to every method taking it, ``METHOD.KEY`` to one.

    Raises :class:`InputError` for an option no chosen method takes. Every method that has a
    ``seed`` gets ``seed``.
    """
    from holefill.registry import check_options, method_options

    known = {name: method_options(name) for name in methods}
    resolved: dict[str, dict[str, Any]] = {name: {} for name in methods}
    scoped = {key: value for key, value in options.items() if "." in key}
    for key, value in options.items():
        if "." in key:
            continue
        takers = [name for name in methods if key in known[name]]
        if not takers and key != "vgg_weights":  # the VGG file also serves the metric
            raise InputError(f"no method among {', '.join(methods)} takes the option {key!r}")
        for name in takers:
            resolved[name][key] = value
    for key, value in scoped.items():
        name, _, option = key.partition(".")
        if name not in resolved:
            raise InputError(f"option {key!r}: {name!r} is not among --methods")
        resolved[name][option] = value
    for name in methods:  # METHOD.KEY names one method's option: it must be one
        check_options(name, resolved[name])
    for name in methods:
        if "seed" in known[name]:
            resolved[name].setdefault("seed", seed)
    return resolved


def _metric_vgg(args: argparse.Namespace) -> Path | None:
    from holefill.paths import vgg_weights_path

    explicit = vgg_weights_path(args.vgg_weights)
    if explicit is not None and not explicit.is_file():
        raise InputError(f"{explicit}: VGG weights file not found")
    return explicit


def _pairs(args: argparse.Namespace, seed: int):
    from holefill.bench.pairs import draw_pairs, read_pairs

    if args.pairs:
        if args.images or args.masks or args.per_bin:
            raise InputError("give either --pairs or --images and --masks (with --per-bin)")
        return read_pairs(args.pairs, border_distance=args.border_distance)
    if not (args.images and args.masks):
        raise InputError("give --images and --masks (or --pairs)")
    return draw_pairs(
        args.images,
        args.masks,
        per_bin=args.per_bin,
        seed=seed,
        border_distance=args.border_distance,
    )


def _rerun(text: str, methods: list[str]) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    stray = [name for name in names if name not in methods]
    if stray:
        raise InputError(f"--rerun {', '.join(stray)}: not among --methods")
    return names


def config_from_args(args: argparse.Namespace):
    """A :class:`holefill.bench.run.BenchConfig` from parsed arguments."""
    from holefill.bench.run import BenchConfig
    from holefill.cli import method_options_from_args, workers_from_args

    if args.size < 0 or args.grids < 0:
        raise InputError("--size and --grids must be 0 or more")
    seed = 0 if args.seed is None else args.seed
    methods = parse_methods(args)
    options = method_options_from_args(args)
    options.pop("seed", None)
    return BenchConfig(
        out=Path(args.out),
        pairs=_pairs(args, seed),
        method_options=resolve_method_options(methods, options, seed),
        size=args.size,
        seed=seed,
        border_distance=args.border_distance,
        grids=args.grids,
        workers=workers_from_args(args),
        max_pixels=args.max_pixels,
        vgg_weights=_metric_vgg(args),
        use_vgg=not args.no_vgg,
        use_lpips=not args.no_lpips,
        retry_errors=args.retry_errors,
        rerun=_rerun(args.rerun, methods),
        progress=False if args.no_progress or args.quiet else None,
    )


def _print_overview(summary, outcome, paths) -> None:
    from holefill.bench.report import ALL

    wanted = (
        "l1_pct",
        "psnr",
        "ssim",
        "vgg_dist",
        "vgg_hole",
        "texture_ratio",
        "out_of_palette_pct",
    )
    columns = [m for m in wanted if m in summary.metrics]
    widths = [max(9, len(c)) for c in columns]
    print(
        f"{'method':16s} {'n':>5s} {'errors':>6s} "
        + " ".join(f"{c:>{w}s}" for c, w in zip(columns, widths, strict=True))
        + f" {'s/image':>8s}"
    )
    for method in summary.methods:
        errors = sum(1 for row in outcome.errors if row["method"] == method)
        values = [summary.values[c][method][ALL][ALL] for c in columns]
        seconds = summary.seconds[method]["mean"]
        print(
            f"{method:16s} {summary.counts[method][ALL][ALL]:5d} {errors:6d} "
            + " ".join(
                f"{v:{w}.4f}" if v is not None else f"{'—':>{w}s}"
                for v, w in zip(values, widths, strict=True)
            )
            + (f" {seconds:8.3f}" if seconds is not None else f" {'—':>8s}")
        )
    print(
        f"ran {outcome.ran} fills, kept {outcome.skipped} from earlier runs; "
        f"report: {paths['summary.md']} (texture_ratio: median)"
    )


def main(argv: list[str] | None = None) -> int:
    """``holefill bench ARGS``; returns the exit code (1 when some pairs failed)."""
    from holefill.bench.report import summarize, write_report
    from holefill.bench.run import run_bench

    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    config = config_from_args(args)
    outcome = run_bench(config)
    paths = write_report(config, outcome)
    if not args.quiet:
        _print_overview(summarize(outcome.rows, config.methods, outcome.metrics), outcome, paths)
    if outcome.errors:
        print(
            f"holefill: {len(outcome.errors)} fills failed; see {paths['summary.md']}",
            file=sys.stderr,
        )
        return EXIT_FAILURES
    return 0
