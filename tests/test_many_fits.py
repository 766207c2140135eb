"""fit_many (issue 25): independent fits side by side on a 2-worker LocalCluster, each its own
study in one SQLite file; the same results as the fits run one by one, a failing job that
keeps the others' results, running again to resume, and two workers writing one file at
once. The model is the conftest's passive membrane (compiled once for the suite)."""

from __future__ import annotations

import io
import itertools
import os
import sqlite3

import numpy as np
import pytest
from brian2 import amp, nS, pF, volt
from conftest import DT, PASSIVE_MODEL, El

from modelfit_core import FitJob, Pipeline, fit_many
from modelfit_core.contracts.errors import ConfigurationError, ParameterError
from modelfit_core.registry.entry_points import DISTRIBUTION
from modelfit_core.registry.plugin_registry import Registry
from modelfit_core.results.storage import read_results

BOUNDS = {"gl": [1 * nS, 100 * nS], "C": [10 * pF, 500 * pF]}


def recordings():
    """Two current steps and the passive response to them (gl = 10 nS, tau = 5 ms)."""
    currents = np.zeros((2, 200))
    currents[0, 20:], currents[1, 20:] = 0.1e-9, 0.3e-9
    t = np.clip(np.arange(200) * 1e-4 - 20e-4, 0, None)
    return currents * amp, (-70e-3 + currents / 10e-9 * (1 - np.exp(-t / 5e-3))) * volt


def passive_fit(storage=None, study=None, seed=1, n_samples=6):
    """The job's fitter (module level: the workers import it by name)."""
    currents, v = recordings()
    pipe = Pipeline.from_names(seed=seed, feedback=None,
                               registry=Registry(distributions=[DISTRIBUTION]))
    return pipe.trace_fitter(model=PASSIVE_MODEL, input={"I": currents}, output={"v": v},
                             dt=DT, n_samples=n_samples, param_init={"v": El},
                             namespace={"El": El}, storage=storage, study=study)


def without_storage(storage=None, study=None, seed=1):
    return passive_fit(seed=seed)


@pytest.fixture(scope="module")
def dask_backend():
    backend = Registry(distributions=[DISTRIBUTION]).lookup("backends", "dask")(n_workers=2)
    yield backend
    backend.shutdown()


@pytest.fixture(scope="module")
def worker_pids(dask_backend):
    dask_backend.fit_executor()  # starts the cluster
    return {str(pid) for pid in dask_backend.client.run(os.getpid).values()}


@pytest.mark.slow
def test_seeds_side_by_side_equal_the_same_fits_one_by_one(dask_backend, worker_pids,
                                                           tmp_path):
    jobs = FitJob.for_each(passive_fit, seed=[1, 2, 3], n_rounds=3, fit_options=BOUNDS)
    outcomes = fit_many(jobs, tmp_path / "many.db", backend=dask_backend, progress=False)
    assert [o.study for o in outcomes] == [f"passive_fit/seed={s}" for s in (1, 2, 3)]
    assert [(o.ok, o.status, o.rounds) for o in outcomes] == [(True, "ran", 3)] * 3
    assert {o.where.rsplit(":", 1)[1] for o in outcomes} <= worker_pids
    for seed, outcome in zip((1, 2, 3), outcomes):
        fitter = passive_fit(seed=seed)
        best, error = fitter.fit(n_rounds=3, **BOUNDS)
        assert outcome.best_error == error and outcome.best_params == best
        stored = read_results(tmp_path / "many.db", outcome.study, format="dataframe")
        assert stored.equals(fitter.results(format="dataframe"))


@pytest.mark.slow
def test_one_failing_job_keeps_the_others_results(dask_backend, tmp_path):
    reversed_bounds = {"gl": [100 * nS, 1 * nS], "C": BOUNDS["C"]}
    jobs = [FitJob.from_function(passive_fit, n_rounds=2, fit_options=BOUNDS, seed=1),
            FitJob.from_function(passive_fit, n_rounds=2, fit_options=reversed_bounds,
                                 seed=2, study="reversed bounds"),
            FitJob.from_function(passive_fit, n_rounds=2, fit_options=BOUNDS, seed=3)]
    printed = io.StringIO()
    outcomes = fit_many(jobs, tmp_path / "many.db", backend=dask_backend, stream=printed)
    assert [(o.ok, o.status, o.rounds) for o in outcomes] == [
        (True, "ran", 2), (False, "failed", 0), (True, "ran", 2)]
    failed = outcomes[1]
    assert isinstance(failed.error, ParameterError)
    assert str(failed).startswith("reversed bounds: FAILED")
    assert "passive_fit(seed=2)" in str(failed) and "lower bound" in str(failed)
    assert "reversed bounds: FAILED: ParameterError: Bounds of 'gl'" in printed.getvalue()
    assert all(o.best_params is not None for o in (outcomes[0], outcomes[2]))


