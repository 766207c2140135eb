"""Whole fits side by side on the dask backend's cluster (``fit_many``, ``modelfit
benchmark --backend dask``): the backend's ``fit_executor()``.

Each job is one dask task, a whole fit: it builds its fitter on the worker, simulates
its batches there with the backend's ``inner`` backend (``runtime`` by default) and
writes its rounds to the shared storage file. A worker process keeps what Brian
compiled (the extension modules it imported, and its disk cache), so the later fits of
one model on a worker start in milliseconds. A worker that dies in the middle of a
fit: dask runs the task again on another worker, and the job resumes the study from
the rounds stored.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

_ONE_FIT_AT_A_TIME = threading.Lock()
"""Brian's state (devices, the magic network, the code objects) belongs to the process:
a worker with several threads runs its fits one after another."""


class _Raised:
    """A job's exception, returned rather than raised: a fit that fails (a bad bound, a
    missing file) is that job's outcome, not a crash of the task, which dask would log
    with its traceback on the worker's stderr, across the driver's progress bar."""

    def __init__(self, error: Exception):
        self.error = error


def _run_alone(fn: Callable[..., Any], args: tuple) -> Any:
    """Worker task: ``fn(*args)``, alone in this process (the backend's worker plugin
    ``SimulateWithoutInterference`` keeps dask's profiler and memory trimming out of
    its way, as for every chunk)."""
    with _ONE_FIT_AT_A_TIME:
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - handed to the driver, see _Raised
            return _Raised(exc)


class _JobFuture:
    """A dask future whose ``result()`` raises the job's own exception."""

    def __init__(self, future):
        self.future = future

    def done(self) -> bool:
        return self.future.done()

    def cancel(self) -> None:
        self.future.cancel()

    def result(self, timeout: float | None = None) -> Any:
        value = self.future.result(timeout=timeout)
        if isinstance(value, _Raised):
            raise value.error
        return value


class DaskFitExecutor:
    """Runs jobs (whole fits) as dask tasks, one per worker process at a time.

    Parameters
    ----------
    client : distributed.Client
        The backend's client (its LocalCluster, or the scheduler it was given).
    inner, inner_options
        The backend each job simulates with on its worker, and its options.
    """

    def __init__(self, client, inner: str, inner_options: dict):
        self.client = client
        self._inner = inner
        self._inner_options = dict(inner_options)
        self._futures: list = []

    @property
    def slots(self) -> int:
        """The worker processes (a worker with several threads still runs one fit)."""
        return max(len(self.client.scheduler_info().get("workers", {})), 1)

    @property
    def job_backend(self) -> str:
        return self._inner

    @property
    def job_backend_options(self) -> dict:
        return dict(self._inner_options)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> _JobFuture:
        """The future of ``fn(*args)`` run on a worker (``done``, ``result``, ``cancel``)."""
        future = self.client.submit(_run_alone, fn, args, pure=False)
        self._futures.append(future)
        return _JobFuture(future)

    def shutdown(self) -> None:
        """Cancel the jobs not finished (a task already running on a remote worker ends
        its fit: dask cannot stop a running task)."""
        pending = [future for future in self._futures if not future.done()]
        if pending and self.client.status == "running":
            self.client.cancel(pending)
        self._futures.clear()

    def __repr__(self):
        return f"DaskFitExecutor({self.client!r}, inner={self._inner!r})"
