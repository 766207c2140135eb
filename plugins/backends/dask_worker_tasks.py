"""What runs in a dask worker process for the dask backend: its tasks and the
simulations it keeps prepared between them.

Kept apart from :mod:`.dask_backend`, which runs in the fitting process: these
functions are sent to the workers by reference, and their state
(:data:`WORKER_SIMULATIONS`) lives in each worker.
"""

from __future__ import annotations

import collections
import hashlib
import time

import attrs

from modelfit_core.contracts.simulation import SimulationResult, SimulationSpec


class WorkerSimulations:
    """The prepared simulations of one worker process, by preparation token.

    A token names what was prepared (the chunk's specification and the inner
    backend), so a later fit of the same model on the same data finds the
    simulation its predecessor prepared. One that a fit lets go of is kept idle,
    the IDLE_KEPT most recent ones, for the next fit (several seeds, a benchmark's
    runs); older ones are closed.
    """

    IDLE_KEPT = 2

    def __init__(self):
        self._in_use: dict[str, object] = {}
        self._idle: collections.OrderedDict[str, object] = collections.OrderedDict()
        self.preparations = 0
        """How many simulations this worker prepared (a reused one is not counted)."""

    def get(self, token: str, spec: SimulationSpec, inner: str, inner_options: dict):
        """The prepared simulation of ``token``, prepared here on first use."""
        prepared = self._in_use.get(token)
        if prepared is None:
            prepared = self._idle.pop(token, None)
        if prepared is None:
            from modelfit_core.plugin_api import shared_registry
            backend = shared_registry().lookup("backends", inner)(**inner_options)
            prepared = backend.prepare(spec)
            self.preparations += 1
        self._in_use[token] = prepared
        return prepared

    def release(self, token: str) -> None:
        """Keep ``token``'s simulation idle for a later fit (closing the oldest idle)."""
        prepared = self._in_use.pop(token, None)
        if prepared is None:
            return
        self._idle[token] = prepared
        while len(self._idle) > self.IDLE_KEPT:
            _, oldest = self._idle.popitem(last=False)
            oldest.close()


WORKER_SIMULATIONS = WorkerSimulations()
"""This (worker) process's prepared simulations."""


def preparation_token(chunk_spec: SimulationSpec, inner: str, inner_options: dict) -> str:
    """A name of what a worker prepares: equal for the same specification and inner
    backend (a digest of their pickle; unequal pickles of equal objects only cost a
    second preparation)."""
    import cloudpickle
    digest = hashlib.sha256(cloudpickle.dumps((chunk_spec, inner, sorted(inner_options.items()))))
    return digest.hexdigest()


@attrs.frozen
class ChunkOutcome:
    """What a worker sends back for one chunk: its result and how long it took."""

    result: SimulationResult
    worker: str
    busy_s: float


def run_chunk(token, spec, inner, inner_options, parameters, iteration,
               errors_here=None) -> ChunkOutcome:
    """Worker task: simulate one chunk of parameter sets (compiling on first use);
    with ``errors_here``, score it here and return errors instead of traces."""
    from distributed import get_worker
    started = time.perf_counter()
    prepared = WORKER_SIMULATIONS.get(token, spec, inner, inner_options)
    result = prepared.run(parameters, iteration=iteration)
    if errors_here is not None:
        result = errors_here(result, spec.n_samples)
    return ChunkOutcome(result, get_worker().address, time.perf_counter() - started)


def release_simulation(token):
    """Worker task: a fit let go of ``token``'s simulation (kept idle for a later fit)."""
    WORKER_SIMULATIONS.release(token)
    return token
