"""Distributed evaluation on dask.distributed: each batch split across workers.

Every worker prepares (compiles) the model once, for a fixed chunk size, and
keeps it for the whole fit and for later fits of the same model and data
(:class:`~.dask_worker_tasks.WorkerSimulations`); the specification (model,
inputs, recorded data) is scattered to the workers once, and so are the fit's
metrics with the recorded outputs
(:class:`modelfit_core.model.recordings.ErrorsWhereSimulated`). A round
sends only the parameter values of each chunk; each worker simulates its chunk
and scores it, and the errors (not the traces) are gathered back in order. When a
worker dies, dask reschedules its chunks on the remaining (or restarted)
workers, which prepare the model themselves, and the round completes. A
round's chunks are handed out as workers finish (:class:`DaskSimulation`), or,
asynchronously, one by one as the fit asks (``asynchronous=True``).
"""

from __future__ import annotations

import atexit
import collections
import math
import os
import time
import uuid
import warnings
import weakref
from concurrent.futures import CancelledError

import attrs
import numpy as np

from modelfit_core.contracts.errors import ConfigurationError
from modelfit_core.contracts.simulation import SimulationResult, SimulationSpec
from modelfit_core.contracts.protocols import WorkerActivity

# cluster creation, connection and checks live in dask_clusters; the names stay
# importable from here
from modelfit_plugins.backends.dask_worker_tasks import (ChunkOutcome, preparation_token,
                                                        release_simulation, run_chunk)
from modelfit_plugins.backends.dask_clusters import (
    AllWorkersLostError, CONNECT_TIMEOUT_S, WORKERS_TIMEOUT_S, check_cluster_kind, check_job_count,
    check_threads_per_worker, check_workers, client_of, connect, jobqueue_cluster,
    reports_scheduler_loss, require_jobqueue, scheduler_lost, start_local_cluster,
    submit_jobs, unguarded_main_hidden, wait_for_first_worker)

__all__ = ["CONNECT_TIMEOUT_S", "DaskBackend", "DaskSimulation", "connect",
           "unguarded_main_hidden"]


def _shutdown_if_alive(backend_ref) -> None:
    backend = backend_ref()
    if backend is not None:
        backend.shutdown()


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


CHUNKS_PER_WORKER = 1
"""Default chunks per worker in a batch. Every chunk costs its worker the fixed part of
a run (restoring the network, the per-step calls of Brian's code objects, scoring:
about 8.5 ms for the HH tutorial with recorded traces), which on workers of equal speed
outweighs what balancing saves (benchmarks/dask_round_timeline.py: 1.46x with one
chunk per worker, 1.35x with two, 1.00x with four, at 400 samples). On workers of
unequal speed, ``chunks_per_worker=3`` or more lets the fast ones take the chunks
beyond the first IN_FLIGHT_PER_WORKER of each."""
MIN_CHUNK_SIZE = 50
"""Parameter sets a chunk has at least when the batch is cut automatically."""
IN_FLIGHT_PER_WORKER = 2
"""Chunks sent to a worker before it finishes one: the next is there when it is done."""
WORKER_CHECK_S = 2.0
"""While waiting for chunks, how often the scheduler is asked whether workers are left."""
WORKER_LIST_REFRESH_S = 1.0
"""How old the list of workers may be before a batch asks the scheduler again."""


