"""Sensitivity equations: how every state variable changes with every fitted parameter.

For a model ``dx/dt = f(x, p, t)`` the sensitivities ``S_x_p = dx/dp`` obey

    dS_x_p/dt = sum_y (df_x/dy) S_y_p + df_x/dp

(forward sensitivity analysis). They are derived symbolically with Brian's
sympy bridge (:func:`brian2.parsing.sympytools.str_to_sympy` and
:func:`~brian2.parsing.sympytools.sympy_to_str`) and simulated alongside the
model, so that :meth:`TraceFitter.refine` can hand scipy the analytic
Jacobian of the residuals. Initial values that are expressions of the
parameters (``param_init={'v': 'E_L'}``) give non-zero initial sensitivities,
and reset statements update the sensitivities of the variables they set
(the shift of the spike time itself is not taken into account).

:func:`get_sensitivity_equations` and :func:`get_sensitivity_init` are the
functions of brian2modelfitting's API reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import sympy
from brian2 import Equations, get_dimensions, second
from brian2.equations.equations import DIFFERENTIAL_EQUATION, dimensions_and_type_from_string
from brian2.parsing.sympytools import str_to_sympy, sympy_to_str
from brian2.units.fundamentalunits import DIMENSIONLESS, get_unit

from modelfit_core.contracts.errors import ModelDefinitionError
from modelfit_core.model.spike_jumps import (SpikeJumps, merge_reset, merge_reset_with_jumps,
                                             reset_sensitivity_updates)
from modelfit_core.model.symbolic import (EXPREL, brian_symbol, check_derivative, freeze,
                                          safe_exprel_derivative, split_statements,
                                          subexpression_substitutions, thaw)

_safe_exprel_derivative = safe_exprel_derivative  # the name tests/test_refine.py imports


def sensitivity_name(variable: str, parameter: str) -> str:
    """``S_<variable>_<parameter>``, the name brian2modelfitting uses."""
    return f"S_{variable}_{parameter}"


def _unit_text(dim) -> str:
    """A unit Brian's equations accept for ``dim``: its unit's name if that is made of
    base units (``volt``), else the base units themselves (``second ** -2``, where the
    name would be ``hertz2``, which equations refuse)."""
    if dim is DIMENSIONLESS:
        return "1"
    name = repr(get_unit(dim))
    try:
        dimensions_and_type_from_string(name)
    except (ValueError, KeyError, SyntaxError):
        return repr(dim)
    return name


# -- the system ---------------------------------------------------------------------
@attrs.frozen
class SensitivitySystem:
    """Sensitivity equations for a model and a list of fitted parameters."""

    parameters: tuple[str, ...]
    variables: tuple[str, ...]
    """The differential-equation variables, in model order."""
    rhs: dict[str, str]
    """Sensitivities that evolve: name -> the subexpression holding their rate."""
    helpers: dict[str, tuple[str, str]]
    """Helper subexpressions (Jacobian entries ``Jac_x_y``, rates ``dSdt_x_p``),
    evaluated once per time step: name -> (Brian code, unit)."""
    zero: tuple[str, ...]
    """Sensitivities that stay zero (removed from the simulation when optimized)."""
    units: dict[str, str]
    """Every sensitivity -> its unit (``dim(x)/dim(p)``), as Brian accepts it."""
    flags: dict[str, str]
    """Sensitivity -> flags copied from its variable (e.g. ``unless refractory``)."""
    init: dict[str, str]
    """Non-zero initial values, as expressions to evaluate once parameters are set."""
    reset: str | None = None
    """The reset code with the sensitivity updates interleaved, if there is a reset."""
    spike_shifts: dict[str, str] = attrs.field(factory=dict)
    """With spike jumps: parameter -> the temporary of the reset code holding
    dt_spike/dparameter (only parameters that move spikes)."""

    def name(self, variable: str, parameter: str) -> str:
        return sensitivity_name(variable, parameter)

    @property
    def dynamic(self) -> tuple[str, ...]:
        return tuple(self.rhs)

    def equation_lines(self, include_zero: bool = True) -> list[str]:
        """Brian equation lines; zero sensitivities become ``S = 0*unit`` subexpressions."""
        lines = []
        for name, (code, unit) in self.helpers.items():
            if code == "0":
                code = "0/second" if unit == "Hz" else f"0*{unit}"
            lines.append(f"{name} = {code} : {unit} (constant over dt)")
        for name, rate in self.rhs.items():
            flags = f" ({self.flags[name]})" if self.flags.get(name) else ""
            lines.append(f"d{name}/dt = {rate} : {self.units[name]}{flags}")
        if include_zero:
            for name in self.zero:
                unit = self.units[name]
                lines.append(f"{name} = {'0' if unit == '1' else '0*' + unit} : {unit}")
        return lines

    def equations_text(self, include_zero: bool = True) -> str:
        return "\n".join(self.equation_lines(include_zero))


def build_sensitivity_system(equations: Equations, parameters: Sequence[str],
                             parameter_dims: Mapping[str, Any],
                             param_init: Mapping[str, Any] | None = None,
                             reset: str | None = None,
                             optimize: bool = True,
                             method: str | None = None,
                             threshold: str | None = None) -> SensitivitySystem:
    """Derive the sensitivity equations of ``equations`` for ``parameters``.

    Parameters
    ----------
    equations : Equations
        The model (inputs such as ``I`` are external symbols with zero derivative).
    parameters : sequence of str
        Fitted parameters.
    parameter_dims : mapping
        Parameter name -> Brian dimension.
    param_init : mapping, optional
        Initial values; string expressions give non-zero initial sensitivities.
    reset : str, optional
        Reset statements; the sensitivities of the variables they set are reset too.
    optimize : bool
        Leave out sensitivities that stay zero when they start at zero (found as
        a fixed point over the whole system, initial values and resets included).
    method : str, optional
        The integration method of the simulation. With ``'exponential_euler'`` or
        ``'euler'`` the sensitivities are the exact derivatives of the simulated
        (discrete) trajectory; otherwise they integrate the continuous sensitivity
        equations, accurate to O(dt).
    threshold : str, optional
        The spike condition. Given, the sensitivities also jump by the shift of each
        spike's time (the saltation condition, :mod:`.spike_jumps`), as the gradient of a
        spiking model needs; without it, only the reset updates them.
    """
    _reject_stochastic(equations)
    derivatives = _Derivatives.of(equations, tuple(parameters))
    init = _initial_expressions(equations, derivatives.variables, derivatives.parameters,
                                param_init or {})
    jumps, spike_shifts = None, {}
    if threshold is not None:
        jumps = SpikeJumps(threshold=threshold, reset=reset, rhs=derivatives.rhs,
                           frozen=derivatives.frozen, sens=derivatives.sens,
                           parameters=derivatives.parameters,
                           substitutions=subexpression_substitutions(equations))
        reset_updates = [(0, symbol, value) for symbol, value in jumps.updates()]
    else:
        reset_updates = reset_sensitivity_updates(equations, derivatives, reset)
    zero = _zero_sensitivities(derivatives, init, reset_updates) if optimize else set()
    units, flags = _units_and_flags(equations, derivatives, parameter_dims)
    helpers = _Helpers(equations, derivatives)
    rates = _write_rates(helpers, parameter_dims, zero, method)
    _check_names_are_free(equations, set(helpers.written) | set(units))
    reset_code = None
    if jumps is not None:
        reset_code = merge_reset_with_jumps(reset, jumps.statements(zero, units))
        spike_shifts = jumps.shifted_parameters(zero)
    elif reset_updates or split_statements(reset):
        reset_code = merge_reset(reset, reset_updates, zero, derivatives.frozen, units)
    return SensitivitySystem(
        parameters=derivatives.parameters, variables=derivatives.variables, rhs=rates,
        helpers=helpers.written, units=units, flags=flags, init=init, reset=reset_code,
        spike_shifts=spike_shifts,
        zero=tuple(sensitivity_name(*key) for key, s in derivatives.sens.items()
                   if s in zero))


def _reject_stochastic(equations: Equations) -> None:
    """Noise (xi) has no derivative: refuse before any symbolic work is done."""
    if equations.stochastic_variables:
        raise ModelDefinitionError("Sensitivity equations of stochastic models (xi) are not "
                                   "supported; use refine(calc_gradient=False).")


@attrs.frozen
class _Derivatives:
    """The partial derivatives of the model that every later step reads.

    The zero fixed point, the rates and the reset updates all combine the same
    Jacobian ``df_x/dy``, sources ``df_x/dp`` and sensitivity symbols, so they
    are derived once, on right-hand sides whose piecewise-constant calls are
    frozen (``frozen`` thaws them back).
    """

    variables: tuple[str, ...]
    parameters: tuple[str, ...]
    rhs: dict[str, Any]
    """Variable -> its (frozen) right-hand side, in model order."""
    frozen: dict
    """Frozen symbol -> the call it stands for, over all equations."""
    jac: dict[tuple[str, str], Any]
    """(x, y) -> df_x/dy, the non-zero entries only."""
    source: dict[tuple[str, str], Any]
    """(x, p) -> df_x/dp, the non-zero entries only."""
    sens: dict[tuple[str, str], Any]
    """(x, p) -> the symbol ``S_x_p``, variables first, parameters second."""

    @classmethod
    def of(cls, equations: Equations, parameters: tuple[str, ...]) -> _Derivatives:
        """Differentiate every right-hand side once (an unknown function is reported here)."""
        frozen_all, rhs = {}, {}
        for name, expr in equations.get_substituted_expressions():
            if equations[name].type == DIFFERENTIAL_EQUATION:
                rhs[name], frozen = freeze(str_to_sympy(expr.code))
                frozen_all.update(frozen)
        variables = tuple(rhs)
        jac, source = {}, {}
        for variable, expr in rhs.items():
            what = f"the equation of {variable!r}"
            for other in variables:
                derived = check_derivative(expr.diff(brian_symbol(other)), what)
                if derived != 0:
                    jac[variable, other] = derived
            for parameter in parameters:
                derived = check_derivative(expr.diff(brian_symbol(parameter)), what)
                if derived != 0:
                    source[variable, parameter] = derived
        sens = {(v, p): brian_symbol(sensitivity_name(v, p))
                for v in variables for p in parameters}
        return cls(variables, parameters, rhs, frozen_all, jac, source, sens)

    def sensitivity_rhs(self, variable: str, parameter: str):
        """dS_x_p/dt of the continuous system: sum_y Jac_x_y S_y_p + df_x/dp."""
        return sum((self.jac[variable, y] * self.sens[y, parameter] for y in self.variables
                    if (variable, y) in self.jac), sympy.S.Zero) + \
            self.source.get((variable, parameter), 0)

    def total_derivative(self, expr, parameter: str):
        """d expr/d parameter through the parameter itself and every state variable."""
        result = expr.diff(brian_symbol(parameter))
        for variable in self.variables:
            result += expr.diff(brian_symbol(variable)) * \
                self.sens.get((variable, parameter), 0)
        return result


def _zero_sensitivities(derivatives: _Derivatives, init: Mapping[str, str],
                        reset_updates) -> set:
    """The sensitivity symbols that stay zero, to leave out of the simulation.

    Start from every sensitivity without a non-zero initial value and drop those
    whose rate or reset update is non-zero while the others are zero, until
    nothing changes (the largest set that is consistent over the whole system).
    """
    zero = {s for key, s in derivatives.sens.items() if sensitivity_name(*key) not in init}
    rates = {s: derivatives.sensitivity_rhs(*key) for key, s in derivatives.sens.items()}
    changed = True
    while changed and zero:
        changed = False
        substitution = {s: 0 for s in zero}
        for symbol in list(zero):
            updates = [u for _, target, u in reset_updates if target == symbol]
            if rates[symbol].xreplace(substitution) != 0 or any(
                    u.xreplace(substitution) != 0 for u in updates):
                zero.discard(symbol)
                changed = True
                substitution.pop(symbol)
    return zero


def _units_and_flags(equations: Equations, derivatives: _Derivatives,
                     parameter_dims: Mapping[str, Any]) -> tuple[dict, dict]:
    """Each sensitivity's unit (dim(x)/dim(p)) and the flags it shares with its variable.

    ``unless refractory`` is copied so that a sensitivity is held while its
    variable is; zero sensitivities get a unit too (their ``0*unit`` lines).
    """
    units, flags = {}, {}
    for variable, parameter in derivatives.sens:
        name = sensitivity_name(variable, parameter)
        units[name] = _unit_text(equations[variable].dim / parameter_dims[parameter])
        flags[name] = ", ".join(f for f in equations[variable].flags
                                if f == "unless refractory")
    return units, flags


@attrs.define
class _Helpers:
    """Helper subexpressions (``Jac_x_y``, ``Xee_x``, ``Lee_x``, ``Gee_x_y``, ``dSdt_x_p``).

    They are evaluated once per time step and shared by the rates of every
    parameter, so each is written once, in the order it is first needed.
    """

    equations: Equations
    derivatives: _Derivatives
    written: dict[str, tuple[str, str]] = attrs.field(factory=dict)
    """Name -> (Brian code, unit), as :attr:`SensitivitySystem.helpers`."""

    def add(self, name: str, expr, unit_text: str):
        """Write ``name = expr`` unless it is written already; returns its symbol."""
        if name not in self.written:
            self.written[name] = (sympy_to_str(thaw(expr, self.derivatives.frozen)), unit_text)
        return brian_symbol(name)

    def jac(self, x: str, y: str):
        return self.add(f"Jac_{x}_{y}", self.derivatives.jac[x, y],
                        self.unit(x, self.equations[y].dim, time=True))

    def unit(self, x: str, per=None, time: bool = False) -> str:
        """The unit of ``x`` (divided by ``per``, and per second with ``time``)."""
        dim = self.equations[x].dim / per if per is not None else self.equations[x].dim
        return _unit_text(dim / get_dimensions(second) if time else dim)

    def exponential_euler_pieces(self, x: str):
        """Pieces of the derivative of x' = x exp(A dt) + B dt exprel(A dt) (A = df/dx)."""
        dt = brian_symbol("dt")
        z = self.jac(x, x) * dt
        factor = self.add(f"Xee_{x}", EXPREL(z), "1")
        # B: the model is linear in x
        constant = self.derivatives.rhs[x].subs(brian_symbol(x), 0)
        lever = self.add(f"Lee_{x}", brian_symbol(x) * (sympy.exp(z) - factor) +
                         constant * dt * safe_exprel_derivative(z), self.unit(x))
        return factor, lever