@pytest.mark.slow
def test_running_again_reads_finished_studies_back_and_resumes_the_others(dask_backend,
                                                                           tmp_path):
    storage = tmp_path / "many.db"
    jobs = FitJob.for_each(passive_fit, seed=[1, 2, 3], n_rounds=4, fit_options=BOUNDS)
    # seed 1 finished, here (no backend: one after another in this process)
    [first] = fit_many(jobs[:1], storage, progress=False)
    assert (first.status, first.where, first.rounds) == ("ran", "this process", 4)
    # seed 2 interrupted after 2 of its 4 rounds
    calls = itertools.count(1)
    interrupted = passive_fit(storage=f"sqlite:///{storage}", study="passive_fit/seed=2",
                              seed=2)
    interrupted.fit(n_rounds=4, callback=lambda *args: next(calls) >= 2, **BOUNDS)
    outcomes = fit_many(jobs, storage, backend=dask_backend, progress=False)
    assert [(o.status, o.rounds) for o in outcomes] == [("stored", 4), ("resumed", 4),
                                                        ("ran", 4)]
    assert outcomes[0].best_error == first.best_error
    whole = passive_fit(seed=2)
    whole.fit(n_rounds=4, **BOUNDS)
    assert read_results(storage, "passive_fit/seed=2", format="dataframe").equals(
        whole.results(format="dataframe"))


@pytest.mark.slow
def test_two_workers_write_one_file_at_once(dask_backend, worker_pids, tmp_path):
    """Many short rounds on both workers: every round of every study is stored, and the
    two processes' fits overlapped in time (SQLite in WAL mode, busy timeout)."""
    jobs = [FitJob.from_function(passive_fit, n_rounds=40, fit_options=BOUNDS, seed=seed,
                                 n_samples=4) for seed in range(1, 7)]
    outcomes = fit_many(jobs, tmp_path / "many.db", backend=dask_backend, progress=False)
    assert [(o.ok, o.rounds) for o in outcomes] == [(True, 40)] * 6
    with sqlite3.connect(tmp_path / "many.db") as connection:
        sessions = connection.execute("SELECT started, ended, pid FROM sessions").fetchall()
        assert connection.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 6 * 40 * 4
    assert {str(pid) for _, _, pid in sessions} == worker_pids
    assert any(max(a[0], b[0]) < min(a[1], b[1])
               for a, b in itertools.combinations(sessions, 2) if a[2] != b[2])


def test_jobs_are_checked_before_anything_runs(tmp_path):
    storage = tmp_path / "many.db"
    same = [FitJob.from_function(passive_fit, n_rounds=1, fit_options=BOUNDS, seed=1)] * 2
    with pytest.raises(ConfigurationError, match="same study.*passive_fit/seed=1"):
        fit_many(same, storage, progress=False)
    assert not storage.exists()
    with pytest.raises(ConfigurationError, match="n_rounds"):
        FitJob.from_function(passive_fit, n_rounds=1, fit_options={"n_rounds": 3})
    with pytest.raises(ConfigurationError, match="seed=, n_rounds= and study="):
        FitJob(config=tmp_path / "fit.toml", arguments={"seed": 1})
    with pytest.raises(ConfigurationError, match="varies only its seed"):
        FitJob.for_each(tmp_path / "fit.toml", data=["a.csv"])
    with pytest.raises(ConfigurationError, match="Unsupported storage URL"):
        fit_many([FitJob.from_function(passive_fit, n_rounds=1)], "postgresql://db/x")


def test_for_each_makes_every_combination_with_its_own_study():
    jobs = FitJob.for_each(passive_fit, data=["cell1.csv", "cell2.csv"], seed=[1, 2],
                           n_rounds=5, fit_options=BOUNDS)
    assert [job.arguments for job in jobs] == [
        {"data": d, "seed": s} for d in ("cell1.csv", "cell2.csv") for s in (1, 2)]
    assert [job.label for job in jobs][:2] == ["passive_fit(data=cell1.csv, seed=1)",
                                               "passive_fit(data=cell1.csv, seed=2)"]
    configs = FitJob.for_each("hh.toml", seed=range(1, 4))
    assert [(job.config.name, job.seed) for job in configs if job.config] == [
        ("hh.toml", 1), ("hh.toml", 2), ("hh.toml", 3)]


def test_a_fitter_that_ignores_the_storage_is_that_jobs_error(tmp_path):
    outcomes = fit_many([FitJob.from_function(without_storage, n_rounds=1,
                                              fit_options=BOUNDS)],
                        tmp_path / "many.db", progress=False)
    assert isinstance(outcomes[0].error, ConfigurationError)
    assert "storage=storage, study=study" in str(outcomes[0].error)
