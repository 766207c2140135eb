"""ParameterSpace: validation of user bounds against the model's declared parameters."""

import numpy as np
import pytest
from brian2 import Quantity, farad, get_dimensions, mV, nS, pF, siemens
from brian2.units.fundamentalunits import DIMENSIONLESS
from hypothesis import given, settings
from hypothesis import strategies as st

from modelfit_core.contracts.errors import ParameterError
from modelfit_core.contracts.units import UnitMismatchError
from modelfit_core.model.parameters import ParameterSpace

DECLARED = {"gl": get_dimensions(siemens), "C": get_dimensions(farad)}


def test_valid_bounds_give_si_box():
    space = ParameterSpace.from_bounds(DECLARED, {"C": [10 * pF, 500 * pF],
                                                  "gl": [1 * nS, 100 * nS]})
    assert space.names == ("gl", "C")  # declaration order, not the order of the bounds
    np.testing.assert_allclose(space.lower, [1e-9, 10e-12], rtol=1e-15)
    np.testing.assert_allclose(space.upper, [100e-9, 500e-12], rtol=1e-15)
    assert space.bounds_dict() == {"gl": [float(1 * nS), float(100 * nS)],
                                   "C": [float(10 * pF), float(500 * pF)]}


def test_missing_bounds_for_declared_parameter():
    with pytest.raises(ParameterError) as info:
        ParameterSpace.from_bounds(DECLARED, {"gl": [1 * nS, 100 * nS]})
    message = str(info.value)
    assert "'C'" in message and "no bounds" in message
    assert "param_init" in message  # tells how to fix it instead


def test_fixed_parameter_needs_no_bounds():
    space = ParameterSpace.from_bounds(DECLARED, {"gl": [1 * nS, 100 * nS]}, fixed=["C"])
    assert space.names == ("gl",)


def test_bounds_for_unknown_name():
    with pytest.raises(ParameterError) as info:
        ParameterSpace.from_bounds(DECLARED, {"gl": [1 * nS, 2 * nS], "C": [1 * pF, 2 * pF],
                                              "g_kd": [1 * nS, 2 * nS]})
    message = str(info.value)
    assert "'g_kd'" in message and "not a parameter" in message
    assert "C, gl" in message  # lists what the model declares


def test_no_parameters_at_all():
    with pytest.raises(ParameterError, match="No parameters to fit"):
        ParameterSpace.from_bounds({}, {})


@pytest.mark.parametrize("low,high", [(10 * nS, 10 * nS), (20 * nS, 10 * nS)])
def test_lower_not_below_upper(low, high):
    with pytest.raises(ParameterError) as info:
        ParameterSpace.from_bounds(DECLARED, {"gl": [low, high], "C": [1 * pF, 2 * pF]})
    message = str(info.value)
    assert "'gl'" in message and "lower < upper" in message


def test_wrong_unit_for_parameter():
    with pytest.raises(UnitMismatchError) as info:
        ParameterSpace.from_bounds(DECLARED, {"gl": [1 * nS, 2 * nS], "C": [1 * nS, 2 * nS]})
    message = str(info.value)
    assert "'C'" in message
    assert "siemens" in message and "farad" in message  # what it has, what it needs


def test_plain_numbers_for_dimensioned_parameter():
    with pytest.raises(UnitMismatchError) as info:
        ParameterSpace.from_bounds(DECLARED, {"gl": [1, 100], "C": [1 * pF, 2 * pF]})
    message = str(info.value)
    assert "'gl'" in message and "no unit" in message
    assert "gl=[1*siemens, 10*siemens]" in message  # an example of the fix


def test_units_for_dimensionless_parameter():
    declared = {"a": DIMENSIONLESS}
    with pytest.raises(UnitMismatchError, match="'a'.*dimensionless"):
        ParameterSpace.from_bounds(declared, {"a": [1 * mV, 2 * mV]})
    space = ParameterSpace.from_bounds(declared, {"a": [0.5, 2]})
    assert space.to_dict([1.5]) == {"a": 1.5}


def test_unit_errors_are_configuration_errors_and_value_errors():
    with pytest.raises(ValueError):
        ParameterSpace.from_bounds(DECLARED, {"gl": [1, 100], "C": [1 * pF, 2 * pF]})


@pytest.mark.parametrize("pair", [[1 * nS], [1 * nS, 2 * nS, 3 * nS], "1 nS, 2 nS", 5 * nS])
def test_bounds_must_be_a_pair(pair):
    with pytest.raises(ParameterError, match="'gl'.*\\[lower, upper\\]"):
        ParameterSpace.from_bounds(DECLARED, {"gl": pair, "C": [1 * pF, 2 * pF]})


def test_bounds_must_be_finite():
    with pytest.raises(ParameterError, match="'gl'.*finite"):
        ParameterSpace.from_bounds(DECLARED, {"gl": [1 * nS, np.inf * nS],
                                              "C": [1 * pF, 2 * pF]})


def test_vector_from_checks_completeness_and_units():
    space = ParameterSpace.from_bounds(DECLARED, {"gl": [1 * nS, 2 * nS], "C": [1 * pF, 2 * pF]})
    with pytest.raises(ParameterError, match="C"):
        space.vector_from({"gl": 1 * nS})
    with pytest.raises(UnitMismatchError, match="'C'"):
        space.vector_from({"gl": 1 * nS, "C": 1 * nS})


def test_describe_uses_readable_units():
    space = ParameterSpace.from_bounds(DECLARED, {"gl": [1 * nS, 20 * nS],
                                                  "C": [1 * pF, 200 * pF]})
    text = space.describe([12.5e-9, 150e-12])
    assert text.startswith("gl=12.5 nS, C=150")
    assert text.endswith("pF")


_magnitudes = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=100, deadline=None)
@given(gl_low=_magnitudes, gl_span=_magnitudes, c_low=_magnitudes, c_span=_magnitudes,
       fractions=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_si_values_round_trip_through_units(gl_low, gl_span, c_low, c_span, fractions):
    """to_dict(use_units=True) then vector_from gives back the same SI vector, exactly."""
    bounds = {"gl": [gl_low * nS, (gl_low + gl_span) * nS],
              "C": [c_low * pF, (c_low + c_span) * pF]}
    space = ParameterSpace.from_bounds(DECLARED, bounds)
    assert space.lower[0] == float(bounds["gl"][0]) and space.upper[1] == float(bounds["C"][1])
    vector = space.lower + np.asarray(fractions) * (space.upper - space.lower)

    with_units = space.to_dict(vector, use_units=True)
    assert isinstance(with_units["gl"], Quantity)
    assert with_units["gl"].dim is get_dimensions(siemens)
    assert with_units["C"].dim is get_dimensions(farad)
    np.testing.assert_array_equal(space.vector_from(with_units), vector)

    plain = space.to_dict(vector, use_units=False)
    assert all(type(value) is float for value in plain.values())
    np.testing.assert_array_equal(space.vector_from(plain), vector)
