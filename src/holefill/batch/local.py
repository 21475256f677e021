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
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import lru_cache

from holefill.batch.manifest import BatchItem, local_input
from holefill.batch.store import ItemResult, OutputStore, open_store
from holefill.errors import HolefillError
from holefill.io import DEFAULT_MAX_PIXELS
from holefill.pipeline import MaskOptions, OutputOptions, fill_image

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
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class Filled:
    """An encoded output, the fraction of the image that was hole, and the fill's warning."""

    data: bytes
    hole_ratio: float
    warning: str | None = None


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


def item_options(method: str, settings: FillSettings) -> dict:
    """The options of ``method``: the job's, less those a manifest row's own method lacks."""
    if method == settings.method:
        return settings.options
    accepted = method_option_names(method)
    return {key: value for key, value in settings.options.items() if key in accepted}


def inpainter_for(method: str, settings: FillSettings):
    """The (cached) inpainter of ``method`` for this job."""
    from holefill.pipeline import load_method

    return load_method(method, **item_options(method, settings))


def fill_item(item: BatchItem, settings: FillSettings) -> Filled:
    """Fill one item through the pipeline, encoded by the output's suffix.

    Raises :class:`HolefillError` on bad input.
    """
    method = item.method or settings.method
    output = OutputOptions.for_path(item.output, quality=settings.quality)
    with local_input(item.image) as image_path, local_input(item.mask) as mask_path:
        result = fill_image(
            image_path,
            mask_path,
            method,
            item_options(method, settings),
            mask_options=settings.mask,
            output=output,
            max_pixels=settings.max_pixels,
        )
    return Filled(result.data, result.hole_ratio, result.warning)


def note_of(filled: Filled) -> str:
    """The text of an ``ok`` row: empty, or the fill's warning (an empty mask)."""
    return f"warning: {filled.warning}" if filled.warning else ""


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
        error=note_of(filled),
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


_WORKER_DIED = (
    "a worker process died: killed, out of memory, or it could not start. A script that calls "
    'holefill.batch must do so under `if __name__ == "__main__":`. Finished items are in the '
    "results log; run the job again to fill the rest"
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
    """Fill ``items`` with ``workers`` processes (0: in this process), reporting each result
    (``on_result`` is called from this thread)."""
    items = iter(items)
    if workers <= 0:
        for item in items:
            on_result(process_item(item, store, settings, overwrite))
        return
    work = (item for item in items if _needs_work(item, store, settings, overwrite, on_result))
    first = next(work, None)
    if first is None:  # nothing left to fill: no worker starts
        return
    _run_pool(
        itertools.chain([first], work),
        settings,
        store,
        on_result,
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
    """Stream ``items`` through ``workers`` processes, at most ``2 * workers + 2`` in flight.

    A worker that dies (killed, out of memory, or failing to start, as in a script without a
    main guard) breaks the pool (:class:`BrokenProcessPool`): the job stops with advice instead
    of waiting for the item it held.
    """
    setup = _WorkerSetup(settings, store.location, overwrite, os.getpid())
    with _single_threaded_environment():
        executor = ProcessPoolExecutor(
            workers, mp_context=_pool_context(), initializer=_init_worker, initargs=(setup,)
        )
    in_flight: set[Future] = set()
    try:
        for item in items:
            in_flight.add(executor.submit(_work, item))
            if len(in_flight) >= 2 * workers + 2:
                in_flight = _collect(in_flight, settings, report)
        while in_flight:
            in_flight = _collect(in_flight, settings, report)
    except BrokenProcessPool:
        raise HolefillError(_WORKER_DIED) from None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _collect(
    in_flight: set[Future], settings: FillSettings, report: Callable[[ItemResult], None]
) -> set[Future]:
    """Wait for at least one future, report those done; returns those still running."""
    done, pending = wait(in_flight, return_when=FIRST_COMPLETED)
    for future in done:
        result, fatal = future.result()  # raises BrokenProcessPool when a worker died
        if fatal:
            raise HolefillError(f"the workers could not load method {settings.method!r}: {fatal}")
        report(result)
    return pending
