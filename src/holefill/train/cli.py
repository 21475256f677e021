"""``holefill train ...``: argument parsing for the PConv trainer and its export.

Usage::

    holefill train pconv --data DIR [--val DIR] [--config FILE.yaml] [key=value ...] --out RUN_DIR
                         [--resume] [--init WEIGHTS] [--device cpu|cuda|auto] [--vgg-weights PATH]
    holefill train export RUN_DIR_OR_CKPT -o FILE.safetensors [--dtype float16|bfloat16|float32]

The same ``pconv`` command runs data-parallel under ``torchrun --nproc_per_node N -m
holefill.train.cli pconv ...``. With ``--resume`` the run continues from its latest checkpoint
(a fresh start when there is none) with the configuration saved in ``RUN_DIR/config.yaml`` (a
``--config`` file is then ignored); ``key=value`` overrides, ``--data`` and ``--val`` still apply
(for example a new ``optim.max_minutes`` or ``optim.finetune_from_step``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from holefill.errors import HolefillError

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="holefill train", description="Train holefill models.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "content",
        add_help=False,
        help="train the content network of neural_patch (Yang et al. 2017); "
        "`holefill train content --help`",
    )
    pconv = commands.add_parser(
        "pconv",
        help="train the partial-convolution U-Net",
        description="Train the partial-convolution U-Net (Liu et al. 2018).",
        epilog="Overrides use dotted config keys, e.g. optim.lr=1e-4 data.batch_size=32 amp=bf16 "
        "optim.max_minutes=8. See src/holefill/configs/pconv_default.yaml.",
    )
    pconv.add_argument("--data", help="folder of training photos (searched recursively)")
    pconv.add_argument("--val", help="folder of validation photos")
    pconv.add_argument("--config", help="YAML config (any subset of the config tree)")
    pconv.add_argument("--out", required=True, help="run folder (checkpoints, logs, export)")
    pconv.add_argument(
        "--resume", action="store_true", help="continue from the run folder's latest checkpoint"
    )
    pconv.add_argument(
        "--init",
        metavar="WEIGHTS",
        help="start from these network weights (.safetensors export or .pt checkpoint) with a "
        "fresh optimiser, e.g. the shipped weights or another run's export",
    )
    pconv.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    pconv.add_argument(
        "--vgg-weights",
        help="VGG weights file (else $HOLEFILL_VGG_WEIGHTS, else the shared VGG-19)",
    )
    pconv.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")

    export = commands.add_parser(
        "export", help="export a run's weights as safetensors for `holefill fill -m pconv`"
    )
    export.add_argument("source", help="run folder or checkpoint file")
    export.add_argument("-o", "--out", required=True, help="output .safetensors file")
    export.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"))
    return parser


def resolve_config(args: argparse.Namespace):
    """The run's configuration from the saved/YAML base, the path flags and the overrides."""
    from holefill.train.config import load_config, read_yaml

    base, config_file = None, args.config
    saved = Path(args.out) / "config.yaml"
    if args.resume and saved.is_file():  # continue the run as it was configured
        base = read_yaml(saved)
        if config_file is not None:
            warnings.warn(
                f"--config {config_file} is ignored with --resume: the run keeps "
                f"{saved}; change keys with key=value overrides",
                stacklevel=2,
            )
        config_file = None
    paths = {}
    if args.data is not None:
        paths["train_dir"] = str(Path(args.data).resolve())
    if args.val is not None:
        paths["val_dir"] = str(Path(args.val).resolve())
    values: dict = {"data": paths}
    if getattr(args, "init", None) is not None:
        values["init_weights"] = str(Path(args.init).resolve())
    return load_config(config_file, args.overrides, base=base, values=values)


def _train(args: argparse.Namespace) -> int:
    from holefill.train.loop import train

    config = resolve_config(args)
    result = train(
        config, args.out, resume=args.resume, device=args.device, vgg_weights=args.vgg_weights
    )
    if result.validation:
        overall = result.validation["all"]
        print(
            f"step {result.step}: validation PSNR {overall['psnr']:.2f} dB, "
            f"SSIM {overall['ssim']:.4f}",
            file=sys.stderr,
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    from holefill.train.checkpoint import export_pconv

    path = export_pconv(args.source, args.out, dtype=args.dtype)
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``holefill train`` (the main CLI forwards its arguments here)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "content":  # the content network of neural_patch has its own parser
        from holefill.train.content import main_content

        return main_content(argv[1:])
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # overrides may sit anywhere among the options; argparse collects only the first group
    stray = [item for item in extra if item.startswith("-") or "=" not in item]
    if stray or (extra and args.command != "pconv"):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if args.command == "pconv":
        args.overrides = [*args.overrides, *extra]
    try:
        if args.command == "pconv":
            return _train(args)
        return _export(args)
    except HolefillError as exc:
        print(f"holefill: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
