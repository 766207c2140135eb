"""Distributed evaluation on dask.distributed: each batch split across workers.

Every worker prepares (compiles) the model once, for a fixed chunk size, and
keeps it in this module's cache for the whole fit; the specification (model,
inputs, recorded data) is scattered to the workers once, and so are the fit's
metrics with the recorded outputs
(:class:`modelfit_core.model.recordings.ErrorsWhereSimulated`). A round
sends only the parameter values of each chunk; each worker simulates its chunk
and scores it, and the errors (not the traces) are gathered back in order. When a
worker dies, dask reschedules its chunks on the remaining (or restarted)
workers, which prepare the model themselves, and the round completes.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import re
import sys
import uuid
import warnings
import weakref
from concurrent.futures import CancelledError

import attrs
import numpy as np

from modelfit_core.contracts.errors import ConfigurationError
from modelfit_core.contracts.simulation import SimulationResult, SimulationSpec

_GUARD = re.compile(r"""__name__\s*==\s*['"]__main__['"]""")


def _runs_unguarded(module) -> bool:
    """Whether ``module`` is a script run as ``__main__`` without an
    ``if __name__ == "__main__":`` guard (every script of the manual is)."""
    path = getattr(module, "__file__", None)
    if path is None or getattr(getattr(module, "__spec__", None), "name", None):
        return False  # an interactive session, or ``python -m package``
    try:
        with open(path, encoding="utf-8", errors="replace") as source:
            return _GUARD.search(source.read()) is None
    except OSError:
        return False


@contextlib.contextmanager
def unguarded_main_hidden():
    """While the LocalCluster starts its worker processes, hide an unguarded script.

    Worker processes are spawned, and a spawned process runs the parent's
    ``__main__`` script again; without the guard, that would start the fit (and
    a cluster) again in every worker ("Nanny failed to start"). Hidden, the
    workers start without it. Objects defined in such a script (a custom
    metric) then cannot be sent to the workers: add the guard for those.
    """
    main = sys.modules.get("__main__")
    if main is None or not _runs_unguarded(main):
        yield
        return
    path = main.__file__
    del main.__file__  # what multiprocessing reads to run the script in its children
    try:
        yield
    finally:
        main.__file__ = path


def _shutdown_if_alive(backend_ref) -> None:
    backend = backend_ref()
    if backend is not None:
        backend.shutdown()


_WORKER_CACHE: dict[str, object] = {}
"""Prepared simulations held by this (worker) process, keyed by preparation token."""


def _prepare_on_worker(token: str, spec: SimulationSpec, inner: str, inner_options: dict):
    prepared = _WORKER_CACHE.get(token)
    if prepared is None:
        from modelfit_core.plugin_api import shared_registry
        backend = shared_registry().lookup("backends", inner)(**inner_options)
        prepared = backend.prepare(spec)
        _WORKER_CACHE[token] = prepared
    return prepared


def _run_chunk(token, spec, inner, inner_options, parameters, iteration, errors_here=None):
    """Worker task: simulate one chunk of parameter sets (compiling on first use);
    with ``errors_here``, score it here and return errors instead of traces."""
    prepared = _prepare_on_worker(token, spec, inner, inner_options)
    result = prepared.run(parameters, iteration=iteration)
    return result if errors_here is None else errors_here(result, spec.n_samples)


def _forget(token):
    prepared = _WORKER_CACHE.pop(token, None)
    if prepared is not None:
        prepared.close()
    return token


def _merge(results: list[SimulationResult], spec: SimulationSpec, n_samples: int,
           chunk_size: int):
    """One result from the chunks' results, in order, without the padding."""
    merged = SimulationResult()
    for name in results[0].traces:
        merged.traces[name] = np.concatenate([r.traces[name] for r in results])[:n_samples]
    if results[0].spikes is not None:
        merged.spikes = [train for r in results for train in r.spikes][:n_samples]
    for name in results[0].errors:
        merged.errors[name] = np.concatenate([r.errors[name] for r in results])[:n_samples]
    for name in spec.record_final:
        values = np.concatenate([r.final[name] for r in results])
        merged.final[name] = values[:n_samples * spec.n_traces]
    if any(r.failed is not None for r in results):
        merged.failed = np.concatenate([
            r.failed if r.failed is not None else np.zeros(chunk_size, bool)
            for r in results])[:n_samples].astype(bool)
    return merged


