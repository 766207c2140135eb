"""The runtime backend against plain Brian 2 simulations of the same model.

A prepared simulation generates and compiles its code objects once
(``Network.run`` for no time) and then steps them itself, in every ``run()``
(``RuntimeSimulation._step_compiled``), skipping ``Network.run``.
These tests check that this gives exactly what Brian gives, for traces,
spikes, expression initial values and end values.
"""

import numpy as np
import pytest
from brian2 import (Network, NeuronGroup, SpikeMonitor, StateMonitor, TimedArray, amp,
                    farad, get_dimensions, mV, nA, nS, pF, siemens)

from brian2.codegen.runtime.numpy_rt import NumpyCodeObject

from modelfit_core.registry.plugin_registry import Registry
from modelfit_core.contracts.simulation import InputSignal, SimulationSpec
from modelfit_plugins.backends import brian2_runtime
from modelfit_plugins.backends.brian2_runtime import Brian2RuntimeBackend, RuntimeSimulation

from conftest import DT, N_STEPS, N_TRACES, PASSIVE_MODEL, El, step_currents

CURRENTS = np.asarray(step_currents())  # SI, (N_TRACES, N_STEPS)
THRESHOLD, RESET = "v > -55*mV", "v = El"
PARAMS_A = {"gl": np.array([10e-9, 30e-9, 100e-9]), "C": np.array([50e-12, 80e-12, 20e-12])}
PARAMS_B = {"gl": np.array([5e-9, 12e-9, 60e-9]), "C": np.array([100e-12, 30e-12, 45e-12])}
N_SAMPLES = 3


@pytest.fixture
def fast_path_calls(monkeypatch):
    """Counts calls of the fast re-run path, so no test passes without using it."""
    calls = []
    original = RuntimeSimulation._step_compiled

    def counting(self):
        calls.append(self)
        return original(self)

    monkeypatch.setattr(RuntimeSimulation, "_step_compiled", counting)
    return calls


def make_spec(**overrides):
    options = dict(model=PASSIVE_MODEL, parameter_names=("gl", "C"), n_samples=N_SAMPLES,
                   n_traces=N_TRACES, n_steps=N_STEPS, dt=float(DT),
                   inputs={"I": InputSignal(values=CURRENTS, dim=get_dimensions(amp))},
                   record=("v",), param_init={"v": float(El)}, namespace={"El": El},
                   name="modelfit_fit")
    options.update(overrides)
    return SimulationSpec(**options)


def brian_by_hand(params, threshold=None, reset=None, v_init=El):
    """The same model and parameters with NeuronGroup + monitors + run().

    Brian's numpy code generation is used: an independent implementation of the
    same equations (and nothing to compile, which keeps a first run short).
    """
    stimulus = TimedArray(CURRENTS.T * amp, dt=DT)
    n_neurons = N_SAMPLES * N_TRACES
    group = NeuronGroup(n_neurons, PASSIVE_MODEL + f"I = stimulus(t, i % {N_TRACES}) : amp",
                        threshold=threshold, reset=reset, method="exact", dt=DT,
                        namespace={"El": El, "stimulus": stimulus},
                        codeobj_class=NumpyCodeObject)
    group.gl = np.repeat(params["gl"], N_TRACES) * siemens
    group.C = np.repeat(params["C"], N_TRACES) * farad
    group.v = v_init
    state = StateMonitor(group, "v", record=True, codeobj_class=NumpyCodeObject)
    objects = [group, state]
    if threshold is not None:
        spikes = SpikeMonitor(group, codeobj_class=NumpyCodeObject)
        objects.append(spikes)
    Network(*objects).run(N_STEPS * DT)
    out = {"v": np.asarray(state.v_).reshape(N_SAMPLES, N_TRACES, N_STEPS),
           "final_v": np.array(group.v_[:])}
    if threshold is not None:
        trains = spikes.spike_trains()
        out["spikes"] = [[np.asarray(trains[s * N_TRACES + k])  # seconds
                          for k in range(N_TRACES)] for s in range(N_SAMPLES)]
    return out