def _write_rates(helpers: _Helpers, parameter_dims: Mapping[str, Any], zero: set,
                 method: str | None) -> dict[str, str]:
    """Sensitivity name -> the name of its rate subexpression (zero ones left out).

    Each rate is written as a helper fixed over the step ("constant over dt"):
    the integrator then adds ``dt*rate``, with no division by ``Jac_x_x``,
    which may be 0.
    """
    rates = {}
    for (variable, parameter), symbol in helpers.derivatives.sens.items():
        if symbol in zero:
            continue
        coupled = [y for y in helpers.derivatives.variables
                   if (variable, y) in helpers.derivatives.jac
                   and helpers.derivatives.sens[y, parameter] not in zero]
        rate = _rate(helpers, variable, parameter, coupled, method)
        rate_name = f"dSdt_{variable}_{parameter}"
        rates[sensitivity_name(variable, parameter)] = rate_name
        helpers.written[rate_name] = (
            sympy_to_str(rate), helpers.unit(variable, parameter_dims[parameter], time=True))
    return rates


def _rate(helpers: _Helpers, variable: str, parameter: str, coupled: list[str],
          method: str | None):
    """dS_x_p/dt for ``method``: the derivative of its discrete step where it is known."""
    linear = (variable, variable) in helpers.derivatives.jac
    if method == "exponential_euler" and linear:
        return _exponential_euler_rate(helpers, variable, parameter, coupled)
    rate = _euler_rate(helpers, variable, parameter, coupled)
    if method in ("euler", "exponential_euler") or not linear:
        return rate
    # Other methods: the continuous sensitivity ODE, one exponential-Euler step
    # S + dt*(A*S + b)*exprel(A*dt) with A = Jac_x_x: accurate to O(dt).
    return rate * EXPREL(helpers.jac(variable, variable) * brian_symbol("dt"))