@attrs.define
class DaskSimulation:
    """A batch simulation spread over a dask cluster; see :class:`DaskBackend`."""

    backend: "DaskBackend"
    spec: SimulationSpec
    n_chunks: int
    chunk_size: int
    token: str
    errors_here: object = None
    _spec_future: object = None
    _errors_future: object = None

    def __attrs_post_init__(self):
        self._send_spec()

    def _send_spec(self) -> None:
        """Scatter the chunk specification to every worker."""
        chunk_spec = attrs.evolve(self.spec, n_samples=self.chunk_size)
        self._spec_future = self.backend.client.scatter(chunk_spec, broadcast=True,
                                                        hash=False)

    def _send_errors_here(self) -> None:
        """Scatter the metrics and recorded outputs (if any) to every worker."""
        self._errors_future = None
        if self.errors_here is None:
            return
        try:
            self._errors_future = self.backend.client.scatter(self.errors_here,
                                                              broadcast=True, hash=False)
        except Exception as exc:  # noqa: BLE001 - e.g. a metric that cannot be pickled
            self.errors_here = None
            warnings.warn(f"The metrics could not be sent to the dask workers ({exc}); the "
                          f"traces are sent back and scored here instead.", stacklevel=3)

    def run(self, parameters, iteration: float = 0.0) -> SimulationResult:
        n = self.spec.n_samples
        client = self.backend.client
        pad = self.n_chunks * self.chunk_size - n
        # equal chunks share one compiled size; padding repeats the last set
        padded = {}
        for name in self.spec.parameter_names:
            values = np.asarray(parameters[name], dtype=float)
            padded[name] = np.concatenate([values, np.repeat(values[-1:], pad)])
        chunks = [{name: values[k * self.chunk_size:(k + 1) * self.chunk_size]
                   for name, values in padded.items()} for k in range(self.n_chunks)]
        for attempt in range(self.backend.retries + 1):
            futures = [client.submit(_run_chunk, self.token, self._spec_future,
                                     self.backend.inner, self.backend.inner_options, chunk,
                                     iteration, self._errors_future, pure=False,
                                     retries=self.backend.retries)
                       for chunk in chunks]
            try:
                return _merge(client.gather(futures), self.spec, n, self.chunk_size)
            except CancelledError:
                # Scattered data lives only on workers, and dask's memory manager
                # may keep a single copy: a dead worker can take it along, which
                # cancels the tasks that need it. Send it again and repeat.
                if attempt == self.backend.retries:
                    raise
                self._send_spec()
                self._send_errors_here()
        raise AssertionError("unreachable")

    def compute_errors_with(self, errors_here) -> None:
        """Score each chunk on its worker with ``errors_here`` (sent once, here):
        errors travel back instead of traces. ``None`` sends traces again."""
        self.errors_here = errors_here
        self._send_errors_here()

    def close(self) -> None:
        client = self.backend.client
        if client is not None and client.status == "running":
            client.run(_forget, self.token)


CONNECT_TIMEOUT_S = 5.0
"""How long a scheduler given by its address may take to answer."""
_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def connect(address: str, timeout_s: float = CONNECT_TIMEOUT_S):
    """A dask Client of the scheduler at ``address``, or a ConfigurationError naming it
    within ``timeout_s`` seconds (a wrong address, an unknown host, nothing listening,
    a firewall dropping packets)."""
    from dask.distributed import Client
    text = str(address)
    scheme = text.split("://", 1)[0] if "://" in text else "tcp"
    if scheme not in _SCHEMES:
        raise ConfigurationError(f"The dask scheduler address {text!r} has the scheme "
                                 f"{scheme!r}; use one of {', '.join(_SCHEMES)}, e.g. "
                                 f"'tcp://host:8786'.")
    try:
        return Client(text, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError, ValueError, MemoryError) as exc:
        # OSError covers dask's CommClosedError and unresolvable hosts; MemoryError is
        # what something that is not a scheduler can make dask's protocol allocate
        raise ConfigurationError(
            f"Cannot connect to the dask scheduler at {text!r} within {timeout_s:g} s "
            f"({type(exc).__name__}: {str(exc)[:200]}). Check that the scheduler runs "
            f"and that the address and port are right (dask-scheduler prints them), or "
            f"leave address out to start a local cluster.") from exc


