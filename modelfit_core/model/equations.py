"""Reading a fitter's model: its parameters, its variables, and what it refers to."""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import numpy as np
from brian2 import Equations, get_dimensions
from brian2.units.fundamentalunits import DIMENSIONLESS
from brian2.equations.equations import (BOOLEAN, DIFFERENTIAL_EQUATION, INTEGER,
                                        SUBEXPRESSION)

from modelfit_core.contracts.errors import ModelDefinitionError
from modelfit_core.contracts.units import UnitMismatchError
from modelfit_core.contracts.units import unit_text
from modelfit_core.model.namespace import identifiers_in
from modelfit_core.model.spiking import (check_method, check_refractory, check_reset,
                                         check_threshold)

RESERVED = {"iteration"}


@attrs.frozen
class ModelDescription:
    """What the core needs to know about the user's equations."""

    equations: Equations
    text: str
    parameters: dict[str, Any]
    """Fittable parameter name -> Brian dimension."""
    uses_iteration: bool
    uses_targets: frozenset[str]

    def dimension_of(self, name: str):
        return self.equations[name].dim


def equations_to_text(equations: Equations) -> str:
    """Equations as a string Brian can parse again (``str()`` writes 'V', which it cannot)."""
    lines = []
    for eq in equations.values():
        if eq.var_type == BOOLEAN:
            unit = "boolean"
        elif eq.var_type == INTEGER:
            unit = "integer"
        else:
            unit = unit_text(eq.dim)
        flags = f" ({', '.join(eq.flags)})" if eq.flags else ""
        if eq.type == DIFFERENTIAL_EQUATION:
            lines.append(f"d{eq.varname}/dt = {eq.expr.code} : {unit}{flags}")
        elif eq.type == SUBEXPRESSION:
            lines.append(f"{eq.varname} = {eq.expr.code} : {unit}{flags}")
        else:
            lines.append(f"{eq.varname} : {unit}{flags}")
    return "\n".join(lines)


_BRIAN_NAMES = ("t", "dt", "xi", "i", "N", "t_in_timesteps", "lastspike",
                "not_refractory")


def free_names(identifiers, equations: Equations) -> list[str]:
    """Names the model uses without defining them (inputs and external constants), without
    Brian's units, functions and built-in variables."""
    from brian2.core.namespace import DEFAULT_CONSTANTS, DEFAULT_FUNCTIONS, DEFAULT_UNITS
    known = set(DEFAULT_UNITS) | set(DEFAULT_FUNCTIONS) | set(DEFAULT_CONSTANTS)
    return sorted(name for name in identifiers
                  if name not in equations.names and name not in known
                  and name not in _BRIAN_NAMES and not name.startswith("xi_")) or ["(none)"]


def describe_model(model, input_names, output_names, extra_code=()) -> ModelDescription:
    """Parse ``model`` and check that inputs and outputs fit it.

    Raises
    ------
    ModelDefinitionError
        If an input variable is defined by the model itself, an output is not
        a model variable, or the model is not valid Brian equations.
    """
    try:
        equations = model if isinstance(model, Equations) else Equations(str(model))
    except Exception as exc:  # Brian raises several types for syntax problems
        raise ModelDefinitionError(f"The model equations cannot be parsed: {exc}") from exc
    for name in input_names:
        if name in equations.names:
            raise ModelDefinitionError(
                f"The input variable {name!r} is defined in the model equations. Inputs are "
                f"provided by the fitter: use {name!r} in the equations but remove its "
                f"definition (e.g. the line '{name} : ...').")
    identifiers = set(equations.identifiers) | identifiers_in(*extra_code)
    for name in input_names:
        if name not in identifiers:
            raise ModelDefinitionError(
                f"The input {name!r} is not used by the model equations, so it would have "
                f"no effect. Inputs must be names the equations use without defining them; "
                f"the model's free names are: {', '.join(free_names(identifiers, equations))}"
                f". Rename the input or use it in the equations.")
    for name in output_names:
        if name != "spikes" and name not in equations.names:
            raise ModelDefinitionError(
                f"The output variable {name!r} is not a variable of the model; the model "
                f"defines {', '.join(sorted(equations.names))}.")
    for name in RESERVED:
        if name in equations.names:
            raise ModelDefinitionError(f"{name!r} is reserved by modelfit (it counts the "
                                       f"optimization rounds); rename the model variable.")
    # declaration order (parameter_names is a set, whose order varies between runs)
    parameters = {name: equations[name].dim for name in equations
                  if name in equations.parameter_names and "shared" not in equations[name].flags}
    targets = frozenset(name for name in output_names if f"{name}_target" in identifiers)
    text = model if isinstance(model, str) else equations_to_text(equations)
    return ModelDescription(equations=equations, text=text, parameters=parameters,
                            uses_iteration="iteration" in identifiers, uses_targets=targets)