def _euler_rate(helpers: _Helpers, variable: str, parameter: str, coupled: list[str]):
    """The exact derivative of an Euler step, x' = x + dt*f(x, p)."""
    derivatives = helpers.derivatives
    source = derivatives.source.get((variable, parameter), sympy.S.Zero)
    return sum((helpers.jac(variable, y) * derivatives.sens[y, parameter] for y in coupled),
               sympy.S.Zero) + thaw(source, derivatives.frozen)


def _exponential_euler_rate(helpers: _Helpers, variable: str, parameter: str,
                            coupled: list[str]):
    """The exact derivative of Brian's exponential-Euler step.

    A and B depend on the other variables and the parameters, so their
    derivatives enter, through the lever ``Lee_x`` and the couplings ``Gee_x_y``.
    """
    derivatives = helpers.derivatives
    factor, lever = helpers.exponential_euler_pieces(variable)
    a_coefficient = derivatives.jac[variable, variable]
    rate = helpers.jac(variable, variable) * factor * derivatives.sens[variable, parameter]
    for y in coupled:
        if y == variable:
            continue
        d_a = check_derivative(a_coefficient.diff(brian_symbol(y)), "the Jacobian")
        coupling = helpers.add(f"Gee_{variable}_{y}",
                               lever * d_a + factor * helpers.jac(variable, y),
                               helpers.unit(variable, helpers.equations[y].dim, time=True)) \
            if d_a != 0 else factor * helpers.jac(variable, y)
        rate += coupling * derivatives.sens[y, parameter]
    d_a = check_derivative(a_coefficient.diff(brian_symbol(parameter)), "the Jacobian")
    source = derivatives.source.get((variable, parameter), sympy.S.Zero)
    return rate + (lever * thaw(d_a, derivatives.frozen) +
                   factor * thaw(source, derivatives.frozen))


