"""``holefill batch``: argument parsing only; the work is :func:`holefill.batch.run_batch`.

Exit codes: 0 every item filled or skipped; 1 some items failed (their ``error`` rows are in the
results log, the other items were filled); 2 usage error (nothing done).
"""

from __future__ import annotations

import argparse
import sys

from holefill.cli import (
    add_limit_arguments,
    add_mask_arguments,
    add_method_arguments,
    add_output_arguments,
    add_workers_argument,
    mask_options_from_args,
    method_options_from_args,
    workers_from_args,
)
from holefill.errors import InputError

EXIT_SOME_FAILED = 1

_EPILOG = """\
examples:
  holefill batch --images photos --masks masks --out filled --method telea
  holefill batch --manifest jobs.parquet --out s3://bucket/filled --workers 8
  holefill batch --images photos --masks masks --out filled --engine ray --address auto

Masks: white = hole; a mask folder is matched by relative path and stem (photos/a/b.jpg ->
masks/a/b.png). Re-running resumes: outputs that exist are skipped (--overwrite redoes them).
Every item gets a row in OUT/results.csv (status ok, skipped or error). Exit code 1 when some
items failed, 2 on a usage error."""


def build_parser() -> argparse.ArgumentParser:
    from holefill.batch import ENGINES

    parser = argparse.ArgumentParser(
        prog="holefill batch",
        description="Fill a whole collection of photos, resumably.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inputs = parser.add_argument_group("inputs")
    source = inputs.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", nargs="+", metavar="DIR", help="image folders (or files)")
    source.add_argument(
        "--manifest",
        metavar="FILE",
        help="CSV or Parquet with columns image, mask[, output][, method]",
    )
    inputs.add_argument(
        "--masks",
        "--mask",
        dest="masks",
        metavar="DIR|FILE",
        help="mask folder matched by relative path and stem, or one mask for all",
    )
    output = add_output_arguments(
        parser, out_help="output folder, or s3://... gs://... (pyarrow filesystems)"
    )
    output.add_argument("--no-progress", action="store_true", help="no progress bar")
    engine = parser.add_argument_group("engine")
    engine.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local process pool (default) or a Ray Data pipeline",
    )
    add_workers_argument(engine, help_suffix="; Ray actors with --engine ray")
    engine.add_argument(
        "--address",
        help="Ray cluster to join: auto or ray://HOST:PORT (default: start a local Ray)",
    )
    engine.add_argument(
        "--gpus-per-worker", type=float, default=0.0, help="GPUs per Ray actor (ray)"
    )
    add_method_arguments(parser)
    add_mask_arguments(parser)
    add_limit_arguments(parser.add_argument_group("limits"))
    return parser


def job_from_args(args: argparse.Namespace):
    """The :class:`~holefill.batch.BatchJob` the arguments describe."""
    from holefill.batch import BatchJob, FillSettings
    from holefill.pipeline import OutputOptions, method_settings

    suffix = "." + args.format.lower().lstrip(".")
    OutputOptions.for_path(f"output{suffix}", quality=args.quality)  # unknown format, bad quality
    workers = workers_from_args(args)
    if args.gpus_per_worker < 0:
        raise InputError(f"--gpus-per-worker must be >= 0, got {args.gpus_per_worker}")
    if args.engine == "local" and (args.address or args.gpus_per_worker):
        raise InputError("--address and --gpus-per-worker need --engine ray")
    method, options = method_settings(args.method, method_options_from_args(args))
    settings = FillSettings(
        method=method,
        options=options,
        mask=mask_options_from_args(args),
        suffix=suffix,
        quality=args.quality,
        max_pixels=args.max_pixels,
    )
    if args.engine == "ray":
        workers = max(1, workers)
    return BatchJob(
        out=args.out,
        settings=settings,
        images=args.images,
        masks=args.masks,
        manifest=args.manifest,
        engine=args.engine,
        workers=workers,
        address=args.address,
        gpus_per_worker=args.gpus_per_worker,
        overwrite=args.overwrite,
        progress=not (args.no_progress or args.quiet),
    )


def main(argv: list[str] | None = None) -> int:
    """Run ``holefill batch ARGS``; returns the exit code (see the module docstring)."""
    from holefill.batch import run_batch

    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    summary = run_batch(job_from_args(args))
    if not args.quiet:
        print(summary.line())
    if summary.failed:
        print(
            f"holefill batch: {summary.failed} items failed; see their error rows in "
            f"{summary.results}",
            file=sys.stderr,
        )
        return EXIT_SOME_FAILED
    return 0
