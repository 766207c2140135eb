"""Bad input is reported with a modelfit error before anything is simulated.

Every fitter here gets a spy backend whose ``prepare`` (and the ``run`` of what
it prepared) raises ``AssertionError("simulated")`` while armed: if a check
came after the simulation started, the test would see that AssertionError
instead of the expected modelfit error.
"""

import numpy as np
import pytest
from brian2 import amp, mV, ms, nS

from modelfit_core import MSEMetric, NevergradOptimizer, SpikeMetric, TraceFitter
from modelfit_core.contracts.errors import (ConfigurationError, DataError, FitStateError,
                                            ModelDefinitionError, ModelfitError,
                                            ParameterError)
from modelfit_core.contracts.units import UnitMismatchError

from conftest import BOUNDS, DT, N_STEPS, N_TRACES, PASSIVE_MODEL, El


class SpyBackend:
    """Refuses to simulate while ``armed``; otherwise delegates to ``delegate``."""

    name = "spy"

    def __init__(self, delegate=None):
        self.delegate = delegate
        self.armed = delegate is None
        self.runs = 0

    def prepare(self, spec):
        if self.armed:
            raise AssertionError("simulated")
        return _SpyPrepared(self, self.delegate.prepare(spec))


class _SpyPrepared:
    def __init__(self, backend, inner):
        self.backend, self.inner = backend, inner

    def run(self, parameters, iteration=0.0):
        if self.backend.armed:
            raise AssertionError("simulated")
        self.backend.runs += 1
        return self.inner.run(parameters, iteration)

    def close(self):
        self.inner.close()


@pytest.fixture
def spy():
    return SpyBackend()


@pytest.fixture
def data(passive_data):
    return {"I": passive_data["I"], "v": passive_data["v"]}


def fitter_with(spy, data, **overrides):
    options = dict(model=PASSIVE_MODEL, input={"I": data["I"]}, output={"v": data["v"]},
                   dt=DT, n_samples=3, param_init={"v": El}, backend=spy)
    options.update(overrides)
    return TraceFitter(**options)


def fit_once(fitter, **overrides):
    options = dict(n_rounds=1, callback=None, **BOUNDS)
    options.update(overrides)
    return fitter.fit(**options)


# -- data ------------------------------------------------------------------------------
def test_different_numbers_of_traces(spy, data):
    three_traces = np.vstack([np.asarray(data["v"])] * 2)[:3] * mV
    with pytest.raises(DataError) as info:
        fitter_with(spy, data, output={"v": three_traces})
    message = str(info.value)
    assert f"input 'I' has {N_TRACES} traces x {N_STEPS} steps" in message
    assert f"output 'v' has 3 traces x {N_STEPS} steps" in message


def test_different_numbers_of_steps(spy, data):
    with pytest.raises(DataError) as info:
        fitter_with(spy, data, output={"v": data["v"][:, :150]})
    assert f"{N_TRACES} traces x 150 steps" in str(info.value)
    assert "same number of traces and time steps" in str(info.value)


def test_nan_in_output_names_trace_and_step(spy, data):
    voltage = np.array(data["v"] / mV)
    voltage[1, 37] = np.nan
    voltage[1, 90] = np.nan
    with pytest.raises(DataError) as info:
        fitter_with(spy, data, output={"v": voltage * mV})
    message = str(info.value)
    assert "'v'" in message and "2 NaN/inf" in message
    assert "trace 1 at step 37" in message


def test_inf_in_input_names_trace_and_step(spy, data):
    current = np.array(data["I"] / amp)
    current[0, 5] = np.inf
    with pytest.raises(DataError, match="input 'I'.*trace 0 at step 5"):
        fitter_with(spy, data, input={"I": current * amp})


def test_unnamed_input_asks_for_a_name(spy, data):
    with pytest.raises(DataError, match="input=\\{'I': values\\}"):
        fitter_with(spy, data, input=data["I"])


def test_output_with_wrong_units(spy, data):
    with pytest.raises(UnitMismatchError) as info:
        fitter_with(spy, data, output={"v": np.asarray(data["v"]) * amp})
    assert "'v'" in str(info.value) and "volt" in str(info.value)


def test_input_with_wrong_units(spy, data):
    fitter = fitter_with(spy, data, input={"I": np.asarray(data["I"]) * 1e9 * mV})
    with pytest.raises(UnitMismatchError, match="'I'"):
        fit_once(fitter)


