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