class DaskBackend:
    """Simulate batches on a dask.distributed cluster.

    Parameters
    ----------
    address : str, optional
        Scheduler of an existing cluster (``"tcp://host:8786"``, e.g. from
        dask-jobqueue on SLURM). Default: a LocalCluster started here.
    n_workers : int, optional
        Workers of the LocalCluster (default: one per core).
    chunks : int, optional
        Parts each batch is split into (default: the number of workers).
    inner : str
        Backend each worker uses (default ``"runtime"``).
    inner_options : dict
        Options of the inner backend (e.g. ``{"codegen_target": "numpy"}``).
    retries : int
        Extra attempts for a chunk whose task raised (a worker's death is
        handled by dask itself, which reschedules the chunk).
    """

    name = "dask"
    simulates_running_sums = True  # running_sums: the gradient optimizer's rounds
    scores_remotely = True
    """Batches are recorded and scored on the workers (see ``compute_errors_with``)."""

    def __init__(self, address: str | None = None, n_workers: int | None = None,
                 chunks: int | None = None, inner: str = "runtime",
                 inner_options: dict | None = None, retries: int = 1, client=None):
        self.address = address
        self.n_workers = n_workers or os.cpu_count() or 1
        if self.n_workers < 1:
            raise ConfigurationError("n_workers must be at least 1.")
        self.chunks = chunks
        self.inner = inner
        self.inner_options = dict(inner_options or {})
        self.retries = int(retries)
        self.client = client
        self.cluster = None

    def _ensure_client(self):
        if self.client is not None:
            return self.client
        from dask.distributed import Client, LocalCluster
        if self.address is not None:
            self.client = connect(self.address)
        else:
            import dask
            # keep the broadcast copies of the scattered specification on every
            # worker (the memory manager would drop all but one, and losing that
            # worker would then cost a re-send)
            with dask.config.set({"distributed.scheduler.active-memory-manager.start": False}), \
                    unguarded_main_hidden():
                self.cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1,
                                            processes=True, dashboard_address=None)
            self.client = Client(self.cluster)
            # at exit, let go of the scattered data before dask stops the workers (which
            # would log "lose scattered data" errors): atexit runs this before dask's own
            atexit.register(_shutdown_if_alive, weakref.ref(self))
        from modelfit_plugins.backends.dask_worker_setup import ImportBrianFirst
        self.client.register_plugin(ImportBrianFirst())
        return self.client

    def prepare(self, spec: SimulationSpec) -> DaskSimulation:
        client = self._ensure_client()
        workers = max(len(client.scheduler_info().get("workers", {})), 1)
        n_chunks = max(1, min(self.chunks or workers, spec.n_samples))
        chunk_size = math.ceil(spec.n_samples / n_chunks)
        n_chunks = math.ceil(spec.n_samples / chunk_size)
        return DaskSimulation(self, spec, n_chunks, chunk_size, token=uuid.uuid4().hex)

    def fit_executor(self):
        """Whole fits side by side on this cluster, one per worker, each simulating on
        the inner backend (``fit_many``, ``modelfit benchmark``): see
        :mod:`modelfit_plugins.backends.dask_fits`."""
        from modelfit_plugins.backends.dask_fits import DaskFitExecutor
        return DaskFitExecutor(self._ensure_client(), self.inner, self.inner_options)

    def single_run_backend(self):
        """Single runs (``generate``, ``refine``) simulate here, on the inner backend:
        a round trip to the workers would cost more than the run."""
        from modelfit_core.plugin_api import shared_registry
        return shared_registry().lookup("backends", self.inner)(**self.inner_options)

    def shutdown(self) -> None:
        """Close the client and the LocalCluster started by this backend."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def __repr__(self):
        where = self.address or f"LocalCluster({self.n_workers} workers)"
        return f"DaskBackend({where}, inner={self.inner!r})"
