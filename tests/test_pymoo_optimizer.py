"""PymooOptimizer: pymoo's DE, PSO, GA and CMA-ES asked and told a generation at a time.

The contract, seeds, bounds, generation sizes and rounds of other sizes, clear
errors for bad options, recommend(), pickling, genuine optimization, and a
small fit by name through a pipeline.
"""

from __future__ import annotations

import functools
import inspect
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from modelfit_core import Pipeline
from modelfit_core.contracts.errors import ArgumentTypeError, ConfigurationError, FitStateError
from modelfit_core.testing import check_optimizer
from modelfit_plugins.optimizers.bounds import BoundsError
from modelfit_plugins.optimizers.pymoo_methods import METHODS
from modelfit_plugins.optimizers.pymoo_optimizer import PymooOptimizer

from conftest import BOUNDS, DT, PASSIVE_MODEL, TRUE_PARAMS, El  # noqa: F401

NAMES = ["g", "c", "e", "tau"]
LOWER = np.array([1e-9, 1e-12, -0.08, 1e-3])
UPPER = np.array([1e-7, 1e-10, -0.04, 0.1])
TARGET = LOWER + np.array([0.31, 0.72, 0.15, 0.58]) * (UPPER - LOWER)
WEIGHTS = np.array([1.0, 10.0, 100.0, 1000.0])
BOX = {n: [lo, hi] for n, lo, hi in zip(NAMES, LOWER, UPPER)}


def valley(vectors) -> np.ndarray:
    """A narrow 4-D valley: squared distance to TARGET, weighted 1 to 1000 per axis."""
    scaled = (np.asarray(vectors, dtype=float) - TARGET) / (UPPER - LOWER)
    return (np.square(scaled) * WEIGHTS).sum(axis=1)


def rounds(optimizer, n_rounds, n_samples, popsize=None, names=NAMES):
    """initialize, then ask/tell ``n_rounds`` rounds; returns the asked points."""
    optimizer.initialize(names, popsize=popsize or n_samples, rounds=n_rounds,
                         **{n: BOX[n] for n in names})
    asked = []
    for _ in range(n_rounds):
        vectors = optimizer.ask(n_samples)
        asked.append(np.array(vectors))
        full = np.hstack([np.array(vectors), np.tile(TARGET[len(names):], (n_samples, 1))])
        optimizer.tell(vectors, valley(full))
    return np.array(asked)


# -- the contract ----------------------------------------------------------------------------
@pytest.mark.parametrize("method", list(METHODS))
def test_keeps_the_optimizer_contract(method):
    check_optimizer(functools.partial(PymooOptimizer, method), max_examples=8)


def test_keeps_the_contract_with_options():
    check_optimizer(functools.partial(PymooOptimizer, "DE", pop_size=7, CR=0.7),
                    max_examples=5)


def test_the_option_table_matches_pymoo():
    """Every option offered is a keyword argument of the installed pymoo's class."""
    import importlib
    for spec in METHODS.values():
        cls = getattr(importlib.import_module(spec.module), spec.class_name)
        accepted = set(inspect.signature(cls.__init__).parameters)
        if spec.name == "DE":  # DE hands its other keywords to its Variant
            from pymoo.algorithms.soo.nonconvex.de import Variant
            accepted |= set(inspect.signature(Variant.__init__).parameters)
        assert set(spec.all_options) <= accepted, (spec.name, set(spec.all_options) - accepted)