@attrs.define
class DaskSimulation:
    """A batch simulation spread over a dask cluster; see :class:`DaskBackend`.

    A batch is cut into ``n_chunks`` chunks of ``chunk_size`` parameter sets (the
    size every worker compiled); each worker gets :data:`IN_FLIGHT_PER_WORKER`
    chunks, then one more each time it finishes one, so that a fast worker
    simulates more of the batch than a slow one and nobody waits for a chunk
    queued behind a slow worker.
    """

    backend: "DaskBackend"
    spec: SimulationSpec
    n_chunks: int
    chunk_size: int
    token: str
    errors_here: object = None
    _spec_future: object = None
    _errors_future: object = None
    asynchronous: bool = False
    """Whether a fit may submit chunks one by one (:meth:`submit`)."""
    _workers: list = attrs.field(factory=list)
    _workers_listed_at: float = -math.inf
    _recent: list = attrs.field(factory=list)
    """(outcome, parameter sets that count) of the chunks finished since the activity
    was last read."""
    _submitted: dict = attrs.field(factory=dict)
    """Asynchronous chunks running: future -> parameter sets that count."""

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

    def _chunks(self, parameters) -> list[dict[str, np.ndarray]]:
        """The batch cut into chunks of ``chunk_size``; the last one padded with
        repeats of the last set (every chunk runs the same compiled size)."""
        pad = self.n_chunks * self.chunk_size - self.spec.n_samples
        padded = {}
        for name in self.spec.parameter_names:
            values = np.asarray(parameters[name], dtype=float)
            padded[name] = np.concatenate([values, np.repeat(values[-1:], pad)])
        return [{name: values[k * self.chunk_size:(k + 1) * self.chunk_size]
                 for name, values in padded.items()} for k in range(self.n_chunks)]

    def _current_workers(self) -> list:
        """The scheduler's workers (asked again at most every WORKER_LIST_REFRESH_S,
        so that workers that join an adaptive cluster get chunks)."""
        now = time.monotonic()
        if now - self._workers_listed_at > WORKER_LIST_REFRESH_S or not self._workers:
            self._workers = list(self.backend.client.scheduler_info()["workers"])
            self._workers_listed_at = now
        return self._workers or [None]

    def _dispatch(self, chunks, iteration: float) -> list[ChunkOutcome]:
        """Every chunk's outcome, in order: each worker is kept busy with
        IN_FLIGHT_PER_WORKER chunks, and gets the next waiting chunk as it finishes one."""
        client, backend = self.backend.client, self.backend
        waiting = collections.deque(range(len(chunks)))
        running: dict = {}
        outcomes: list = [None] * len(chunks)

        def send(worker) -> None:
            k = waiting.popleft()
            future = client.submit(
                run_chunk, self.token, self._spec_future, backend.inner,
                backend.inner_options, chunks[k], iteration, self._errors_future,
                key=f"modelfit-chunk-{uuid.uuid4().hex}", pure=False,
                workers=None if worker is None else [worker], allow_other_workers=True,
                retries=backend.retries)
            running[future] = k

        for _ in range(IN_FLIGHT_PER_WORKER):
            for worker in self._current_workers():
                if waiting:
                    send(worker)
        try:
            while running:
                for future in self._first_finished(running):
                    outcome = future.result()
                    outcomes[running.pop(future)] = outcome
                    if waiting:
                        send(outcome.worker)
        except BaseException:
            for future in running:
                future.cancel()
            raise
        return outcomes

    def _first_finished(self, futures) -> set:
        """Those of ``futures`` that have finished, after waiting for at least one.

        Raises
        ------
        AllWorkersLostError
            The cluster had no worker for longer than the backend's
            ``workers_timeout_s`` (a cluster of fixed size whose workers all died, batch
            jobs past their walltime): the chunks would wait for ever.
        """
        from distributed import wait
        alone_since = None
        while True:
            try:
                return wait(list(futures), timeout=WORKER_CHECK_S,
                            return_when="FIRST_COMPLETED").done
            except TimeoutError:
                if self.backend.client.scheduler_info()["workers"]:
                    alone_since = None
                    continue
            alone_since = alone_since if alone_since is not None else time.monotonic()
            if time.monotonic() - alone_since > self.backend.workers_timeout_s:
                raise self._no_workers_error()

    def _wait_for_workers(self) -> None:
        """Return once the cluster has a worker; AllWorkersLostError after the backend's
        ``workers_timeout_s`` without one."""
        deadline = time.monotonic() + self.backend.workers_timeout_s
        while not self.backend.client.scheduler_info()["workers"]:
            if time.monotonic() > deadline:
                raise self._no_workers_error()
            time.sleep(0.5)

    def _no_workers_error(self) -> AllWorkersLostError:
        return AllWorkersLostError(
            f"The dask cluster ({self.backend!r}) has had no worker for "
            f"{self.backend.workers_timeout_s:g} s, so this round's chunks cannot run. "
            f"Every finished round is kept: start workers again (or a new cluster) and "
            f"continue with fit(..., resume=True) and the same storage; "
            f"workers_timeout_s=... waits longer.")

    # a scheduler that stops answering: a SchedulerLostError naming it (dask_clusters)
    @reports_scheduler_loss
    def run(self, parameters, iteration: float = 0.0) -> SimulationResult:
        chunks = self._chunks(parameters)
        for attempt in range(self.backend.retries + 1):
            try:
                outcomes = self._dispatch(chunks, iteration)
                break
            except CancelledError:
                # Scattered data lives only on workers, and dask's memory manager
                # may keep a single copy: a dead worker can take it along, which
                # cancels the tasks that need it. Send it again and repeat.
                if attempt == self.backend.retries:
                    raise
                self._wait_for_workers()  # every worker gone: wait for one, or say so
                self._send_spec()
                self._send_errors_here()
        else:  # pragma: no cover - the loop breaks or raises
            raise AssertionError("unreachable")
        n = self.spec.n_samples
        self._recent = [(outcome, max(0, min(self.chunk_size, n - k * self.chunk_size)))
                        for k, outcome in enumerate(outcomes)]
        return _merge([o.result for o in outcomes], self.spec, n, self.chunk_size)

    def round_activity(self) -> tuple[WorkerActivity, ...]:
        """What each worker did since this was last asked: in the last batch, or the
        asynchronous chunks finished since (:class:`ReportsWorkerActivity`)."""
        recent, self._recent = self._recent, []
        return _activity_of(recent)

    # -- asynchronous evaluation (AsynchronousSimulation) ------------------------------
    def capacity(self) -> int:
        """Chunks that keep every worker busy, with the next chunk waiting on each."""
        return len([w for w in self._current_workers() if w is not None] or [None]) \
            * IN_FLIGHT_PER_WORKER

    @reports_scheduler_loss
    def submit(self, parameters, iteration: float = 0.0):
        """Start one chunk of up to ``chunk_size`` parameter sets; returns its future."""
        values = {name: np.asarray(parameters[name], dtype=float)
                  for name in self.spec.parameter_names}
        size = len(next(iter(values.values())))
        if not 0 < size <= self.chunk_size:
            raise ConfigurationError(f"A chunk of {size} parameter sets was submitted to a "
                                     f"simulation of chunks of {self.chunk_size}.")
        pad = self.chunk_size - size
        chunk = {name: np.concatenate([v, np.repeat(v[-1:], pad)]) for name, v in values.items()}
        backend = self.backend
        future = backend.client.submit(
            run_chunk, self.token, self._spec_future, backend.inner, backend.inner_options,
            chunk, iteration, self._errors_future, key=f"modelfit-chunk-{uuid.uuid4().hex}",
            pure=False, retries=backend.retries)
        self._submitted[future] = size
        return future

    @reports_scheduler_loss
    def next_finished(self):
        """Wait for a submitted chunk: its future and its result (padding removed)."""
        if not self._submitted:
            raise ConfigurationError("next_finished() called with no chunk submitted.")
        future = next(iter(self._first_finished(self._submitted)))
        size = self._submitted.pop(future)
        outcome = future.result()
        self._recent.append((outcome, size))
        return future, _merge([outcome.result], self.spec, size, self.chunk_size)

    def cancel_all(self) -> None:
        """Cancel the submitted chunks not yet returned."""
        for future in self._submitted:
            future.cancel()
        self._submitted.clear()

    def compute_errors_with(self, errors_here) -> None:
        """Score each chunk on its worker with ``errors_here`` (sent once, here):
        errors travel back instead of traces. ``None`` sends traces again."""
        self.errors_here = errors_here
        self._send_errors_here()

    def close(self) -> None:
        client = self.backend.client
        if client is not None and client.status == "running":
            client.run(release_simulation, self.token)


