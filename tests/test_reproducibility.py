"""A seed makes a fit repeat exactly: every nevergrad method, skopt, whole fits, other processes.

Also the capability errors of nevergrad methods (sequential methods asked for
batches, missing packages, exhausted budgets) and user-written optimizers.
"""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from modelfit_core import MSEMetric, NevergradOptimizer, Pipeline, TraceFitter
from modelfit_core.contracts.errors import ConfigurationError
from modelfit_plugins.optimizers.nevergrad_optimizer import _is_sequential, ng

from conftest import BOUNDS, DT, PASSIVE_MODEL, El  # noqa: F401

BOX = {"a": [0.0, 1.0], "b": [1e-9, 1e-6], "c": [-5.0, 5.0]}
LOWER = np.array([v[0] for v in BOX.values()])
UPPER = np.array([v[1] for v in BOX.values()])

# One of each kind: population methods, global-np.random users (lognormal
# mutations, metamodels), import-time random configuration (MultiLN, PolyLN),
# sequential methods run in a thread (SQP; CmaFmin2 reseeds numpy from the clock).
SAMPLE = ["DE", "CMA", "PSO", "TwoPointsDE", "NGOpt", "OnePlusOne", "RandomSearch",
          "LognormalDiscreteOnePlusOne", "CMALL", "MetaModel", "MultiLN", "PolyLN",
          "SQP", "CmaFmin2", "NelderMead"]


def objective(vector):
    z = (np.asarray(vector) - (LOWER + 0.3 * (UPPER - LOWER))) / (UPPER - LOWER)
    return float(z @ z)


def asked_points(method, seed, n_rounds=3, disturb=0):
    """Every point asked in ``n_rounds``, with the caller's global np.random disturbed."""
    n_samples = 1 if _is_sequential(ng.optimizers.registry[method]) else 4
    optimizer = NevergradOptimizer(method, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimizer.initialize(list(BOX), popsize=n_samples, rounds=n_rounds, **BOX)
        points = []
        for _ in range(n_rounds):
            np.random.seed(1000 + disturb)  # the fit must not depend on the global state
            vectors = optimizer.ask(n_samples)
            np.random.rand(7 + disturb)
            points.append(np.array(vectors))
            optimizer.tell(vectors, [objective(v) for v in vectors])
    return np.array(points)


def outcome(method, disturb):
    """The asked points, or the (deterministic) configuration error."""
    try:
        return asked_points(method, seed=5, disturb=disturb)
    except ConfigurationError as exc:
        return str(exc)


@pytest.mark.parametrize("method", SAMPLE)
def test_nevergrad_methods_repeat_with_a_seed(method):
    first, second = asked_points(method, 3), asked_points(method, 3, disturb=1)
    assert np.array_equal(first, second)
    assert ((first >= LOWER) & (first <= UPPER)).all()


def test_the_caller_global_random_state_is_left_alone():
    np.random.seed(42)
    expected = np.random.rand(3)
    np.random.seed(42)
    optimizer = NevergradOptimizer("LognormalDiscreteOnePlusOne", seed=1)
    optimizer.initialize(list(BOX), popsize=4, rounds=2, **BOX)
    for _ in range(2):
        vectors = optimizer.ask(4)
        optimizer.tell(vectors, [objective(v) for v in vectors])
    assert np.array_equal(np.random.rand(3), expected)


@pytest.mark.slow
def test_every_method_of_nevergrads_registry_repeats_or_fails_clearly():
    """All ~540 registry entries: the same points twice, or a clear error both times
    (a missing package, a sequential method, a budget too small for the rounds)."""
    failures = []
    for method in sorted(ng.optimizers.registry):
        first, second = outcome(method, 0), outcome(method, 1)
        if isinstance(first, str) or isinstance(second, str):  # fails clearly, both times
            same = isinstance(first, str) and isinstance(second, str)
        else:
            same = np.array_equal(first, second)
        if not same:
            failures.append(method)
    assert failures == []


_CHILD = """
import json, sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_reproducibility import outcome
print(json.dumps({{m: np.asarray(outcome(m, 0)).tolist() for m in {methods!r}}}))
"""


def test_seeded_fits_repeat_in_other_processes():
    """Registry entries configured at import from np.random (MultiLN, PolyLN) too."""
    import os
    code = _CHILD.format(tests=os.path.dirname(__file__), methods=["MultiLN", "PolyLN", "DE"])
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                      text=True, check=True).stdout.splitlines()[-1])
            for _ in range(2)]
    assert runs[0] == runs[1]


