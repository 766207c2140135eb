"""TraceFitter.refine: least_squares from the best fit, bounds, metric options, sensitivities."""

import numpy as np
import pytest
from brian2 import Equations, mV, ms, nS, pF, siemens, volt
from brian2.equations.equations import DIFFERENTIAL_EQUATION, SUBEXPRESSION
from scipy.optimize import OptimizeResult

from modelfit_core import MSEMetric, NevergradOptimizer, TraceFitter
from modelfit_core.contracts.errors import ConfigurationError, ModelDefinitionError
from modelfit_core.fitting.refine import RefineArgumentError
from modelfit_core.model.sensitivity import (_safe_exprel_derivative, build_sensitivity_system,
                                       get_sensitivity_equations, get_sensitivity_init)

from conftest import BOUNDS, DT, N_STEPS, PASSIVE_MODEL, TRUE_PARAMS, El  # noqa: F401

START = {"gl": 30 * nS, "C": 120 * pF}


def make_fitter(passive_data, **kwargs):
    return TraceFitter(model=PASSIVE_MODEL, input={"I": passive_data["I"]},
                       output={"v": passive_data["v"]}, dt=DT, n_samples=3,
                       param_init={"v": El}, **kwargs)


def relative_errors(params):
    return [abs(float(params[n] / TRUE_PARAMS[n]) - 1) for n in TRUE_PARAMS]


# -- refine ---------------------------------------------------------------------------
@pytest.mark.parametrize("calc_gradient", [False, True])
def test_refine_without_fit_finds_the_true_parameters(passive_data, calc_gradient):
    # (for this linear model, exponential Euler is the exact solution the data come from)
    fitter = make_fitter(passive_data, method="exponential_euler")
    params, result = fitter.refine(START, callback=None, calc_gradient=calc_gradient,
                                   **BOUNDS)
    assert isinstance(result, OptimizeResult) and result.success
    assert max(relative_errors(params)) < 1e-4
    assert params["gl"].dim == siemens.dim
    assert np.allclose(result.x, [float(params["gl"]), float(params["C"])])
    assert result.n_simulations >= result.nfev and float(result.error) < 1e-12
    if calc_gradient:
        assert result.n_simulations == result.nfev  # the Jacobian comes with each run
        assert result.njev >= 1


def test_refine_starts_from_the_best_fit_and_reuses_its_metric(passive_data):
    fitter = make_fitter(passive_data)
    weights = np.ones(N_STEPS)
    weights[:50] = 0
    fitter.fit(n_rounds=1, optimizer=NevergradOptimizer(seed=1),
               metric=MSEMetric(t_weights=weights), callback=None, **BOUNDS)
    start_error = fitter.best_error
    seen = []
    params, result = fitter.refine(callback=lambda *args: seen.append(args) and False)
    assert max(relative_errors(params)) < 1e-4
    assert float(result.error) < float(start_error)
    first_params, errors = seen[0][0], seen[0][1]
    assert first_params == fitter.best_params  # started from the best fit
    assert errors[0] == pytest.approx(float(start_error), rel=1e-9)  # same weighted MSE


@pytest.mark.parametrize("metric", [
    MSEMetric(t_start=5 * ms), MSEMetric(t_weights=np.r_[np.zeros(50), np.ones(N_STEPS - 50)]),
    MSEMetric(t_weights=2 * np.r_[np.zeros(50), np.ones(N_STEPS - 50)]),
    MSEMetric(normalization=3 * mV), MSEMetric(t_start=2 * ms, normalization=0.5 * mV)])
def test_the_first_error_is_the_metric_of_the_start(passive_data, metric):
    """Residuals follow the MSEMetric: t_start, t_weights (normalized), normalization."""
    fitter = make_fitter(passive_data)
    trace = fitter.generate(params=START)
    expected = metric.calc(np.asarray(trace)[None], np.asarray(passive_data["v"]), DT)[0]
    errors = []
    params, result = fitter.refine(START, metric=metric, **BOUNDS,
                                   callback=lambda p, e, *rest: errors.append(e[0]) or True)
    assert errors[0] == pytest.approx(expected, rel=1e-9)
    assert result.status == -1 and not result.success  # stopped by the callback
    assert len(errors) == 1


