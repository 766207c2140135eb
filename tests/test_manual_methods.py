"""The manual's constructors and building blocks of a round (issue 15): Fitter with the
manual's arguments, OnlineTraceFitter in both positional orders, optimization_iter,
calc_errors, setup_neuron_group, setup_simulator, five-argument callbacks and lists of
metrics."""

import warnings

import numpy as np
import pytest
from brian2 import Equations, NeuronGroup, mV, ms, nA, Mohm

from modelfit_core import (Fitter, MSEMetric, NevergradOptimizer, OnlineTraceFitter,
                           RuntimeSimulator, TraceFitter)
from modelfit_core.contracts.errors import ConfigurationError, FitStateError

DT = 0.1 * ms
MODEL = Equations("""
dv/dt = (-v + R*I)/tau : volt
R : ohm (constant)
tau : second (constant)
""")
N_STEPS = 60


def recordings(n_traces=2):
    inputs = np.zeros((n_traces, N_STEPS))
    inputs[:, 10:50] = np.arange(1, n_traces + 1)[:, None]
    inputs = inputs * nA
    # the exact solution for R = 10 Mohm, tau = 2 ms
    t = np.arange(N_STEPS) * 0.1e-3
    v = np.zeros((n_traces, N_STEPS))
    for k in range(n_traces):
        for step in range(1, N_STEPS):
            current = float(inputs[k, step - 1] / nA) * 1e-9
            v[k, step] = v[k, step - 1] + (10e6 * current - v[k, step - 1]) * (
                1 - np.exp(-1e-4 / 2e-3))
    return inputs, v * 1e3 * mV, t


def trace_fitter(**kwds):
    inputs, outputs, _ = recordings()
    options = dict(model=MODEL, input={"I": inputs}, output={"v": outputs}, dt=DT,
                   n_samples=6, method="exact", param_init={"v": 0 * mV})
    options.update(kwds)
    return TraceFitter(**options)


BOUNDS = dict(R=[1, 30] * Mohm, tau=[0.5, 5] * ms)


def test_fitter_takes_the_manuals_arguments_and_fits():
    inputs, outputs, _ = recordings()
    fitter = Fitter(DT, MODEL, {"I": inputs}, {"v": outputs}, 6, method="exact",
                    param_init={"v": 0 * mV})
    params, error = fitter.fit(NevergradOptimizer("RandomSearch", seed=1), MSEMetric(),
                               n_rounds=1, callback=None, **BOUNDS)
    assert set(params) == {"R", "tau"} and error.dim == (mV ** 2).dim
    assert fitter.parameter_names == ["R", "tau"] and fitter.n_samples == 6


def test_trace_fitter_samples_60_by_default_as_the_manual_says():
    inputs, outputs, _ = recordings()
    assert TraceFitter(MODEL, {"I": inputs}, {"v": outputs}, DT).n_samples == 60


def test_online_trace_fitter_takes_both_positional_orders():
    inputs, outputs, _ = recordings()
    old = OnlineTraceFitter(MODEL, "I", inputs, "v", outputs, DT, 8, method="exact")
    new = OnlineTraceFitter(MODEL, {"I": inputs}, {"v": outputs}, DT, 8, method="exact")
    for fitter in (old, new):
        assert fitter.input_var == "I" and fitter.output_var == "v"
        assert fitter.n_samples == 8 and float(fitter.dt) == pytest.approx(1e-4)
    with pytest.raises(TypeError, match="dt"):
        OnlineTraceFitter(MODEL, {"I": inputs}, {"v": outputs})


def test_optimization_iter_runs_one_round_of_a_started_fit():
    fitter = trace_fitter()
    optimizer = NevergradOptimizer("RandomSearch", seed=3)
    metric = MSEMetric()
    with pytest.raises(FitStateError, match="n_rounds=0"):
        fitter.optimization_iter(optimizer, metric, None)
    fitter.fit(optimizer, metric, n_rounds=0, callback=None, **BOUNDS)
    assert fitter.history.rounds == []
    recommended, parameters, errors = fitter.optimization_iter(optimizer, metric, None)
    assert len(fitter.history.rounds) == 1
    assert np.shape(parameters) == (fitter.n_samples, 2) and errors.shape == (fitter.n_samples,)
    np.testing.assert_allclose(errors, fitter.history.rounds[0].errors)
    assert len(recommended) == 2
    fitter.optimization_iter(optimizer, metric, None)
    assert len(fitter.history.rounds) == 2 and fitter.iteration == 2


def test_calc_errors_scores_the_last_round_with_any_metric():
    fitter = trace_fitter()
    with pytest.raises(FitStateError):
        fitter.calc_errors(MSEMetric())
    fitter.fit(NevergradOptimizer("RandomSearch", seed=4), MSEMetric(), n_rounds=1,
               callback=None, **BOUNDS)
    errors = fitter.calc_errors()
    assert fitter.simulator is fitter.current_fit.simulation is not None
    assert errors.shape == (1, fitter.n_samples)
    np.testing.assert_allclose(errors[0], fitter.history.rounds[-1].errors)
    scaled = fitter.calc_errors(MSEMetric(normalization=2 * mV))
    np.testing.assert_allclose(scaled, errors / (2e-3) ** 2)  # SI: volt², scaled by (2 mV)²