# -- capability errors ------------------------------------------------------------
@pytest.mark.parametrize("method", ["SQP", "Cobyla", "NelderMead", "BO",
                                    "DiscreteDoerrOnePlusOne"])
def test_sequential_methods_refuse_batches_instead_of_hanging(method):
    optimizer = NevergradOptimizer(method)
    with pytest.raises(ConfigurationError, match="one point at a time|n_samples=1"):
        optimizer.initialize(list(BOX), popsize=4, rounds=2, **BOX)


def test_sequential_methods_work_with_one_sample():
    points = asked_points("SQP", seed=0, n_rounds=4)
    assert points.shape == (4, 1, 3)


def test_missing_package_is_named():
    optimizer = NevergradOptimizer("NLOPT_LN_SBPLX")
    with pytest.raises(ConfigurationError, match="not installed.*nlopt"):
        optimizer.initialize(list(BOX), popsize=1, rounds=1, **BOX)
        optimizer.ask(1)


def test_exhausted_budget_is_explained():
    optimizer = NevergradOptimizer("HammersleySearch", seed=0)
    optimizer.initialize(list(BOX), popsize=4, rounds=1, **BOX)
    optimizer.tell(optimizer.ask(4), [1.0] * 4)
    with pytest.raises(ConfigurationError, match="budget"):
        optimizer.ask(4)
    roomy = NevergradOptimizer("HammersleySearch", seed=0, budget=8)
    roomy.initialize(list(BOX), popsize=4, rounds=1, **BOX)
    for _ in range(2):
        roomy.tell(roomy.ask(4), [1.0] * 4)


def test_options_reach_the_nevergrad_family():
    optimizer = NevergradOptimizer("DE", popsize=12, crossover="twopoints", seed=0)
    optimizer.initialize(list(BOX), popsize=4, rounds=2, **BOX)
    assert optimizer._optimizer.llambda == 12
    pso = NevergradOptimizer("PSO", omega=0.5, seed=0)
    pso.initialize(list(BOX), popsize=4, rounds=2, **BOX)
    assert pso._optimizer._config.omega == 0.5
    # a configured family can be passed as the method itself
    cma = NevergradOptimizer(ng.families.ParametrizedCMA(elitist=True), seed=0)
    cma.initialize(list(BOX), popsize=4, rounds=2, **BOX)
    assert cma._optimizer._config.elitist is True
    with pytest.raises(ConfigurationError, match="no configuration options"):
        NevergradOptimizer("CMA", elitist=True)  # nevergrad's "CMA" is a selector class
    with pytest.raises(ConfigurationError, match="crossover"):
        NevergradOptimizer("DE", crossovr=0.5)
    with pytest.raises(ConfigurationError, match="no configuration options"):
        NevergradOptimizer("NGOpt", popsize=4)


def test_calc_bounds_of_the_nevergrad_optimizer():
    assert NevergradOptimizer.calc_bounds(["a"], a=[0, 2]) == [[0.0, 2.0]]
    with pytest.raises(TypeError, match="b"):
        NevergradOptimizer().initialize(["a", "b"], popsize=1, rounds=1, a=[0, 1])


# -- whole fits ---------------------------------------------------------------------
def _fit(passive_data, optimizer, n_samples=3, n_rounds=3, **kwargs):
    fitter = TraceFitter(model=PASSIVE_MODEL, input={"I": passive_data["I"]},
                         output={"v": passive_data["v"]}, dt=DT, n_samples=n_samples,
                         param_init={"v": El}, **kwargs)
    np.random.seed(None)  # whatever the global state, the fit repeats
    fitter.fit(n_rounds=n_rounds, optimizer=optimizer, metric=MSEMetric(), callback=None,
               **BOUNDS)
    return fitter.results(format="list", use_units=False)


@pytest.mark.parametrize("method", ["DE", "CMA", "PSO", "MultiLN"])
def test_a_whole_fit_repeats_with_nevergrad(passive_data, method):
    first = _fit(passive_data, NevergradOptimizer(method, seed=9))
    assert first == _fit(passive_data, NevergradOptimizer(method, seed=9))
    assert first != _fit(passive_data, NevergradOptimizer(method, seed=10))


def test_a_whole_sequential_fit_repeats(passive_data):
    first = _fit(passive_data, NevergradOptimizer("CmaFmin2", seed=2), n_samples=1,
                 n_rounds=5)
    assert first == _fit(passive_data, NevergradOptimizer("CmaFmin2", seed=2), n_samples=1,
                         n_rounds=5)