def test_bounds_are_honoured_and_can_be_overridden(passive_data):
    fitter = make_fitter(passive_data)
    params, result = fitter.refine(START, callback=None, gl=[20 * nS, 100 * nS],
                                   C=BOUNDS["C"])
    assert float(params["gl"]) == pytest.approx(20e-9, rel=1e-6)  # the truth (10 nS) is outside
    assert result.active_mask[0] != 0


def test_other_keywords_go_to_scipy(passive_data):
    fitter = make_fitter(passive_data)
    params, result = fitter.refine(START, callback=None, max_nfev=3, method="dogbox",
                                   **BOUNDS)
    assert result.nfev <= 3


@pytest.mark.parametrize("kwargs, error, match", [
    ({"params": None}, RefineArgumentError, "starting point"),
    ({"params": {"gl": 5 * nS}}, RefineArgumentError, "C"),
    ({"no_bounds": True}, RefineArgumentError, "bounds"),
    ({"metric": object()}, ConfigurationError, "MSEMetric"),
    ({"method": "lm"}, ConfigurationError, "bounds"),
    ({"maxfev": 3}, ConfigurationError, "maxfev"),
    ({"calc_gradient": True, "jac": "3-point"}, ConfigurationError, "jac"),
    ({"params": {"gl": 500 * nS, "C": 50 * pF}}, ConfigurationError, "outside"),
    ({"params": {"gl": 5 * nS, "C": 50 * pF, "Cm": 1 * pF}}, ConfigurationError, "Cm"),
])
def test_bad_arguments_are_reported_before_simulating(passive_data, kwargs, error, match):
    fitter = make_fitter(passive_data)
    kwargs = dict(kwargs)
    bounds = {} if kwargs.pop("no_bounds", False) else BOUNDS
    params = kwargs.pop("params", START)
    with pytest.raises(error, match=match):
        fitter.refine(params, callback=None, **bounds, **kwargs)
    assert not fitter.problem.prepared_keys  # nothing was prepared


def test_missing_start_and_bounds_are_type_errors_as_in_brian2modelfitting(passive_data):
    fitter = make_fitter(passive_data)
    with pytest.raises(TypeError):
        fitter.refine(**BOUNDS)
    with pytest.raises(TypeError):
        fitter.refine(START)


def test_refine_with_units_off(passive_data):
    fitter = make_fitter(passive_data, use_units=False)
    params, result = fitter.refine({"gl": 30e-9, "C": 120e-12}, callback=None, **BOUNDS)
    assert isinstance(params["gl"], float)
    assert max(relative_errors(params)) < 1e-4


# -- the Jacobian --------------------------------------------------------------------
def _evaluator(fitter, calc_gradient=True, **bounds):
    from modelfit_core.fitting import refine as R
    kwds = dict(bounds or BOUNDS)
    fit = fitter.current_fit
    space = R._refined_space(fitter.problem, fit.space if fit is not None else None, kwds)
    makers, _ = R._residual_makers(fitter.problem, MSEMetric())
    prepared = R._prepare(fitter.problem, space, makers, calc_gradient, True, 0)
    return R._Evaluator(space, makers, prepared, calc_gradient, 1e9)


def _finite_difference(evaluator, x, step=1e-5):
    columns = []
    for k in range(len(x)):
        up, down = x.copy(), x.copy()
        up[k] += step
        down[k] -= step
        columns.append((evaluator.residuals(up)[0] - evaluator.residuals(down)[0]) / (2 * step))
    return np.column_stack(columns)


