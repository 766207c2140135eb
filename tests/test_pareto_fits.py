"""Multi-objective fits (issue 13): a known front recovered through a tiny Brian model,
seeds, resume, the stored objective vectors, bad input, the built-in NSGA optimizers'
contract, plots and the command line.

The model holds ``v = w = x`` for the whole recording; with recordings ``v = 0`` and
``w = 2`` and the mean squared error, the objectives are Schaffer's
``f1 = x**2`` and ``f2 = (x - 2)**2``: the Pareto set is ``0 <= x <= 2`` and the front
``f2 = (sqrt(f1) - 2)**2``.
"""

from __future__ import annotations

import functools
import json
import sqlite3

import numpy as np
import pytest
from brian2 import mV, ms

from modelfit_core import (ConfigurationError, FitStateError, MSEMetric, NevergradOptimizer,
                           TraceFitter)
from modelfit_core.registry.plugin_registry import Registry
from modelfit_core.results.database import ADDED_IN_3, SCHEMA_VERSION
from modelfit_core.results.pareto import hypervolume, non_dominated
from modelfit_core.results.storage import read_history, read_results
from modelfit_core.testing import check_multiobjective_optimizer

from modelfit_plugins.optimizers.pymoo_multiobjective import (NSGA2Optimizer,
                                                              NSGA3Optimizer)

MODEL = """
dv/dt = I/second : 1
dw/dt = I/second : 1
x : 1 (constant)
"""
N_STEPS = 4
BOUNDS = {"x": [-5, 5]}
BUILT_IN = Registry(distributions=["modelfit-brian2"])


def schaffer(n_samples=16, **options):
    return TraceFitter(model=MODEL, input={"I": np.zeros((1, N_STEPS))},
                       output={"v": np.zeros((1, N_STEPS)), "w": np.full((1, N_STEPS), 2.0)},
                       dt=0.1 * ms, n_samples=n_samples, param_init={"v": "x", "w": "x"},
                       method="euler", **options)


def fit_front(seed=1, n_rounds=6, optimizer=NSGA2Optimizer, **options):
    fitter = schaffer(**options)
    fitter.fit(n_rounds=n_rounds, objectives="separate", optimizer=optimizer(seed=seed),
               callback=None, **BOUNDS)
    return fitter


@pytest.fixture(scope="module")
def fitted():
    return fit_front(n_rounds=10)


# -- the front ------------------------------------------------------------------------------
def test_the_known_front_is_recovered(fitted):
    front = fitted.pareto_front(format="dict", use_units=False)
    x, f1, f2 = front["x"], front["objectives"]["v"], front["objectives"]["w"]
    np.testing.assert_allclose(f1, x ** 2, rtol=1e-12)
    np.testing.assert_allclose(f2, (x - 2) ** 2, rtol=1e-12)
    assert np.all((x > -0.05) & (x < 2.05))  # the Pareto set, up to the nearest evaluation
    assert f1.min() < 0.01 and f2.min() < 0.01  # both ends reached
    # the best f2 for each f1 is (sqrt(f1) - 2)**2: the members lie on it
    np.testing.assert_allclose(f2, (np.sqrt(f1) - 2) ** 2, atol=0.2)
    analytic = np.linspace(0, 2, 2001)
    exact = hypervolume(np.column_stack([analytic ** 2, (analytic - 2) ** 2]), [4.0, 4.0])
    assert hypervolume(np.column_stack([f1, f2]), [4.0, 4.0]) > 0.97 * exact


def test_the_front_is_non_dominated_and_sorted(fitted):
    frame = fitted.pareto_front(format="dataframe")
    values = frame[["objective_v", "objective_w"]].to_numpy()
    assert non_dominated(values).all()
    assert np.all(np.diff(values[:, 0]) >= 0)
    everything = fitted.results(format="dataframe")
    all_values = everything[["objective_v", "objective_w"]].to_numpy()
    assert len(frame) == non_dominated(all_values).sum()  # no evaluation left out
    np.testing.assert_allclose(frame["errors"], values.sum(axis=1))


def test_front_formats_keep_units(fitted):
    rows = fitted.pareto_front()
    assert set(rows[0]) == {"x", "objectives", "errors", "round"}
    assert set(rows[0]["objectives"]) == {"v", "w"}
    unitful = TraceFitter(model="dv/dt = (I - v)/ms : volt\nx : volt (constant)",
                          input={"I": np.zeros((1, N_STEPS)) * mV},
                          output={"v": np.zeros((1, N_STEPS)) * mV}, dt=0.1 * ms, n_samples=4,
                          param_init={"v": "x"}, method="euler")
    with pytest.raises(ConfigurationError, match="single objective"):
        unitful.fit(objectives="separate", x=[-1 * mV, 1 * mV], callback=None)


