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

from typing import Any, Mapping, Sequence

import attrs
import sympy
from brian2 import Equations, second
from brian2.equations.equations import DIFFERENTIAL_EQUATION, SUBEXPRESSION
from brian2.parsing.sympytools import str_to_sympy, sympy_to_str
from brian2.units.fundamentalunits import DIMENSIONLESS, get_unit

from modelfit_core.contracts.errors import ModelDefinitionError

EXPREL_SMALL = 1e-4
"""Below this |x| the derivative of exprel(x) is taken from its Taylor series."""


def sensitivity_name(variable: str, parameter: str) -> str:
    """``S_<variable>_<parameter>``, the name brian2modelfitting uses."""
    return f"S_{variable}_{parameter}"


def _unit_text(dim) -> str:
    return "1" if dim is DIMENSIONLESS else repr(get_unit(dim))


def _symbol(name: str):
    return str_to_sympy(name)  # the same symbol (and assumptions) Brian's parser makes


# -- differentiating what Brian's parser produces --------------------------------
_INT = str_to_sympy("int(x)").func
_EXPREL = str_to_sympy("exprel(x)").func
_PIECEWISE_CONSTANT = {"int_", "floor", "ceil", "sign"}
_BOOLEAN_ARGUMENTS = (sympy.core.relational.Relational, sympy.logic.boolalg.BooleanFunction,
                      sympy.logic.boolalg.BooleanAtom)  # (a Symbol is a Boolean too)


def _safe_exprel_derivative(x):
    """d exprel(x)/dx = ((x - 1) exp(x) + 1)/x**2, without 0/0 at x = 0.

    Brian's own derivative divides by x**2 (NaN at x = 0 and cancellation
    near it); below ``EXPREL_SMALL`` the Taylor series 1/2 + x/3 is used.
    """
    small = _INT(sympy.Abs(x) < EXPREL_SMALL)
    large = _INT(sympy.Abs(x) >= EXPREL_SMALL)
    return small * (sympy.Rational(1, 2) + x / 3) + \
        large * ((x - 1) * sympy.exp(x) + 1) / (x ** 2 + small)


class _Exprel(sympy.Function):
    """exprel with a derivative that stays finite at 0 (printed back as exprel)."""

    nargs = 1

    def fdiff(self, argindex=1):
        return _safe_exprel_derivative(self.args[0])


def _freeze(expr):
    """Replace piecewise-constant calls (``int(v > 0*mV)``, floor, ...) by symbols.

    Their derivative is zero almost everywhere; sympy cannot differentiate a
    relational. Returns (expression, {symbol: original call}).
    """
    frozen = {}
    replacements = {}
    for call in expr.atoms(sympy.Function):
        name = type(call).__name__
        if name in _PIECEWISE_CONSTANT or any(isinstance(a, _BOOLEAN_ARGUMENTS)
                                              for a in call.args):
            symbol = sympy.Dummy(f"frozen_{name}")
            replacements[call] = symbol
            frozen[symbol] = call
    if _EXPREL is not None:
        for call in expr.atoms(_EXPREL):
            replacements[call] = _Exprel(*call.args)
    return expr.xreplace(replacements), frozen


def _thaw(expr, frozen):
    expr = expr.xreplace(frozen)
    return expr.replace(lambda e: isinstance(e, _Exprel), lambda e: _EXPREL(*e.args))


def _check_derivative(expr, what: str):
    leftover = expr.atoms(sympy.Derivative) | expr.atoms(sympy.Subs)
    if leftover:
        functions = sorted({str(getattr(d, "expr", d)) for d in leftover})
        raise ModelDefinitionError(
            f"Cannot derive the sensitivity equations symbolically: {what} involves "
            f"{', '.join(functions)}, whose derivative is unknown to sympy (a user-defined "
            f"function?). Use refine(calc_gradient=False), which estimates the gradient "
            f"by finite differences.")
    return expr


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


def _substitutions(equations: Equations) -> dict:
    """Subexpression symbol -> its expression with every subexpression substituted."""
    result = {}
    for name, expr in equations.get_substituted_expressions(include_subexpressions=True):
        if equations[name].type == SUBEXPRESSION:
            result[_symbol(name)] = str_to_sympy(expr.code)
    return result


def _split_statements(code: str | None) -> list[str]:
    if not code:
        return []
    return [part.strip() for line in str(code).splitlines() for part in line.split(";")
            if part.strip() and not part.strip().startswith("#")]


