"""How the sensitivities jump at a spike: the reset and the shift of the spike time.

Between spikes the sensitivities ``S = dx/dp`` follow the sensitivity
equations (:mod:`.sensitivity`). At a spike two things change them at once:

* the reset ``x+ = R(x-, p)`` maps the state, so its derivative maps the
  sensitivities: ``dR/dx S- + dR/dp``;
* the spike time ``t*`` itself moves with the parameters. With the threshold
  condition ``g(x, p) > 0`` crossed at ``t*``,
  ``dt*/dp = -(dg/dx S- + dg/dp) / (dg/dx f-)``, and the state just after the
  spike differs by ``(dR/dx f- - f+) dt*/dp`` (the saltation condition), where
  ``f-`` and ``f+`` are the right-hand sides before and after the reset.

Together, for every state variable ``x`` (``R_x = x`` for variables the reset
leaves alone):

    S+ = dR/dx S- + dR/dp + (dR/dx f- - f+) dt*/dp

Without the second term the gradient of a spiking model is wrong exactly where
fitting needs it: a parameter that moves a spike changes the trace by the whole
spike's height, not by the small change of the voltage at a fixed time.

Everything is computed from the state before the reset, so the updates are
written as temporaries (new values first, then assigned) placed before the
user's reset statements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sympy
from brian2.parsing.sympytools import str_to_sympy, sympy_to_str

from modelfit_core.contracts.errors import ModelDefinitionError
from modelfit_core.model.symbolic import (
    assigned_value,
    brian_symbol,
    check_derivative,
    freeze,
    split_statements,
    subexpression_substitutions,
    thaw,
)

SHIFT_PREFIX = "modelfit_spike_shift_"
"""Temporaries holding ``dt*/dp`` in the reset code."""
NEW_PREFIX = "modelfit_jump_"
"""Temporaries holding the new value of a sensitivity before it is assigned."""

_NOT_DIFFERENTIABLE = {"rand", "randn", "poisson"}


def threshold_function(threshold: str, substitutions: Mapping) -> Any:
    """``g`` with the spike at ``g`` crossing zero upwards, from ``lhs > rhs`` (or ``<``).

    Raises
    ------
    ModelDefinitionError
        The threshold is not one comparison of two expressions (a spike time
        that depends on a logical combination cannot be differentiated).
    """
    try:
        condition: Any = str_to_sympy(threshold)
    except Exception as exc:  # Brian's parser says what it could not read
        raise ModelDefinitionError(f"Cannot read the threshold {threshold!r} for the "
                                   f"gradient: {exc}") from exc
    relational = sympy.core.relational
    sides: tuple[Any, Any] = (getattr(condition, "lhs", None), getattr(condition, "rhs", None))
    if isinstance(condition, (relational.StrictGreaterThan, relational.GreaterThan)):
        g = sides[0] - sides[1]
    elif isinstance(condition, (relational.StrictLessThan, relational.LessThan)):
        g = sides[1] - sides[0]
    else:
        raise ModelDefinitionError(
            f"The gradient of a spiking model needs the spike time as a function of the "
            f"parameters, so the threshold must be one comparison such as 'v > V_T'; got "
            f"{threshold!r}. Simplify the threshold, or fit with a derivative-free "
            f"optimizer (e.g. optimizer='de').")
    return g.xreplace(substitutions)


def reset_values(reset: str | None, variables: Sequence[str], substitutions: Mapping,
                 parameters: Sequence[str]) -> dict[str, Any]:
    """Variable -> its value after the whole reset, as an expression of the state before
    it (statements applied in order, so ``v = v_r; w += v`` reads the new ``v``)."""
    current: dict[str, Any] = {}
    for statement in split_statements(reset):
        if any(name in statement for name in _NOT_DIFFERENTIABLE):
            raise ModelDefinitionError(
                f"The reset statement {statement!r} draws random numbers, which have no "
                f"derivative; fit this model with a derivative-free optimizer (e.g. "
                f"optimizer='de').")
        target, value = assigned_value(statement, variables)
        if target in parameters:
            raise ModelDefinitionError(
                f"The reset statement {statement!r} changes the fitted parameter "
                f"{target!r}; its gradient is not defined. Fit it with a derivative-free "
                f"optimizer (e.g. optimizer='de'), or do not fit {target!r}.")
        if value is None:
            continue
        state = {brian_symbol(name): expr for name, expr in current.items()}
        current[target] = value.xreplace(substitutions).xreplace(state)
    return current


class SpikeJumps:
    """The jumps of every sensitivity at a spike, derived once (see the module).

    Parameters
    ----------
    threshold, reset : str
        The model's threshold condition and reset code.
    rhs : mapping
        Variable -> right-hand side of its equation (frozen, subexpressions substituted).
    frozen : mapping
        The frozen symbols of ``rhs`` (see :func:`~.symbolic.freeze`).
    sens : mapping
        (variable, parameter) -> the symbol ``S_variable_parameter``.
    parameters : sequence of str
        The fitted parameters.
    substitutions : mapping
        Subexpression symbol -> its expression.
    """

    def __init__(self, *, threshold: str, reset: str | None, rhs: Mapping[str, Any],
                 frozen: Mapping, sens: Mapping[tuple[str, str], Any],
                 parameters: Sequence[str], substitutions: Mapping):
        variables = tuple(rhs)
        g, g_frozen = freeze(threshold_function(threshold, substitutions))
        after = reset_values(reset, variables, substitutions, parameters)
        after_frozen: dict = {}
        for name, value in list(after.items()):
            after[name], found = freeze(value)
            after_frozen.update(found)
        self.frozen = {**frozen, **g_frozen, **after_frozen}
        self.sens = sens
        self.parameters = tuple(parameters)
        what = f"the threshold {threshold!r}"
        # dg/dt along the flow just before the spike (the same for every parameter)
        self.rate = sum((check_derivative(g.diff(brian_symbol(x)), what) * rhs[x]
                         for x in variables), sympy.S.Zero)
        if self.rate == 0:
            raise ModelDefinitionError(
                f"The threshold {threshold!r} does not depend on the state variables, so "
                f"the spike times do not move with the parameters and have no gradient; "
                f"fit with a derivative-free optimizer (e.g. optimizer='de').")
        state_after = {brian_symbol(x): after.get(x, brian_symbol(x)) for x in variables}
        self.crossing = {}
        """Parameter -> dg/dp + dg/dx S (the numerator of -dt*/dp)."""
        self.values = {}
        """Sensitivity symbol -> its value after the spike, with ``shift_symbol(p)``
        standing for dt*/dp."""
        for p in parameters:
            self.crossing[p] = g.diff(brian_symbol(p)) + sum(
                (check_derivative(g.diff(brian_symbol(x)), what) * sens[x, p]
                 for x in variables), sympy.S.Zero)
            for x in variables:
                value = after.get(x, brian_symbol(x))
                where = f"the reset of {x!r}"
                derived = check_derivative(value.diff(brian_symbol(p)), where) + sum(
                    (check_derivative(value.diff(brian_symbol(y)), where) * sens[y, p]
                     for y in variables), sympy.S.Zero)
                along_flow = sum((check_derivative(value.diff(brian_symbol(y)), where) * rhs[y]
                                  for y in variables), sympy.S.Zero)
                derived += (along_flow - rhs[x].xreplace(state_after)) * self.shift_symbol(p)
                self.values[sens[x, p]] = derived

    @staticmethod
    def shift_symbol(parameter: str):
        return brian_symbol(SHIFT_PREFIX + parameter)

    def updates(self) -> list[tuple[Any, Any]]:
        """(sensitivity symbol, value after the spike) with dt*/dp written out: what
        decides which sensitivities can stay zero."""
        shifts = {self.shift_symbol(p): -self.crossing[p] / self.rate for p in self.parameters}
        return [(symbol, value.xreplace(shifts)) for symbol, value in self.values.items()]

    def shifted_parameters(self, zero: set) -> dict[str, str]:
        """Parameter -> the temporary holding dt*/dp in :meth:`statements` (parameters
        that do not move spikes are left out)."""
        without_zero = {s: 0 for s in zero}
        return {p: str(self.shift_symbol(p)) for p in self.parameters
                if self.crossing[p].xreplace(without_zero) != 0}

    def statements(self, zero: set, units: Mapping[str, str]) -> list[str]:
        """Brian statements updating every simulated sensitivity (those not in ``zero``),
        to run before the user's reset statements; ``units``: sensitivity name -> unit,
        for the zero values Brian reads with a unit."""
        without_zero = {s: 0 for s in zero}
        lines, assignments = [], []
        for p in self.parameters:
            crossing = self.crossing[p].xreplace(without_zero)
            shift = self.shift_symbol(p)
            if crossing != 0:
                lines.append(f"{shift} = "
                             f"{sympy_to_str(thaw(-crossing / self.rate, self.frozen))}")
            for x_p, symbol in self.sens.items():
                if x_p[1] != p or symbol in zero:
                    continue
                value = self.values[symbol].xreplace(without_zero)
                if crossing == 0:
                    value = value.xreplace({shift: 0})
                if value == symbol:
                    continue  # neither reset nor moved: unchanged
                name = str(symbol)
                code = sympy_to_str(thaw(value, self.frozen)) if value != 0 else (
                    "0" if units[name] == "1" else f"0*{units[name]}")
                lines.append(f"{NEW_PREFIX}{name} = {code}")
                assignments.append(f"{name} = {NEW_PREFIX}{name}")
        return lines + assignments


def merge_reset_with_jumps(reset: str | None, jumps: Sequence[str]) -> str:
    """The reset code: the sensitivity jumps (computed from the state before the reset),
    then the user's statements."""
    return "\n".join([*jumps, *split_statements(reset)])