def _check_names_are_free(equations: Equations, names: set[str]) -> None:
    """The sensitivities and helpers are added to the model: their names must be unused."""
    clash = sorted(names & set(equations.names))
    if clash:
        raise ModelDefinitionError(
            f"The model defines {', '.join(map(repr, clash))}, names that the sensitivity "
            f"equations need; rename them to use calc_gradient=True.")


def _initial_expressions(equations, variables, parameters, param_init) -> dict[str, str]:
    """Initial sensitivities of variables initialized with parameter expressions."""
    substitutions = subexpression_substitutions(equations)
    known: dict[tuple[str, str], Any] = {}
    result = {}
    for variable, value in param_init.items():
        if not isinstance(value, str) or variable not in variables:
            continue
        expr, frozen = freeze(str_to_sympy(value).xreplace(substitutions))
        for parameter in parameters:
            derived = expr.diff(brian_symbol(parameter))
            for other in variables:
                if (other, parameter) in known:
                    derived += expr.diff(brian_symbol(other)) * known[other, parameter]
            derived = check_derivative(derived, f"the initial value of {variable!r}")
            if derived != 0:
                known[variable, parameter] = derived
                result[sensitivity_name(variable, parameter)] = sympy_to_str(
                    thaw(derived, frozen))
    return result


