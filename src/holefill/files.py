"""Filling files: pairing images with masks, and the ``fill`` command's job (one file at a time).

Pairing is shared by ``holefill fill`` and ``holefill batch``; each file goes through
:func:`holefill.pipeline.fill_image`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from holefill.errors import InputError
from holefill.io import IMAGE_SUFFIXES, atomic_write_bytes, list_images
from holefill.pipeline import FillResult, MaskOptions, OutputOptions, fill_image


@dataclass(frozen=True)
class FillPair:
    image: Path
    mask: Path | None  # None with --mask-from-alpha
    relative: Path  # the image's path relative to its input root (decides the output name)


def expand_images(inputs: list[str | Path]) -> list[tuple[Path, Path]]:
    """``(image, relative path)`` for each input file and each image under each input folder."""
    found: list[tuple[Path, Path]] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found.extend((path, path.relative_to(item)) for path in list_images(item))
        elif item.is_file():
            found.append((item, Path(item.name)))
        else:
            raise InputError(f"{item}: no such file or folder")
    if not found:
        raise InputError("no images found in " + ", ".join(map(str, inputs)))
    return found


def find_mask(mask_root: Path, relative: Path) -> Path | None:
    """The mask for an image: same relative path, else same stem with any image suffix."""
    candidates = [mask_root / relative]
    for parent in (mask_root / relative.parent, mask_root):
        candidates += [parent / f"{relative.stem}{suffix}" for suffix in IMAGE_SUFFIXES]
        candidates += [parent / f"{relative.stem}_mask{suffix}" for suffix in IMAGE_SUFFIXES]
    return next((path for path in candidates if path.is_file()), None)


def pair_images(
    inputs: list[str | Path], mask: str | Path | None, *, from_alpha: bool = False
) -> list[FillPair]:
    """Pair each image with its mask: one mask file for all, or a folder matched by name."""
    images = expand_images(inputs)
    if from_alpha:
        return [FillPair(path, None, rel) for path, rel in images]
    if mask is None:
        raise InputError("no mask given: pass --mask FILE_OR_FOLDER (or --mask-from-alpha)")
    mask = Path(mask)
    if mask.is_file():
        return [FillPair(path, mask, rel) for path, rel in images]
    if not mask.is_dir():
        raise InputError(f"{mask}: no such mask file or folder")
    pairs = []
    for path, rel in images:
        found = find_mask(mask, rel)
        if found is None:
            raise InputError(f"no mask for {path} in {mask} (looked for {rel.stem}.png and alike)")
        pairs.append(FillPair(path, found, rel))
    return pairs


@dataclass(frozen=True)
class FileFill:
    """How ``holefill fill`` fills each file."""

    method: str
    options: dict
    mask: MaskOptions = MaskOptions()
    quality: int = 95
    concat: bool = False
    overwrite: bool = False
    max_pixels: int = 0


def fill_file(pair: FillPair, out_path: Path, settings: FileFill) -> FillResult:
    """Fill one image file into ``out_path`` (format by suffix, atomic write, never over an input
    or an existing file unless ``overwrite``)."""
    output = OutputOptions.for_path(out_path, quality=settings.quality, concat=settings.concat)
    if out_path.exists() and not settings.overwrite:
        raise InputError(f"{out_path} exists; pass --overwrite to replace it")
    inputs = (pair.image.resolve(), pair.mask.resolve() if pair.mask else None)
    if out_path.resolve() in inputs:
        raise InputError(f"{out_path} is an input file; refusing to overwrite it")
    result = fill_image(
        pair.image,
        pair.mask,
        settings.method,
        settings.options,
        mask_options=settings.mask,
        output=output,
        max_pixels=settings.max_pixels,
    )
    atomic_write_bytes(out_path, result.data, overwrite=settings.overwrite)
    return result


def _is_folder(out: Path) -> bool:
    """``-o`` names a folder: one that exists, a path ending in a separator, or one without a
    suffix."""
    return out.is_dir() or str(out).endswith(("/", os.sep)) or not out.suffix


def output_paths(out: str, pairs: list[FillPair], images: list[str], suffix: str) -> list[Path]:
    """Where each pair's result goes, checked before anything is filled or created.

    One image file and ``-o`` with a suffix: that file, whose suffix must be a format holefill
    writes. Otherwise ``-o`` is a folder and each result keeps its relative path with ``suffix``.
    """
    target = Path(out)
    single = len(pairs) == 1 and not Path(images[0]).is_dir()
    if single and not _is_folder(target):
        OutputOptions.for_path(target)  # an unknown suffix (out.xyz, out.gif) is refused here
        return [target]
    if not target.is_dir() and target.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"{len(pairs)} images need an output folder, not the file {target}")
    OutputOptions.for_path(f"output{suffix}")
    return [target / pair.relative.with_suffix(suffix) for pair in pairs]


def run_fill(args: argparse.Namespace, method_options: dict) -> int:
    """The ``holefill fill`` command: returns the exit code."""
    from tqdm import tqdm

    from holefill.cli import mask_options_from_args
    from holefill.pipeline import load_method, method_settings

    images = list(args.images) + list(args.more_images or [])
    if not images:
        raise InputError("no images given: pass IMAGE ... (or --images PATH ...)")
    settings = FileFill(
        *method_settings(args.method, method_options),
        mask=mask_options_from_args(args),
        quality=OutputOptions(quality=args.quality).quality,
        concat=args.concat,
        overwrite=args.overwrite,
        max_pixels=args.max_pixels,
    )
    pairs = pair_images(images, args.mask, from_alpha=settings.mask.from_alpha)
    targets = output_paths(args.out, pairs, images, "." + args.format.lower().lstrip("."))
    load_method(settings.method, **settings.options)  # a bad method or option: one error, first
    failures = 0
    many = len(pairs) > 1
    for pair, target in tqdm(
        list(zip(pairs, targets, strict=True)),
        desc="filling",
        unit="img",
        disable=True if args.quiet or not many else None,
    ):
        try:
            _fill_and_report(pair, target, settings, quiet=args.quiet)
        except InputError as exc:
            if not many:
                raise
            failures += 1
            print(f"holefill: error: {exc}", file=sys.stderr)
    if failures:
        print(f"holefill: {failures} of {len(pairs)} images failed", file=sys.stderr)
        return 2
    return 0


def _fill_and_report(pair: FillPair, target: Path, settings: FileFill, *, quiet: bool) -> None:
    """Fill one file; its warnings name it; one line on success unless ``quiet``."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        result = fill_file(pair, target, settings)
    for warning in caught:
        print(f"holefill: warning: {pair.image}: {warning.message}", file=sys.stderr)
    if not quiet:
        seconds = time.perf_counter() - start
        print(f"{target}  {result.method}  {seconds:.2f} s", flush=True)
