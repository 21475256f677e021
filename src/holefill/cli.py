"""Command line: argument parsing only; the work is done by the API.

Heavy modules (torch, OpenCV) are imported inside commands so ``holefill --help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from holefill.errors import HolefillError, InputError

EXIT_USAGE = 2

_CONVENIENCE_OPTIONS = {  # flag dest -> method option name
    "strategy": "strategy",
    "max_side": "max_side",
    "margin": "margin",
    "seed": "seed",
    "weights": "weights",
    "device": "device",
    "radius": "radius",
    "patch_size": "patch_size",
    "vgg_weights": "vgg_weights",
    "content": "content",
}


def _parse_value(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def method_options_from_args(args: argparse.Namespace) -> dict:
    """Method options from the convenience flags and repeated ``-p KEY=VALUE``."""
    options = {
        option: getattr(args, dest)
        for dest, option in _CONVENIENCE_OPTIONS.items()
        if getattr(args, dest, None) is not None
    }
    for item in getattr(args, "param", None) or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"option {item!r} must look like KEY=VALUE")
        options[key.strip().replace("-", "_")] = _parse_value(value)
    return options


def add_method_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by every command that runs a method (fill, batch, bench, serve)."""
    group = parser.add_argument_group("method")
    group.add_argument(
        "--method",
        "-m",
        help="inpainting method (see `holefill methods`); "
        "default pconv when its weights are installed, else telea",
    )
    group.add_argument(
        "--strategy",
        choices=("original", "crop", "resize"),
        help="high-resolution strategy (default: the method's own)",
    )
    group.add_argument("--max-side", type=int, help="longest side the method works at")
    group.add_argument("--margin", type=int, help="context in pixels around each hole (crop)")
    group.add_argument("--seed", type=int, help="random seed of stochastic methods")
    group.add_argument("--weights", help="model weights file (pconv, neural_patch)")
    group.add_argument(
        "--device",
        help="cpu, cuda or auto (deep methods; default auto: cuda when available, else cpu)",
    )
    group.add_argument("--vgg-weights", help="local VGG weights file (else $HOLEFILL_VGG_WEIGHTS)")
    group.add_argument("--radius", type=float, help="neighbourhood radius (telea, navier_stokes)")
    group.add_argument("--patch-size", type=int, help="patch size (patchmatch, criminisi)")
    group.add_argument(
        "--content", help="content network of neural_patch (pconv or context_encoder)"
    )
    group.add_argument(
        "-p",
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="any other method option (repeatable)",
    )


def add_mask_arguments(parser: argparse.ArgumentParser) -> None:
    """How masks become holes (fill, batch): holefill's one mask rule and its options."""
    group = parser.add_argument_group("mask (white = hole)")
    group.add_argument("--invert-mask", action="store_true", help="black is hole instead of white")
    group.add_argument(
        "--mask-threshold",
        type=int,
        default=127,
        help="mask values above this (0-255; 16-bit and float masks scaled) are holes (127)",
    )
    group.add_argument(
        "--resize-mask",
        action="store_true",
        help="resize a mask of another size to the image (nearest)",
    )
    group.add_argument(
        "--mask-from-alpha",
        action="store_true",
        help="use the image's transparent pixels as the hole (no --mask needed)",
    )
    group.add_argument(
        "--dilate",
        type=int,
        default=0,
        metavar="N",
        help="grow the hole by N pixels (negative: shrink it) (0)",
    )


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """``--max-pixels``: the one pixel limit (fill, batch, bench, serve)."""
    from holefill.io import DEFAULT_MAX_PIXELS

    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse images with more pixels, checked before decoding ({DEFAULT_MAX_PIXELS:,})",
    )


def add_output_arguments(parser: argparse.ArgumentParser, *, out_help: str):
    """``-o/--out``, ``--format``, ``--quality``, ``--overwrite`` and ``--quiet`` (fill, batch);
    returns the group, for a command's own output flags."""
    group = parser.add_argument_group("output")
    group.add_argument("-o", "--out", required=True, metavar="PATH", help=out_help)
    group.add_argument("--format", default="png", help="format of outputs in a folder (png)")
    group.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality, 1-100 (95)")
    group.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_quiet_argument(group)
    return group


def add_quiet_argument(parser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")


def add_workers_argument(parser, *, help_suffix: str = "") -> None:
    """``--workers``: worker processes, the same in batch and bench."""
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (0: all in this process; default: the cores here)" + help_suffix,
    )


