"""SkoptOptimizer: every surrogate works with this numpy and scikit-learn, seeds repeat,
bad options fail early."""

import warnings

import numpy as np
import pytest

from modelfit_core import MSEMetric, Optimizer, Pipeline, TraceFitter
from modelfit_core.contracts.errors import ConfigurationError, FitStateError
from modelfit_plugins.optimizers.bounds import BoundsError, calc_bounds
from modelfit_plugins.optimizers.skopt_models import _QuantileGBRT
from modelfit_plugins.optimizers.skopt_optimizer import METHODS, SkoptOptimizer

from conftest import BOUNDS, DT, PASSIVE_MODEL, El  # noqa: F401

BOX = {"a": [0.0, 1.0], "b": [1e-9, 1e-6]}
FAST = {"n_initial_points": 3, "acq_optimizer": "sampling",
        "acq_optimizer_kwargs": {"n_points": 200}}


def objective(vector):
    a, b = vector
    return float((a - 0.3) ** 2 + (b * 1e6 - 0.5) ** 2)


def rounds(optimizer, n_rounds=3, n_samples=3):
    optimizer.initialize(["a", "b"], popsize=n_samples, rounds=n_rounds, **BOX)
    asked = []
    for _ in range(n_rounds):
        vectors = optimizer.ask(n_samples)
        asked.append(np.array(vectors))
        optimizer.tell(vectors, [objective(v) for v in vectors])
    return np.array(asked)


@pytest.mark.parametrize("method", METHODS)
def test_every_surrogate_asks_inside_the_bounds_and_repeats_with_a_seed(method):
    first = rounds(SkoptOptimizer(method, seed=4, **FAST), n_rounds=2)
    second = rounds(SkoptOptimizer(method, random_state=4, **FAST), n_rounds=2)
    assert np.array_equal(first, second)
    lower = np.array([BOX["a"][0], BOX["b"][0]])
    upper = np.array([BOX["a"][1], BOX["b"][1]])
    assert ((first >= lower) & (first <= upper)).all()
    assert len(np.unique(first.reshape(-1, 2), axis=0)) > 1


def test_different_seeds_ask_different_points():
    assert not np.array_equal(rounds(SkoptOptimizer("GBRT", seed=1, **FAST), n_rounds=2),
                              rounds(SkoptOptimizer("GBRT", seed=2, **FAST), n_rounds=2))


@pytest.mark.parametrize("acq_func", ["EI", "PI", "LCB", "gp_hedge"])
def test_acquisition_functions(acq_func):
    optimizer = SkoptOptimizer("GP", acq_func=acq_func, seed=0, **FAST)
    asked = rounds(optimizer, n_rounds=2, n_samples=2)
    assert np.isfinite(asked).all()


def test_lbfgs_acquisition_optimizer_and_initial_point_generator():
    optimizer = SkoptOptimizer("GP", n_initial_points=3, acq_optimizer="lbfgs",
                               acq_optimizer_kwargs={"n_points": 100, "n_restarts_optimizer": 1},
                               initial_point_generator="lhs", seed=0)
    assert np.isfinite(rounds(optimizer, n_rounds=2, n_samples=2)).all()


def test_a_scikit_learn_regressor_as_method():
    from sklearn.gaussian_process import GaussianProcessRegressor
    optimizer = SkoptOptimizer(GaussianProcessRegressor(), seed=0, **FAST)
    assert np.isfinite(rounds(optimizer, n_rounds=2)).all()


def test_recommend_is_the_best_told_point():
    optimizer = SkoptOptimizer("ET", seed=0, **FAST)
    optimizer.initialize(["a", "b"], popsize=2, rounds=1, **BOX)
    optimizer.ask(2)
    optimizer.tell([np.array([0.25, 5e-7]), np.array([0.9, 1e-7])], [0.01, 3.0])
    assert np.allclose(optimizer.recommend(), [0.25, 5e-7])


def test_gbrt_shim_is_a_regressor_and_predicts_without_in1d(monkeypatch):
    """skopt 0.10's own GBRT is not a regressor for scikit-learn >= 1.6 and uses np.in1d."""
    from sklearn.base import is_regressor
    from sklearn.ensemble import GradientBoostingRegressor
    model = _QuantileGBRT(base_estimator=GradientBoostingRegressor(n_estimators=5,
                                                                   loss="quantile"),
                          random_state=0)
    assert is_regressor(model)
    X = np.random.RandomState(0).uniform(size=(20, 2))
    model.fit(X, X.sum(axis=1))
    monkeypatch.delattr(np, "in1d", raising=False)
    mean, std = model.predict(X[:3], return_std=True)
    assert mean.shape == std.shape == (3,)
    assert model.predict(X[:3]).shape == (3,)
    assert model.predict(X[:3], return_quantiles=True).shape == (3, 3)