def initial_values(param_init: Mapping[str, Any] | None, description: ModelDescription,
                   fitted: set[str]) -> tuple[dict[str, Any], dict[str, float]]:
    """Split ``param_init`` into initial values of variables and fixed parameter values.

    Returns ``(initial, constants)``: ``initial`` maps variables to SI floats or
    expression strings, ``constants`` maps non-fitted parameters to SI floats.
    """
    initial, constants = {}, {}
    for name, value in (param_init or {}).items():
        if name not in description.equations.names:
            raise ModelDefinitionError(
                f"param_init sets {name!r}, which is not a variable of the model; the model "
                f"defines {', '.join(sorted(description.equations.names))}.")
        if name in fitted:
            raise ModelDefinitionError(f"{name!r} is fitted (it has bounds) and cannot also "
                                       f"be set in param_init.")
        if isinstance(value, str):
            initial[name] = value
            continue
        expected = description.dimension_of(name)
        if get_dimensions(value) is not expected:
            raise UnitMismatchError(
                f"param_init[{name!r}] = {value!r} has the wrong units; {name!r} is declared "
                f"with dimensions {expected if expected is not DIMENSIONLESS else '1'}.")
        number = np.asarray(value, dtype=float)
        if number.ndim != 0 or not np.isfinite(number):
            raise ModelDefinitionError(
                f"param_init[{name!r}] = {value!r} must be one finite value (or an "
                f"expression as a string, e.g. '-70*mV + rand()*5*mV').")
        target = constants if name in description.parameters else initial
        target[name] = float(number)
    return initial, constants


def check_units(description: ModelDescription, inputs, targets, namespace,
                threshold=None, reset=None, refractory=False, method=None) -> None:
    """Check the equations' units with the inputs' units, and the spiking behaviour and
    integration method (:mod:`.spiking`), before anything is compiled.

    The inputs (and ``<var>_target`` traces) are declared as parameters of a
    one-neuron group, and Brian's own unit check is run on the equations.

    Raises
    ------
    UnitMismatchError
        If the units do not add up; the message names the inputs and their units.
    ModelDefinitionError
        If the equations refer to a name that is defined nowhere.
    """
    from brian2 import NeuronGroup
    from brian2.units.fundamentalunits import DimensionMismatchError

    lines = [description.text]
    lines += [f"{name} : {unit_text(signal.dim)}" for name, signal in inputs.items()]
    lines += [f"{name}_target : {unit_text(signal.dim)}" for name, signal in targets.items()]
    if description.uses_iteration:
        lines.append("iteration : 1 (shared)")
    # the refractory period as the fit's group gets it: Brian then adds the variables
    # refractoriness uses (lastspike, not_refractory) to the equations, and does not warn
    # that "(unless refractory)" has no refractory keyword; it is checked below
    group = NeuronGroup(1, "\n".join(lines), namespace=dict(namespace),
                        refractory=False if refractory is None else refractory,
                        name="modelfit_unitcheck*")
    try:
        group.equations.check_units(group, run_namespace={})
        check_threshold(group, threshold)
        check_reset(group, reset)
        check_refractory(group, refractory)
        check_method(group, method)
    except UnitMismatchError:
        raise
    except DimensionMismatchError as exc:
        given = ", ".join(f"{name} in {unit_text(signal.dim)}" for name, signal in inputs.items())
        raise UnitMismatchError(
            f"The units of the model equations do not add up with the inputs as given "
            f"({given}): {exc}. Give each input in the units the equations expect, e.g. "
            f"input={{'I': traces*amp}} for a current.") from exc
    except KeyError as exc:
        raise ModelDefinitionError(
            f"{exc.args[0] if exc.args else exc} Define it before creating the fitter or pass "
            f"namespace={{...}} to the fitter.") from exc
    finally:
        # Brian warns when a group that never ran is deleted; this one is a probe.
        for obj in (group, *group.contained_objects):
            obj._network = "modelfit unit check"  # pyright: ignore[reportAttributeAccessIssue]


