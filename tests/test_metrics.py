"""MSEMetric on hand-made arrays, its options, and a custom TraceMetric in a real fit."""

import numpy as np
import pytest
from brian2 import get_dimensions, mV, ms, volt
from brian2.units.fundamentalunits import DIMENSIONLESS
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelfit_core import MSEMetric, NevergradOptimizer, TraceMetric
from modelfit_core.contracts.errors import ConfigurationError
from modelfit_core.contracts.units import UnitMismatchError

from conftest import BOUNDS

DT = 0.1 * ms
VOLT = get_dimensions(volt)

# (n_samples=2, n_traces=2, n_steps=4) model traces against (2, 4) data traces
DATA = np.zeros((2, 4))
MODEL = np.array([
    [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 3.0, 3.0]],  # per-trace MSE 1 and 4.5
    [[2.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],  # per-trace MSE 2 and 0
])


def test_mse_value():
    np.testing.assert_allclose(MSEMetric().calc(MODEL, DATA, DT), [2.75, 1.0])


def test_mse_against_nonzero_data():
    data = np.array([[1.0, -1.0, 0.5, 2.0], [0.0, 1.0, 2.0, 3.0]])
    expected = [np.mean((MODEL[s] - data) ** 2) for s in range(2)]
    np.testing.assert_allclose(MSEMetric().calc(MODEL, data, DT), expected, rtol=1e-15)


def test_t_start_drops_the_first_steps():
    """t_start = 2 dt ignores steps 0 and 1."""
    errors = MSEMetric(t_start=2 * DT).calc(MODEL, DATA, DT)
    np.testing.assert_allclose(errors, [(1 + 9) / 2, 0.0])


def test_t_weights_weight_each_step():
    weights = np.array([0.0, 1.0, 1.0, 2.0])
    errors = MSEMetric(t_weights=weights).calc(MODEL, DATA, DT)
    # sample 0: trace 0 -> 1, trace 1 -> (9 + 18)/4; sample 1: trace 0 -> 4/4, trace 1 -> 0
    np.testing.assert_allclose(errors, [(1 + 27 / 4) / 2, (1 + 0) / 2])


def test_zero_weights_on_first_steps_equal_t_start():
    weighted = MSEMetric(t_weights=[0, 0, 1, 1]).calc(MODEL, DATA, DT)
    np.testing.assert_allclose(weighted, MSEMetric(t_start=2 * DT).calc(MODEL, DATA, DT))


def test_t_start_and_t_weights_together_is_an_error():
    with pytest.raises(ConfigurationError, match="t_weights cannot be combined with t_start"):
        MSEMetric(t_start=1 * ms, t_weights=np.ones(4))


@pytest.mark.parametrize("weights", [np.zeros(4), [1, -1, 1, 1], np.ones((2, 2))])
def test_bad_t_weights(weights):
    with pytest.raises(ConfigurationError, match="t_weights"):
        MSEMetric(t_weights=weights)


def test_t_weights_of_wrong_length():
    with pytest.raises(ConfigurationError, match="3 entries but the traces have 4"):
        MSEMetric(t_weights=np.ones(3)).calc(MODEL, DATA, DT)


def test_t_start_needs_a_time():
    with pytest.raises(UnitMismatchError, match="t_start"):
        MSEMetric(t_start=5)


def test_unknown_option_is_an_error():
    with pytest.raises(ConfigurationError, match="unknown option"):
        MSEMetric(t_stop=5 * ms)


def test_normalization_divides_squared_error():
    """normalization=10 mV: errors in units of (10 mV)², i.e. the mV² error / 100."""
    model_volts = MODEL * 1e-3  # the arrays above, read as mV, in SI (volt)
    raw = MSEMetric().calc(model_volts, DATA, DT)  # V²
    metric = MSEMetric(normalization=10 * mV)
    normalized = metric.calc(model_volts, DATA, DT)
    np.testing.assert_allclose(normalized, raw / (10e-3) ** 2, rtol=1e-12)
    np.testing.assert_allclose(normalized, (raw * 1e6) / 100, rtol=1e-12)  # mV² / 100
    np.testing.assert_allclose(metric.revert_normalization(normalized), raw, rtol=1e-12)


def test_dimensions_with_and_without_normalization():
    assert MSEMetric().get_dimensions(VOLT) == VOLT ** 2
    assert MSEMetric().get_normalized_dimensions(VOLT) == VOLT ** 2
    normalized = MSEMetric(normalization=10 * mV)
    assert normalized.get_dimensions(VOLT) == VOLT ** 2
    assert normalized.get_normalized_dimensions(VOLT) is DIMENSIONLESS
    assert MSEMetric(normalization=2.0).revert_normalization(1.0) == 4.0