def test_best_params_is_the_member_closest_to_the_ideal_point(fitted):
    front = fitted.pareto_front(format="dict", use_units=False)
    f = np.column_stack([front["objectives"]["v"], front["objectives"]["w"]])
    unit = (f - f.min(axis=0)) / (f.max(axis=0) - f.min(axis=0))
    k = int(np.argmin(np.hypot(*unit.T)))
    assert fitted.best_params["x"] == front["x"][k]
    assert fitted.best_objectives == pytest.approx({"v": f[k, 0], "w": f[k, 1]})
    assert fitted.best_error == pytest.approx(f[k].sum())
    assert 0.6 < fitted.best_params["x"] < 1.4  # the middle of the set, as f1 and f2 mirror


def test_select_applies_a_weighting_after_the_fit():
    fitter = fit_front(n_rounds=4)
    front = fitter.pareto_front(format="dict", use_units=False)
    assert fitter.select(weights={"v": 1, "w": 0})["x"] == front["x"][0]
    assert fitter.best_params["x"] == front["x"][0]  # the choice holds
    assert fitter.select(weights=[0, 1])["x"] == front["x"][-1]
    generated = fitter.generate(output_var="w")
    assert np.allclose(generated, front["x"][-1])  # generate() simulates the chosen member
    middle = fitter.select()
    assert 0 < middle["x"] < 2
    with pytest.raises(ConfigurationError, match="missing: w"):
        fitter.select(weights={"v": 1})


# -- seeds, storage, resume -------------------------------------------------------------------
def test_a_seed_reproduces_the_front_exactly():
    first = fit_front(seed=7, n_rounds=3, optimizer=NSGA3Optimizer)
    again = fit_front(seed=7, n_rounds=3, optimizer=NSGA3Optimizer)
    other = fit_front(seed=8, n_rounds=3, optimizer=NSGA3Optimizer)
    assert first.pareto_front(format="dataframe").equals(again.pareto_front(format="dataframe"))
    assert not first.pareto_front(format="dataframe").equals(
        other.pareto_front(format="dataframe"))


def test_storage_keeps_every_objective_vector_and_resume_gives_the_same_front(tmp_path):
    db = tmp_path / "fit.db"
    reference = fit_front(n_rounds=5)
    interrupted = schaffer(storage=f"sqlite:///{db}", study="mo")
    interrupted.fit(n_rounds=5, objectives="separate", optimizer=NSGA2Optimizer(seed=1),
                    callback=lambda *args: args[4] == 1, **BOUNDS)  # stops after 2 rounds
    assert len(interrupted.history.rounds) == 2
    resumed = schaffer(storage=f"sqlite:///{db}", study="mo")
    resumed.fit(n_rounds=5, objectives="separate", optimizer=NSGA2Optimizer(seed=1),
                resume=True, callback=None, **BOUNDS)
    assert resumed.pareto_front(format="dataframe").equals(
        reference.pareto_front(format="dataframe"))
    assert resumed.best_params == reference.best_params
    stored = read_results(db, "mo", format="dataframe")
    expected = reference.results(format="dataframe")
    np.testing.assert_array_equal(stored[["objective_v", "objective_w"]],
                                  expected[["objective_v", "objective_w"]])
    history = read_history(db, "mo")
    assert history.front.names == ("v", "w") and len(history.front) == len(
        reference.pareto_front())
    told = sqlite3.connect(db).execute(
        "SELECT told, told_objectives FROM evaluations LIMIT 1").fetchone()
    assert told[0] is None and len(json.loads(told[1])) == 2
    # resuming with other objectives (or none) is refused before anything is simulated
    with pytest.raises(Exception, match="objectives"):
        schaffer(storage=f"sqlite:///{db}", study="mo").fit(
            n_rounds=6, optimizer="nevergrad", resume=True, callback=None, **BOUNDS)