_KNOWN_IN_EXPRESSIONS = frozenset({"t", "dt", "i", "N", "t_in_timesteps", "lastspike",
                                   "not_refractory", "xi", "True", "False", "iteration"})
_MEANINGLESS = frozenset({"nan", "NaN", "inf", "Inf", "infinity"})


def check_param_init(param_init: Mapping[str, Any] | None, description: ModelDescription,
                     known_names) -> None:
    """``param_init`` checked when a fitter is created, as brian2modelfitting does:
    every name a variable of the model, every value one finite number of the right
    units, every expression made of names that exist (model variables, inputs,
    ``known_names``, Brian's units, functions and constants), none of them NaN or inf.
    Names are resolved when the fit starts (the caller may define them after creating
    the fitter): here only NaN and inf are refused in expressions;
    :func:`check_expression_names` checks the rest with the fit's namespace.

    Raises
    ------
    ModelDefinitionError, UnitMismatchError
        Naming the entry of ``param_init``.
    """

    initial_values(param_init, description, fitted=set())
    for name, value in (param_init or {}).items():
        if isinstance(value, str):
            check_expression_names(f"param_init[{name!r}]", value, description, known_names,
                                   only_meaningless=True)


def check_expression_names(label: str, expression: str, description: ModelDescription,
                           known_names, only_meaningless: bool = False) -> None:
    """Every name in ``expression`` (the value of ``label``) exists, and none is NaN or
    inf: model variables, inputs, ``known_names``, Brian's units, functions, constants.

    Raises
    ------
    ModelDefinitionError
        Naming ``label`` and the unknown names.
    """
    from brian2.core.functions import DEFAULT_CONSTANTS, DEFAULT_FUNCTIONS
    from brian2.core.namespace import DEFAULT_UNITS

    known = (set(description.equations.names) | set(known_names) | set(DEFAULT_UNITS)
             | set(DEFAULT_FUNCTIONS) | set(DEFAULT_CONSTANTS) | _KNOWN_IN_EXPRESSIONS)
    used = identifiers_in(expression)
    meaningless = sorted(used & _MEANINGLESS)
    if meaningless:
        raise ModelDefinitionError(
            f"{label} = {expression!r} uses {', '.join(meaningless)}: every simulation "
            f"would use a value that is not a finite number. Give a finite value.")
    unknown = sorted(used - known - _MEANINGLESS)
    if unknown and not only_meaningless:
        quoted = ", ".join('"' + name + '"' for name in unknown)
        raise ModelDefinitionError(
            f"{label} = {expression!r} uses {quoted}, defined "
            f"nowhere: not a variable of the model, an input, a name of the namespace, "
            f"nor one of Brian's units or functions. Define it before creating the "
            f"fitter, pass namespace={{...}}, or correct the name.")


def check_refractory_value(refractory) -> None:
    """A refractory period given as a quantity must be a finite time (a string
    is a condition or expression Brian checks, False/None mean none)."""
    if refractory is None or isinstance(refractory, (str, bool)):
        return
    try:
        value = np.asarray(refractory, dtype=float)
    except (TypeError, ValueError):
        return  # Brian's own check names the type
    if value.ndim == 0 and not np.isfinite(value):  # negative: Brian's unit check says
        raise ModelDefinitionError(
            f"refractory = {refractory!r} must be a finite time (e.g. 2*ms), a "
            f"condition such as 'v > -40*mV', or False; NaN or inf would make every "
            f"simulation meaningless.")
