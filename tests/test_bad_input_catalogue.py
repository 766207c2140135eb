"""The catalogue of bad input: each case is a modelfit error of the expected type whose
message names the culprit, raised before anything is simulated.

Fitters get the spy backend of ``test_bad_input.py``: it raises
``AssertionError("simulated")`` if anything is prepared or run, so a check
that came too late shows up as that AssertionError. Hypothesis generates
malformed spike trains, time steps and initial values.
"""

from __future__ import annotations

import numpy as np
import pytest
from brian2 import mV, ms, second
from brian2.units.fundamentalunits import DimensionMismatchError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelfit_core import (ArgumentTypeError, ConfigurationError, DataError, MSEMetric,
                           ModelDefinitionError, ModelfitError, NevergradOptimizer, Pipeline,
                           SpikeFitter, TraceFitter, UnitMismatchError)
from modelfit_core.registry.plugin_registry import Registry

from conftest import BOUNDS, DT, N_STEPS, PASSIVE_MODEL, El
from test_bad_input import SpyBackend, fit_once, fitter_with

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def spy():
    return SpyBackend()


@pytest.fixture
def data(passive_data):
    return {"I": passive_data["I"], "v": passive_data["v"]}


def expect(error, *culprits, call):
    """``call()`` raises ``error`` whose message names every culprit."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for culprit in culprits:
        assert culprit in message, (culprit, message)
    assert not isinstance(info.value, AssertionError)
    return message


# -- threshold, reset, refractory, method: before any code generation -------------------
SPIKING_CASES = [
    # (fitter options, error type, words the message must hold)
    ({"threshold": "v + 1*mV"}, ModelDefinitionError, ["threshold", "condition"]),
    ({"threshold": "w > -50*mV"}, ModelDefinitionError, ["threshold", '"w"']),
    ({"threshold": "v > -50*nA"}, UnitMismatchError, ["threshold", "do not add up"]),
    ({"threshold": "v > -50*mV +"}, ModelDefinitionError, ["threshold"]),
    ({"threshold": 3}, ArgumentTypeError, ["threshold"]),
    ({"threshold": "v > -50*mV", "reset": "v = -70*nA"}, UnitMismatchError, ["reset"]),
    ({"threshold": "v > -50*mV", "reset": "v = nowhere"}, ModelDefinitionError,
     ["reset", '"nowhere"']),
    ({"threshold": "v > -50*mV", "reset": "v = = 1"}, ModelDefinitionError, ["reset"]),
    ({"threshold": "v > -50*mV", "refractory": "5*mV"}, UnitMismatchError,
     ["refractory", "volt"]),
    ({"threshold": "v > -50*mV", "refractory": 3 * mV}, UnitMismatchError, ["refractory"]),
    ({"threshold": "v > -50*mV", "refractory": -2 * ms}, UnitMismatchError, ["refractory"]),
    ({"threshold": "v > -50*mV", "refractory": "tref"}, ModelDefinitionError,
     ["refractory", '"tref"']),
    ({"method": "exactt"}, ModelDefinitionError, ["exactt", "exponential_euler"]),
    ({"method": 42}, ArgumentTypeError, ["method"]),
]


@pytest.mark.parametrize("options,error,words", SPIKING_CASES,
                         ids=[repr(sorted(c[0].items()))[:60] for c in SPIKING_CASES])
def test_spiking_arguments_are_checked_before_code_generation(spy, data, options, error,
                                                              words):
    fitter = fitter_with(spy, data, **options)
    message = expect(error, *words, call=lambda: fit_once(fitter))
    assert "report" not in message.lower()  # not Brian's "please report a bug" banner
    assert spy.runs == 0


def test_exact_on_a_nonlinear_model_is_refused_before_compiling(spy, data):
    nonlinear = PASSIVE_MODEL.replace("gl*(El - v)", "gl*(El - v)*(1 + v/(10*mV))")
    fitter = fitter_with(spy, data, model=nonlinear, method="exact")
    expect(ModelDefinitionError, "exact", "not linear", call=lambda: fit_once(fitter))


# -- silent wrong results become errors --------------------------------------------------
def test_negative_or_nan_metric_options():
    expect(ConfigurationError, "t_start", call=lambda: MSEMetric(t_start=-1 * ms))
    expect(ConfigurationError, "t_weights",
           call=lambda: MSEMetric(t_weights=np.array([1.0, np.nan, 1.0])))
    expect(ConfigurationError, "t_weights",
           call=lambda: MSEMetric(t_weights=np.array([1.0, np.inf])))


@pytest.mark.parametrize("value", [np.nan * mV, np.inf * mV, np.array([1.0, 2.0]) * mV])
def test_param_init_must_be_one_finite_value(spy, data, value):
    # refused when the fitter is created, as brian2modelfitting does
    expect(ModelDefinitionError, "param_init", "'v'",
           call=lambda: fit_once(fitter_with(spy, data, param_init={"v": value})))


@pytest.mark.parametrize("trace,words", [
    ([[1.0, 2.0], [3.0]], ["'v'", "rectangular"]),
    ([["a", "b"]], ["'v'"]),
    (np.ones((2, N_STEPS)) * (1 + 1j), ["'v'", "complex"]),
])
def test_ragged_non_numeric_and_complex_traces(spy, data, trace, words):
    expect(DataError, *words,
           call=lambda: fitter_with(spy, data, output={"v": trace}))


def test_an_input_the_model_never_uses(spy, data):
    message = expect(ModelDefinitionError, "'Iext'", "free names",
                     call=lambda: fitter_with(spy, data, input={"Iext": data["I"]}))
    assert "I," in message or message.rstrip(". ").endswith("I") or "I." in message


# -- spike trains --------------------------------------------------------------------------
def spike_fitter(spy, data, trains):
    return SpikeFitter(model=PASSIVE_MODEL, input={"I": data["I"]}, output=trains, dt=DT,
                       n_samples=2, threshold="v > -60*mV", reset="v = -70*mV",
                       param_init={"v": El}, backend=spy)


@pytest.mark.parametrize("trains,words", [
    ([np.array([-1.0, 5.0]) * ms, np.array([3.0]) * ms], ["negative"]),
    ([np.array([5.0, 1000.0]) * ms, np.array([3.0]) * ms], ["after the end"]),
    ([np.array([5.0, 12.0]), np.array([3.0])], ["milliseconds"]),  # 12 s in a 20 ms recording
    ([np.array([np.nan]) * ms, np.array([3.0]) * ms], ["NaN"]),
    ([np.array([1.0]) * mV, np.array([3.0]) * ms], ["units"]),
    ([np.array([1.0]) * ms], ["2 traces"]),
])
def test_bad_spike_trains(spy, data, trains, words):
    expect(ModelfitError, *words, call=lambda: spike_fitter(spy, data, trains))


def test_spike_monitor_views_are_seconds(spy, data, numpy_target):
    """brian2modelfitting accepts ``spike_monitor.t_`` (a unitless view) as seconds."""
    from brian2 import NeuronGroup, SpikeMonitor, run

    group = NeuronGroup(2, "dv/dt = 100*Hz : 1", threshold="v > 1", reset="v = 0",
                        method="euler")
    monitor = SpikeMonitor(group)
    run(15 * ms)
    fitter = spike_fitter(spy, data, [monitor.t_, monitor.t_])
    np.testing.assert_allclose(fitter.problem.recordings.spikes[0], np.asarray(monitor.t))


@SETTINGS
@given(times=st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                st.integers(-10**6, 10**6), st.text(max_size=3),
                                st.complex_numbers(allow_nan=False)), max_size=6))
def test_any_malformed_spike_train_is_a_modelfit_error_or_accepted(spy, data, times):
    try:
        fitter = spike_fitter(spy, data, [times, [0.001]])
    except ModelfitError:
        return
    duration = N_STEPS * float(DT)
    train = fitter.problem.recordings.spikes[0]
    assert np.isfinite(train).all() and ((train >= 0) & (train <= duration)).all()


# -- time steps and sizes --------------------------------------------------------------
@SETTINGS
@given(value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                       st.lists(st.floats(0.01, 1), min_size=2, max_size=3)))
def test_any_bad_dt_is_refused(spy, data, value):
    dt = np.asarray(value) * ms
    if np.ndim(value) == 0 and np.isfinite(float(np.asarray(value))) and float(value) > 0:
        return  # a good time step (then N_STEPS may not match, which is another matter)
    with pytest.raises(ConfigurationError, match="dt"):
        fitter_with(spy, data, dt=dt)


def test_a_round_that_cannot_fit_in_memory_is_refused_with_the_figure(spy, data):
    fitter = fitter_with(spy, data, n_samples=10**9)
    expect(ConfigurationError, "GiB", "n_samples", "online_error=True",
           call=lambda: fit_once(fitter))


# -- types at the door --------------------------------------------------------------------
@pytest.mark.parametrize("n_samples", [10.7, "10", True, None])
def test_n_samples_must_be_an_integer(spy, data, n_samples):
    expect(ConfigurationError, "n_samples", call=lambda: fitter_with(spy, data,
                                                                      n_samples=n_samples))


@pytest.mark.parametrize("n_rounds", [2.5, "3", True, -1])
def test_n_rounds_must_be_an_integer(spy, data, n_rounds):
    fitter = fitter_with(spy, data)
    expect(ConfigurationError, "n_rounds", call=lambda: fit_once(fitter, n_rounds=n_rounds))


@pytest.mark.parametrize("options", ["DE", ["DE"], 3])
def test_plugin_options_must_be_a_dict(registry, options):
    expect(ArgumentTypeError, "optimizer_options", "dict",
           call=lambda: Pipeline.from_names(optimizer_options=options, registry=registry))


def test_a_seed_must_be_an_integer(registry):
    expect(ArgumentTypeError, "seed", call=lambda: Pipeline.from_names(seed=1.5,
                                                                        registry=registry))


def test_disable_plugins_given_as_one_string_is_one_name():
    registry = Registry(distributions=["modelfit-brian2"], disable="mse")
    assert "mse" not in registry.names("metrics") and "gamma_factor" in registry.names("metrics")


def test_an_optimizer_without_ask_and_tell_is_a_type_error(spy, data):
    class HalfOptimizer:
        def initialize(self, parameter_names, popsize, rounds, **bounds):
            return popsize

    fitter = fitter_with(spy, data)
    message = expect(TypeError, "ask()", "tell()", "recommend()",
                     call=lambda: fit_once(fitter, optimizer=HalfOptimizer()))
    assert "initialize()" not in message.split("needs")[0]


def test_a_metric_without_calc_is_a_type_error(spy, data):
    fitter = fitter_with(spy, data)
    expect(TypeError, "calc()", call=lambda: fit_once(fitter, metric=object()))


def test_plugin_names_are_accepted_by_fit(passive_data):
    fitter = TraceFitter(model=PASSIVE_MODEL, input={"I": passive_data["I"]},
                         output={"v": passive_data["v"]}, dt=DT, n_samples=4,
                         param_init={"v": El})
    best, error = fitter.fit(n_rounds=1, optimizer="nevergrad", metric="mse", callback=None,
                             **BOUNDS)
    assert type(fitter.optimizer).__name__ == "NevergradOptimizer"
    assert type(fitter.metric).__name__ == "MSEMetric"


# -- the exceptions brian2modelfitting users catch -----------------------------------------
def test_unit_errors_are_also_brians_dimension_mismatch_errors(spy, data):
    with pytest.raises(DimensionMismatchError):
        fit_once(fitter_with(spy, data), gl=[1 * mV, 2 * mV], C=BOUNDS["C"])
    with pytest.raises(ValueError):  # and ValueErrors, as before
        fitter_with(spy, data, dt=0.1 * mV)


def test_gamma_factor_missing_argument_is_a_type_error_and_long_delta_a_warning():
    from modelfit_core import GammaFactor

    with pytest.raises(TypeError, match="delta"):
        GammaFactor(time=1 * second)
    with pytest.warns(UserWarning, match="delta"):
        GammaFactor(delta=1 * second, time=1 * second)


def test_penalty_with_squared_units_survives_the_equations(passive_data):
    """A penalty declared in volt**2 (written 'volt2' by Brian) is rewritten parseably."""
    from brian2 import Equations

    model = Equations(PASSIVE_MODEL + "\npenalty_fixed = 10*mV**2 : volt**2")
    fitter = TraceFitter(model=model, input={"I": passive_data["I"]},
                         output={"v": passive_data["v"]}, dt=DT, n_samples=2,
                         param_init={"v": El}, penalty="penalty_fixed")
    _, error = fitter.fit(n_rounds=1, optimizer=NevergradOptimizer(seed=1), callback=None,
                          metric=MSEMetric(), **BOUNDS)
    assert float(error) >= float(10 * mV ** 2)


@pytest.mark.parametrize("unit", ["volt**2", "siemens/metre**2", "amp*second", "1/second",
                                  "volt**3", "farad/meter**2", "mmolar", "ohm*metre"])
def test_every_unit_form_survives_rewriting(unit):
    from brian2 import Equations
    from brian2.units.fundamentalunits import get_dimensions

    from modelfit_core.model.equations import equations_to_text

    equations = Equations(f"x : {unit}")
    assert Equations(equations_to_text(equations))["x"].dim is equations["x"].dim
    assert get_dimensions(equations["x"].dim) is equations["x"].dim
