"""The Ray engine: the same job as a Ray Data pipeline, on this machine or a Ray cluster.

read (the items) → fill (``map_batches`` over a pool of actors, each holding its model) → write
(the driver writes each encoded output atomically as it streams back and logs its row).

Writing in the driver keeps the output rules of the local engine (temp then rename, never
replace a file unless asked) and lets a cluster write to a local ``--out`` folder of the machine
that runs ``holefill batch``. Inputs are read by the actors: on a cluster they must be reachable
from every node (a shared filesystem, or ``s3://`` / ``gs://`` URIs in a manifest).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict

import numpy as np

from holefill.batch.local import (
    THREAD_VARIABLES,
    FillSettings,
    describe_error,
    fill_item,
    limit_threads,
    method_option_names,
    note_of,
    result_for,
)
from holefill.batch.manifest import BatchItem
from holefill.batch.store import ItemResult, OutputStore
from holefill.errors import HolefillError

#: one item per block up to this many items: the actors share the work evenly to the last item
MAX_BLOCKS = 4096
#: items per block beyond that (few: an actor's output block holds that many encoded images)
ITEMS_PER_BLOCK = 16


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise HolefillError(
            "--engine ray needs Ray Data: pip install 'holefill[ray]' (or 'ray[data]')"
        ) from None
    return ray


class FillActor:
    """A Ray actor: loads the method once, then reads, fills and encodes one item per call."""

    def __init__(self, settings: FillSettings) -> None:
        import warnings

        from holefill.batch.local import inpainter_for

        warnings.simplefilter("ignore")
        limit_threads()
        self.settings = settings
        inpainter_for(settings.method, settings)  # load the model now, once

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        columns: dict[str, list] = {
            "status": [],
            "error": [],
            "seconds": [],
            "hole_ratio": [],
            "data": [],
        }
        for index in range(len(batch["image"])):
            item = _row_item({key: _plain(values[index]) for key, values in batch.items()})
            start = time.perf_counter()
            try:
                filled = fill_item(item, self.settings)
                status, error, data, ratio = "ok", note_of(filled), filled.data, filled.hole_ratio
            except Exception as exc:  # noqa: BLE001 - one bad item must not stop the job
                status, error, data, ratio = "error", describe_error(exc), b"", -1.0
            for name, value in zip(
                columns, (status, error, time.perf_counter() - start, ratio, data), strict=True
            ):
                columns[name].append(value)
        out = {name: np.asarray(values) for name, values in columns.items() if name != "data"}
        out["data"] = np.empty(len(columns["data"]), dtype=object)
        out["data"][:] = columns["data"]
        return {**batch, **out}


def _actor_class(settings: FillSettings) -> type:
    """``FillActor`` with ``settings`` built in (Ray pickles it whole: no constructor arguments
    to keep alive in the object store for actor restarts)."""

    class _SetUpFillActor(FillActor):
        def __init__(self) -> None:
            super().__init__(settings)

    _SetUpFillActor.__name__ = _SetUpFillActor.__qualname__ = "FillActor"
    return _SetUpFillActor


def _plain(value):
    """A numpy scalar or None-like value of a batch column as a plain Python value."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _item_row(item: BatchItem) -> dict:
    # empty strings stand for None: Arrow columns need one type
    return {key: "" if value is None else value for key, value in asdict(item).items()}


def _row_item(row: dict) -> BatchItem:
    return BatchItem(
        **{key: row[key] or None for key in ("image", "mask", "method", "problem")},
        output=row["output"],
    )


def _start_ray(ray, address: str | None, workers: int) -> bool:
    """Join the cluster at ``address``, or start a local Ray with ``workers`` CPUs.

    Returns True when this call started Ray (and should shut it down).
    """
    if ray.is_initialized():
        return False
    options = {
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "runtime_env": {"env_vars": dict.fromkeys(THREAD_VARIABLES, "1")},
    }
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=workers, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise HolefillError(f"could not start or join {where}: {exc}") from None
    return True


