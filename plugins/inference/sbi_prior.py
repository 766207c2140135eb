"""``calc_prior``: brian2modelfitting's uniform prior over parameter bounds.

Offered by ``from modelfit_core import *`` and ``modelfit_core.compat.inferencer``
(a ``modelfit.exports`` entry point); torch and sbi are imported when it is called.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from modelfit_core.contracts.errors import ParameterError, PluginLoadError
from modelfit_core.plugin_api import DISTRIBUTION, install_hint


class PriorBoundsError(ParameterError, TypeError):
    """Missing, unknown or malformed bounds for ``calc_prior`` (a TypeError, as in
    brian2modelfitting)."""


def prior_bounds(param_names: Sequence[str], **params) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds (SI floats) in the order of ``param_names``.

    Each bound pair may be given in either order (the smaller is the lower).
    """
    names = list(param_names)
    missing = [name for name in names if name not in params]
    if missing:
        raise PriorBoundsError(f"Bounds must be set for parameter(s) {', '.join(missing)}.")
    unknown = [name for name in params if name not in names]
    if unknown:
        raise PriorBoundsError(f"Bounds were given for {', '.join(unknown)}, not in "
                               f"param_names ({', '.join(names)}).")
    lower, upper = [], []
    for name in names:
        try:
            pair = [float(np.asarray(value)) for value in params[name]]
        except (TypeError, ValueError) as exc:
            raise PriorBoundsError(f"The bounds of {name!r} must be two numbers; got "
                                   f"{params[name]!r}.") from exc
        if len(pair) != 2 or not np.isfinite(pair).all() or pair[0] == pair[1]:
            raise PriorBoundsError(f"The bounds of {name!r} must be two different finite "
                                   f"numbers; got {params[name]!r}.")
        lower.append(min(pair))
        upper.append(max(pair))
    return np.array(lower), np.array(upper)


def calc_prior(param_names: Sequence[str], **params):
    """A uniform prior over a box of parameter values.

    Parameters
    ----------
    param_names : list of str
        The parameters, in the order of the prior's dimensions.
    **params
        ``name=[lower, upper]`` for each of them: numbers in SI units, or Brian
        quantities (converted to SI).

    Returns
    -------
    sbi.utils.BoxUniform
        Uniform over [lower, upper] in each dimension (float32 tensors).

    Raises
    ------
    PriorBoundsError
        A parameter has no bounds, bounds name an unknown parameter, or a pair
        is not two different finite numbers (also a TypeError).
    """
    lower, upper = prior_bounds(param_names, **params)
    try:
        import torch
        from sbi.utils import BoxUniform
    except ImportError as exc:
        raise PluginLoadError(f"calc_prior needs torch and sbi: "
                              f"{install_hint(DISTRIBUTION, 'sbi', 'sbi')}.") from exc
    return BoxUniform(low=torch.as_tensor(lower, dtype=torch.float32),
                      high=torch.as_tensor(upper, dtype=torch.float32))
