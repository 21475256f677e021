"""``holefill batch``: fill whole photo collections, resumably, on one machine or a Ray cluster.

Nothing is lost and nothing is done twice: every output is written atomically, outputs that exist
are skipped on a re-run (unless ``overwrite``), and each item's outcome is appended to a results log
as it finishes. A job killed at any moment and run again ends with every item filled exactly once.

Examples
--------
>>> from holefill.batch import BatchJob, FillSettings, run_batch  # doctest: +SKIP
>>> job = BatchJob(out="filled", settings=FillSettings("telea"), images=["photos"],
...                masks="masks", workers=2)
>>> run_batch(job).line()  # doctest: +SKIP
'holefill batch: 40 filled, 0 skipped, 0 failed of 40 in 9.1 s (4.40 images/s); ...'
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from holefill.batch.local import FillSettings, run_local
from holefill.batch.manifest import (
    ItemSource,
    check_items,
    is_uri,
    items_from_folders,
    items_from_manifest,
)
from holefill.batch.store import ItemResult, OutputStore, open_store, read_results
from holefill.cli import default_workers
from holefill.errors import InputError

ENGINES = ("local", "ray")


@dataclass
class BatchJob:
    """A batch job: inputs (folders or a manifest), where outputs go, how they are filled.

    Parameters
    ----------
    out : str
        Output folder, or a URI pyarrow's filesystems open (``s3://bucket/prefix``).
    settings : FillSettings
        Method, method options, mask options, output format.
    images, masks : optional
        Image folders or files (one path or a list of them) and their masks: one mask file, or a
        folder matched by relative path and stem. Give these or ``manifest``.
    manifest : str, optional
        CSV or Parquet file with columns ``image, mask[, output][, method]``.
    engine : {"local", "ray"}
        A process pool on this machine, or a Ray Data pipeline.
    workers : int
        Processes (local; 0 runs in this process) or actors (ray). Default: the cores here.
    address : str, optional
        Ray cluster to join (``auto``, ``ray://HOST:10001``); none starts a local Ray.
    gpus_per_worker : float
        GPUs per Ray actor (ray).
    overwrite : bool
        Fill items whose output exists again, replacing it.
    """

    out: str
    settings: FillSettings
    images: list[str] | str | None = None
    masks: str | None = None
    manifest: str | None = None
    engine: str = "local"
    workers: int = field(default_factory=default_workers)
    address: str | None = None
    gpus_per_worker: float = 0.0
    overwrite: bool = False
    progress: bool = True


@dataclass
class BatchSummary:
    """What a job did. ``failed > 0`` means some items have ``error`` rows in the results log."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    results: str = ""

    @property
    def total(self) -> int:
        return self.done + self.skipped + self.failed

    @property
    def throughput(self) -> float:
        """Images filled per second of the whole job (start-up included)."""
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def add(self, result: ItemResult) -> None:
        if result.status == "ok":
            self.done += 1
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1

    def line(self) -> str:
        return (
            f"holefill batch: {self.done} filled, {self.skipped} skipped, {self.failed} failed "
            f"of {self.total} in {self.seconds:.1f} s ({self.throughput:.2f} images/s); "
            f"results in {self.results}"
        )


def _check_method(settings: FillSettings) -> None:
    """Unknown methods and options are usage errors, found before any worker starts."""
    from holefill.pipeline import method_settings

    method_settings(settings.method, settings.options)


def _item_source(job: BatchJob, store: OutputStore) -> ItemSource:
    suffix = job.settings.suffix
    from_alpha = job.settings.mask.from_alpha
    if job.manifest is not None:
        if job.images:
            raise InputError("give --images or --manifest, not both")
        source = items_from_manifest(
            job.manifest, suffix=suffix, masks=job.masks, from_alpha=from_alpha
        )
    elif job.images:
        out = None if is_uri(job.out) else Path(job.out)
        images = [job.images] if isinstance(job.images, (str, os.PathLike)) else job.images
        source = items_from_folders(
            [str(path) for path in images], job.masks, suffix=suffix, from_alpha=from_alpha, out=out
        )
    else:
        raise InputError("nothing to fill: give --images DIR (with --masks) or --manifest FILE")
    return ItemSource(source.total, check_items(source.items, store))


def run_batch(job: BatchJob) -> BatchSummary:
    """Run ``job`` to the end; returns its summary (the results log has one row per item).

    Worker processes start from a fresh interpreter (fork server), which imports the main module:
    in a script, call this under ``if __name__ == "__main__":``.
    """
    from tqdm import tqdm

    if job.engine not in ENGINES:
        raise InputError(f"unknown engine {job.engine!r}; choose one of {', '.join(ENGINES)}")
    _check_method(job.settings)
    start = time.perf_counter()
    store = open_store(job.out)
    summary = BatchSummary()
    source = _item_source(job, store)  # usage errors here, before anything is written
    with store.lock():
        store.remove_stale_temps()
        show = job.progress and job.engine == "local"  # Ray Data draws its own progress
        with (
            store.results_log() as log,
            tqdm(
                total=source.total, unit="img", desc="filling", disable=None if show else True
            ) as bar,
        ):
            summary.results = log.location

            def record(result: ItemResult) -> None:
                log.append(result)
                summary.add(result)
                bar.update()

            _run_engine(job, source, store, record)
    summary.seconds = time.perf_counter() - start
    return summary


def _run_engine(job: BatchJob, source: ItemSource, store: OutputStore, record) -> None:
    if job.engine == "ray":
        from holefill.batch.ray_engine import run_ray

        run_ray(
            source.items,
            job.settings,
            store,
            record,
            workers=job.workers,
            address=job.address,
            gpus_per_worker=job.gpus_per_worker,
            overwrite=job.overwrite,
        )
    else:
        run_local(
            source.items, job.settings, store, record, workers=job.workers, overwrite=job.overwrite
        )


__all__ = [
    "BatchJob",
    "BatchSummary",
    "FillSettings",
    "run_batch",
    "read_results",
    "default_workers",
]
