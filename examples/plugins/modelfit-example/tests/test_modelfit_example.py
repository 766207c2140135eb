"""Tests of the example plugins, as their author would write them."""

import pickle

import numpy as np
import pytest
from brian2 import amp, mV, ms, nS, pF, volt

from modelfit_core import Pipeline, TraceFitter
from modelfit_core.contracts.errors import ConfigurationError
from modelfit_core.testing import check_optimizer, check_registered, check_trace_metric
from modelfit_example.cma_optimizer import CMAESOptimizer
from modelfit_example.mae_metric import MAEMetric

MODEL = """
dv/dt = (gl*(El - v) + I)/C : volt
gl : siemens (constant)
C : farad (constant)
"""
El = -70 * mV


def test_entry_points_register_the_plugins():
    assert check_registered("optimizers", "cmaes", distribution="modelfit-example") \
        is CMAESOptimizer
    assert check_registered("metrics", "mae", distribution="modelfit-example") is MAEMetric


def test_optimizer_contract():
    check_optimizer(CMAESOptimizer)


def test_metric_contract():
    check_trace_metric(MAEMetric)
    check_trace_metric(lambda: MAEMetric(normalization=10 * mV))


def test_bad_options_are_refused():
    with pytest.raises(ConfigurationError, match="sigma0"):
        CMAESOptimizer(sigma0=2)


def test_optimizer_state_pickles_for_resume():
    optimizer = CMAESOptimizer(seed=4)
    optimizer.initialize(["a", "b"], popsize=6, rounds=5, a=[0, 1], b=[-1, 1])
    for _ in range(3):
        vectors = optimizer.ask(6)
        optimizer.tell(vectors, [float(np.sum(np.square(v))) for v in vectors])
    copy = pickle.loads(pickle.dumps(optimizer))
    assert np.array_equal(copy.ask(6), optimizer.ask(6))


def test_a_small_fit_finds_the_parameters():
    currents = np.zeros((2, 200))
    currents[0, 20:150], currents[1, 50:180] = 0.2e-9, 0.4e-9
    truth = {"gl": 10 * nS, "C": 50 * pF}
    placeholder = TraceFitter(model=MODEL, input={"I": currents * amp},
                              output={"v": np.zeros((2, 200)) * mV}, dt=0.1 * ms,
                              n_samples=1, param_init={"v": El})
    recorded = placeholder.generate(params=truth)
    pipe = Pipeline.from_names(optimizer="cmaes", metric="mae", feedback=None, seed=3)
    fitter = pipe.trace_fitter(model=MODEL, input={"I": currents * amp},
                               output={"v": recorded}, dt=0.1 * ms, n_samples=10,
                               param_init={"v": El})
    best, error = fitter.fit(n_rounds=30, gl=[1 * nS, 100 * nS], C=[10 * pF, 500 * pF])
    assert error.has_same_dimensions(volt) and float(error) < 0.5e-3
    assert float(best["gl"]) == pytest.approx(10e-9, rel=0.05)