def test_fast_rerun_matches_brian(fast_path_calls):
    simulation = Brian2RuntimeBackend().prepare(make_spec())
    first = simulation.run(PARAMS_A)  # generates and compiles the code, then steps it
    assert len(fast_path_calls) == 1
    second = simulation.run(PARAMS_B)  # the same code objects, with other parameters
    third = simulation.run(PARAMS_A)
    assert len(fast_path_calls) == 3

    expected_a, expected_b = brian_by_hand(PARAMS_A), brian_by_hand(PARAMS_B)
    for result in (first, second, third):
        assert result.traces["v"].shape == (N_SAMPLES, N_TRACES, N_STEPS)
    np.testing.assert_allclose(first.traces["v"], expected_a["v"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(second.traces["v"], expected_b["v"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(third.traces["v"], expected_a["v"], rtol=1e-12, atol=0)
    # the parameters really matter (the comparison is not between flat lines)
    assert np.abs(expected_a["v"] - expected_b["v"]).max() > 1e-3


def test_neuron_k_simulates_sample_k_div_traces_on_trace_k_mod_traces():
    simulation = Brian2RuntimeBackend().prepare(make_spec())
    simulation.run(PARAMS_A)
    result = simulation.run(PARAMS_B)
    gl, C = PARAMS_B["gl"], PARAMS_B["C"]
    for sample in range(N_SAMPLES):
        for trace in range(N_TRACES):
            # exact solution between input changes: before trace's step v stays at El
            v = result.traces["v"][sample, trace]
            start = 20 if trace == 0 else 50
            np.testing.assert_allclose(v[:start + 1], float(El), rtol=1e-12)
            amplitude = CURRENTS[trace, start]
            tau = C[sample] / gl[sample]
            t = np.arange(1, 11) * float(DT)
            expected = float(El) + amplitude / gl[sample] * (1 - np.exp(-t / tau))
            np.testing.assert_allclose(v[start + 1:start + 11], expected, rtol=1e-9)


def test_spikes_are_reported_per_sample_and_trace(fast_path_calls):
    spec = make_spec(threshold=THRESHOLD, reset=RESET, record_spikes=True)
    simulation = Brian2RuntimeBackend().prepare(spec)
    simulation.run(PARAMS_B)
    result_a = simulation.run(PARAMS_A)  # fast path
    result_b = simulation.run(PARAMS_B)  # fast path again: spikes of earlier runs are gone
    assert len(fast_path_calls) == 3

    for result, params in ((result_a, PARAMS_A), (result_b, PARAMS_B)):
        expected = brian_by_hand(params, threshold=THRESHOLD, reset=RESET)
        assert len(result.spikes) == N_SAMPLES
        for sample in range(N_SAMPLES):
            assert len(result.spikes[sample]) == N_TRACES
            for trace in range(N_TRACES):
                np.testing.assert_allclose(result.spikes[sample][trace],
                                           expected["spikes"][sample][trace],
                                           rtol=1e-12, atol=0)
        np.testing.assert_allclose(result.traces["v"], expected["v"], rtol=1e-12, atol=0)

    counts = [[len(train) for train in sample] for sample in result_a.spikes]
    # A: sample 0 (gl = 10 nS) spikes on both traces, sample 2 (gl = 100 nS) never
    assert counts[0][0] > 0 and counts[0][1] > counts[0][0]
    assert counts[2] == [0, 0]
    for sample in result_a.spikes:
        for train in sample:
            assert np.all((train >= 0) & (train < N_STEPS * float(DT)))
            assert np.all(np.diff(train) > 0)


def test_string_initial_value_depending_on_a_fitted_parameter(fast_path_calls):
    spec = make_spec(param_init={"v": "El + 0.1*nA/gl"})
    simulation = Brian2RuntimeBackend().prepare(spec)
    for params in (PARAMS_A, PARAMS_B, PARAMS_A):
        result = simulation.run(params)
        expected = float(El) + float(0.1 * nA) / params["gl"]
        np.testing.assert_allclose(result.traces["v"][:, :, 0],
                                   np.repeat(expected[:, np.newaxis], N_TRACES, axis=1),
                                   rtol=1e-12)
        by_hand = brian_by_hand(params, v_init="El + 0.1*nA/gl")
        np.testing.assert_allclose(result.traces["v"], by_hand["v"], rtol=1e-12, atol=0)
    assert len(fast_path_calls) == 3


def test_record_final_returns_end_values(fast_path_calls):
    spec = make_spec(record_final=("v", "gl"))
    simulation = Brian2RuntimeBackend().prepare(spec)
    for params in (PARAMS_A, PARAMS_B):
        result = simulation.run(params)
        expected = brian_by_hand(params)
        assert result.final["v"].shape == (N_SAMPLES * N_TRACES,)
        np.testing.assert_allclose(result.final["v"], expected["final_v"], rtol=1e-12, atol=0)
        np.testing.assert_array_equal(result.final["gl"], np.repeat(params["gl"], N_TRACES))
        # the end value is one step after the last recorded one
        assert not np.array_equal(result.final["v"],
                                  result.traces["v"][:, :, -1].ravel())
    assert len(fast_path_calls) == 2


def test_constants_are_set_for_every_neuron():
    spec = make_spec(parameter_names=("gl",), constants={"C": 50e-12})
    simulation = Brian2RuntimeBackend().prepare(spec)
    params = {"gl": PARAMS_A["gl"]}
    simulation.run(params)
    result = simulation.run(params)
    expected = brian_by_hand({"gl": PARAMS_A["gl"], "C": np.full(N_SAMPLES, 50e-12)})
    np.testing.assert_allclose(result.traces["v"], expected["v"], rtol=1e-12, atol=0)


def test_unknown_codegen_target():
    from modelfit_core.contracts.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="codegen_target"):
        Brian2RuntimeBackend(codegen_target="cpp")


def test_fitter_uses_the_runtime_backend_by_default(make_fitter):
    fitter = make_fitter()
    assert isinstance(fitter.problem.backend, Brian2RuntimeBackend)
    assert fitter.problem.backend.name == "runtime"
    assert Registry(distributions=["modelfit-brian2"]).lookup("backends", "runtime") is Brian2RuntimeBackend


def test_generated_traces_match_brian(make_fitter):
    """generate() of a fitter gives the same traces as Brian for the same parameters."""
    fitter = make_fitter()
    params = {"gl": 30 * nS, "C": 80 * pF}
    first = fitter.generate(params=params)
    fitter.generate(params={"gl": 12 * nS, "C": 30 * pF})
    again = fitter.generate(params=params)  # the cached, already compiled simulation
    expected = brian_by_hand({"gl": np.full(N_SAMPLES, 30e-9), "C": np.full(N_SAMPLES, 80e-12)})
    np.testing.assert_allclose(np.asarray(first), expected["v"][0], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(first))
    assert first.dim is get_dimensions(mV)