# -- model -----------------------------------------------------------------------------
def test_input_defined_by_the_model(spy, data):
    with pytest.raises(ModelDefinitionError) as info:
        fitter_with(spy, data, model=PASSIVE_MODEL + "I : amp\n")
    message = str(info.value)
    assert "'I'" in message and "defined in the model" in message


def test_unknown_output_variable(spy, data):
    with pytest.raises(ModelDefinitionError) as info:
        fitter_with(spy, data, output={"w": data["v"]})
    message = str(info.value)
    assert "'w'" in message and "C, gl, v" in message


def test_unparsable_model(spy, data):
    with pytest.raises(ModelDefinitionError, match="cannot be parsed"):
        fitter_with(spy, data, model="dv/dt = (El - v)/tau volt")


def test_reserved_iteration_variable(spy, data):
    with pytest.raises(ModelDefinitionError, match="'iteration' is reserved"):
        fitter_with(spy, data, model=PASSIVE_MODEL + "iteration : 1\n")


# -- fitter arguments ------------------------------------------------------------------
@pytest.mark.parametrize("n_samples", [0, -3, 2.5, True, "10"])
def test_bad_n_samples(spy, data, n_samples):
    with pytest.raises(ConfigurationError, match="n_samples must be an integer >= 1"):
        fitter_with(spy, data, n_samples=n_samples)


@pytest.mark.parametrize("dt", [0.1, 1e-4, 0.1 * mV])
def test_dt_must_be_a_time(spy, data, dt):
    with pytest.raises(UnitMismatchError, match="dt must be a positive time with units"):
        fitter_with(spy, data, dt=dt)


@pytest.mark.parametrize("dt", [-0.1 * ms, 0 * ms, np.inf * ms, np.nan * ms,
                                np.array([0.1, 0.2]) * ms])
def test_dt_must_be_one_positive_finite_time(spy, data, dt):
    with pytest.raises(ConfigurationError, match="dt must be a (positive, finite|single) time"):
        fitter_with(spy, data, dt=dt)


def test_negative_n_rounds(spy, data):
    with pytest.raises(ConfigurationError, match="n_rounds"):
        fit_once(fitter_with(spy, data), n_rounds=-1)


def test_missing_bounds_in_fit(spy, data):
    with pytest.raises(ParameterError, match="'C'"):
        fitter_with(spy, data).fit(n_rounds=1, callback=None, gl=BOUNDS["gl"])


def test_plain_number_bounds_in_fit(spy, data):
    with pytest.raises(UnitMismatchError, match="'gl'"):
        fitter_with(spy, data).fit(n_rounds=1, callback=None, gl=[1e-9, 1e-7],
                                   C=BOUNDS["C"])


def test_param_init_for_unknown_variable(spy, data):
    # refused when the fitter is created, as brian2modelfitting does
    with pytest.raises(ModelDefinitionError, match="param_init sets 'u'"):
        fitter_with(spy, data, param_init={"v": El, "u": 0 * mV})


def test_param_init_for_fitted_parameter(spy, data):
    fitter = fitter_with(spy, data, param_init={"v": El, "gl": 10 * nS})
    with pytest.raises(ModelDefinitionError, match="'gl' is fitted"):
        fit_once(fitter)


def test_param_init_with_wrong_units(spy, data):
    with pytest.raises(UnitMismatchError, match="param_init\\['v'\\]"):
        fitter_with(spy, data, param_init={"v": 10 * nS})


# -- metrics ---------------------------------------------------------------------------
def test_metric_dict_missing_an_output(spy, data):
    two_outputs = PASSIVE_MODEL + "dw/dt = -w/(10*ms) : 1\n"
    fitter = fitter_with(spy, data, model=two_outputs,
                         output={"v": data["v"], "w": np.zeros((N_TRACES, N_STEPS))})
    with pytest.raises(ConfigurationError) as info:
        fit_once(fitter, metric={"v": MSEMetric(normalization=10 * mV)})
    message = str(info.value)
    assert "one metric per output variable (v, w)" in message
    assert "missing: w" in message


def test_metric_dict_with_unknown_output(spy, data):
    with pytest.raises(ConfigurationError, match="unknown: w"):
        fit_once(fitter_with(spy, data), metric={"v": MSEMetric(), "w": MSEMetric()})


def test_outputs_with_incompatible_error_units(spy, data):
    two_outputs = PASSIVE_MODEL + "dw/dt = -w/(10*ms) : 1\n"
    fitter = fitter_with(spy, data, model=two_outputs,
                         output={"v": data["v"], "w": np.zeros((N_TRACES, N_STEPS))})
    with pytest.raises(UnitMismatchError, match="cannot be added"):
        fit_once(fitter, metric=MSEMetric())