def run_ray(
    items: Iterable[BatchItem],
    settings: FillSettings,
    store: OutputStore,
    on_result: Callable[[ItemResult], None],
    *,
    workers: int,
    address: str | None = None,
    gpus_per_worker: float = 0.0,
    overwrite: bool = False,
) -> None:
    """Fill ``items`` with a Ray Data pipeline of ``workers`` actors, reporting each result.

    Items already done (their output exists, unless ``overwrite``) and items with a known problem
    are reported by the driver without reaching Ray.
    """
    ray = _import_ray()
    pending = []
    for item in items:
        if item.problem:
            on_result(result_for(item, store, settings, "error", error=item.problem))
        elif not overwrite and store.exists(item.output):
            on_result(result_for(item, store, settings, "skipped", error="output exists"))
        else:
            pending.append(_item_row(item))
    if not pending:
        return
    started = _start_ray(ray, address, workers)
    try:
        _run_pipeline(
            ray,
            pending,
            settings,
            store,
            on_result,
            workers=workers,
            gpus_per_worker=gpus_per_worker,
            overwrite=overwrite,
        )
    finally:
        if started:
            ray.shutdown()


def _pipeline_size(ray, workers: int, gpus_per_worker: float, items: int) -> int:
    """Actors to start: ``workers``, no more than the GPUs allow, nor than there are items."""
    workers = min(workers, items)
    if gpus_per_worker > 0:
        gpus = ray.cluster_resources().get("GPU", 0)
        if gpus < gpus_per_worker:
            raise HolefillError(
                f"--gpus-per-worker {gpus_per_worker}: the Ray cluster has {gpus:g} GPUs"
            )
        return max(1, min(workers, int(gpus // gpus_per_worker)))
    return max(1, workers)


def _run_pipeline(
    ray,
    pending: list[dict],
    settings: FillSettings,
    store: OutputStore,
    on_result: Callable[[ItemResult], None],
    *,
    workers: int,
    gpus_per_worker: float,
    overwrite: bool,
) -> None:
    size = _pipeline_size(ray, workers, gpus_per_worker, len(pending))
    wants_device = gpus_per_worker > 0 and "device" not in settings.options
    if wants_device and "device" in method_option_names(settings.method):
        settings = dataclasses.replace(settings, options={**settings.options, "device": "cuda"})
    dataset = ray.data.from_items(pending, override_num_blocks=_block_count(len(pending)))
    dataset = dataset.map_batches(
        _actor_class(settings),
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=size),
        num_cpus=1,
        num_gpus=gpus_per_worker or None,
    )
    try:
        for row in dataset.iter_rows():
            on_result(_write_row(row, settings, store, overwrite))
    except HolefillError:
        raise
    except Exception as exc:  # noqa: BLE001 - Ray wraps worker failures in many types
        raise HolefillError(f"the Ray pipeline failed: {describe_error(exc)}") from exc


def _block_count(items: int) -> int:
    """Blocks to cut ``items`` into: each actor task fills one block, so each block becomes one
    input of the actor pool (a single block would keep all but one actor idle)."""
    return min(items, max(MAX_BLOCKS, -(-items // ITEMS_PER_BLOCK)))


def _write_row(
    row: dict, settings: FillSettings, store: OutputStore, overwrite: bool
) -> ItemResult:
    """Write one filled output (atomically) and turn the row into a results-log row."""
    item = _row_item(row)
    seconds = float(row["seconds"])
    if row["status"] != "ok":
        return result_for(item, store, settings, "error", error=str(row["error"]), seconds=seconds)
    note = str(row["error"])
    start = time.perf_counter()
    try:
        store.write(item.output, bytes(row["data"]), overwrite=overwrite)
    except Exception as exc:  # noqa: BLE001 - a failed write is this item's error
        return result_for(
            item, store, settings, "error", error=describe_error(exc), seconds=seconds
        )
    return result_for(
        item,
        store,
        settings,
        "ok",
        error=note,
        seconds=seconds + time.perf_counter() - start,
        hole_ratio=float(row["hole_ratio"]),
    )