def build_sensitivity_system(equations: Equations, parameters: Sequence[str],
                             parameter_dims: Mapping[str, Any],
                             param_init: Mapping[str, Any] | None = None,
                             reset: str | None = None,
                             optimize: bool = True,
                             method: str | None = None) -> SensitivitySystem:
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
    """
    if equations.stochastic_variables:
        raise ModelDefinitionError("Sensitivity equations of stochastic models (xi) are not "
                                   "supported; use refine(calc_gradient=False).")
    diff_eqs = [(name, expr) for name, expr in equations.get_substituted_expressions()
                if equations[name].type == DIFFERENTIAL_EQUATION]
    variables = tuple(name for name, _ in diff_eqs)
    parameters = tuple(parameters)
    frozen_all = {}
    rhs = []
    for name, expr in diff_eqs:
        frozen_expr, frozen = _freeze(str_to_sympy(expr.code))
        frozen_all.update(frozen)
        rhs.append(frozen_expr)
    state = [_symbol(v) for v in variables]
    S = {(v, p): _symbol(sensitivity_name(v, p)) for v in variables for p in parameters}

    def total_derivative(expr, parameter, sens):
        """d expr/d parameter through the parameter itself and every state variable."""
        result = expr.diff(_symbol(parameter))
        for variable, symbol in zip(variables, state):
            result += expr.diff(symbol) * sens.get((variable, parameter), 0)
        return result

    jac, source = {}, {}
    for variable, expr in zip(variables, rhs):
        what = f"the equation of {variable!r}"
        for other, symbol in zip(variables, state):
            derived = _check_derivative(expr.diff(symbol), what)
            if derived != 0:
                jac[variable, other] = derived
        for parameter in parameters:
            derived = _check_derivative(expr.diff(_symbol(parameter)), what)
            if derived != 0:
                source[variable, parameter] = derived
    sens_rhs = {S[x, p]: sum((jac[x, y] * S[y, p] for y in variables if (x, y) in jac),
                             sympy.S.Zero) + source.get((x, p), 0)
                for x in variables for p in parameters}

    init = _initial_expressions(equations, variables, parameters, param_init or {})
    reset_updates = _reset_updates(equations, variables, parameters, reset, S,
                                   total_derivative)

    zero = set() if not optimize else {s for key, s in S.items()
                                       if sensitivity_name(*key) not in init}
    changed = True
    while changed and zero:
        changed = False
        substitution = {s: 0 for s in zero}
        for symbol in list(zero):
            updates = [u for _, target, u in reset_updates if target == symbol]
            if sens_rhs[symbol].xreplace(substitution) != 0 or any(
                    u.xreplace(substitution) != 0 for u in updates):
                zero.discard(symbol)
                changed = True
                substitution.pop(symbol)
    substitution = {s: 0 for s in zero}

    units, flags, rates, helpers = {}, {}, {}, {}
    dt = _symbol("dt")
    rhs_of = dict(zip(variables, rhs))

    def unit(x, per=None, time=False):
        dim = equations[x].dim / per if per is not None else equations[x].dim
        return _unit_text(dim / second.dim if time else dim)

    def helper(name, expr, unit_text):
        if name not in helpers:
            helpers[name] = (sympy_to_str(_thaw(expr, frozen_all)), unit_text)
        return _symbol(name)

    def jac_symbol(x, y):
        return helper(f"Jac_{x}_{y}", jac[x, y], unit(x, equations[y].dim, time=True))

    def exponential_euler(x):
        """Pieces of the derivative of x' = x exp(A dt) + B dt exprel(A dt) (A = df/dx)."""
        z = jac_symbol(x, x) * dt
        factor = helper(f"Xee_{x}", _EXPREL(z), "1")
        constant = rhs_of[x].subs(_symbol(x), 0)  # B: the model is linear in x
        lever = helper(f"Lee_{x}", _symbol(x) * (sympy.exp(z) - factor) +
                       constant * dt * _safe_exprel_derivative(z), unit(x))
        return factor, lever

    for (variable, parameter), symbol in S.items():
        name = sensitivity_name(variable, parameter)
        units[name] = _unit_text(equations[variable].dim / parameter_dims[parameter])
        flags[name] = ", ".join(f for f in equations[variable].flags
                                if f == "unless refractory")
        if symbol in zero:
            continue
        others = [y for y in variables if (variable, y) in jac and S[y, parameter] not in zero]
        source_term = source.get((variable, parameter), sympy.S.Zero)
        linear = (variable, variable) in jac
        if method == "exponential_euler" and linear:
            # The exact derivative of Brian's exponential-Euler step (A and B depend on
            # the other variables and the parameters, so their derivatives enter).
            factor, lever = exponential_euler(variable)
            a_coefficient = jac[variable, variable]
            rate = jac_symbol(variable, variable) * factor * symbol
            for y in others:
                if y == variable:
                    continue
                d_a = _check_derivative(a_coefficient.diff(_symbol(y)), "the Jacobian")
                coupling = helper(f"Gee_{variable}_{y}",
                                  lever * d_a + factor * jac_symbol(variable, y),
                                  unit(variable, equations[y].dim, time=True)) \
                    if d_a != 0 else factor * jac_symbol(variable, y)
                rate += coupling * S[y, parameter]
            d_a = _check_derivative(a_coefficient.diff(_symbol(parameter)), "the Jacobian")
            rate += lever * _thaw(d_a, frozen_all) + factor * _thaw(source_term, frozen_all)
        elif method in ("euler", "exponential_euler"):
            # The exact derivative of an Euler step, x' = x + dt*f(x, p)
            rate = sum((jac_symbol(variable, y) * S[y, parameter] for y in others),
                       sympy.S.Zero) + _thaw(source_term, frozen_all)
        else:
            # Other methods: the continuous sensitivity ODE, one exponential-Euler step
            # S + dt*(A*S + b)*exprel(A*dt) with A = Jac_x_x: accurate to O(dt).
            rate = sum((jac_symbol(variable, y) * S[y, parameter] for y in others),
                       sympy.S.Zero) + _thaw(source_term, frozen_all)
            if linear:
                rate = rate * _EXPREL(jac_symbol(variable, variable) * dt)
        # Written as a rate fixed over the step (a "constant over dt" subexpression):
        # the integrator then adds dt*rate, with no division by A, which may be 0.
        rate_name = f"dSdt_{variable}_{parameter}"
        rates[name] = rate_name
        helpers[rate_name] = (sympy_to_str(rate),
                              unit(variable, parameter_dims[parameter], time=True))
    clash = sorted((set(helpers) | set(units)) & set(equations.names))
    if clash:
        raise ModelDefinitionError(
            f"The model defines {', '.join(map(repr, clash))}, names that the sensitivity "
            f"equations need; rename them to use calc_gradient=True.")
    reset_code = None
    if reset_updates or _split_statements(reset):
        reset_code = _merge_reset(reset, reset_updates, zero, substitution, frozen_all,
                                  units)
    return SensitivitySystem(
        parameters=parameters, variables=variables, rhs=rates, helpers=helpers,
        zero=tuple(sensitivity_name(*key) for key, s in S.items() if s in zero),
        units=units, flags=flags, init=init, reset=reset_code)