# -- brian2modelfitting's API -------------------------------------------------------
def _equations_and_dims(group, parameters, namespace):
    equations = group if isinstance(group, Equations) else getattr(group, "equations", None)
    if equations is None:
        raise TypeError(f"Expected a NeuronGroup or Equations, got {group!r}.")
    variables = getattr(group, "variables", {})
    dims = {}
    for parameter in parameters:
        if namespace and parameter in namespace:
            dims[parameter] = getattr(namespace[parameter], "dim", DIMENSIONLESS)
        elif parameter in equations.names:
            dims[parameter] = equations[parameter].dim
        elif parameter in variables:
            dims[parameter] = variables[parameter].dim
        else:
            raise ModelDefinitionError(f"Parameter {parameter!r} is neither in the namespace "
                                       f"nor a variable of the model.")
    return equations, dims


def get_sensitivity_equations(group, parameters, namespace=None, level=1, optimize=True):
    """Get equations for sensitivity variables.

    Parameters
    ----------
    group : NeuronGroup or Equations
        The group of neurons that will be simulated (or its equations).
    parameters : list of str
        Names of the parameters that are fit.
    namespace : dict, optional
        The namespace to use (only needed for parameters that are not model variables).
    level : int, optional
        Unused; kept for compatibility with brian2modelfitting.
    optimize : bool, optional
        Whether to remove sensitivity variables from the equations that do
        not evolve if initialized to zero (e.g. ``dS_x_y/dt = -S_x_y/tau``
        would be removed); they become ``S_x_y = 0`` subexpressions.

    Returns
    -------
    sensitivity_eqs : Equations
        The equations for the sensitivity variables.
    """
    equations, dims = _equations_and_dims(group, parameters, namespace)
    system = build_sensitivity_system(equations, parameters, dims, optimize=optimize)
    return Equations(system.equations_text(include_zero=True))


def get_sensitivity_init(group, parameters, param_init):
    """Initial values of the sensitivity variables for expressions in ``param_init``.

    Parameters
    ----------
    group : NeuronGroup or Equations
        The group of neurons that will be simulated (or its equations).
    parameters : list of str
        Names of the parameters that are fit.
    param_init : dict
        The dictionary with expressions to initialize the model variables.

    Returns
    -------
    sensitivity_init : dict
        Dictionary of expressions to initialize the sensitivity parameters.
    """
    equations, _ = _equations_and_dims(group, parameters, None)
    variables = tuple(equations.diff_eq_names)
    return _initial_expressions(equations, variables, tuple(parameters), param_init)
