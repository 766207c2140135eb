"""Online error: TraceFitter(online_error=True) and OnlineTraceFitter (runtime backend).

The squared error accumulated during the simulation must equal MSEMetric's on
recorded traces, and a round must then hold nothing that grows with the trace
length times the number of samples. The standalone backend's online error is
checked against the runtime's in test_standalone_backend.py.
"""

import tracemalloc

import numpy as np
import pytest
from brian2 import amp, get_dimensions, mV, ms, nS, pF, second, volt

from modelfit_core import (ConfigurationError, MSEMetric, NevergradOptimizer,
                           OnlineTraceFitter, TraceFitter, TraceMetric, UnitMismatchError)
from modelfit_core.contracts.simulation import (InputSignal, SimulationResult, SimulationSpec,
                                      online_error_variable)
from modelfit_plugins.backends.brian2_runtime import Brian2RuntimeBackend

from conftest import BOUNDS, DT, N_STEPS, N_TRACES, PASSIVE_MODEL, El

V2 = get_dimensions(volt) ** 2
LIF = PASSIVE_MODEL.replace(": volt", ": volt (unless refractory)", 1)
SPIKING = dict(threshold="v > -60*mV", reset="v = El", refractory=2 * ms)


def fit(fitter, seed=2, n_rounds=2, **options):
    options.setdefault("callback", None)
    return fitter.fit(optimizer=NevergradOptimizer(seed=seed), n_rounds=n_rounds, **options,
                      **BOUNDS)


def noisy(passive_data):
    """The recorded voltage plus 1 mV of noise, so that errors are not ~0."""
    rng = np.random.default_rng(0)
    return passive_data["v"] + rng.normal(0, 1, passive_data["v"].shape) * mV


def errors_of(fitter):
    return np.array([record.errors for record in fitter.history.rounds])


def test_trace_fitter_online_error_equals_recorded(make_fitter, passive_data):
    """Same parameters and errors (t_start, normalization) without recording v."""
    metric = dict(t_start=3 * ms, normalization=2 * mV)
    recorded = make_fitter(output={"v": noisy(passive_data)})
    fit(recorded, metric=MSEMetric(**metric))
    online = make_fitter(output={"v": noisy(passive_data)})
    fit(online, metric=MSEMetric(**metric), online_error=True)
    assert "state" not in online.simulator.monitors  # nothing recorded
    assert online.simulator.spec.record == ()
    np.testing.assert_allclose(online.history.rounds[1].parameters,
                               recorded.history.rounds[1].parameters)
    np.testing.assert_allclose(errors_of(online), errors_of(recorded), rtol=1e-9)
    assert online.best_error == pytest.approx(recorded.best_error, rel=1e-9)
    # continuing with the recorded error switches back, and errors still agree
    prepared = online.simulator
    fit_more = online.fit(n_rounds=1, callback=None, **BOUNDS)
    assert online.simulator is not prepared and "state" in online.simulator.monitors
    assert np.isfinite(float(fit_more[1]))


def test_online_trace_fitter_is_mse_from_t_start(passive_data):
    data = {"input": {"I": passive_data["I"]}, "output": {"v": noisy(passive_data)},
            "dt": DT, "n_samples": 4, "param_init": {"v": El}}
    online = OnlineTraceFitter(model=PASSIVE_MODEL, t_start=5 * ms, **data)
    best, error = fit(online)
    assert "state" not in online.simulator.monitors
    assert error.dim is V2 and set(best) == {"gl", "C"}
    reference = TraceFitter(model=PASSIVE_MODEL, **data)
    fit(reference, metric=MSEMetric(t_start=5 * ms))
    np.testing.assert_allclose(errors_of(online), errors_of(reference), rtol=1e-9)
    # continuing reuses the prepared simulation; generate_traces works as for TraceFitter
    prepared = online.simulator
    online.fit(n_rounds=1, callback=None, **BOUNDS)
    assert online.simulator is prepared and len(online.history.rounds) == 3
    assert online.generate_traces().shape == (N_TRACES, N_STEPS)


# a C++ build, a dask cluster or sbi training: minutes on a shared 2-core machine
@pytest.mark.timeout(900)
def test_online_error_keeps_spike_outputs_recorded(passive_data):
    """With outputs v and spikes, v's error is online, the spikes are recorded."""
    from modelfit_core import GammaFactor

    probe = TraceFitter(model=LIF, input={"I": passive_data["I"]},
                        output={"v": passive_data["v"]}, dt=DT, n_samples=1,
                        param_init={"v": El}, **SPIKING)
    generated = probe.generate(output_var=["v", "spikes"],
                               params={"gl": 12 * nS, "C": 40 * pF})
    assert any(len(train) for train in generated["spikes"])
    metric = {"v": MSEMetric(normalization=10 * mV),
              "spikes": GammaFactor(delta=1 * ms, time=N_STEPS * DT)}
    fitters = []
    for online_error in (False, True):
        fitter = TraceFitter(model=LIF, input={"I": passive_data["I"]},
                             output={"v": generated["v"], "spikes": generated["spikes"]},
                             dt=DT, n_samples=4, param_init={"v": El}, **SPIKING)
        fit(fitter, metric=metric, online_error=online_error)
        fitters.append(fitter)
    recorded, online = fitters
    assert online.simulator.spec.record == () and online.simulator.spec.record_spikes
    np.testing.assert_allclose(errors_of(online), errors_of(recorded), rtol=1e-9)


