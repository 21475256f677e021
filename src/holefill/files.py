"""Filling files: pairing images with masks, one fill from disk to disk, the ``fill`` command's job.

Shared by ``holefill fill`` and ``holefill batch``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from holefill.errors import InputError
from holefill.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    list_images,
    mask_from_alpha,
    match_mask,
    output_format,
    read_image,
    read_mask,
    write_image,
)


@dataclass(frozen=True)
class MaskOptions:
    threshold: int = 127
    invert: bool = False
    resize: bool = False
    from_alpha: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS


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


def load_pair(pair: FillPair, options: MaskOptions):
    """Read and check an image and its mask; returns ``(LoadedImage, hole)``."""
    loaded = read_image(pair.image, max_pixels=options.max_pixels)
    if pair.mask is None:
        hole = mask_from_alpha(loaded, threshold=options.threshold)
    else:
        hole = read_mask(
            pair.mask,
            threshold=options.threshold,
            invert=options.invert,
            max_pixels=options.max_pixels,
        )
        hole = match_mask(hole, loaded.size, resize=options.resize)
    return loaded, hole


def concat_panel(pixels: np.ndarray, hole: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """``input | mask | result`` side by side (the input shows the hole in white)."""
    top = np.iinfo(pixels.dtype).max
    shown = np.where(hole[..., None], top, pixels).astype(pixels.dtype)
    mask_rgb = np.repeat((hole * top).astype(pixels.dtype)[..., None], 3, axis=2)
    return np.concatenate([shown, mask_rgb, filled], axis=1)


def fill_file(
    pair: FillPair,
    out_path: Path,
    inpainter,
    options: MaskOptions,
    *,
    quality: int = 95,
    concat: bool = False,
    overwrite: bool = False,
) -> float:
    """Fill one image file into ``out_path`` (atomic write); returns the hole ratio."""
    from holefill.api import fill_pixels

    fmt = output_format(out_path)
    if out_path.exists() and not overwrite:
        raise InputError(f"{out_path} exists; pass --overwrite to replace it")
    if out_path.resolve() in (pair.image.resolve(), pair.mask.resolve() if pair.mask else None):
        raise InputError(f"{out_path} is an input file; refusing to overwrite it")
    loaded, hole = load_pair(pair, options)
    filled = fill_pixels(loaded.pixels, hole, inpainter) if hole.any() else loaded.pixels
    if not hole.any():
        import warnings

        warnings.warn(f"{pair.image}: the mask is empty; writing the image unchanged", stacklevel=2)
    alpha = loaded.alpha
    if filled.dtype == np.uint16 and fmt not in ("PNG", "TIFF"):
        filled = (filled // 257).astype(np.uint8)
        alpha = None if alpha is None else (alpha // 257).astype(np.uint8)
    if concat:
        filled = concat_panel(
            loaded.pixels.astype(filled.dtype) if loaded.pixels.dtype == filled.dtype else filled,
            hole,
            filled,
        )
        alpha = None
    write_image(
        out_path,
        filled,
        alpha=alpha,
        quality=quality,
        exif=loaded.exif,
        icc=loaded.icc,
        overwrite=overwrite,
    )
    return float(hole.mean())


def mask_options_from_args(args: argparse.Namespace) -> MaskOptions:
    return MaskOptions(
        threshold=args.mask_threshold,
        invert=args.invert_mask,
        resize=args.resize_mask,
        from_alpha=args.mask_from_alpha,
        max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
    )


def _single_output(args: argparse.Namespace, pairs: list[FillPair]) -> bool:
    out = Path(args.out)
    return (
        len(pairs) == 1
        and not Path(args.images[0]).is_dir()
        and not out.is_dir()
        and out.suffix.lower() in IMAGE_SUFFIXES
    )


def run_fill(args: argparse.Namespace, method_options: dict) -> int:
    """The ``holefill fill`` command: returns the exit code."""
    import sys

    from tqdm import tqdm

    from holefill.api import default_method, get_inpainter

    options = mask_options_from_args(args)
    pairs = pair_images(args.images, args.mask, from_alpha=options.from_alpha)
    inpainter = get_inpainter(args.method or default_method(), **method_options)
    if _single_output(args, pairs):
        fill_file(
            pairs[0],
            Path(args.out),
            inpainter,
            options,
            quality=args.quality,
            concat=args.concat,
            overwrite=args.overwrite,
        )
        return 0
    out_dir = Path(args.out)
    if out_dir.suffix.lower() in IMAGE_SUFFIXES and len(pairs) > 1:
        raise InputError(f"{len(pairs)} images need an output folder, not the file {out_dir}")
    suffix = "." + args.format.lower().lstrip(".")
    failures = 0
    for pair in tqdm(pairs, desc="filling", unit="img", disable=None):
        target = out_dir / pair.relative.with_suffix(suffix)
        try:
            fill_file(
                pair,
                target,
                inpainter,
                options,
                quality=args.quality,
                concat=args.concat,
                overwrite=args.overwrite,
            )
        except InputError as exc:
            failures += 1
            print(f"holefill: error: {exc}", file=sys.stderr)
    if failures:
        print(f"holefill: {failures} of {len(pairs)} images failed", file=sys.stderr)
        return 2
    return 0
