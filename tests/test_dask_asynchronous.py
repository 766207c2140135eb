"""Asynchronous evaluation on dask (issue 25): chunks told as they finish, every point
simulated once and told once; generation-based optimizers refused; per-worker activity."""

import numpy as np
import pytest
from brian2 import mV, ms

from modelfit_core import NevergradOptimizer, Pipeline, PymooOptimizer
from modelfit_core.contracts.errors import ConfigurationError
from modelfit_core.contracts.protocols import WorkerActivity
from modelfit_core.registry.plugin_registry import Registry
from passive_membrane import BOUNDS, MODEL, recordings

REGISTRY = Registry(distributions=["modelfit-brian2"])


@pytest.fixture(scope="module")
def asynchronous_dask():
    backend = REGISTRY.lookup("backends", "dask")(n_workers=2, asynchronous=True)
    yield backend
    backend.shutdown()


def fitter_on(backend, callback=None, resting=-70 * mV, **options):
    currents, v = recordings()
    pipe = Pipeline.from_names(seed=5, feedback=callback, backend=backend, registry=REGISTRY)
    return pipe.trace_fitter(model=MODEL, input={"I": currents}, output={"v": v},
                             dt=0.1 * ms, n_samples=30, param_init={"v": -70 * mV},
                             namespace={"El": resting}, **options)


@pytest.mark.slow
def test_every_point_simulated_once_told_once_with_its_own_error(asynchronous_dask):
    seen = []
    fitter = fitter_on(asynchronous_dask, callback=lambda *args: seen.append(args[-1]))
    optimizer = NevergradOptimizer(method="DE", seed=2)
    told = []
    original_tell = optimizer.tell
    optimizer.tell = lambda parameters, errors: (told.append(len(errors)),
                                                 original_tell(parameters, errors))[1]
    fitter.fit(n_rounds=3, optimizer=optimizer, **BOUNDS)
    history = fitter.current_fit.history
    assert [len(r.errors) for r in history.rounds] == [30, 30, 30]
    assert sum(told) == 90 and len(told) > 3  # told chunk by chunk, not round by round
    points = np.vstack([r.parameters for r in history.rounds])
    assert len({row.tobytes() for row in points}) == 90  # no point counted twice
    # each stored error is the error of its own parameters (runtime, one by one)
    check = fitter_on("runtime")
    check.fit(n_rounds=1, optimizer=NevergradOptimizer(seed=1), callback=None, **BOUNDS)
    simulation = check.current_fit.simulation
    n = check.n_samples
    result = simulation.run(check.current_fit.space.columns(points[:n]))
    again = check.current_fit.objective.score(result, n).total
    np.testing.assert_allclose(again, np.concatenate([r.errors for r in history.rounds])[:n],
                               rtol=1e-12)
    # the rounds say what each worker did; the feedback gets it too
    for record in history.rounds:
        assert record.workers and all(isinstance(w, WorkerActivity) for w in record.workers)
        assert sum(w.n_samples for w in record.workers) >= 1
    assert all("workers" in info for info in seen)


@pytest.mark.slow
def test_generation_based_optimizer_refused_before_simulating(asynchronous_dask):
    fitter = fitter_on(asynchronous_dask)
    with pytest.raises(ConfigurationError, match="asynchronous.*nevergrad"):
        fitter.fit(n_rounds=1, optimizer=PymooOptimizer(method="DE", seed=1),
                   callback=None, **BOUNDS)
    assert fitter.current_fit is None or not fitter.current_fit.history.rounds


@pytest.mark.slow
def test_asynchronous_fit_resumes_from_storage(asynchronous_dask, tmp_path):
    storage = f"sqlite:///{tmp_path / 'async.db'}"
    first = fitter_on(asynchronous_dask, storage=storage, study="async")
    first.fit(n_rounds=2, optimizer=NevergradOptimizer(method="DE", seed=3), callback=None,
              **BOUNDS)
    best = first.current_fit.best_error
    again = fitter_on(asynchronous_dask, storage=storage, study="async")
    again.fit(n_rounds=4, optimizer=NevergradOptimizer(method="DE", seed=3), callback=None,
              resume=True, **BOUNDS)
    history = again.current_fit.history
    assert len(history.rounds) == 4
    np.testing.assert_array_equal(history.rounds[0].parameters,
                                  first.current_fit.history.rounds[0].parameters)
    assert again.current_fit.best_error <= best


@pytest.mark.slow
def test_synchronous_rounds_report_worker_activity():
    backend = REGISTRY.lookup("backends", "dask")(n_workers=2, chunks_per_worker=2)
    try:
        fitter = fitter_on(backend)
        fitter.fit(n_rounds=2, optimizer=NevergradOptimizer(seed=1), callback=None,
                   **BOUNDS)
        for record in fitter.current_fit.history.rounds:
            assert sum(w.n_samples for w in record.workers) == 30
            assert sum(w.chunks for w in record.workers) == 2  # 30 sets: chunks of >= 15
            assert all(w.busy_s > 0 for w in record.workers)
    finally:
        backend.shutdown()


def worker_preparations(dask_worker):
    from modelfit_plugins.backends.dask_worker_tasks import WORKER_SIMULATIONS
    return WORKER_SIMULATIONS.preparations


@pytest.mark.slow
def test_a_second_fit_of_the_same_model_reuses_what_the_workers_prepared():
    backend = REGISTRY.lookup("backends", "dask")(n_workers=2)
    try:
        first = fitter_on(backend)
        first.fit(n_rounds=1, optimizer=NevergradOptimizer(seed=1), callback=None, **BOUNDS)
        client = backend.client
        before = client.run(worker_preparations)
        del first  # its simulation is released: kept idle on the workers
        second = fitter_on(backend)
        second.fit(n_rounds=2, optimizer=NevergradOptimizer(seed=2), callback=None,
                   **BOUNDS)
        assert client.run(worker_preparations) == before
        other = fitter_on(backend, resting=-65 * mV)  # another model: prepared anew
        other.fit(n_rounds=1, optimizer=NevergradOptimizer(seed=2), callback=None, **BOUNDS)
        after = client.run(worker_preparations)
        assert all(after[worker] == before[worker] + 1 for worker in before)
    finally:
        backend.shutdown()


@pytest.mark.slow
def test_the_dashboard_gets_best_traces_although_errors_travel_instead(asynchronous_dask,
                                                                       tmp_path):
    """Rounds scored on the workers bring no traces back: the display simulates each new
    best point once here, so the dashboard still draws the best fit."""
    from modelfit_core.results.database import open_for_reading
    path = tmp_path / "display.db"
    fitter = fitter_on(asynchronous_dask, storage=f"sqlite:///{path}", study="shown")
    fitter.fit(n_rounds=2, optimizer=NevergradOptimizer(method="DE", seed=4), callback=None,
               **BOUNDS)
    connection, _ = open_for_reading(path)
    try:
        rows = connection.execute("SELECT round, sample, output FROM best_traces "
                                  "WHERE study = 'shown'").fetchall()
    finally:
        connection.close()
    assert rows and {output for _, _, output in rows} == {"v"}
    history = fitter.current_fit.history
    best_round, best_sample, _ = max(rows)
    assert history.rounds[best_round].errors[best_sample] == pytest.approx(
        min(np.min(r.errors) for r in history.rounds[:best_round + 1]))
