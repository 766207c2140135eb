"""The optimizer of a fit that names none: chosen per fit by the plugins
(docs/optimizers.md, "The default optimizer").

The gradient plugin claims MSE fits of traces that can be differentiated, with a
few starts that fit in the fitter's ``n_samples``; every other fit gets pymoo's
DE. Simulations use Brian's numpy code on the suite's passive model.
"""

from __future__ import annotations

import warnings

import attrs
import numpy as np
import pytest
from conftest import BOUNDS, DT, PASSIVE_MODEL, El
from hypothesis import given
from hypothesis import strategies as st
from modelfit_plugins.backends.brian2_runtime import Brian2RuntimeBackend
from modelfit_plugins.optimizers import gradient_default
from modelfit_plugins.optimizers.gradient_default import MAX_STARTS, default_starts
from modelfit_plugins.optimizers.gradient_optimizer import GaussNewtonOptimizer
from modelfit_plugins.optimizers.pymoo_optimizer import PymooOptimizer

from modelfit_core import Pipeline, hookimpl
from modelfit_core.contracts.default_optimizer import FitToOptimize, OptimizerChoice
from modelfit_core.contracts.errors import ConfigurationError, PluginContractError
from modelfit_core.contracts.metric_bases import TraceMetric
from modelfit_core.registry.entry_points import DISTRIBUTION
from modelfit_core.registry.plugin_registry import Registry

NUMPY = Brian2RuntimeBackend("numpy")


def fitter_of(passive_data, pipeline=None, **options):
    settings = {"model": PASSIVE_MODEL, "input": {"I": passive_data["I"]},
                "output": {"v": passive_data["v"]}, "dt": DT, "n_samples": 12,
                "param_init": {"v": El}, "method": "euler"}
    settings.update(options)
    pipeline = pipeline if pipeline is not None else Pipeline.from_names(seed=3, backend=NUMPY)
    return pipeline.trace_fitter(**settings)