# -- seeds, bounds, population sizes ---------------------------------------------------------
@pytest.mark.parametrize("method", list(METHODS))
def test_a_seed_repeats_exactly_whatever_the_global_random_state(method):
    np.random.seed(1)
    first = rounds(PymooOptimizer(method, seed=5), n_rounds=4, n_samples=6)
    np.random.seed(2)
    state = np.random.get_state()
    again = rounds(PymooOptimizer(method, seed=5), n_rounds=4, n_samples=6)
    assert np.array_equal(first, again)
    # the caller's global random state is neither used nor changed (pycma reseeds it)
    assert all(np.array_equal(a, b) for a, b in zip(state, np.random.get_state()))
    other = rounds(PymooOptimizer(method, seed=6), n_rounds=4, n_samples=6)
    assert not np.array_equal(first, other)
    unseeded = [rounds(PymooOptimizer(method), n_rounds=1, n_samples=6) for _ in range(2)]
    assert not np.array_equal(*unseeded)


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("names", [NAMES, ["tau"], ["g", "c"]], ids=["4", "1", "2"])
def test_asks_stay_inside_the_bounds(method, names):
    asked = rounds(PymooOptimizer(method, seed=1), n_rounds=12, n_samples=5, names=names)
    lower = np.array([BOX[n][0] for n in names])
    upper = np.array([BOX[n][1] for n in names])
    assert asked.shape == (12, 5, len(names))
    assert np.all(asked >= lower) and np.all(asked <= upper)
    assert len(np.unique(asked.reshape(-1, len(names)), axis=0)) > 12 * 5 // 2


@pytest.mark.parametrize("method,popsize,options,expected", [
    ("DE", 100, {}, 100),
    ("PSO", 100, {}, 100),
    ("GA", 100, {}, 100),
    ("CMAES", 100, {}, 100),
    ("DE", 1, {}, 4),                    # DE needs 4 members
    ("DE", 3, {}, 4),
    ("CMAES", 3, {}, 4),
    ("PSO", 1, {}, 2),
    ("DE", 20, {"pop_size": 30}, 30),    # pop_size wins over the fitter's n_samples
    ("GA", 20, {"pop_size": 40}, 40),
    ("CMAES", 10, {"pop_size": 5}, 10),  # a round cannot span two generations
])
def test_initialize_returns_the_population_used(method, popsize, options, expected):
    optimizer = PymooOptimizer(method, seed=1, **options)
    assert optimizer.initialize(NAMES, popsize=popsize, rounds=3, **BOX) == expected
    sizes = []
    for _ in range(3):  # each generation pymoo proposes has that size (pymoo used directly)
        with np.errstate(over="ignore"):  # PSO's inertia formula, see pymoo_methods.py
            generation = optimizer.optim.ask()
            sizes.append(len(generation))
            generation.set("F", np.square(generation.get("X") - 0.3).sum(axis=1)[:, None])
            optimizer.optim.tell(infills=generation)
    assert sizes == [expected] * 3


def test_rounds_smaller_than_a_generation_are_pooled():
    """pymoo learns once a generation's errors are all told, not before."""
    optimizer = PymooOptimizer("DE", seed=2, pop_size=12)
    assert optimizer.initialize(NAMES, popsize=4, rounds=9, **BOX) == 12
    iterations = []
    for _ in range(9):
        vectors = optimizer.ask(4)
        optimizer.tell(vectors, valley(vectors))
        learnt = optimizer.optim.n_iter - 1 if optimizer.optim.is_initialized else 0
        iterations.append(learnt)
    assert iterations == [0, 0, 1, 1, 1, 2, 2, 2, 3]  # generations pymoo was told
    assert len(optimizer.tested_parameters) == len(optimizer.errors) == 36


@pytest.mark.parametrize("method", list(METHODS))
def test_rounds_of_another_size_than_the_population_work(method):
    optimizer = PymooOptimizer(method, seed=3)
    optimizer.initialize(NAMES, popsize=10, rounds=20, **BOX)
    for n_samples in [4] * 12 + [7, 1, 10, 3]:
        vectors = optimizer.ask(n_samples)
        assert len(vectors) == n_samples
        matrix = np.array(vectors)
        assert np.all(matrix >= LOWER) and np.all(matrix <= UPPER)
        optimizer.tell(vectors, valley(vectors))
    assert valley([optimizer.recommend()])[0] == min(optimizer.errors)


