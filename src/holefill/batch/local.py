"""Filling one batch item, and the local engine: a pool of worker processes on one machine.

Each worker loads its model once (the pool's initializer) and runs torch, OpenCV and numba on one
thread, so ``N`` workers use ``N`` cores without oversubscribing them. Items are streamed to the
pool with a bounded number in flight: a job over a million images holds a few of them at a time.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from holefill.batch.manifest import BatchItem, ItemResult, OutputStore, local_input, open_store
from holefill.errors import HolefillError
from holefill.files import FillPair, MaskOptions, load_pair
from holefill.io import encode_image, output_format

#: environment variables that cap the thread pools of BLAS, OpenMP and numba in a worker
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


@dataclass(frozen=True)
class FillSettings:
    """How every item is filled (picklable: it travels to worker processes and Ray actors)."""

    method: str
    options: dict = field(default_factory=dict)
    mask: MaskOptions = MaskOptions()
    suffix: str = ".png"  # of outputs the inputs do not name
    quality: int = 95


@dataclass(frozen=True)
class Filled:
    """An encoded output and the fraction of the image that was hole."""

    data: bytes
    hole_ratio: float


def limit_threads() -> None:
    """One thread for torch, OpenCV and numba in this process (a worker owns one core)."""
    for variable in THREAD_VARIABLES:
        os.environ[variable] = "1"
    import cv2
    import torch

    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # only settable before any parallel work
        torch.set_num_interop_threads(1)
    cv2.setNumThreads(1)
    with contextlib.suppress(ImportError, ValueError):
        import numba

        numba.set_num_threads(1)


@lru_cache(maxsize=8)
def method_option_names(method: str) -> frozenset[str]:
    """Names of the options ``method`` accepts."""
    from holefill.registry import method_options

    return frozenset(method_options(method))


def inpainter_for(method: str, settings: FillSettings):
    """The (cached) inpainter of ``method``; a manifest row's own method gets the options it has."""
    from holefill.api import get_inpainter

    options = settings.options
    if method != settings.method:
        accepted = method_option_names(method)
        options = {key: value for key, value in options.items() if key in accepted}
    return get_inpainter(method, **options)


