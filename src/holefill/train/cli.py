"""``holefill train ...``: argument parsing of the one trainer and its export.

Usage::

    holefill train pconv --data DIR [--val DIR] [--config FILE.yaml] [key=value ...] --out RUN_DIR
                         [--resume] [--init WEIGHTS] [--device cpu|cuda|auto]
                         [--vgg-weights PATH | --download-vgg] [--export FILE.safetensors]
    holefill train content --data DIR [--val DIR] [--config FILE.yaml] [key=value ...] --out RUN_DIR
                         [--resume] [--device cpu|cuda|auto] [--export FILE.safetensors]
    holefill train export RUN_DIR_OR_CKPT -o FILE.safetensors [--dtype float16|bfloat16|float32]

Both networks train in the same loop (:mod:`holefill.train.loop`) with the same configuration
mechanism (:mod:`holefill.train.config`): a packaged recipe or YAML file (``--config``), then
dotted ``key=value`` overrides (shorthands: ``device=cuda``, ``max_minutes=N``, ``max_steps=N``,
``lr=X``). The same command runs data-parallel under ``torchrun --nproc_per_node N -m
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
#: ``key=value`` shorthands: the key of the config tree they set
_SHORTHANDS = {"max_minutes": "optim.max_minutes", "max_steps": "optim.max_steps", "lr": "optim.lr"}
_RECIPES = {"pconv": "pconv_default.yaml", "content": "content_default.yaml"}


def _add_run_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """The flags every trainer plug-in takes."""
    parser.add_argument("--data", help="folder of training photos (searched recursively)")
    parser.add_argument("--val", help="folder of validation photos")
    parser.add_argument(
        "--config",
        help=f"YAML config (any subset of the config tree) or a packaged recipe name "
        f"(src/holefill/configs/, e.g. {Path(_RECIPES[name]).stem})",
    )
    parser.add_argument("--out", required=True, help="run folder (checkpoints, logs, export)")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the run folder's latest checkpoint"
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--export", help="also copy the exported weights to this .safetensors file")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="holefill train", description="Train holefill models.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    epilog = (
        "Overrides use dotted config keys, e.g. optim.lr=1e-4 data.batch_size=32 amp=bf16 "
        "optim.max_minutes=8 (shorthands: device=cuda, max_minutes=N, max_steps=N, lr=X). "
        "See src/holefill/configs/{}."
    )
    pconv = commands.add_parser(
        "pconv",
        help="train the partial-convolution U-Net",
        description="Train the partial-convolution U-Net (Liu et al. 2018).",
        epilog=epilog.format(_RECIPES["pconv"]),
    )
    _add_run_arguments(pconv, "pconv")
    pconv.add_argument(
        "--init",
        metavar="WEIGHTS",
        help="start from these network weights (.safetensors export or .pt checkpoint) with a "
        "fresh optimiser, e.g. the shipped weights or another run's export",
    )
    pconv.add_argument(
        "--vgg-weights",
        help="VGG file of the perceptual and style terms (else $HOLEFILL_VGG_WEIGHTS, else "
        "torchvision's file in the torch hub cache)",
    )
    pconv.add_argument(
        "--download-vgg",
        action="store_true",
        help="download torchvision's VGG file into the torch hub cache when none is found",
    )
    content = commands.add_parser(
        "content",
        help="train the content network of neural_patch (Yang et al. 2017)",
        description="Train the content network of neural patch synthesis (Yang et al. 2017).",
        epilog=epilog.format(_RECIPES["content"]),
    )
    _add_run_arguments(content, "content")
    export = commands.add_parser(
        "export", help="export a run's weights as safetensors (for `holefill fill`)"
    )
    export.add_argument("source", help="run folder or checkpoint file")
    export.add_argument("-o", "--out", required=True, help="output .safetensors file")
    export.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"))
    return parser


def _expand_shorthands(args: argparse.Namespace, overrides: list[str]) -> list[str]:
    """``device=cuda`` sets ``--device``; ``max_minutes=N`` means ``optim.max_minutes=N``..."""
    kept = []
    for item in overrides:
        key, _, value = item.partition("=")
        if key == "device":
            args.device = value
        else:
            kept.append(f"{_SHORTHANDS[key]}={value}" if key in _SHORTHANDS else item)
    return kept


def resolve_config(args: argparse.Namespace):
    """The run's configuration from the saved/YAML base, the path flags and the overrides."""
    from holefill.errors import InputError
    from holefill.train.checkpoint import run_kind
    from holefill.train.config import SCHEMAS, load_config, read_yaml

    command = getattr(args, "command", None) or "pconv"
    kind = run_kind(args.out) if args.resume else None
    if kind is not None and kind != command:
        raise InputError(f"{args.out} holds a {kind} run: resume it with `holefill train {kind}`")
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
    schema = SCHEMAS[command]
    return load_config(config_file, args.overrides, base=base, values=values, schema=schema)


def _train(args: argparse.Namespace) -> int:
    from holefill.train.loop import train

    config = resolve_config(args)
    options = {}
    if args.command == "pconv":
        options = {"vgg_weights": args.vgg_weights, "download_vgg": args.download_vgg}
    result = train(config, args.out, resume=args.resume, device=args.device, **options)
    if args.export and result.export_path is not None:
        from holefill.io import atomic_write_bytes

        atomic_write_bytes(args.export, result.export_path.read_bytes())
        print(args.export)
    return 0


def _export(args: argparse.Namespace) -> int:
    """Export a run or checkpoint of either plug-in, by the kind its checkpoint records."""
    from holefill.train import checkpoint as ckpt

    state = ckpt.load_checkpoint(ckpt.resolve_checkpoint(args.source))
    step = int(state["step"])
    if ckpt.checkpoint_kind(state) == "content":
        from holefill.train.content import write_content_export

        seconds = float(state.get("train_seconds", 0.0))
        path = write_content_export(
            state["model"], state["config"], step, seconds, args.out, args.dtype
        )
    else:
        path = ckpt.write_export(state["model"], state["config"], step, args.out, dtype=args.dtype)
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``holefill train`` (the main CLI forwards its arguments here)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["content", "export"]:  # the content trainer's former export command
        argv = argv[1:]
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # overrides may sit anywhere among the options; argparse collects only the first group
    stray = [item for item in extra if item.startswith("-") or "=" not in item]
    if stray or (extra and args.command == "export"):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    try:
        if args.command == "export":
            return _export(args)
        args.overrides = _expand_shorthands(args, [*args.overrides, *extra])
        return _train(args)
    except HolefillError as exc:
        print(f"holefill: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