def _activity_of(outcomes: list[tuple[ChunkOutcome, int]]) -> tuple[WorkerActivity, ...]:
    """Per worker: seconds busy, parameter sets (padding not counted) and chunks."""
    busy: dict[str, list] = {}
    for outcome, real in outcomes:
        entry = busy.setdefault(outcome.worker, [0.0, 0, 0])
        entry[0] += outcome.busy_s
        entry[1] += real
        entry[2] += 1
    return tuple(WorkerActivity(worker, seconds, samples, chunks)
                 for worker, (seconds, samples, chunks) in sorted(busy.items()))


class DaskBackend:
    """Simulate batches on a dask.distributed cluster.

    The cluster (``docs/distributed_and_storage.md``, "Clusters"): a LocalCluster
    started here (default), a running scheduler (``address``), or batch jobs of
    dask-jobqueue (``cluster="slurm"``, ``"pbs"``, ``"sge"``, ``"lsf"``, ...). Its
    workers must run one thread each and this process's versions of Python,
    modelfit, Brian 2, numpy and dask: checked before anything is simulated.

    Parameters
    ----------
    address : str, optional
        Scheduler of an existing cluster (``"tcp://host:8786"``).
    n_workers : int, optional
        Workers of the LocalCluster (default: one per core).
    chunks : int, optional
        Parts each batch is split into (default: ``chunks_per_worker`` per worker,
        each of at least MIN_CHUNK_SIZE parameter sets).
    chunks_per_worker : int
        Chunks per worker when ``chunks`` is not given (default 1). With more than
        IN_FLIGHT_PER_WORKER (2), the chunks beyond each worker's first two go to
        whichever worker finishes first, so faster workers simulate more: for
        workers of unequal speed. Each chunk costs its worker the fixed part of a run.
    inner : str
        Backend each worker uses (default ``"runtime"``).
    inner_options : dict
        Options of the inner backend (e.g. ``{"codegen_target": "numpy"}``).
    retries : int
        Extra attempts for a chunk whose task raised (a worker's death is
        handled by dask itself, which reschedules the chunk).
    asynchronous : bool
        Evaluate asynchronously (default False): with an optimizer that takes errors
        as they come (nevergrad), each worker gets new points as soon as it finishes
        a chunk, instead of waiting for the round's last chunk. A seed then no longer
        repeats a fit exactly; see docs/distributed_and_storage.md.
    client : dask.distributed.Client, optional
        A client of your own (its cluster is checked like any other).
    cluster : str, optional
        ``"local"`` (the default without ``address``) or a dask-jobqueue kind:
        ``"slurm"``, ``"pbs"``, ``"sge"``, ``"lsf"``, ``"htcondor"``, ``"moab"``,
        ``"oar"`` (needs ``pip install 'modelfit-brian2[jobqueue]'``).
    cluster_options : dict, optional
        Options of the cluster class: for a batch queue, of one job (``cores``,
        ``memory``, ``walltime``, ``queue``, ``account``, ``job_script_prologue``,
        ...; ``processes`` defaults to ``cores``: one single-threaded worker per
        core); for ``"local"``, further options of ``LocalCluster``.
    jobs : int, optional
        Batch jobs to submit (a batch queue needs ``jobs`` or ``adapt``).
    adapt : dict, optional
        Submit jobs as the fit needs them: ``{"minimum": 1, "maximum": 16}``
        (workers) or ``{"minimum_jobs": ..., "maximum_jobs": ...}``.
    threads_per_worker : int
        Threads of each LocalCluster worker: 1, the only value that gives right
        results (a worker keeps one prepared simulation per fit).
    memory_limit : str or float
        Memory of each LocalCluster worker (``"2GB"``; ``"auto"``: the machine's
        memory shared equally; 0: no limit). A batch job's is ``cluster_options``'
        ``memory``.
    timeout_s : float
        How long the scheduler may stay silent (connecting, or reconnecting after
        losing it in a fit) before the backend gives up.
    workers_timeout_s : float
        How long to wait for the first worker of submitted batch jobs.
    """

    name = "dask"
    simulates_running_sums = True  # running_sums: the gradient optimizer's rounds
    scores_remotely = True
    """Batches are recorded and scored on the workers (see ``compute_errors_with``)."""

    def __init__(self, address: str | None = None, n_workers: int | None = None,
                 chunks: int | None = None, inner: str = "runtime",
                 inner_options: dict | None = None, retries: int = 1, client=None, *,
                 chunks_per_worker: int = CHUNKS_PER_WORKER, asynchronous: bool = False,
                 cluster: str | None = None, cluster_options: dict | None = None,
                 jobs: int | None = None, adapt: dict | None = None,
                 threads_per_worker: int = 1, memory_limit: str | float | None = "auto",
                 timeout_s: float = CONNECT_TIMEOUT_S,
                 workers_timeout_s: float = WORKERS_TIMEOUT_S):
        kind = None if cluster is None else check_cluster_kind(cluster)
        if address is not None and kind is not None:
            raise ConfigurationError(
                f"address={address!r} and cluster={cluster!r} both say where to simulate; "
                f"give one (an address reaches a running scheduler, cluster starts one).")
        if address is not None and cluster_options:
            raise ConfigurationError("cluster_options are for a cluster started here "
                                     "(cluster=...); a scheduler given by its address "
                                     "runs already.")
        batch = kind is not None and kind != "local"
        if kind is not None and batch:
            require_jobqueue(kind)
            if n_workers is not None or memory_limit != "auto":
                raise ConfigurationError(
                    f"n_workers and memory_limit are options of a local cluster; with "
                    f"cluster={kind!r}, give jobs=N and each job's cores and memory in "
                    f"cluster_options (one worker per core).")
        check_job_count(kind, jobs, adapt)
        check_threads_per_worker(threads_per_worker)
        self.address = address
        self.n_workers = None if batch else (n_workers or os.cpu_count() or 1)
        if self.n_workers is not None and self.n_workers < 1:
            raise ConfigurationError("n_workers must be at least 1.")
        self.chunks = chunks
        self.chunks_per_worker = int(chunks_per_worker)
        if self.chunks_per_worker < 1:
            raise ConfigurationError(f"chunks_per_worker must be at least 1, not "
                                     f"{chunks_per_worker!r}.")
        self.inner = inner
        self.inner_options = dict(inner_options or {})
        self.retries = int(retries)
        self.asynchronous = bool(asynchronous)
        self.client = client
        self.cluster = None
        """The cluster this backend started (LocalCluster or jobqueue), if any."""
        self.cluster_kind = kind
        self.cluster_options = dict(cluster_options or {})
        self.jobs = jobs
        self.adapt = None if adapt is None else dict(adapt)
        self.threads_per_worker = threads_per_worker
        self.memory_limit = memory_limit
        self.timeout_s = float(timeout_s)
        self.workers_timeout_s = float(workers_timeout_s)
        self.scheduler_address: str | None = address
        self._own_client = client is None
        self._checked_workers: frozenset[str] = frozenset()
        self._set_up_client = None

    def _ensure_client(self):
        """The client, connected (or the cluster started) on first use; the workers
        that joined since the last call are checked (threads, versions)."""
        if self.client is not None and self._own_client and \
                scheduler_lost(self.client, self.timeout_s):
            self.shutdown()  # a scheduler lost earlier: connect again, or start anew
        client = self.client if self.client is not None else self._open_cluster()
        try:
            self._checked_workers = check_workers(client, self._checked_workers)
        except ConfigurationError:
            if self.cluster is not None:
                self.shutdown()  # refused: cancel the batch jobs rather than let them idle
            raise
        if self._set_up_client is not client:
            from modelfit_plugins.backends.dask_worker_setup import (
                ImportBrianFirst, SimulateWithoutInterference)
            client.register_plugin(ImportBrianFirst())
            client.register_plugin(SimulateWithoutInterference())
            self._set_up_client = client
        return client

    def _open_cluster(self):
        if not self._own_client:
            raise ConfigurationError(
                "The dask client given to this backend (client=...) was closed; create "
                "the backend with a new client, or with the scheduler's address.")
        self._checked_workers = frozenset()
        kind = self.cluster_kind
        if self.address is not None:
            client = connect(self.address, self.timeout_s)
        elif kind is None or kind == "local":
            self.cluster = start_local_cluster(self.n_workers or 1, self.memory_limit,
                                               self.cluster_options)
            client = client_of(self.cluster, self.timeout_s)
        else:
            self.cluster = jobqueue_cluster(kind, self.cluster_options)
            client = self.client = client_of(self.cluster, self.timeout_s)
            try:
                submit_jobs(self.cluster, self.jobs, self.adapt)
                wait_for_first_worker(client, kind, self.workers_timeout_s)
            except BaseException:
                self.shutdown()  # cancel what was submitted; the next prepare starts anew
                raise
        self.client = client
        if self.cluster is not None:
            # at exit, let go of the scattered data before dask stops the workers (which
            # would log "lose scattered data" errors), and cancel the batch jobs: atexit
            # runs this before dask's own
            atexit.register(_shutdown_if_alive, weakref.ref(self))
        self.scheduler_address = getattr(client.scheduler, "address", None)
        return client

    def prepare(self, spec: SimulationSpec) -> DaskSimulation:
        client = self._ensure_client()
        workers = max(len(client.scheduler_info().get("workers", {})), 1)
        wanted = self.chunks or workers * self.chunks_per_worker
        # a chunk's own cost (a task, the per-step overhead of a run) must stay small
        # against its simulation: no more chunks than MIN_CHUNK_SIZE sets allow
        if self.chunks is None:
            wanted = min(wanted, max(workers, spec.n_samples // MIN_CHUNK_SIZE))
            if workers == 1:
                wanted = 1  # nobody to balance with: one chunk, one task per round
        n_chunks = max(1, min(wanted, spec.n_samples))
        chunk_size = math.ceil(spec.n_samples / n_chunks)
        n_chunks = math.ceil(spec.n_samples / chunk_size)
        token = preparation_token(attrs.evolve(spec, n_samples=chunk_size), self.inner,
                                  self.inner_options)
        return DaskSimulation(self, spec, n_chunks, chunk_size, token=token,
                              asynchronous=self.asynchronous)

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
        """Close the client and the cluster started by this backend (a batch queue's
        jobs are cancelled)."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def __repr__(self):
        where = self.address or (f"{self.cluster_kind} cluster" if self.n_workers is None
                                 else f"LocalCluster({self.n_workers} workers)")
        return f"DaskBackend({where}, inner={self.inner!r})"