def default_workers() -> int:
    """The cores this process may use: the default of ``--workers``."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def workers_from_args(args: argparse.Namespace) -> int:
    """``--workers`` checked, its default resolved by :func:`default_workers`."""
    if args.workers is None:
        return default_workers()
    if args.workers < 0:
        raise InputError(f"--workers must be 0 or more, got {args.workers}")
    return args.workers


def mask_options_from_args(args: argparse.Namespace):
    """The pipeline's :class:`~holefill.pipeline.MaskOptions` from the mask flags."""
    from holefill.pipeline import MaskOptions

    return MaskOptions(
        threshold=args.mask_threshold,
        invert=args.invert_mask,
        resize=args.resize_mask,
        from_alpha=args.mask_from_alpha,
        dilate=args.dilate,
    )


def _build_parser() -> argparse.ArgumentParser:
    from holefill import __version__

    parser = argparse.ArgumentParser(
        prog="holefill",
        description="Fill holes in photographs.",
        epilog="Masks: white = hole (values above --mask-threshold 127). "
        "Run `holefill COMMAND --help` for details.",
    )
    parser.add_argument("--version", action="version", version=f"holefill {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    fill = commands.add_parser(
        "fill",
        help="fill one image, many images or a folder",
        description="Fill the holes of images; white in the mask = hole. Prints one line per "
        "filled file (output, method, seconds) unless --quiet.",
    )
    fill.add_argument("images", nargs="*", metavar="IMAGE", help="image files or folders")
    inputs = fill.add_argument_group("inputs")
    inputs.add_argument(
        "--images", nargs="+", dest="more_images", metavar="PATH", help="image files or folders"
    )
    inputs.add_argument(
        "--mask",
        "--masks",
        dest="mask",
        metavar="PATH",
        help="mask file (one for all) or a folder of masks matched by name",
    )
    output = add_output_arguments(
        fill,
        out_help="output file (one image; its suffix is the format) or folder (many images)",
    )
    output.add_argument("--concat", action="store_true", help="write input | mask | result")
    add_method_arguments(fill)
    add_mask_arguments(fill)
    add_limit_arguments(fill.add_argument_group("limits"))

    commands.add_parser("methods", help="list the methods: ready or not (and why), their options")

    for name, help_text in (
        ("train", "train a model (pconv, content); see `holefill train --help`"),
        ("bench", "evaluate methods in the PConv protocol"),
        ("serve", "local web page to paint a mask and fill it"),
        ("batch", "fill a whole collection, resumably (local or Ray)"),
    ):
        sub = commands.add_parser(name, help=help_text, add_help=False)
        sub.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


_FORWARDED = {
    "train": "holefill.train.cli",
    "bench": "holefill.bench.cli",
    "serve": "holefill.serve.cli",
    "batch": "holefill.batch.cli",
}


def _print_methods() -> int:
    from holefill.registry import methods_report

    print(methods_report())
    return 0


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"holefill: warning: {message}", file=sys.stderr)


def _one_line_warnings() -> None:
    """Warnings as ``holefill: warning: ...`` lines; Pillow's decompression-bomb warning is
    left out (holefill's own pixel limit refuses those images with an error line)."""
    from PIL import Image

    warnings.showwarning = _warning_line
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in _FORWARDED:
        return _run_forwarded(argv[0], argv[1:])
    parser = _build_parser()
    args = parser.parse_args(argv)
    _one_line_warnings()
    try:
        if args.command == "fill":
            from holefill.files import run_fill

            return run_fill(args, method_options_from_args(args))
        if args.command == "methods":
            return _print_methods()
        parser.print_help()
        return 0
    except HolefillError as exc:
        print(f"holefill: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"holefill: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("holefill: interrupted", file=sys.stderr)
        return 130


def _run_forwarded(command: str, argv: list[str]) -> int:
    import importlib

    _one_line_warnings()
    try:
        module = importlib.import_module(_FORWARDED[command])
    except ModuleNotFoundError as exc:
        print(f"holefill: error: `holefill {command}` is not available ({exc})", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(module.main(argv) or 0)
    except HolefillError as exc:
        print(f"holefill: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("holefill: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

__all__ = [
    "main",
    "add_limit_arguments",
    "add_mask_arguments",
    "add_method_arguments",
    "add_output_arguments",
    "add_quiet_argument",
    "add_workers_argument",
    "mask_options_from_args",
    "method_options_from_args",
    "workers_from_args",
]
