"""What a batch job fills: input items from folders or a manifest.

Items come from folders (images matched to masks by relative path and stem, or one mask for all)
or from a manifest (CSV or Parquet with columns ``image, mask[, output][, method]``). They are
streamed: only paths are held, never pixels. Where the job writes is :mod:`holefill.batch.store`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from holefill.errors import InputError
from holefill.files import expand_images, find_mask
from holefill.io import IMAGE_SUFFIXES

if TYPE_CHECKING:
    from holefill.batch.store import OutputStore

_MANIFEST_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def is_uri(text: str | os.PathLike) -> bool:
    """True for ``scheme://...`` locations (handled by pyarrow's filesystems)."""
    return "://" in str(text)


# -- items ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchItem:
    """One image to fill.

    ``output`` is a relative POSIX path inside the output store. ``problem`` is set when the item
    is known to fail before any work (no mask found, duplicate output); it becomes an error row.
    """

    image: str
    mask: str | None
    output: str
    method: str | None = None
    problem: str | None = None


@dataclass
class ItemSource:
    """The items of a job (a lazy iterator) and how many there are (for progress and ETA)."""

    total: int
    items: Iterator[BatchItem]


def items_from_folders(
    images: list[str],
    masks: str | None,
    *,
    suffix: str,
    from_alpha: bool = False,
    out: Path | None = None,
) -> ItemSource:
    """Items for every image under ``images``, each matched to its mask.

    ``masks`` is one mask file for all images, or a folder searched by relative path and stem
    (:func:`holefill.files.find_mask`). An image without a mask becomes an error row, not a
    failure of the whole job. Files under the output folder ``out`` or the mask folder are not
    inputs, even where those lie inside an image folder.
    """
    if out is not None and any(Path(folder).resolve() == out.resolve() for folder in images):
        raise InputError(
            f"--out {out} must not be the --images folder; write the filled images to a folder "
            "of their own"
        )
    if not from_alpha:
        if masks is None:
            raise InputError("no mask given: pass --masks FILE_OR_FOLDER (or --mask-from-alpha)")
        if not Path(masks).exists():
            raise InputError(f"{masks}: no such mask file or folder")
    excluded = [
        folder.resolve()
        for folder in (out, Path(masks) if masks else None)
        if folder is not None and folder.is_dir()
    ]
    found = [
        (path, rel)
        for path, rel in expand_images(images)
        if not any(path.resolve().is_relative_to(folder) for folder in excluded)
    ]
    if not found:
        raise InputError("no images to fill in " + ", ".join(map(str, images)))
    return ItemSource(
        len(found), (_folder_item(path, rel, masks, suffix, from_alpha) for path, rel in found)
    )


def _folder_item(
    path: Path, relative: Path, masks: str | None, suffix: str, from_alpha: bool
) -> BatchItem:
    output = relative.with_suffix(suffix).as_posix()
    if from_alpha:
        return BatchItem(str(path), None, output)
    mask_root = Path(masks)
    mask = mask_root if mask_root.is_file() else find_mask(mask_root, relative)
    if mask is None:
        problem = f"no mask for {path} in {mask_root} (looked for {relative.stem}.png and alike)"
        return BatchItem(str(path), None, output, problem=problem)
    return BatchItem(str(path), str(mask), output)


def items_from_manifest(
    manifest: str, *, suffix: str, masks: str | None = None, from_alpha: bool = False
) -> ItemSource:
    """Items from a CSV or Parquet manifest with columns ``image, mask[, output][, method]``.

    Relative image and mask paths are relative to the manifest's folder; ``output`` is relative to
    the output folder (default: the image's path relative to the manifest's folder, or its name,
    with the output format's suffix). The ``mask`` column may be left out when ``masks`` names one
    mask file for every image, or with ``from_alpha``.
    """
    table = _read_table(manifest)
    columns = set(table.column_names)
    if "image" not in columns:
        raise InputError(
            f"{manifest}: the manifest has no 'image' column "
            f"(columns: {', '.join(table.column_names) or 'none'})"
        )
    if "mask" not in columns and not from_alpha and masks is None:
        raise InputError(
            f"{manifest}: the manifest has no 'mask' column; add one, or pass "
            "--masks FILE (one mask for all) or --mask-from-alpha"
        )
    if masks is not None and not Path(masks).is_file():
        raise InputError(f"{masks}: with a manifest, --masks must be one mask file")
    base = None if is_uri(manifest) else Path(manifest).resolve().parent
    wanted = [name for name in ("image", "mask", "output", "method") if name in columns]
    rows = (row for batch in table.select(wanted).to_batches() for row in batch.to_pylist())
    items = (_manifest_item(row, base, suffix, masks, from_alpha) for row in rows)
    return ItemSource(table.num_rows, items)