class Absolute(TraceMetric):
    def get_features(self, model_traces, data_traces, dt):
        return np.abs(model_traces - data_traces[None]).mean(axis=2)


def test_online_error_needs_mse_without_weights(make_fitter):
    for metric, message in [(Absolute(), "must be a least-squares metric"),
                            (MSEMetric(t_weights=np.ones(N_STEPS)), "t_weights"),
                            (MSEMetric(t_start=1 * second), "t_start")]:
        fitter = make_fitter()
        with pytest.raises(ConfigurationError, match=message):
            fit(fitter, metric=metric, online_error=True)
        assert fitter.simulator is None  # nothing was built or simulated


def test_online_trace_fitter_rejects_bad_options(passive_data):
    data = {"input": {"I": passive_data["I"]}, "dt": DT, "n_samples": 2,
            "param_init": {"v": El}}
    fitter = OnlineTraceFitter(model=PASSIVE_MODEL, output={"v": passive_data["v"]}, **data)
    with pytest.raises(ConfigurationError, match="metric"):
        fitter.fit(metric=MSEMetric(), n_rounds=1, callback=None, **BOUNDS)
    with pytest.raises(UnitMismatchError, match="t_start"):
        OnlineTraceFitter(model=PASSIVE_MODEL, output={"v": passive_data["v"]}, t_start=5,
                          **data)
    with pytest.raises(ConfigurationError, match="within the traces"):
        OnlineTraceFitter(model=PASSIVE_MODEL, output={"v": passive_data["v"]},
                          t_start=1 * second, **data)
    with pytest.raises(ConfigurationError, match="SpikeFitter"):
        OnlineTraceFitter(model=LIF, output={"spikes": [[0.01] * second] * N_TRACES},
                          **SPIKING, **data)


def test_non_finite_online_error_is_diverged():
    result = SimulationResult(final={online_error_variable("v"):
                                     np.array([1.0, 2.0, np.nan, 1.0, np.inf, 0.5])})
    assert result.online_errors["v"].shape == (6,)
    assert result.diverged(3).tolist() == [False, True, True]


def long_spec(online: bool, n_steps: int, n_samples: int = 10):
    rng = np.random.default_rng(1)
    currents = rng.uniform(0, 0.3e-9, (N_TRACES, n_steps))
    target = -0.07 + rng.normal(0, 1e-3, (N_TRACES, n_steps))
    return SimulationSpec(
        model=PASSIVE_MODEL, parameter_names=("gl", "C"), n_samples=n_samples,
        n_traces=N_TRACES, n_steps=n_steps, dt=float(DT),
        inputs={"I": InputSignal(currents, get_dimensions(amp))},
        targets={"v": InputSignal(target, get_dimensions(volt))},
        record=() if online else ("v",), param_init={"v": float(El)},
        namespace={"El": El}, record_final=(online_error_variable("v"),) if online else (),
        online_error={"v": 0.0} if online else {}, name="modelfit_fit")


def peak_memory_of_round(sim, params) -> int:
    """Bytes allocated at the peak of one (already compiled) round."""
    tracemalloc.start()
    try:
        sim.run(params)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_round_memory_does_not_grow_with_trace_length():
    """Inputs and targets are held once per trace (TimedArrays indexed by the
    neuron's trace); an online round allocates per neuron, not per time step."""
    n_samples, n_steps = 10, 20000
    params = {"gl": np.linspace(5e-9, 20e-9, n_samples), "C": np.full(n_samples, 50e-12)}
    backend = Brian2RuntimeBackend()
    peaks = {}
    for online in (True, False):
        sim = backend.prepare(long_spec(online, n_steps, n_samples))
        try:
            namespace = sim.group.namespace
            assert namespace["modelfit_input_I"].values.shape == (n_steps, N_TRACES)
            assert namespace["modelfit_target_v"].values.shape == (n_steps, N_TRACES)
            first = sim.run(params)  # compiles
            peaks[online] = peak_memory_of_round(sim, params)
            if online:
                assert first.traces == {}
                errors = first.online_errors["v"]
                assert errors.shape == (n_samples * N_TRACES,) and np.isfinite(errors).all()
        finally:
            sim.close()
    recorded_bytes = n_samples * N_TRACES * n_steps * 8
    assert peaks[False] >= recorded_bytes
    assert peaks[True] < recorded_bytes / 20, peaks