def fill_item(item: BatchItem, settings: FillSettings) -> Filled:
    """Read, check, fill and encode one item (format by the output's suffix).

    Raises :class:`HolefillError` on bad input.
    """
    from holefill.api import fill_pixels

    with local_input(item.image) as image_path, local_input(item.mask) as mask_path:
        pair = FillPair(image_path, mask_path, image_path)
        loaded, hole = load_pair(pair, settings.mask)
    inpainter = inpainter_for(item.method or settings.method, settings)
    filled = fill_pixels(loaded.pixels, hole, inpainter) if hole.any() else loaded.pixels
    alpha, fmt = loaded.alpha, output_format(item.output)
    if filled.dtype == np.uint16 and fmt not in ("PNG", "TIFF"):
        filled = (filled // 257).astype(np.uint8)
        alpha = None if alpha is None else (alpha // 257).astype(np.uint8)
    data = encode_image(
        filled,
        fmt,
        alpha=alpha,
        quality=settings.quality,
        exif=loaded.exif,
        icc=loaded.icc,
    )
    return Filled(data, float(hole.mean()))


def describe_error(exc: BaseException) -> str:
    """The error text of a results row: holefill's own message, else the exception's type too."""
    return str(exc) if isinstance(exc, HolefillError) else f"{type(exc).__name__}: {exc}"


def result_for(
    item: BatchItem,
    store: OutputStore,
    settings: FillSettings,
    status: str,
    *,
    error: str = "",
    seconds: float = 0.0,
    hole_ratio: float | None = None,
) -> ItemResult:
    return ItemResult(
        input=item.image,
        mask=item.mask or "",
        output=store.uri(item.output),
        status=status,
        error=error,
        seconds=seconds,
        hole_ratio=hole_ratio,
        method=item.method or settings.method,
    )


def process_item(
    item: BatchItem, store: OutputStore, settings: FillSettings, overwrite: bool
) -> ItemResult:
    """Fill one item into the store, or say why not: never raises for a bad input."""
    start = time.perf_counter()
    if item.problem:
        return result_for(item, store, settings, "error", error=item.problem)
    if not overwrite and store.exists(item.output):
        return result_for(item, store, settings, "skipped", error="output exists")
    try:
        filled = fill_item(item, settings)
        store.write(item.output, filled.data, overwrite=overwrite)
    except Exception as exc:  # noqa: BLE001 - one bad item must not stop the job
        return result_for(
            item,
            store,
            settings,
            "error",
            error=describe_error(exc),
            seconds=time.perf_counter() - start,
        )
    return result_for(
        item,
        store,
        settings,
        "ok",
        seconds=time.perf_counter() - start,
        hole_ratio=filled.hole_ratio,
    )


# -- the worker pool -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _WorkerSetup:
    settings: FillSettings
    out: str
    overwrite: bool
    parent_pid: int


_STATE: dict = {}


def _init_worker(setup: _WorkerSetup) -> None:
    """Pool initializer: die with the job, one thread, load the model once."""
    _die_with_job(setup.parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    warnings.simplefilter("ignore")
    limit_threads()
    _STATE.update(setup=setup, store=open_store(setup.out), fatal=None)
    try:
        inpainter_for(setup.settings.method, setup.settings)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops the job
        _STATE["fatal"] = describe_error(exc)


def _die_with_job(job_pid: int) -> None:
    """A worker must not outlive a killed job (it would write beside the re-run).

    The kernel kills the worker when its parent (the job, or the fork server, which exits with
    the job) dies; a watcher thread covers systems without ``prctl``.
    """
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    threading.Thread(target=_watch_job, args=(job_pid,), daemon=True).start()


def _watch_job(job_pid: int) -> None:
    while True:
        try:
            os.kill(job_pid, 0)
        except (ProcessLookupError, PermissionError):  # gone (or its pid reused by another user)
            os._exit(1)
        time.sleep(0.5)


def _pool_context():
    """Workers fork from a server that imported torch once: fast to start, no forked state."""
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["holefill.batch.local", "torch", "cv2"])
    return context


def _worker_pids(pool) -> set[int]:
    return {process.pid for process in pool._pool}  # CPython's Pool keeps its workers there


def _check_workers(pool, first_workers: set[int]) -> None:
    """Stop the job when a worker has died: ``multiprocessing.Pool`` would replace it and wait
    forever for the item it held, or, when workers die while starting, start new ones forever."""
    dead = [p for p in pool._pool if p.exitcode is not None]
    if dead or not _worker_pids(pool) <= first_workers:
        code = f" (exit code {dead[0].exitcode})" if dead else ""
        raise HolefillError(
            f"a worker process died{code}: killed, out of memory, or it could not start. A script "
            'that calls holefill.batch must do so under `if __name__ == "__main__":`. Finished '
            "items are in the results log; run the job again to fill the rest"
        )


def _work(item: BatchItem) -> tuple[ItemResult, str | None]:
    setup: _WorkerSetup = _STATE["setup"]
    if _STATE["fatal"]:
        return result_for(item, _STATE["store"], setup.settings, "error"), _STATE["fatal"]
    return process_item(item, _STATE["store"], setup.settings, setup.overwrite), None


@contextlib.contextmanager
def _single_threaded_environment():
    """Workers start with one-thread BLAS/OpenMP (read when those libraries load)."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _bounded(
    items: Iterable[BatchItem], slots: threading.Semaphore, stop: threading.Event
) -> Iterator[BatchItem]:
    """Yield items only while fewer than the slots are in flight (runs in the pool's feeder)."""
    for item in items:
        while not slots.acquire(timeout=0.1):
            if stop.is_set():
                return
        yield item


def _needs_work(
    item: BatchItem,
    store: OutputStore,
    settings: FillSettings,
    overwrite: bool,
    on_result: Callable[[ItemResult], None],
) -> bool:
    """Report items that need no worker (a known problem, or done already) at once."""
    if item.problem:
        on_result(result_for(item, store, settings, "error", error=item.problem))
        return False
    if not overwrite and store.exists(item.output):
        on_result(result_for(item, store, settings, "skipped", error="output exists"))
        return False
    return True


def run_local(
    items: Iterable[BatchItem],
    settings: FillSettings,
    store: OutputStore,
    on_result: Callable[[ItemResult], None],
    *,
    workers: int,
    overwrite: bool = False,
) -> None:
    """Fill ``items`` with ``workers`` processes (0: in this process), reporting each result.

    ``on_result`` is called under a lock, from this thread or the pool's feeder thread.
    """
    lock = threading.Lock()

    def report(result: ItemResult) -> None:
        with lock:
            on_result(result)

    items = iter(items)
    if workers <= 0:
        for item in items:
            report(process_item(item, store, settings, overwrite))
        return
    work = (item for item in items if _needs_work(item, store, settings, overwrite, report))
    first = next(work, None)
    if first is None:  # nothing left to fill: no worker starts
        return
    _run_pool(
        itertools.chain([first], work),
        settings,
        store,
        report,
        workers=workers,
        overwrite=overwrite,
    )


def _run_pool(
    items: Iterator[BatchItem],
    settings: FillSettings,
    store: OutputStore,
    report: Callable[[ItemResult], None],
    *,
    workers: int,
    overwrite: bool,
) -> None:
    setup = _WorkerSetup(settings, store.location, overwrite, os.getpid())
    slots, stop = threading.Semaphore(2 * workers + 2), threading.Event()
    context = _pool_context()
    with _single_threaded_environment():
        pool = context.Pool(workers, initializer=_init_worker, initargs=(setup,))
    first_workers = _worker_pids(pool)
    results = pool.imap_unordered(_work, _bounded(items, slots, stop))
    try:
        while True:
            try:
                result, fatal = results.next(timeout=0.5)
            except multiprocessing.TimeoutError:
                _check_workers(pool, first_workers)
                continue
            except StopIteration:
                break
            slots.release()
            if fatal:
                raise HolefillError(
                    f"the workers could not load method {settings.method!r}: {fatal}"
                )
            report(result)
    except BaseException:
        stop.set()
        pool.terminate()
        raise
    else:
        pool.close()
    finally:
        pool.join()