def test_t_start_beyond_the_end_of_the_traces(spy, data):
    with pytest.raises(ConfigurationError, match="t_start"):
        fit_once(fitter_with(spy, data), metric=MSEMetric(t_start=N_STEPS * DT + 10 * ms))


def test_t_weights_of_wrong_length_before_simulation(spy, data):
    with pytest.raises(ConfigurationError, match="t_weights"):
        fit_once(fitter_with(spy, data), metric=MSEMetric(t_weights=np.ones(N_STEPS - 50)))


def test_object_without_calc_is_not_a_metric(spy, data):
    with pytest.raises(ConfigurationError, match="no calc\\(\\) method"):
        fit_once(fitter_with(spy, data), metric=object())


def test_spike_metric_on_traces(spy, data):
    class CountSpikes(SpikeMetric):
        def get_features(self, model_spikes, data_spikes, dt):
            return np.zeros((len(model_spikes), len(data_spikes)))

    with pytest.raises(ConfigurationError, match="CountSpikes compares spike trains"):
        fit_once(fitter_with(spy, data), metric=CountSpikes())


# -- continuing a fit ------------------------------------------------------------------
@pytest.fixture
def fitted(data):
    """A fitter that has run one real round; then its spy backend is armed."""
    from modelfit_core.registry.plugin_registry import Registry

    spy = SpyBackend(delegate=Registry(distributions=["modelfit-brian2"])
                     .lookup("backends", "runtime")())
    fitter = fitter_with(spy, data)
    optimizer, metric = NevergradOptimizer(seed=1), MSEMetric()
    fit_once(fitter, optimizer=optimizer, metric=metric)
    assert spy.runs == 1
    spy.armed = True
    return fitter, optimizer, metric, spy


def test_changing_the_optimizer_without_restart(fitted):
    fitter, _optimizer, metric, _spy = fitted
    with pytest.raises(ConfigurationError) as info:
        fit_once(fitter, optimizer=NevergradOptimizer(method="CMA"), metric=metric)
    assert "optimizer or metric changed" in str(info.value)
    assert "restart=True" in str(info.value)
    assert len(fitter.history.rounds) == 1
    # with restart=True the new optimizer is accepted (and the spy sees the simulation)
    with pytest.raises(AssertionError, match="simulated"):
        fit_once(fitter, optimizer=NevergradOptimizer(method="CMA"), metric=metric,
                 restart=True)


def test_changing_the_metric_without_restart(fitted):
    fitter, optimizer, _metric, _spy = fitted
    with pytest.raises(ConfigurationError, match="restart=True"):
        fit_once(fitter, optimizer=optimizer, metric=MSEMetric(t_start=1 * ms))


def test_changing_the_bounds_without_restart(fitted):
    fitter, optimizer, metric, _spy = fitted
    bounds = dict(BOUNDS, gl=[2 * nS, 100 * nS])
    with pytest.raises(ConfigurationError) as info:
        fitter.fit(n_rounds=1, optimizer=optimizer, metric=metric, callback=None, **bounds)
    assert "bounds changed" in str(info.value) and "restart=True" in str(info.value)
    assert len(fitter.history.rounds) == 1


def test_same_parts_and_bounds_continue(fitted):
    """The control case: nothing changed, so the fit goes on to simulate."""
    fitter, optimizer, metric, _spy = fitted
    with pytest.raises(AssertionError, match="simulated"):
        fit_once(fitter, optimizer=optimizer, metric=metric)
    with pytest.raises(AssertionError, match="simulated"):
        fit_once(fitter)  # the fitter's own optimizer and metric


# -- results before fitting ------------------------------------------------------------
def test_results_and_generate_before_fit(spy, data):
    fitter = fitter_with(spy, data)
    with pytest.raises(FitStateError, match="call fit\\(\\) first"):
        fitter.results()
    with pytest.raises(FitStateError, match="call fit\\(\\) first"):
        fitter.generate_traces()
    assert fitter.best_params is None and fitter.best_error is None


def test_every_error_is_a_modelfit_error(spy, data):
    """``except ModelfitError`` catches bad input of any kind."""
    for bad in (dict(n_samples=0), dict(dt=0.1), dict(output={"w": data["v"]})):
        with pytest.raises(ModelfitError):
            fitter_with(spy, data, **bad)