def _initial_expressions(equations, variables, parameters, param_init) -> dict[str, str]:
    """Initial sensitivities of variables initialized with parameter expressions."""
    substitutions = _substitutions(equations)
    known: dict[tuple[str, str], Any] = {}
    result = {}
    for variable, value in param_init.items():
        if not isinstance(value, str) or variable not in variables:
            continue
        expr, frozen = _freeze(str_to_sympy(value).xreplace(substitutions))
        for parameter in parameters:
            derived = expr.diff(_symbol(parameter))
            for other in variables:
                if (other, parameter) in known:
                    derived += expr.diff(_symbol(other)) * known[other, parameter]
            derived = _check_derivative(derived, f"the initial value of {variable!r}")
            if derived != 0:
                known[variable, parameter] = derived
                result[sensitivity_name(variable, parameter)] = sympy_to_str(
                    _thaw(derived, frozen))
    return result


_OPERATORS = {"=": lambda x, e: e, "+=": lambda x, e: x + e, "-=": lambda x, e: x - e,
              "*=": lambda x, e: x * e, "/=": lambda x, e: x / e}


def _reset_updates(equations, variables, parameters, reset, S, total_derivative):
    """[(statement index, sensitivity symbol, new value)] for each reset statement."""
    from brian2.parsing.statements import parse_statement

    substitutions = _substitutions(equations)
    updates = []
    for index, statement in enumerate(_split_statements(reset)):
        target, op, expr_code, _ = parse_statement(statement)
        if target not in variables or op not in _OPERATORS:
            continue
        new_value = _OPERATORS[op](_symbol(target), str_to_sympy(expr_code))
        new_value, frozen = _freeze(new_value.xreplace(substitutions))
        for parameter in parameters:
            derived = _check_derivative(total_derivative(new_value, parameter, S),
                                        f"the reset statement {statement!r}")
            updates.append((index, S[target, parameter], _thaw(derived, frozen)))
    return updates


def _merge_reset(reset, updates, zero, substitution, frozen_all, units) -> str:
    """User statements with the sensitivity updates placed just before each one."""
    lines = []
    for index, statement in enumerate(_split_statements(reset)):
        for position, symbol, value in updates:
            if position == index and symbol not in zero:
                value = _thaw(value.xreplace(substitution), frozen_all)
                code = sympy_to_str(value) if value != 0 else (
                    "0" if units[str(symbol)] == "1" else f"0*{units[str(symbol)]}")
                lines.append(f"{symbol} = {code}")
        lines.append(statement)
    return "\n".join(lines)


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
