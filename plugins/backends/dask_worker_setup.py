"""Set-up that every dask worker runs when it starts, before any task.

Kept apart from ``dask_backend`` because it needs ``distributed`` at import
time, while the backend module must import (and be listed by ``modelfit
plugins``) without it.
"""

from distributed.diagnostics.plugin import WorkerPlugin


class ImportBrianFirst(WorkerPlugin):
    """Import Brian 2 in the worker's main thread when the worker starts.

    Brian's import installs a SIGINT handler, which Python allows only in the
    main thread; tasks run in the worker's thread pool, so the import must
    come first. As a registered plugin it runs again in every worker that a
    nanny restarts after a crash.
    """

    name = "modelfit-import-brian2"

    def setup(self, worker):
        import brian2  # noqa: F401


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
"""glibc's ``mallopt`` parameters (malloc.h)."""
KEPT_ARRAY_BYTES = 32 << 20
"""Arrays up to this size stay in the worker's heap between chunks (a chunk's traces:
1000 samples x 5 traces x 1497 steps are 60 MB; 200 samples, 12 MB)."""


class SimulateWithoutInterference(WorkerPlugin):
    """Keep what dask does for every task out of the way of simulations, in each worker.

    Measured on the HH tutorial (2 workers, 200 samples per chunk), each costs a worker
    a few per cent of its chunks' time, against the same simulation in a plain process:

    * dask's statistical profiler takes the interpreter's lock every 10 ms to walk the
      task's stack; it is stopped (the dask dashboard's profile then stays empty);
    * dask starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, so every large array
      freed after a chunk goes back to the system and the next chunk's is mapped again,
      page by page; glibc keeps arrays up to KEPT_ARRAY_BYTES instead.
    """

    name = "modelfit-simulate-without-interference"

    def setup(self, worker):
        for name in ("profile", "profile-cycle"):
            callback = worker.periodic_callbacks.get(name)
            if callback is not None:
                callback.stop()
        try:
            import ctypes
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):  # not glibc: its own thresholds apply
            return
        mallopt(_M_MMAP_THRESHOLD, KEPT_ARRAY_BYTES)
        mallopt(_M_TRIM_THRESHOLD, 4 * KEPT_ARRAY_BYTES)