@pytest.mark.parametrize("method, tolerance", [
    ("exponential_euler", 1e-6), ("euler", 1e-6),  # the derivative of the discrete steps
    (None, 0.05)])  # Brian's choice ('exact'): continuous sensitivities, O(dt)
def test_analytic_jacobian_matches_finite_differences(passive_data, method, tolerance):
    fitter = make_fitter(passive_data, method=method)
    evaluator = _evaluator(fitter)
    x = np.array([0.3, 0.4])
    evaluator.residuals(x)
    analytic = evaluator.jacobian(x)
    numeric = _finite_difference(evaluator, x)
    scale = np.abs(numeric).max(axis=0)
    assert np.allclose(analytic / scale, numeric / scale, atol=tolerance)


def test_initial_values_and_resets_of_sensitivities(passive_data):
    """param_init={'v': 'E_L'} starts S_v_E_L at 1; a reset v = E_L sets it to 1 again."""
    model = """
    dv/dt = (g_L*(E_L - v) + I)/Cm : volt
    g_L : siemens (constant)
    E_L : volt (constant)
    """
    fitter = TraceFitter(model=model, input={"I": passive_data["I"]},
                         output={"v": passive_data["v"]}, dt=DT, n_samples=2,
                         param_init={"v": "E_L"}, threshold="v > -60*mV", reset="v = E_L",
                         namespace={"Cm": 50 * pF})
    bounds = {"g_L": [1 * nS, 50 * nS], "E_L": [-80 * mV, -60 * mV]}
    evaluator = _evaluator(fitter, **bounds)
    x = np.array([0.4, 0.5])
    evaluator.residuals(x)
    traces = evaluator.simulate(x).traces
    assert np.allclose(traces["S_v_E_L"][0][:, 0], 1.0)
    assert np.isfinite(evaluator.jacobian(x)).all()
    system = build_sensitivity_system(Equations(model), ["g_L", "E_L"],
                                      {"g_L": siemens.dim, "E_L": volt.dim},
                                      param_init={"v": "E_L"}, reset="v = E_L")
    assert system.init == {"S_v_E_L": "1"}
    assert "S_v_E_L = 1" in system.reset and "S_v_g_L = 0*" in system.reset
    assert system.reset.splitlines()[-1] == "v = E_L"


# -- sensitivity equations (brian2modelfitting's functions) --------------------------
TWO_VARIABLES = Equations("""
dv/dt = (g_L * (E_L - v) + I_e)/Cm : volt
dI_e/dt = -I/tau : amp
g_L : siemens (constant)
E_L : volt (constant)
""")


def test_sensitivity_equations_are_optimized_as_in_brian2modelfitting():
    optimized = get_sensitivity_equations(TWO_VARIABLES, ["g_L", "E_L"])
    assert optimized["S_v_g_L"].type == DIFFERENTIAL_EQUATION
    assert optimized["S_I_e_g_L"].type == SUBEXPRESSION  # stays zero: removed
    full = get_sensitivity_equations(TWO_VARIABLES, ["g_L", "E_L"], optimize=False)
    assert full["S_I_e_g_L"].type == DIFFERENTIAL_EQUATION
    assert get_sensitivity_init(TWO_VARIABLES, ["g_L", "E_L"], {"v": "E_L"}) == \
        {"S_v_E_L": "1"}
    assert get_sensitivity_init(TWO_VARIABLES, ["g_L"], {"v": -70 * mV}) == {}


def test_sensitivity_names_must_be_free():
    eqs = Equations("""dv/dt = -v/tau : volt
                       tau : second (constant)
                       S_v_tau : 1""")
    with pytest.raises(ModelDefinitionError, match="S_v_tau"):
        get_sensitivity_equations(eqs, ["tau"])


def test_unknown_functions_are_reported():
    eqs = Equations("""dv/dt = (f(v) - v)/tau : volt
                       tau : second (constant)""")
    with pytest.raises(ModelDefinitionError, match="calc_gradient=False"):
        get_sensitivity_equations(eqs, ["tau"])


