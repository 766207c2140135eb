"""Checking ``threshold``, ``reset``, ``refractory`` and ``method`` before anything compiles.

Brian checks these only when it generates code for a run, and reports a user's
mistake as an internal error ("please report a Brian bug"). Here they are
checked against a probe group of the model (see
:func:`~modelfit_core.model.equations.check_units`), and each problem is a
clear error naming the argument.
"""

from __future__ import annotations

from typing import Any

from brian2 import get_dimensions, second
from brian2.units.fundamentalunits import DIMENSIONLESS, DimensionMismatchError

from modelfit_core.contracts.errors import ArgumentTypeError, ModelDefinitionError
from modelfit_core.contracts.units import UnitMismatchError, unit_name


def _known(group, code: str, argument: str) -> dict[str, Any]:
    """Every name ``code`` uses, resolved in the group's variables and namespace."""
    from brian2.utils.stringtools import get_identifiers

    names = get_identifiers(code)
    try:
        return group.resolve_all(names, run_namespace={}, user_identifiers=names)
    except KeyError as exc:
        raise ModelDefinitionError(
            f"{argument}={code!r} refers to a name that is defined nowhere: "
            f"{exc.args[0] if exc.args else exc} Use model variables, parameters, or "
            f"constants from your namespace.") from exc


def _expression_dims(group, code: str, argument: str):
    from brian2.parsing.expressions import parse_expression_dimensions

    variables = _known(group, code, argument)
    try:
        return parse_expression_dimensions(code, variables)
    except DimensionMismatchError as exc:
        raise UnitMismatchError(f"The units in {argument}={code!r} do not add up: {exc}.") \
            from exc
    except SyntaxError as exc:
        raise ModelDefinitionError(f"{argument}={code!r} is not a valid expression: {exc}.") \
            from exc


def _is_condition(group, code: str, argument: str) -> bool:
    from brian2.parsing.expressions import is_boolean_expression

    variables = _known(group, code, argument)
    try:
        return bool(is_boolean_expression(code, variables))
    except SyntaxError as exc:
        raise ModelDefinitionError(f"{argument}={code!r} is not a valid expression: {exc}.") \
            from exc


def check_threshold(group, threshold) -> None:
    if threshold is None:
        return
    if not isinstance(threshold, str):
        raise ArgumentTypeError(f"threshold must be a condition as a string, e.g. "
                                f"threshold='v > -50*mV'; got {threshold!r}.")
    _expression_dims(group, threshold, "threshold")
    if not _is_condition(group, threshold, "threshold"):
        raise ModelDefinitionError(
            f"threshold={threshold!r} is not a condition (a boolean expression such as "
            f"'v > -50*mV'): a neuron spikes when it becomes true.")


def check_reset(group, reset) -> None:
    if reset is None:
        return
    if not isinstance(reset, str):
        raise ArgumentTypeError(f"reset must be statements as a string, e.g. "
                                f"reset='v = -70*mV'; got {reset!r}.")
    from brian2.equations.unitcheck import check_units_statements

    variables = _known(group, reset, "reset")
    try:
        check_units_statements(reset, variables)
    except DimensionMismatchError as exc:
        raise UnitMismatchError(f"The units in reset={reset!r} do not add up: {exc}.") \
            from exc
    except (SyntaxError, ValueError, TypeError) as exc:
        raise ModelDefinitionError(f"reset={reset!r} is not valid statements for Brian "
                                   f"(e.g. 'v = -70*mV; w += 1*nA'): {exc}.") from exc


def check_refractory(group, refractory) -> None:
    """A duration, an expression for a duration, or a condition (or False)."""
    if refractory is None or refractory is False:
        return
    if isinstance(refractory, str):
        if _is_condition(group, refractory, "refractory"):
            return
        dims = _expression_dims(group, refractory, "refractory")
        if dims is not get_dimensions(second):
            raise UnitMismatchError(
                f"refractory={refractory!r} is neither a condition nor a duration: it has "
                f"units of {unit_name(dims)}. Give e.g. refractory='2*ms', 'tref' (a "
                f"parameter in seconds) or 'v > -40*mV'.")
        return

    try:
        dims = get_dimensions(refractory)
    except (TypeError, ValueError):
        dims = None
    if dims is not get_dimensions(second) or float(refractory) < 0:
        raise UnitMismatchError(
            f"refractory must be a duration (e.g. 2*ms), an expression or a condition as a "
            f"string, or False; got {refractory!r}" +
            (" (units of " + unit_name(dims) + ")." if dims not in (None, DIMENSIONLESS)
             else "."))


LINEAR_ONLY = ("exact", "linear", "independent")
"""Methods that integrate only linear equations: checked here, cheaply. Whether another
method can integrate a model is only known from Brian's symbolic work at the first
run, where the backend reports it (the result is cached for the run)."""


def check_method(group, method) -> None:
    """A method Brian knows; a linear-only method ('exact') needs linear equations."""
    if method is None:
        return
    from brian2.stateupdaters.base import StateUpdateMethod, UnsupportedEquationsException
    from brian2.stateupdaters.exact import get_linear_system

    if isinstance(method, str) or callable(method):
        methods = [method]
    elif isinstance(method, (list, tuple)):
        methods = list(method)
    else:
        raise ArgumentTypeError(f"method must be a name such as 'exponential_euler' (or a "
                                f"list of names); got {method!r}.")
    for candidate in methods:
        if isinstance(candidate, str) and candidate not in StateUpdateMethod.stateupdaters:
            raise ModelDefinitionError(
                f"Unknown integration method {candidate!r}; Brian knows "
                f"{', '.join(sorted(StateUpdateMethod.stateupdaters))}.")
        if not (isinstance(candidate, str) or callable(candidate)):
            raise ArgumentTypeError(f"method must be a name such as 'exponential_euler' (or "
                                    f"a list of names); got {candidate!r}.")
    if len(methods) == 1 and methods[0] in LINEAR_ONLY:
        try:
            get_linear_system(group.equations, group.variables)
        except UnsupportedEquationsException as exc:
            raise ModelDefinitionError(
                f"method={method!r} integrates only linear equations, and these are not "
                f"linear ({exc}). Use 'exponential_euler', 'euler' or 'rk4', or "
                f"method=None to let Brian choose.") from exc