def test_a_round_larger_than_a_generation_is_a_clear_error():
    optimizer = PymooOptimizer("CMAES", seed=1)
    optimizer.initialize(NAMES, popsize=4, rounds=2, **BOX)
    with pytest.raises(FitStateError, match=r"generations of 4 points.*popsize=10"):
        optimizer.ask(10)


# -- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("call,error,pattern", [
    (lambda: PymooOptimizer("CMA"), ConfigurationError, r"'CMA'.*Did you mean 'CMAES'"),
    (lambda: PymooOptimizer("SGD"), ConfigurationError, r"methods: DE, PSO, GA, CMAES"),
    (lambda: PymooOptimizer("NelderMead"), ConfigurationError, r"one point at a time"),
    (lambda: PymooOptimizer(3), ArgumentTypeError, r"method must be one of"),
    (lambda: PymooOptimizer("DE", popsize=10), ConfigurationError,
     r"no option 'popsize' \(did you mean 'pop_size'\?\).*options: pop_size, variant"),
    (lambda: PymooOptimizer("PSO", CR=0.5), ConfigurationError, r"options: pop_size, sampling, w"),
    (lambda: PymooOptimizer("CMAES", CMA_diagnal=True), ConfigurationError,
     r"pycma's options"),
    (lambda: PymooOptimizer("CMAES", popsize=10), ConfigurationError,
     r"sets pycma's 'popsize' itself: the population is pop_size"),
    (lambda: PymooOptimizer("DE", termination=("n_gen", 5)), ConfigurationError,
     r"no termination option"),
    (lambda: PymooOptimizer("DE", pop_size=0), ConfigurationError, r"pop_size must be at least"),
    (lambda: PymooOptimizer("DE", pop_size=2.5), ArgumentTypeError, r"pop_size must be an int"),
    (lambda: PymooOptimizer("DE", seed="1"), ArgumentTypeError, r"seed must be an integer"),
    (lambda: PymooOptimizer("DE", seed=-1), ConfigurationError, r"seed must be >= 0"),
    (lambda: PymooOptimizer().ask(3), FitStateError, r"initialize\(\) must be called first"),
    (lambda: PymooOptimizer().recommend(), FitStateError, r"initialize"),
    (lambda: PymooOptimizer("DE", variant="DE/sideways/1/bin"), ConfigurationError,
     r"'DE/sideways/1/bin'.*DE/<selection>/<n_diffs>/<crossover>.*rand, best"),
    (lambda: rounds(PymooOptimizer("PSO", initial_velocity="sideways"), 2, 4),
     ConfigurationError, r"pymoo's PSO \(options \{'initial_velocity': 'sideways'\}\) failed "
                         r"when told .*Unknown velocity initialization"),
    (lambda: PymooOptimizer().initialize(NAMES, popsize=4, rounds=1, g=[0, 1]), BoundsError,
     r"Bounds must be set for parameter\(s\) c, e, tau"),
    (lambda: PymooOptimizer().initialize(NAMES, popsize="4", rounds=1, **BOX),
     ArgumentTypeError, r"popsize must be an integer"),
])
def test_bad_arguments_are_clear_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_method_names_are_case_insensitive_and_pycma_options_pass():
    assert PymooOptimizer("cmaes").method == "CMAES"
    optimizer = PymooOptimizer("CMAES", seed=1, CMA_diagonal=True, sigma=0.3)
    assert rounds(optimizer, n_rounds=3, n_samples=6).shape == (3, 6, 4)


def test_tell_needs_one_error_per_vector():
    optimizer = PymooOptimizer(seed=1)
    optimizer.initialize(NAMES, popsize=4, rounds=1, **BOX)
    vectors = optimizer.ask(4)
    with pytest.raises(ConfigurationError, match="one error per parameter vector"):
        optimizer.tell(vectors, [1.0, 2.0])