def test_piecewise_and_exprel_terms_differentiate():
    eqs = Equations("""dv/dt = (int(v > E)*g*(E - v) + g*exprel(v/mV)*mV)/C : volt
                       g : siemens (constant)
                       E : volt (constant)""")
    text = str(get_sensitivity_equations(eqs, ["g", "E"]))
    assert "exprel" in text and "int(" in text


def test_exprel_derivative_is_finite_at_zero():
    import sympy
    from brian2.parsing.sympytools import sympy_to_str
    x = sympy.Symbol("x", real=True)
    code = sympy_to_str(_safe_exprel_derivative(x))
    for value, expected in [(0.0, 0.5), (1e-9, 0.5), (1e-3, 0.5 + 1e-3 / 3),
                            (1.0, 1.0), (-2.0, (np.exp(-2) * (-3) + 1) / 4)]:
        got = eval(code, {"int": int, "abs": abs, "exp": np.exp, "x": value})
        assert np.isfinite(got) and got == pytest.approx(expected, rel=1e-6)


def test_a_gating_variable_starting_at_zero_gives_finite_gradients(passive_data):
    """dS_v/dt's own coefficient g*m**3/C is 0 while m = 0: no division by it."""
    model = """
    dv/dt = (g*m**3*(E - v) + I)/Cm : volt
    dm/dt = (1 - m)/tau_m : 1
    g : siemens (constant)
    E : volt (constant)
    """
    fitter = TraceFitter(model=model, input={"I": passive_data["I"]},
                         output={"v": passive_data["v"]}, dt=DT, n_samples=2,
                         param_init={"v": -70 * mV, "m": 0}, method="euler",
                         namespace={"Cm": 50 * pF, "tau_m": 5 * ms})
    evaluator = _evaluator(fitter, g=[1 * nS, 50 * nS], E=[-90 * mV, -50 * mV])
    x = np.array([0.5, 0.5])
    evaluator.residuals(x)
    jac = evaluator.jacobian(x)
    assert np.isfinite(jac).all()
    numeric = _finite_difference(evaluator, x)
    scale = np.abs(numeric).max(axis=0)
    assert np.allclose(jac / scale, numeric / scale, atol=1e-6)


@pytest.mark.slow
def test_refine_on_the_hh_tutorial():
    """The tutorial's HH model (m, h, n start at 0), bundled data, with and without gradient."""
    from brian2 import msiemens, psiemens, usiemens
    from modelfit_core.tools.datasets import HH_MODEL, hh_constants, load_hh_dataset

    inputs, outputs, dt = load_hh_dataset().quantities()
    fitter = TraceFitter(model=HH_MODEL, input={"I": inputs}, output={"v": outputs}, dt=dt,
                         n_samples=2, method="exponential_euler", param_init={"v": -65 * mV},
                         namespace=hh_constants())
    fitter.fit(n_rounds=0, optimizer=NevergradOptimizer(), metric=MSEMetric(),
               gl=[2 * psiemens, 200 * nS], g_na=[200 * nS, 0.4 * msiemens],
               g_kd=[200 * nS, 200 * usiemens])
    start = {"gl": 20 * nS, "g_na": 40 * usiemens, "g_kd": 10 * usiemens}
    truth = {"gl": 12 * nS, "g_na": 25 * usiemens, "g_kd": 7 * usiemens}
    for calc_gradient in (True, False):
        params, result = fitter.refine(start, callback=None, calc_gradient=calc_gradient)
        assert result.success and np.isfinite(result.fun).all()
        for name, value in truth.items():
            assert float(params[name] / value) == pytest.approx(1, abs=0.01)
        assert float(result.error) < 0.07e-6  # noise: 0.25 mV -> 0.0625 mV^2
    traces = fitter.generate_traces(params=params)
    assert traces.shape == outputs.shape
