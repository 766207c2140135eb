"""Differentiating what Brian's parser produces, with sympy.

Brian's sympy bridge (:func:`~brian2.parsing.sympytools.str_to_sympy`) turns
model code into expressions that sympy cannot always differentiate as they
are: calls with a relational argument (``int(v > 0*mV)``) and piecewise-constant
functions are frozen into symbols first (their derivative is zero almost
everywhere) and thawed back afterwards, and ``exprel`` gets a derivative that
stays finite at 0. Reset statements are read as the new values they assign.
Used by :mod:`.sensitivity`.
"""

from __future__ import annotations

from typing import Any

import sympy
from brian2 import Equations
from brian2.equations.equations import SUBEXPRESSION
from brian2.parsing.sympytools import str_to_sympy

from modelfit_core.contracts.errors import ModelDefinitionError


EXPREL_SMALL = 1e-4
"""Below this |x| the derivative of exprel(x) is taken from its Taylor series."""

_INT = str_to_sympy("int(x)").func
EXPREL = str_to_sympy("exprel(x)").func
_PIECEWISE_CONSTANT = {"int_", "floor", "ceil", "sign"}
_BOOLEAN_ARGUMENTS = (sympy.core.relational.Relational, sympy.logic.boolalg.BooleanFunction,
                      sympy.logic.boolalg.BooleanAtom)  # (a Symbol is a Boolean too)


def safe_exprel_derivative(x):
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
        return safe_exprel_derivative(self.args[0])


def freeze(expr):
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
    if EXPREL is not None:
        for call in expr.atoms(EXPREL):
            replacements[call] = _Exprel(*call.args)
    return expr.xreplace(replacements), frozen


def brian_symbol(name: str):
    """The symbol for ``name``, with the same assumptions Brian's parser gives it."""
    return str_to_sympy(name)


def thaw(expr, frozen):
    """Undo :func:`freeze`: the frozen calls, and ``exprel`` printable by Brian again."""
    expr = expr.xreplace(frozen)
    return expr.replace(lambda e: isinstance(e, _Exprel), lambda e: EXPREL(*e.args))


def check_derivative(expr, what: str):
    """``expr``, unless sympy left a derivative it does not know (a user function)."""
    leftover = expr.atoms(sympy.Derivative) | expr.atoms(sympy.Subs)
    if leftover:
        functions = sorted({str(getattr(d, "expr", d)) for d in leftover})
        raise ModelDefinitionError(
            f"Cannot derive the sensitivity equations symbolically: {what} involves "
            f"{', '.join(functions)}, whose derivative is unknown to sympy (a user-defined "
            f"function?). Use refine(calc_gradient=False), which estimates the gradient "
            f"by finite differences.")
    return expr


def subexpression_substitutions(equations: Equations) -> dict:
    """Subexpression symbol -> its expression with every subexpression substituted."""
    result = {}
    for name, expr in equations.get_substituted_expressions(include_subexpressions=True):
        if equations[name].type == SUBEXPRESSION:
            result[brian_symbol(name)] = str_to_sympy(expr.code)
    return result


def split_statements(code: str | None) -> list[str]:
    """The statements of Brian code (one per line or ``;``), comments left out."""
    if not code:
        return []
    return [part.strip() for line in str(code).splitlines() for part in line.split(";")
            if part.strip() and not part.strip().startswith("#")]


_OPERATORS = {"=": lambda x, e: e, "+=": lambda x, e: x + e, "-=": lambda x, e: x - e,
              "*=": lambda x, e: x * e, "/=": lambda x, e: x / e}


def assigned_value(statement: str, targets) -> tuple[str, Any]:
    """(target, its new value as an expression) of a statement such as ``w += b``.

    The value is None when the target is not one of ``targets`` or the
    operator has no expression (the value is then not even parsed).
    """
    from brian2.parsing.statements import parse_statement

    target, op, expr_code, _ = (str(part) for part in parse_statement(statement))
    if target not in targets or op not in _OPERATORS:
        return target, None
    return target, _OPERATORS[op](brian_symbol(target), str_to_sympy(expr_code))