# -- the reset alone (refine(calc_gradient=True): spike times held) -----------------
def reset_sensitivity_updates(equations, derivatives, reset):
    """[(statement index, sensitivity symbol, new value)] for each reset statement."""
    substitutions = subexpression_substitutions(equations)
    updates = []
    for index, statement in enumerate(split_statements(reset)):
        target, new_value = assigned_value(statement, derivatives.variables)
        if new_value is None:
            continue
        new_value, frozen = freeze(new_value.xreplace(substitutions))
        for parameter in derivatives.parameters:
            derived = check_derivative(derivatives.total_derivative(new_value, parameter),
                                       f"the reset statement {statement!r}")
            updates.append((index, derivatives.sens[target, parameter], thaw(derived, frozen)))
    return updates


def merge_reset(reset, updates, zero, frozen_all, units) -> str:
    """User statements with the sensitivity updates placed just before each one."""
    substitution = {s: 0 for s in zero}
    lines = []
    for index, statement in enumerate(split_statements(reset)):
        for position, symbol, value in updates:
            if position == index and symbol not in zero:
                value = thaw(value.xreplace(substitution), frozen_all)
                code = sympy_to_str(value) if value != 0 else (
                    "0" if units[str(symbol)] == "1" else f"0*{units[str(symbol)]}")
                lines.append(f"{symbol} = {code}")
        lines.append(statement)
    return "\n".join(lines)