# -- recommend, tested points ---------------------------------------------------------------
def test_recommend_is_the_best_point_told():
    optimizer = PymooOptimizer("PSO", seed=4)
    optimizer.initialize(NAMES, popsize=5, rounds=3, **BOX)
    assert np.allclose(optimizer.recommend(), (LOWER + UPPER) / 2)  # nothing told yet
    told = []
    for _ in range(3):
        vectors = optimizer.ask(5)
        errors = valley(vectors)
        optimizer.tell(vectors, errors)
        told.extend(zip(errors, vectors))
    best_error, best_vector = min(told, key=lambda pair: pair[0])
    assert np.array_equal(optimizer.recommend(), best_vector)
    assert optimizer.errors == [e for e, _ in told]
    assert all(np.array_equal(a, b) for a, b in zip(optimizer.tested_parameters,
                                                    [v for _, v in told]))
    # a point it did not ask for counts for recommend() (pymoo does not learn from it)
    optimizer.tell([TARGET], [0.0])
    assert np.array_equal(optimizer.recommend(), TARGET)
    vectors = optimizer.ask(5)  # and the search goes on
    optimizer.tell(vectors, valley(vectors))


def test_non_finite_errors_are_told_as_the_worst():
    optimizer = PymooOptimizer("DE", seed=4)
    optimizer.initialize(NAMES, popsize=6, rounds=3, **BOX)
    for _ in range(3):
        vectors = optimizer.ask(6)
        errors = valley(vectors)
        errors[0], errors[1] = np.inf, np.nan
        optimizer.tell(vectors, errors)
    assert np.isfinite(optimizer.optim.pop.get("F")).all()
    assert np.isfinite(valley([optimizer.recommend()])).all()


# -- pickling ------------------------------------------------------------------------------
@pytest.mark.parametrize("method", list(METHODS))
def test_a_pickled_optimizer_continues_identically(method):
    original = PymooOptimizer(method, seed=8, pop_size=9)
    assert original.initialize(NAMES, popsize=3, rounds=12, **BOX) == 9
    for _ in range(4):  # the 5th round is asked, not yet told: mid-generation
        vectors = original.ask(3)
        original.tell(vectors, valley(vectors))
    pending = original.ask(3)
    restored = pickle.loads(pickle.dumps(original))
    assert restored.optim is not None and restored.optim is not original.optim
    assert np.array_equal(restored.recommend(), original.recommend())
    assert restored.errors == original.errors
    for optimizer in (original, restored):
        optimizer.tell(pending, valley(pending))
    for _ in range(8):
        a, b = original.ask(3), restored.ask(3)
        assert np.array_equal(np.array(a), np.array(b))
        original.tell(a, valley(a))
        restored.tell(b, valley(b))
    assert restored.errors == original.errors


def test_cma_es_starts_again_when_pycma_stops_and_a_pickled_one_follows():
    """pycma stops once it has converged and pymoo's CMA-ES then hands back its final
    solution alone: the optimizer starts a new run, keeps handing out whole
    generations, and a pickled copy replays the restarts to the same points."""
    def bowl(vectors):
        return [float(np.sum((np.asarray(v) - 0.3) ** 2)) for v in vectors]

    original = PymooOptimizer("CMAES", seed=1)
    box = {"a": [0, 1], "b": [0, 1]}
    assert original.initialize(["a", "b"], popsize=20, rounds=100, **box) == 20
    for _ in range(60):  # pycma stops after about 40 generations on this bowl
        vectors = original.ask(20)
        assert len(vectors) == 20
        original.tell(vectors, bowl(vectors))
    assert original._restarts >= 1
    restored = pickle.loads(pickle.dumps(original))
    for _ in range(5):
        a, b = original.ask(20), restored.ask(20)
        assert np.array_equal(np.array(a), np.array(b))
        original.tell(a, bowl(a))
        restored.tell(b, bowl(b))