def test_zero_normalization_is_an_error():
    with pytest.raises(ConfigurationError, match="normalization"):
        MSEMetric(normalization=0 * mV)


@st.composite
def model_and_data(draw):
    n_samples = draw(st.integers(1, 3))
    n_traces = draw(st.integers(1, 3))
    n_steps = draw(st.integers(1, 20))
    values = st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False)
    data = draw(hnp.arrays(float, (n_traces, n_steps), elements=values))
    changed = draw(hnp.arrays(bool, (n_samples, n_traces, n_steps)))
    deltas = draw(hnp.arrays(float, (n_samples, n_traces, n_steps),
                             elements=st.floats(1e-6, 1.0)))
    signs = draw(hnp.arrays(float, (n_samples, n_traces, n_steps),
                            elements=st.sampled_from([-1.0, 1.0])))
    model = data[np.newaxis] + np.where(changed, signs * deltas, 0.0)
    return model, data, changed


@settings(max_examples=200, deadline=None)
@given(arrays=model_and_data())
def test_mse_is_nonnegative_and_zero_iff_identical(arrays):
    model, data, changed = arrays
    errors = MSEMetric().calc(model, data, DT)
    assert errors.shape == (model.shape[0],)
    assert np.all(np.isfinite(errors)) and np.all(errors >= 0)
    for sample in range(model.shape[0]):
        identical = np.array_equal(model[sample], data)
        assert identical == (not changed[sample].any())
        assert (errors[sample] == 0) == identical


@settings(max_examples=50, deadline=None)
@given(data=hnp.arrays(float, (2, 5), elements=st.floats(allow_nan=False, allow_infinity=False)),
       model=hnp.arrays(float, (3, 2, 5),
                        elements=st.floats(allow_nan=False, allow_infinity=False)))
def test_mse_is_nonnegative_for_any_finite_arrays(data, model):
    """Huge differences may overflow to inf, but never give NaN or a negative error."""
    with np.errstate(over="ignore"):
        errors = MSEMetric().calc(model, data, DT)
    assert not np.isnan(errors).any()
    assert np.all(errors >= 0)


class MeanAbsoluteError(TraceMetric):
    """A custom metric as in the manual's "Custom Metric" section."""

    def get_features(self, model_traces, data_traces, dt):
        return np.mean(np.abs(model_traces - data_traces[np.newaxis]), axis=2)

    def get_errors(self, features):
        return np.mean(features, axis=1)


def test_custom_trace_metric_in_a_real_fit(make_fitter, passive_data):
    """The best error of the fit is the metric evaluated on the best parameters' traces."""
    fitter = make_fitter(n_samples=6)
    best, error = fitter.fit(n_rounds=3, optimizer=NevergradOptimizer(seed=2),
                             metric=MeanAbsoluteError(), callback=None, **BOUNDS)
    assert isinstance(error, float)  # the custom metric declares no dimensions
    assert error == fitter.results(format="dataframe")["errors"].min()
    traces = fitter.generate_traces(params=best)
    by_hand = np.mean(np.abs(np.asarray(traces) - np.asarray(passive_data["v"])))
    assert error == pytest.approx(by_hand, rel=1e-9)
    # MSE of the same parameters is a different number: the custom metric was used
    mse = np.mean((np.asarray(traces) - np.asarray(passive_data["v"])) ** 2)
    assert error != pytest.approx(mse, rel=1e-3)


def test_get_gamma_factor_and_firing_rate_helpers():
    """The API reference's module-level helpers, with units or plain seconds."""
    from brian2 import ms, second
    from modelfit_plugins.metrics.gamma_factor import firing_rate, get_gamma_factor
    train = [10, 30, 50, 70] * ms
    assert firing_rate(train) == pytest.approx(50.0)
    assert firing_rate([0.1]) == 0.0
    assert get_gamma_factor(train, train, 1 * ms, 0.1 * second) == pytest.approx(0.0)
    shifted = get_gamma_factor(train + 5 * ms, train, 1 * ms, 0.1 * second)
    assert shifted == pytest.approx(get_gamma_factor(
        np.asarray(train + 5 * ms), np.asarray(train), 1e-3, 0.1))
    assert shifted > 1.0  # no coincidences: 1 - Γ with Γ below zero
    with pytest.raises(UnitMismatchError, match="delta"):
        get_gamma_factor(train, train, 1 * volt, 0.1 * second)