def test_an_mse_fit_of_traces_is_fitted_by_gradients_within_n_samples(passive_data):
    fitter = fitter_of(passive_data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitter.fit(n_rounds=6, **BOUNDS)
    # the fit's own choice of fewer points per round is said in its reason, not warned
    assert not [w for w in caught if "Sample size" in str(w.message)]
    fit = fitter.current_fit
    assert isinstance(fit.optimizer, GaussNewtonOptimizer) and fit.optimizer.seed == 3
    assert fitter.optimizer_choice.plugin == "gradient"
    starts = fit.optimizer.starts
    assert starts == default_starts(12, 2) == 4  # 4 starts x (1 + 2) = 12 simulations
    assert "4 Levenberg-Marquardt starts" in fitter.optimizer_choice.reason
    assert fit.gradient_round is not None and fit.n_samples == starts
    assert all(len(r.errors) == starts for r in fit.history.rounds)
    assert float(fitter.best_error) < 1e-10  # the recordings, up to Euler's error


@pytest.mark.parametrize("change, why", [
    ({"method": None}, "integration method"),  # Brian's choice may be analytic
    ({"method": "exact"}, "exact"),
    ({"model": PASSIVE_MODEL + "pen = (gl/nS)*mV**2 : volt**2\n", "penalty": "pen"}, "penalty"),
])
def test_fits_gradients_cannot_do_get_pymoos_de(passive_data, change, why):
    fitter = fitter_of(passive_data, n_samples=4, **change)
    fitter.fit(n_rounds=1, **BOUNDS)
    assert why in fitter.optimizer_choice.reason  # why it cannot be fitted by gradients
    assert isinstance(fitter.current_fit.optimizer, PymooOptimizer)
    assert fitter.current_fit.optimizer.method == "DE"
    assert fitter.optimizer_choice.plugin == "pymoo"
    assert fitter.current_fit.gradient_round is None


class AbsoluteError(TraceMetric):
    """A trace metric without residuals."""

    def get_features(self, model_results, data_results, dt):
        return np.abs(np.asarray(model_results) - np.asarray(data_results)[None])

    def get_errors(self, features):
        return features.mean(axis=(1, 2))


def test_a_metric_without_residuals_gets_pymoos_de(passive_data):
    fitter = fitter_of(passive_data, n_samples=4)
    fitter.fit(n_rounds=1, metric=AbsoluteError(), **BOUNDS)
    assert isinstance(fitter.current_fit.optimizer, PymooOptimizer)


def test_a_named_optimizer_or_a_pipelines_is_never_replaced(passive_data):
    fitter = fitter_of(passive_data, n_samples=4)
    fitter.fit(n_rounds=1, optimizer="nevergrad", **BOUNDS)
    assert fitter.optimizer_choice is None
    named = fitter_of(passive_data, Pipeline.from_names(optimizer="pymoo", backend=NUMPY),
                      n_samples=4)
    named.fit(n_rounds=1, **BOUNDS)
    assert isinstance(named.current_fit.optimizer, PymooOptimizer)
    assert named.optimizer_choice is None


def test_the_same_seed_repeats_a_default_fit_and_resume_chooses_alike(passive_data,
                                                                      tmp_path):
    whole = fitter_of(passive_data)
    whole.fit(n_rounds=4, **BOUNDS)
    path = f"sqlite:///{tmp_path / 'fit.db'}"
    fitter_of(passive_data, storage=path).fit(n_rounds=2, **BOUNDS)
    resumed = fitter_of(passive_data, storage=path)
    resumed.fit(n_rounds=4, resume=True, **BOUNDS)
    assert repr(resumed.current_fit.optimizer) == repr(whole.current_fit.optimizer)
    for a, b in zip(whole.current_fit.history.rounds, resumed.current_fit.history.rounds,
                    strict=True):
        assert np.array_equal(a.parameters, b.parameters)


# -- the choice is the plugins' -----------------------------------------------------------
class ChoosesRandomSearch:
    """A third party's hook plugin claiming every fit."""

    @hookimpl(tryfirst=True)
    def modelfit_default_optimizer(self, fit):
        self.asked = fit
        return OptimizerChoice("random", reason="a test's own choice")


def test_a_third_party_plugin_may_choose_and_is_told_about_the_fit(passive_data):
    plugin = ChoosesRandomSearch()
    registry = Registry(distributions=[DISTRIBUTION], plugins=[plugin])
    fitter = fitter_of(passive_data, Pipeline.from_names(registry=registry, seed=4,
                                                         backend=NUMPY), n_samples=4)
    fitter.fit(n_rounds=1, **BOUNDS)
    assert type(fitter.current_fit.optimizer).__name__ == "RandomSearchOptimizer"
    assert fitter.current_fit.optimizer.seed == 4
    asked = plugin.asked
    assert set(asked.parameter_names) == {"C", "gl"}
    assert asked.n_samples == 4 and asked.metric == "MSEMetric"
    assert asked.gradients_refused is None and asked.objectives is None


def test_without_the_gradient_plugin_the_default_is_pymoos_de(passive_data):
    registry = Registry(distributions=[DISTRIBUTION], disable=["gradient_default"])
    fitter = fitter_of(passive_data, Pipeline.from_names(registry=registry, backend=NUMPY),
                       n_samples=4)
    fitter.fit(n_rounds=1, **BOUNDS)
    assert isinstance(fitter.current_fit.optimizer, PymooOptimizer)


class AnswersNonsense:
    @hookimpl(tryfirst=True)
    def modelfit_default_optimizer(self, fit):
        return "gradient"


def test_a_plugin_answering_no_choice_breaks_its_contract(passive_data):
    registry = Registry(distributions=[DISTRIBUTION], plugins=[AnswersNonsense()])
    fitter = fitter_of(passive_data, Pipeline.from_names(registry=registry, backend=NUMPY))
    with pytest.raises(PluginContractError, match="OptimizerChoice"):
        fitter.fit(n_rounds=1, **BOUNDS)
    assert fitter.current_fit is None  # nothing was simulated


def test_the_gradient_plugin_declines_what_it_cannot_do():
    fit = FitToOptimize(parameter_names=("a", "b"), n_samples=30, metric="MSEMetric",
                        objectives=None, gradients_refused=None)
    hook = gradient_default.modelfit_default_optimizer
    chosen = hook(fit=fit)
    assert (chosen.plugin, chosen.options) == ("gradient", {"starts": MAX_STARTS})
    for declined in ({"gradients_refused": "no residuals"}, {"objectives": "separate"},
                     {"asynchronous": True}):
        assert hook(fit=attrs.evolve(fit, **declined)) is None


@given(n_samples=st.integers(1, 10_000), n_parameters=st.integers(1, 40))
def test_default_starts_fit_in_n_samples(n_samples, n_parameters):
    starts = default_starts(n_samples, n_parameters)
    assert 1 <= starts <= MAX_STARTS
    if n_samples >= 1 + n_parameters:  # at least one start fits: the rounds cost no more
        assert starts * (1 + n_parameters) <= n_samples
    if n_samples >= MAX_STARTS * (1 + n_parameters):
        assert starts == MAX_STARTS


def test_starts_is_checked_and_sets_the_population():
    with pytest.raises(ConfigurationError, match="starts"):
        GaussNewtonOptimizer(starts=0)
    optimizer = GaussNewtonOptimizer(seed=1, starts=3)
    assert optimizer.initialize(["a"], popsize=50, rounds=2, a=[0, 1]) == 3
    assert len(optimizer.ask(3)) == 3 and "starts=3" in repr(optimizer)
    assert GaussNewtonOptimizer().initialize(["a"], popsize=5, rounds=1, a=[0, 1]) == 5