def test_pickled_before_initialize_and_unseeded():
    fresh = pickle.loads(pickle.dumps(PymooOptimizer("GA", pop_size=6)))
    assert fresh.optim is None and fresh.options == {"pop_size": 6}
    unseeded = PymooOptimizer("DE")  # a seed is drawn at initialize, so replay still works
    rounds(unseeded, n_rounds=3, n_samples=4)
    restored = pickle.loads(pickle.dumps(unseeded))
    assert np.array_equal(np.array(restored.ask(4)), np.array(unseeded.ask(4)))


# -- it optimizes ----------------------------------------------------------------------------
@pytest.mark.parametrize("method,factor", [("DE", 1e-2), ("CMAES", 1e-5), ("PSO", 1e-4),
                                           ("GA", 1e-2)])
def test_genuinely_optimizes(method, factor):
    """Far better than random search with the same budget (960 points) on a narrow valley."""
    optimizer = PymooOptimizer(method, seed=11)
    rounds(optimizer, n_rounds=80, n_samples=12)
    found = valley([optimizer.recommend()])[0]
    rng = np.random.default_rng(11)
    random_best = valley(LOWER + rng.random((960, 4)) * (UPPER - LOWER)).min()
    assert found < factor * random_best


def test_a_fit_by_name_through_a_pipeline(passive_data, registry):
    outcomes = []
    for _ in range(2):
        pipe = Pipeline.from_names(optimizer="pymoo", optimizer_options={"method": "DE"},
                                   feedback=None, seed=3, registry=registry)
        assert isinstance(pipe.optimizer, PymooOptimizer) and pipe.optimizer.seed == 3
        fitter = pipe.trace_fitter(model=PASSIVE_MODEL, input={"I": passive_data["I"]},
                                   output={"v": passive_data["v"]}, dt=DT, n_samples=10,
                                   param_init={"v": El})
        params, error = fitter.fit(n_rounds=10, **BOUNDS)
        outcomes.append((params, float(error), fitter.results(format="list", use_units=False)))
    assert outcomes[0][2] == outcomes[1][2]  # the same seed repeats the whole fit
    errors = [r["errors"] for r in outcomes[0][2]]
    assert outcomes[0][1] == min(errors) < 0.01 * np.median(errors[:10])
    for name in ("gl", "C"):  # within 30% of the parameters that made the data
        assert abs(float(outcomes[0][0][name] / TRUE_PARAMS[name]) - 1) < 0.3


@pytest.mark.parametrize("method", ["CMAES", "PSO", "DE"])
def test_a_stored_fit_resumed_beyond_its_planned_rounds_goes_on(method, make_fitter, tmp_path):
    """``modelfit benchmark --budget`` raised on a stored run extends it: the optimizer is
    replayed with the rounds its first fit() planned, then asked for more."""
    storage = f"sqlite:///{tmp_path / 'fit.db'}"
    make_fitter(n_samples=6, storage=storage).fit(
        n_rounds=2, optimizer=PymooOptimizer(method, seed=1), metric="mse", **BOUNDS)
    resumed = make_fitter(n_samples=6, storage=storage)
    resumed.fit(n_rounds=5, optimizer=PymooOptimizer(method, seed=1), metric="mse",
                resume=True, **BOUNDS)
    rounds = resumed.current_fit.history.rounds
    assert len(rounds) == 5 and all(len(r.errors) == len(rounds[0].errors) for r in rounds)


# -- imported when used ----------------------------------------------------------------------
def test_pymoo_is_imported_when_a_fit_starts_not_before():
    code = """
import json, sys
from modelfit_plugins.optimizers.pymoo_optimizer import PymooOptimizer
optimizer = PymooOptimizer("DE", seed=1, pop_size=8, CR=0.5)
seen = ["pymoo" in sys.modules]
optimizer.initialize(["a"], 4, 1, a=[0, 1])
seen.append("pymoo" in sys.modules)
print(json.dumps(seen))
"""
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert json.loads(output.strip().splitlines()[-1]) == [False, True]
