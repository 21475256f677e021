"""The fill queue of ``holefill serve``: at most ``workers`` fills at once, a short line behind
them, and everyone else told when to retry."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from holefill.errors import HolefillError


class ServerBusyError(HolefillError):
    """Every worker is busy and the waiting line is full; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FillQueue:
    """At most ``workers`` fills at once and ``waiting`` more in line; anyone else is turned away.

    A request takes a :meth:`ticket` before it reads its upload (so a full server refuses at once,
    without buffering the body) and holds it to the end; the fill itself runs inside :meth:`slot`,
    which blocks the calling worker thread -- never the event loop -- until a worker is free.
    Thread-based, so it works whatever event loop (or none) its callers run on.
    """

    def __init__(self, workers: int = 1, waiting: int = 4) -> None:
        self.workers = workers
        self.waiting = waiting
        self._lock = threading.Lock()
        self._admitted = 0
        self._slots = threading.BoundedSemaphore(workers)
        self._mean_seconds = 2.0  # running mean of fill times, for Retry-After

    @property
    def admitted(self) -> int:
        """Requests holding a ticket now (running or waiting)."""
        return self._admitted

    def retry_after(self) -> int:
        """Seconds after which a retry has a fair chance: the line's expected drain time."""
        seconds = self._mean_seconds * max(1, self._admitted) / self.workers
        return int(min(600, max(1, math.ceil(seconds))))

    @contextmanager
    def ticket(self) -> Iterator[None]:
        """Enter the line, or raise :class:`ServerBusyError` when it is full."""
        with self._lock:
            if self._admitted >= self.workers + self.waiting:
                raise ServerBusyError(
                    f"the server is busy ({self.workers} running, {self.waiting} waiting); "
                    "try again shortly",
                    self.retry_after(),
                )
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for a free worker (blocking this thread), run, and record the duration."""
        with self._slots:
            start = time.monotonic()
            try:
                yield
            finally:
                elapsed = time.monotonic() - start
                with self._lock:
                    self._mean_seconds = 0.7 * self._mean_seconds + 0.3 * elapsed