def _read_table(manifest: str):
    import pyarrow.csv
    import pyarrow.parquet

    kind = _MANIFEST_SUFFIXES.get(PurePosixPath(str(manifest)).suffix.lower())
    if kind is None:
        raise InputError(f"{manifest}: a manifest must be .csv or .parquet")
    if not is_uri(manifest) and not Path(manifest).is_file():
        raise InputError(f"{manifest}: no such manifest file")
    try:
        if kind == "parquet":
            return pyarrow.parquet.read_table(manifest)
        strings = {name: pyarrow.string() for name in ("image", "mask", "output", "method")}
        with _open_input_stream(manifest) as stream:
            return pyarrow.csv.read_csv(
                stream, convert_options=pyarrow.csv.ConvertOptions(column_types=strings)
            )
    except (pyarrow.ArrowInvalid, OSError) as exc:
        raise InputError(f"{manifest}: cannot read the manifest ({exc})") from None


@contextmanager
def _open_input_stream(location: str):
    if is_uri(location):
        from pyarrow import fs

        filesystem, path = fs.FileSystem.from_uri(location)
        with filesystem.open_input_stream(path) as stream:
            yield stream
    else:
        with open(location, "rb") as stream:
            yield stream


def _manifest_item(
    row: dict, base: Path | None, suffix: str, masks: str | None, from_alpha: bool
) -> BatchItem:
    image = _text(row.get("image"))
    mask = _text(row.get("mask")) or masks
    method = _text(row.get("method"))
    output = _text(row.get("output"))
    if image is None:
        return BatchItem("", mask, "", method, problem="manifest row with an empty 'image'")
    image_path = _resolve(image, base)
    mask_path = _resolve(mask, base) if mask else None
    if output is None:
        output = _default_output(image, base, suffix)
    problem = _output_problem(output)
    if problem is None and mask_path is None and not from_alpha:
        problem = f"{image}: the manifest row has no mask (or pass --mask-from-alpha)"
    return BatchItem(image_path, mask_path, output, method, problem)


def _text(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _resolve(location: str, base: Path | None) -> str:
    if is_uri(location) or base is None or Path(location).is_absolute():
        return location
    return str(base / location)


def _default_output(image: str, base: Path | None, suffix: str) -> str:
    """The image's path relative to the manifest's folder, else its name, with ``suffix``."""
    path = PurePosixPath(image.replace("\\", "/"))
    if is_uri(image):
        path = PurePosixPath(path.name)
    elif base is not None:
        resolved = Path(_resolve(image, base)).resolve()
        inside = resolved.is_relative_to(base)
        path = PurePosixPath(resolved.relative_to(base).as_posix() if inside else resolved.name)
    elif path.is_absolute() or ".." in path.parts:
        path = PurePosixPath(path.name)
    return path.with_suffix(suffix).as_posix()


def _output_problem(output: str) -> str | None:
    path = PurePosixPath(output)
    if is_uri(output) or path.is_absolute() or ".." in path.parts:
        return f"output {output!r} must be a relative path inside the output folder"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"output {output!r} has no image suffix ({', '.join(IMAGE_SUFFIXES)})"
    return None


def check_items(items: Iterable[BatchItem], store: OutputStore) -> Iterator[BatchItem]:
    """Mark items that would write the same output twice, or over one of their inputs."""
    claimed: dict[str, str] = {}
    for item in items:
        if item.problem is None:
            problem = None
            if item.output in claimed:
                problem = (
                    f"output {item.output} is also the output of {claimed[item.output]}; "
                    "rename one of the images or give an 'output' column"
                )
            elif store.is_input(item.output, item):
                problem = f"output {item.output} is an input file; refusing to overwrite it"
            else:
                claimed[item.output] = item.image
            if problem is not None:
                item = BatchItem(item.image, item.mask, item.output, item.method, problem)
        yield item


@contextmanager
def local_input(location: str | None):
    """A local path for an input: the path itself, or a temp copy of a URI's file."""
    if location is None or not is_uri(location):
        yield None if location is None else Path(location)
        return
    suffix = PurePosixPath(location).suffix
    with tempfile.TemporaryDirectory(prefix="holefill-") as folder:
        copy = Path(folder) / f"input{suffix}"
        try:
            with _open_input_stream(location) as stream, open(copy, "wb") as handle:
                shutil.copyfileobj(stream, handle)
        except (OSError, ValueError) as exc:
            raise InputError(f"{location}: cannot read ({exc})") from None
        yield copy
