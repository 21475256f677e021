"""What a batch job fills and where it writes: input items, the output store, the results log.

* **Items** come from folders (images matched to masks by relative path and stem, or one mask for
  all) or from a manifest (CSV or Parquet with columns ``image, mask[, output][, method]``). They
  are streamed: only paths are held, never pixels.
* The **output store** is a local folder or any URI pyarrow's filesystems open (``s3://``,
  ``gs://``, ``file://``). Every output is written to a temp name and renamed into place, so a
  killed job never leaves a truncated file; temp files of a killed job are removed by the next run.
* The **results log** records one row per item as it finishes (``results.csv``), so a kill loses at
  most the items in flight.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path, PurePosixPath

from holefill.errors import HolefillError, InputError
from holefill.files import expand_images, find_mask
from holefill.io import IMAGE_SUFFIXES, atomic_write_bytes

RESULTS_NAME = "results.csv"
LOCK_NAME = ".holefill-batch.lock"
#: temp files of holefill's atomic writes: ``.<name>.<8 random characters>.tmp``
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")
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


# -- output stores -------------------------------------------------------------------------------
class OutputStore:
    """Where outputs go. Subclasses: :class:`LocalStore`, :class:`ArrowStore`."""

    location: str

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def write(self, key: str, data: bytes, *, overwrite: bool) -> None:
        """Write atomically: readers see the whole file or nothing."""
        raise NotImplementedError

    def uri(self, key: str) -> str:
        raise NotImplementedError

    def is_input(self, key: str, item: BatchItem) -> bool:
        return False

    def remove_stale_temps(self) -> int:
        """Delete temp files left by a killed job; returns how many."""
        raise NotImplementedError

    @contextmanager
    def lock(self):
        yield

    def results_log(self) -> ResultsLog:
        raise NotImplementedError


class LocalStore(OutputStore):
    """A local output folder."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"{self.root} exists and is not a folder; --out must be a folder")
        self.location = str(self.root)

    def path(self, key: str) -> Path:
        return self.root / key

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def write(self, key: str, data: bytes, *, overwrite: bool) -> None:
        atomic_write_bytes(self.path(key), data, overwrite=overwrite)

    def uri(self, key: str) -> str:
        return str(self.path(key))

    def is_input(self, key: str, item: BatchItem) -> bool:
        target = self.path(key).resolve()
        return any(
            source and not is_uri(source) and Path(source).resolve() == target
            for source in (item.image, item.mask)
        )

    def remove_stale_temps(self) -> int:
        removed = 0
        for folder, _, names in os.walk(self.root):
            for name in names:
                if _is_our_temp(name):
                    Path(folder, name).unlink(missing_ok=True)
                    removed += 1
        return removed

    @contextmanager
    def lock(self):
        """Refuse to run two jobs on one folder (the lock is released even when killed)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_NAME, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise HolefillError(
                    f"another holefill batch is writing to {self.root}; wait for it to finish"
                ) from None
            yield

    def results_log(self) -> ResultsLog:
        return AppendResultsLog(self.root / RESULTS_NAME)


class ArrowStore(OutputStore):
    """An output location on a pyarrow filesystem (``s3://``, ``gs://``, ``file://``, ...).

    Writes go to ``.<name>.<random>.tmp`` beside the target, then move into place: on object
    stores the object appears whole (a copy), never partly written.
    """

    def __init__(self, uri: str) -> None:
        from pyarrow import fs

        try:
            self.filesystem, base = fs.FileSystem.from_uri(uri)
        except (ValueError, OSError, ImportError) as exc:
            raise InputError(
                f"{uri}: cannot open this location ({exc}); is its pyarrow "
                "filesystem installed and configured?"
            ) from None
        self.base = base.rstrip("/")
        self.location = uri.rstrip("/")
        self._made: set[str] = set()

    def _path(self, key: str) -> str:
        return f"{self.base}/{key}"

    def exists(self, key: str) -> bool:
        from pyarrow import fs

        return self.filesystem.get_file_info(self._path(key)).type == fs.FileType.File

    def write(self, key: str, data: bytes, *, overwrite: bool) -> None:
        target = self._path(key)
        if not overwrite and self.exists(key):
            raise InputError(f"{self.uri(key)} exists; refusing to overwrite it")
        folder, name = target.rsplit("/", 1)
        if folder not in self._made:
            self.filesystem.create_dir(folder, recursive=True)
            self._made.add(folder)
        temp = f"{folder}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with self.filesystem.open_output_stream(temp) as stream:
                stream.write(data)
            self.filesystem.move(temp, target)
        except BaseException:
            self._delete_quietly(temp)
            raise

    def _delete_quietly(self, path: str) -> None:
        with suppress(OSError):
            self.filesystem.delete_file(path)

    def uri(self, key: str) -> str:
        return f"{self.location}/{key}"

    def remove_stale_temps(self) -> int:
        from pyarrow import fs

        selector = fs.FileSelector(self.base, allow_not_found=True, recursive=True)
        stale = [
            info.path
            for info in self.filesystem.get_file_info(selector)
            if info.type == fs.FileType.File and _is_our_temp(info.base_name)
        ]
        for path in stale:
            self._delete_quietly(path)
        return len(stale)

    def results_log(self) -> ResultsLog:
        return ChunkedResultsLog(self)


def _is_our_temp(name: str) -> bool:
    match = _TEMP_NAME.match(name)
    if match is None:
        return False
    inner = match.group("name")
    results_part = inner.startswith("part-") and inner.endswith(".csv")
    return (
        inner == RESULTS_NAME
        or results_part
        or PurePosixPath(inner).suffix.lower() in IMAGE_SUFFIXES
    )


def open_store(out: str | os.PathLike) -> OutputStore:
    """The output store for ``--out``: a local folder, or a URI for pyarrow's filesystems."""
    return ArrowStore(str(out)) if is_uri(out) else LocalStore(out)


# -- results -------------------------------------------------------------------------------------
@dataclass
class ItemResult:
    """One row of the results log."""

    input: str
    mask: str
    output: str
    status: str  # ok | error | skipped
    error: str = ""
    seconds: float = 0.0
    hole_ratio: float | None = None
    method: str = ""

    def to_row(self) -> list[str]:
        row = asdict(self)
        row["error"] = " ".join(self.error.split())  # one line per row, always
        row["seconds"] = f"{self.seconds:.3f}"
        row["hole_ratio"] = "" if self.hole_ratio is None else f"{self.hole_ratio:.5f}"
        return [str(row[name]) for name in RESULT_COLUMNS[:-1]]


RESULT_COLUMNS = [field.name for field in fields(ItemResult)] + ["finished"]


def _csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


_HEADER = _csv_line(RESULT_COLUMNS)


class ResultsLog:
    """Append-only log of :class:`ItemResult` rows, one CSV line each."""

    location: str

    def append(self, result: ItemResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> ResultsLog:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class AppendResultsLog(ResultsLog):
    """A local ``results.csv``: each row is one ``write`` on an ``O_APPEND`` file, so a kill loses
    only rows not yet written, never half a row (a torn last line is trimmed on reopening)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self._check_existing()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if os.fstat(self._fd).st_size == 0:
            os.write(self._fd, _HEADER.encode())

    def _check_existing(self) -> None:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as handle:
            if handle.readline().decode("utf-8", "replace") != _HEADER:
                raise HolefillError(
                    f"{self.path} exists and is not a holefill batch results file; move it away "
                    "or choose another --out"
                )
            _trim_torn_line(handle)

    def append(self, result: ItemResult) -> None:
        line = _csv_line(result.to_row() + [_now()])
        os.write(self._fd, line.encode())

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


def _trim_torn_line(handle) -> None:
    """Drop a last line that a kill left without its newline."""
    end = handle.seek(0, os.SEEK_END)
    handle.seek(end - 1)
    if handle.read(1) == b"\n":
        return
    position = end
    while position > 0:
        position = max(0, position - 65536)
        handle.seek(position)
        newline = handle.read(end - position).rfind(b"\n")
        if newline >= 0:
            handle.truncate(position + newline + 1)
            return


class ChunkedResultsLog(ResultsLog):
    """Results on an object store, which cannot append: ``results/part-<run>-<n>.csv`` files,
    each written whole every ``flush_rows`` rows or ``flush_seconds`` seconds, and at the end."""

    def __init__(
        self, store: ArrowStore, *, flush_rows: int = 1000, flush_seconds: float = 30.0
    ) -> None:
        self.store = store
        self.location = store.uri("results/")
        now = time.time()  # part names sort in time order: readers concatenate them sorted
        self._run = (
            time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
            + f"{int(now * 1e6) % 1_000_000:06d}-{uuid.uuid4().hex[:6]}"
        )
        self._lines: list[str] = []
        self._part = 0
        self._last = time.monotonic()
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds

    def append(self, result: ItemResult) -> None:
        self._lines.append(_csv_line(result.to_row() + [_now()]))
        if (
            len(self._lines) >= self.flush_rows
            or time.monotonic() - self._last >= self.flush_seconds
        ):
            self.flush()

    def flush(self) -> None:
        if self._lines:
            key = f"results/part-{self._run}-{self._part:05d}.csv"
            self.store.write(key, (_HEADER + "".join(self._lines)).encode(), overwrite=False)
            self._part += 1
            self._lines = []
        self._last = time.monotonic()

    def close(self) -> None:
        self.flush()


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def read_results(location: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a results log (a local ``results.csv``, or the ``results/`` parts of a URI)."""
    if not is_uri(location):
        with open(
            Path(location) / RESULTS_NAME if Path(location).is_dir() else location, newline=""
        ) as handle:
            return list(csv.DictReader(handle))
    store = ArrowStore(str(location))
    from pyarrow import fs

    selector = fs.FileSelector(f"{store.base}/results", allow_not_found=True)
    rows: list[dict[str, str]] = []
    for info in sorted(store.filesystem.get_file_info(selector), key=lambda i: i.path):
        if info.base_name.endswith(".csv"):
            with store.filesystem.open_input_stream(info.path) as stream:
                rows += list(csv.DictReader(io.StringIO(stream.read().decode())))
    return rows


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
