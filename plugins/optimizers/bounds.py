"""``calc_bounds``: the bounds check shared by the optimizer plugins (and user optimizers)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from modelfit_core.contracts.errors import ParameterError


class BoundsError(ParameterError, TypeError):
    """Missing, unknown or malformed bounds (a TypeError, as in brian2modelfitting)."""


def calc_bounds(parameter_names: Sequence[str], **params) -> list[list[float]]:
    """Verify and get the provided bounds for the parameters.

    Parameters
    ----------
    parameter_names : list of str
        List of parameter names in use.
    **params
        Bounds for each parameter, ``name=[lower, upper]`` (numbers in SI, or
        Brian quantities, which are converted to SI).

    Returns
    -------
    bounds : list of [lower, upper]
        One pair of floats per parameter, in the order of ``parameter_names``.

    Raises
    ------
    BoundsError
        If a parameter has no bounds, bounds are given for an unknown name, or
        a pair is not two finite numbers with lower < upper.
    """
    names = list(parameter_names)
    missing = [name for name in names if name not in params]
    if missing:
        raise BoundsError(f"Bounds must be set for parameter(s) {', '.join(missing)}.")
    unknown = [name for name in params if name not in names]
    if unknown:
        raise BoundsError(f"Bounds were given for {', '.join(unknown)}, which "
                          f"{'is not a parameter' if len(unknown) == 1 else 'are not parameters'}"
                          f" in use ({', '.join(names)}).")
    bounds = []
    for name in names:
        pair = params[name]
        try:
            values = [float(np.asarray(value)) for value in pair]
        except (TypeError, ValueError) as exc:
            raise BoundsError(f"The bounds of {name!r} must be [lower, upper]; got "
                              f"{pair!r}.") from exc
        if len(values) != 2 or not all(np.isfinite(values)):
            raise BoundsError(f"The bounds of {name!r} must be two finite numbers "
                              f"[lower, upper]; got {pair!r}.")
        if not values[0] < values[1]:
            raise BoundsError(f"The lower bound of {name!r} ({values[0]!r}) is not below its "
                              f"upper bound ({values[1]!r}).")
        bounds.append(values)
    return bounds