def test_a_whole_fit_repeats_with_skopt(passive_data):
    from modelfit_plugins.optimizers import skopt_optimizer as skopt
    make = lambda: skopt.SkoptOptimizer("ET", random_state=3, n_initial_points=3,  # noqa: E731
                                        acq_optimizer="sampling",
                                        acq_optimizer_kwargs={"n_points": 200})
    assert _fit(passive_data, make(), n_rounds=2) == _fit(passive_data, make(), n_rounds=2)


def test_a_pipeline_seed_repeats_the_fit(passive_data, registry):
    def fit():
        pipe = Pipeline.from_names(optimizer="nevergrad", optimizer_options={"method": "PSO"},
                                   feedback=None, seed=21, registry=registry)
        fitter = pipe.trace_fitter(model=PASSIVE_MODEL, input={"I": passive_data["I"]},
                                   output={"v": passive_data["v"]}, dt=DT, n_samples=3,
                                   param_init={"v": El})
        fitter.fit(n_rounds=2, **BOUNDS)
        return fitter.results(format="list", use_units=False)
    assert fit() == fit()


def test_sequential_method_is_refused_before_any_simulation(passive_data):
    fitter = TraceFitter(model=PASSIVE_MODEL, input={"I": passive_data["I"]},
                         output={"v": passive_data["v"]}, dt=DT, n_samples=3,
                         param_init={"v": El})
    with pytest.raises(ConfigurationError, match="sequential"):
        fitter.fit(n_rounds=1, optimizer=NevergradOptimizer("SQP"), metric=MSEMetric(),
                   callback=None, **BOUNDS)
    assert fitter.history is None or not fitter.history.rounds


# -- user-written optimizers --------------------------------------------------------
class RandomSearch:
    """An optimizer written by a user: only the ask/tell shape, no base class."""

    def __init__(self, seed=None):
        self.seed = seed

    def initialize(self, parameter_names, popsize, rounds, **bounds):
        self.rng = np.random.default_rng(self.seed)
        self.lower = np.array([bounds[n][0] for n in parameter_names])
        self.upper = np.array([bounds[n][1] for n in parameter_names])
        self.best, self.best_error = None, np.inf
        return popsize

    def ask(self, n_samples):
        return list(self.rng.uniform(self.lower, self.upper, size=(n_samples, len(self.lower))))

    def tell(self, parameters, errors):
        k = int(np.argmin(errors))
        if errors[k] < self.best_error:
            self.best, self.best_error = parameters[k], errors[k]

    def recommend(self):
        return self.best


def test_a_user_optimizer_passed_directly(passive_data):
    first = _fit(passive_data, RandomSearch(seed=1))
    assert first == _fit(passive_data, RandomSearch(seed=1))
    assert len(first) == 9


def test_a_user_optimizer_registered_as_a_plugin(passive_data):
    from modelfit_core import hookimpl
    from modelfit_core.registry.plugin_registry import Registry

    class MyPlugin:
        @staticmethod
        @hookimpl
        def modelfit_register_optimizers():
            return {"my-random": RandomSearch}

    registry = Registry(distributions=["modelfit-brian2"], plugins=[MyPlugin])
    pipe = Pipeline.from_names(optimizer="my-random", feedback=None, seed=4,
                               registry=registry)
    assert isinstance(pipe.optimizer, RandomSearch) and pipe.optimizer.seed == 4
    fitter = pipe.trace_fitter(model=PASSIVE_MODEL, input={"I": passive_data["I"]},
                               output={"v": passive_data["v"]}, dt=DT, n_samples=2,
                               param_init={"v": El})
    best, error = fitter.fit(n_rounds=2, **BOUNDS)
    assert set(best) == set(BOUNDS) and np.isfinite(float(error))


@pytest.mark.parametrize("name", ["random", "pymoo"])
def test_an_optimizer_named_in_fit_takes_the_pipelines_seed(passive_data, name):
    """fit(optimizer="name") on a seeded pipeline repeats, as the default optimizer does."""
    histories = []
    for _ in range(2):
        fitter = Pipeline.from_names(seed=4, feedback=None).trace_fitter(
            model=PASSIVE_MODEL, input={"I": passive_data["I"]},
            output={"v": passive_data["v"]}, dt=DT, n_samples=4, param_init={"v": El})
        fitter.fit(n_rounds=2, optimizer=name, metric="mse", **BOUNDS)
        histories.append(np.vstack([r.parameters for r in fitter.current_fit.history.rounds]))
    assert np.array_equal(*histories)