def test_setup_neuron_group_and_setup_simulator_build_the_fits_network():
    fitter = trace_fitter()
    group = fitter.setup_neuron_group(4, {})
    assert isinstance(group, NeuronGroup) and len(group) == 4 and group.name == "neurons"
    with pytest.raises(ConfigurationError, match="multiple"):
        fitter.setup_neuron_group(3, {})
    simulator = fitter.setup_simulator("fit", 2, "v", {"v": 0 * mV})
    assert isinstance(simulator, RuntimeSimulator)
    params = {"R": np.array([10e6, 10e6]), "tau": np.array([2e-3, 2e-3])}
    simulator.run(N_STEPS * DT, params, ["R", "tau"], iteration=0)
    simulated = simulator.statemonitor.v[:, :N_STEPS]
    generated = fitter.generate(params={"R": 10 * Mohm, "tau": 2 * ms})
    np.testing.assert_allclose(np.asarray(simulated), np.asarray(generated), rtol=1e-9,
                               atol=1e-12)


def test_callbacks_with_the_manuals_five_arguments_work():
    calls = []

    def five(params, errors, best_params, best_error, index):
        calls.append(index)

    def six(params, errors, best_params, best_error, index, additional_info):
        calls.append(additional_info["output_var"])

    fitter = trace_fitter()
    optimizer, metric = NevergradOptimizer("RandomSearch", seed=5), MSEMetric()
    fitter.fit(optimizer, metric, n_rounds=2, callback=five, **BOUNDS)
    fitter.fit(optimizer, metric, n_rounds=1, callback=six, **BOUNDS)
    assert calls == [0, 1, ["v"]]


def test_a_list_of_metrics_is_deprecated_but_works():
    inputs, outputs, _ = recordings()
    fitter = TraceFitter(MODEL, {"I": inputs}, {"v": outputs}, DT, 6, method="exact")
    with pytest.warns(FutureWarning, match="list of metrics is deprecated"):
        fitter.fit(NevergradOptimizer("RandomSearch", seed=6), [MSEMetric()], n_rounds=1,
                   callback=None, **BOUNDS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with pytest.raises(TypeError, match="2 entries for 1 output"):
            fitter.fit(NevergradOptimizer(), [MSEMetric(), MSEMetric()], restart=True,
                       callback=None, **BOUNDS)


def test_features_may_use_brians_unit_aware_functions_on_traces():
    """brian2modelfitting's sbi example uses ``lambda x: ptp(x)``: Brian 2.9's ptp fails on
    plain arrays, so such a feature gets the trace as a Quantity (same SI values)."""
    from brian2 import ptp

    from modelfit_plugins.inference.sbi_features import summary_statistics
    traces = {"v": np.array([[[0.0, 0.002, -0.001]]])}
    x = summary_statistics(traces, None, {"v": [lambda x: ptp(x), lambda x: np.mean(x)]},
                           ["v"], 1, 1)
    np.testing.assert_allclose(x, [[0.003, 0.001 / 3]])


def test_refine_after_a_fit_with_a_list_of_metrics():
    """brian2modelfitting's multiobjective example fits with metric=[...] and refines."""
    inputs, outputs, _ = recordings()
    fitter = TraceFitter(MODEL, {"I": inputs}, {"v": outputs}, DT, 6, method="exact",
                         param_init={"v": 0 * mV})
    with pytest.warns(FutureWarning):
        fitter.fit(NevergradOptimizer("RandomSearch", seed=7), [MSEMetric()], n_rounds=1,
                   callback=None, **BOUNDS)
    params, result = fitter.refine(max_nfev=5)
    assert set(params) == {"R", "tau"} and result.n_simulations >= 1


def test_generate_after_a_fit_repeats_the_point_over_the_fits_simulation():
    """No second simulation is prepared (or compiled) for generate(); the traces are those
    of a simulation of the point alone."""
    fitter = trace_fitter()
    fitter.fit(NevergradOptimizer("RandomSearch", seed=8), MSEMetric(), n_rounds=1,
               callback=None, **BOUNDS)
    keys = fitter.problem.prepared_keys
    point = {"R": 10 * Mohm, "tau": 2 * ms}
    reused = fitter.generate(params=point)
    assert fitter.problem.prepared_keys == keys
    alone = trace_fitter().generate(params=point)
    np.testing.assert_allclose(np.asarray(reused), np.asarray(alone), rtol=1e-12, atol=0)
    fitter.generate(params=point, param_init={"v": 1 * mV})  # other initial values
    assert len(fitter.problem.prepared_keys) == len(keys) + 1
