"""Where a batch job writes: the output store and the results log.

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
import time
import uuid
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path, PurePosixPath

from holefill.batch.manifest import BatchItem, is_uri
from holefill.errors import HolefillError, InputError
from holefill.io import IMAGE_SUFFIXES, atomic_write_bytes

RESULTS_NAME = "results.csv"
LOCK_NAME = ".holefill-batch.lock"
#: temp files of holefill's atomic writes: ``.<name>.<8 random characters>.tmp``
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")


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