def test_a_version_1_database_is_read_and_migrated(tmp_path):
    db = tmp_path / "old.db"
    fitter = schaffer(storage=f"sqlite:///{db}", study="s")
    fitter.fit(n_rounds=1, optimizer=NevergradOptimizer(seed=1), callback=None, **BOUNDS)
    fitter.storage.close()
    connection = sqlite3.connect(db)
    with connection:  # what modelfit 0.2 wrote
        for table, column in (("evaluations", "objectives"),
                              ("evaluations", "told_objectives"),
                              ("studies", "objective_names"),
                              ("studies", "data_identity")):
            connection.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        for table in (*ADDED_IN_3, "normal_equations", "round_workers"):
            connection.execute(f"DROP TABLE {table}")
        connection.execute("PRAGMA user_version = 1")
    connection.close()
    assert len(read_results(db, "s")) == 30  # read as it is
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone() == (1,)
    resumed = schaffer(storage=f"sqlite:///{db}", study="s")
    resumed.fit(n_rounds=2, optimizer=NevergradOptimizer(seed=1), resume=True, callback=None,
                **BOUNDS)
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert len(read_results(db, "s")) == 60


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("call,error,pattern", [
    (lambda f: f.fit(objectives="separate", optimizer="nevergrad", **BOUNDS),
     ConfigurationError, "NevergradOptimizer minimizes a single error.*nsga2"),
    (lambda f: f.fit(optimizer="nsga2", **BOUNDS), ConfigurationError,
     "optimizes several objectives; pass objectives='separate'"),
    (lambda f: f.fit(objectives="pareto", **BOUNDS), ConfigurationError,
     "objectives must be 'separate'"),
    (lambda f: f.fit(objectives="features", **BOUNDS), ConfigurationError,
     "objectives='features' splits"),
    (lambda f: f.fit(objectives="separate", metric={"v": MSEMetric(), "w": MSEMetric()},
                     penalty="v", **BOUNDS), ConfigurationError, "Two objectives are called v"),
    (lambda f: f.pareto_front(), FitStateError, "fit\\(objectives=...\\) first"),
])
def test_bad_input_is_a_clear_error_before_any_simulation(call, error, pattern, monkeypatch):
    fitter = schaffer()
    monkeypatch.setattr(type(fitter.problem), "prepared",
                        lambda *a, **k: pytest.fail("simulated"))
    with pytest.raises(error, match=pattern):
        call(fitter)


def test_single_objective_fits_have_no_front_and_mismatched_counts_are_refused():
    fitter = schaffer(n_samples=4)
    fitter.fit(optimizer="nevergrad", callback=None, **BOUNDS)
    with pytest.raises(FitStateError, match="single error"):
        fitter.pareto_front()
    with pytest.raises(ConfigurationError, match="objectives=None; pass restart=True"):
        fitter.fit(objectives="separate", **BOUNDS)
    optimizer = NSGA2Optimizer(seed=1)
    optimizer.set_objectives(["a", "b", "c"])
    optimizer.initialize(["x"], 4, 1, x=[0, 1])
    vectors = optimizer.ask(4)
    with pytest.raises(ConfigurationError, match=r"\(4, 3\).*got shape \(4, 2\)"):
        optimizer.tell(vectors, np.zeros((4, 2)))
    with pytest.raises(FitStateError, match="set_objectives"):
        NSGA3Optimizer().initialize(["x"], 4, 1, x=[0, 1])


# -- the optimizers' contract (nsga2 and nsga3: tests/test_plugin_contracts.py) ------------
class Forgetful:
    """Ignores its objectives: recommends the first point asked, accepts any shape."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def set_objectives(self, names):
        pass

    def initialize(self, parameter_names, popsize, rounds, **bounds):
        self.box = np.array([bounds[n] for n in parameter_names], dtype=float)
        self.first = None
        return popsize

    def ask(self, n_samples):
        points = self.box[:, 0] + self.rng.random((n_samples, len(self.box))) * np.ptp(
            self.box, axis=1)
        self.first = points[0] if self.first is None else self.first
        return list(points)

    def tell(self, parameters, errors):
        pass

    def recommend(self):
        return self.first


def test_the_contract_check_catches_broken_multi_objective_optimizers():
    with pytest.raises(AssertionError, match="dominated|accepted"):
        check_multiobjective_optimizer(Forgetful, max_examples=10)
    with pytest.raises(AssertionError, match="accepted 1 objectives"):
        check_multiobjective_optimizer(Forgetful, recommends_told_front=False,
                                       max_examples=5, max_objectives=2)
    with pytest.raises(AssertionError, match="check_multiobjective_optimizer"):
        from modelfit_core.testing import check_optimizer
        check_optimizer(functools.partial(NSGA2Optimizer), max_examples=2)