def test_no_deprecation_warnings_from_numpy():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        rounds(SkoptOptimizer("GBRT", seed=0, **FAST), n_rounds=2)


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "XYZ"}, "Unknown skopt method"),
    ({"method": object()}, "regressor"),
    ({"seed": 1, "random_state": 2}, "disagree"),
    ({"acq_func": "EIps"}, "evaluation times"),
    ({"acq_optimiser": "lbfgs"}, "acq_optimiser"),
    ({"ask_strategy": "cl_median"}, "ask_strategy"),
    ({"seed": np.random.RandomState(0)}, "integer"),
])
def test_bad_options_fail_on_creation(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        SkoptOptimizer(**kwargs)


def test_bad_acq_func_fails_on_initialize():
    with pytest.raises(ConfigurationError, match="scikit-optimize"):
        SkoptOptimizer(acq_func="nope").initialize(["a"], popsize=1, rounds=1, a=[0, 1])


def test_ask_before_initialize():
    with pytest.raises(FitStateError, match="initialize"):
        SkoptOptimizer().ask(2)


def test_calc_bounds():
    assert calc_bounds(["a", "b"], b=[1, 2], a=[0, 1]) == [[0.0, 1.0], [1.0, 2.0]]
    assert SkoptOptimizer.calc_bounds(["a"], a=(0, 3)) == [[0.0, 3.0]]
    for bad in ({"a": [0, 1]}, {"a": [0, 1], "b": [1, 2], "c": [0, 1]},
                {"a": [1, 0], "b": [0, 1]}, {"a": [0, np.inf], "b": [0, 1]},
                {"a": [0, 1, 2], "b": [0, 1]}):
        with pytest.raises(BoundsError):
            calc_bounds(["a", "b"], **bad)
    with pytest.raises(TypeError):  # as in brian2modelfitting
        calc_bounds(["a", "b"], a=[0, 1])
    with pytest.raises(ConfigurationError):
        calc_bounds(["a", "b"], a=[0, 1])


def test_satisfies_the_protocol_and_is_found_by_name(registry):
    assert isinstance(SkoptOptimizer(), Optimizer)
    assert registry.lookup("optimizers", "skopt") is SkoptOptimizer
    import modelfit_core
    assert modelfit_core.SkoptOptimizer is SkoptOptimizer


def _fitter(passive_data, **kwargs):
    return TraceFitter(model=PASSIVE_MODEL, input={"I": passive_data["I"]},
                       output={"v": passive_data["v"]}, dt=DT, n_samples=3,
                       param_init={"v": El}, **kwargs)


def test_a_whole_fit_repeats_with_a_seed(passive_data):
    results = []
    for _ in range(2):
        fitter = _fitter(passive_data)
        fitter.fit(n_rounds=3, optimizer=SkoptOptimizer("GBRT", seed=7, **FAST),
                   metric=MSEMetric(), callback=None, **BOUNDS)
        results.append(fitter.results(format="list", use_units=False))
    assert results[0] == results[1]
    assert len(results[0]) == 9


def test_pipeline_by_name_with_seed(passive_data, registry):
    outcomes = []
    for _ in range(2):
        pipe = Pipeline.from_names(optimizer="skopt", feedback=None, seed=11,
                                   optimizer_options={"method": "GBRT", **FAST},
                                   registry=registry)
        assert isinstance(pipe.optimizer, SkoptOptimizer) and pipe.optimizer.random_state == 11
        fitter = pipe.trace_fitter(model=PASSIVE_MODEL, input={"I": passive_data["I"]},
                                   output={"v": passive_data["v"]}, dt=DT, n_samples=3,
                                   param_init={"v": El})
        outcomes.append(fitter.fit(n_rounds=2, **BOUNDS))
    assert outcomes[0][0] == outcomes[1][0]


def test_fast_batch_keeps_the_fitted_kernel_and_repeats():
    """fast_batch: one hyperparameter fit per round; same seed, same points."""
    first = SkoptOptimizer("GP", seed=3, fast_batch=True, **FAST)
    points = rounds(first, n_rounds=2, n_samples=4)
    again = rounds(SkoptOptimizer("GP", seed=3, fast_batch=True, **FAST), n_rounds=2,
                   n_samples=4)
    assert np.array_equal(points, again)
    assert len(np.unique(points[-1], axis=0)) == 4  # the lies spread the batch
    assert first.optim.base_estimator_.get_params()["optimizer"] is not None  # restored
    assert not np.array_equal(points, rounds(SkoptOptimizer("GP", seed=3, **FAST),
                                             n_rounds=2, n_samples=4))


def test_fixed_kernel_copy_reproduces_the_fitted_model():
    from modelfit_plugins.optimizers.skopt_models import fixed_kernel_copy
    optimizer = SkoptOptimizer("GP", seed=0, **FAST)
    rounds(optimizer, n_rounds=2, n_samples=3)
    model = optimizer.optim.models[-1]
    copy = fixed_kernel_copy(model).fit(np.asarray(optimizer.optim.space.transform(
        optimizer.optim.Xi)), optimizer.optim.yi)
    X = np.random.RandomState(1).uniform(size=(5, 2))
    for a, b in zip(model.predict(X, return_std=True), copy.predict(X, return_std=True)):
        assert np.allclose(a, b, rtol=1e-6, atol=1e-9)
