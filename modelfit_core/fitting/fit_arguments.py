"""Checks of the arguments of a fit that do not depend on the fitter."""

from __future__ import annotations

import inspect

import numpy as np

from modelfit_core.contracts.errors import ArgumentTypeError, ConfigurationError
from modelfit_core.contracts.kinds import kind_called


def check_count(value, name: str, minimum: int, meaning: str = "") -> int:
    """``value`` as an int, if it is an integer >= ``minimum`` (bools are not counts)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}"
                                 f"{f' ({meaning})' if meaning else ''}; got {value!r}.")
    return int(value)


def feedback_arity(feedback) -> int:
    """How many of the six feedback arguments ``feedback`` takes: 5 for a function of
    ``(params, errors, best_params, best_error, index)``, else 6."""
    try:
        signature = inspect.signature(feedback)
    except (TypeError, ValueError):  # builtins, some C callables
        return 6
    kinds = [p.kind for p in signature.parameters.values()]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        return 6
    positional = sum(kind in (inspect.Parameter.POSITIONAL_ONLY,
                              inspect.Parameter.POSITIONAL_OR_KEYWORD) for kind in kinds)
    return 5 if positional == 5 else 6


def require_optimizer_methods(optimizer) -> None:
    """An optimizer needs the methods of the Optimizer Protocol: a TypeError (as the
    reference raises) naming the missing ones, before anything runs."""
    missing = kind_called("optimizers").missing_methods(optimizer)
    if missing:
        raise ArgumentTypeError(
            f"{optimizer!r} cannot be used as an optimizer: it has no "
            f"{', '.join(f'{m}()' for m in missing)}. An optimizer needs initialize(), "
            f"ask(), tell() and recommend() (e.g. NevergradOptimizer()).")
