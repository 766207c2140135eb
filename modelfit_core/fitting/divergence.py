"""A first round in which every simulation diverged: the fit stops and says why.

When every parameter set of the first round gives NaN or inf, later rounds
would too (the optimizer learns nothing from them), so the fit stops after
that round (stored, so nothing is lost) with a
:class:`~modelfit_core.contracts.errors.SimulationError` naming what the
recorded traces show: the output that became non-finite, the first time step
where it did (at the start: the initial values), and the fitted parameters'
bounds and the initial values that set it off.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelfit_core.contracts.errors import SimulationError
from modelfit_core.contracts.simulation import SimulationResult
from modelfit_core.model.parameters import ParameterSpace

EARLY_STEPS = 2
"""Non-finite within this many steps: the initial values, not the dynamics, diverged."""
ENORMOUS = 1e150
"""Beyond this magnitude a value's square (the error) overflows: as good as infinite."""


def first_non_finite(result: SimulationResult | None) -> tuple[str, int] | None:
    """``(output, step)`` of the earliest non-finite (or enormous, see :data:`ENORMOUS`)
    value in any recorded trace."""
    found = None
    for name, traces in (result.traces if result is not None else {}).items():
        values = np.asarray(traces, dtype=float)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(values) | (np.abs(values) > ENORMOUS)
        if values.ndim >= 1 and bad.any():
            step = int(np.argmax(bad.reshape(-1, values.shape[-1]).any(axis=0)))
            if found is None or step < found[1]:
                found = (name, step)
    return found


def negative_definite(space: ParameterSpace) -> list[str]:
    """Fitted parameters of a dimension that must be positive (siemens, farad, second)
    whose bounds hold no positive value: the likely cause of a whole round diverging."""
    from brian2 import farad, get_dimensions, second, siemens
    positive = {get_dimensions(siemens), get_dimensions(farad), get_dimensions(second)}
    return [name for name, dim, high in zip(space.names, space.dims, space.upper)
            if dim in positive and high <= 0]


def all_diverged_error(result: SimulationResult | None, space: ParameterSpace,
                       param_init: dict[str, Any], dt_s: float, n_samples: int,
                       location: str | None) -> SimulationError:
    """The error that stops a fit whose first round diverged entirely."""
    where = first_non_finite(result)
    initial = ", ".join(f"{name}={value!r}" for name, value in sorted(param_init.items()))
    bounds = ", ".join(f"{name} in [{low:.3g}, {high:.3g}]" for name, low, high in
                       zip(space.names, space.lower, space.upper))
    if where is None:
        cause = ("the simulations or their errors were not finite (no recorded trace shows "
                 "where)")
    elif where[1] < EARLY_STEPS:
        cause = (f"{where[0]!r} was not finite (or enormous) from the start (step {where[1]}): an initial "
                 f"value is the likely cause — param_init gives "
                 f"{initial or 'none (variables start at 0)'}")
    else:
        cause = (f"{where[0]!r} became non-finite (or beyond {ENORMOUS:g} SI) at step "
                 f"{where[1]} "
                 f"({where[1] * dt_s:.3g} s), for every sampled parameter set: the "
                 f"dynamics blow up over the whole of the bounds ({bounds} in SI), or from "
                 f"the initial values ({initial or 'none given: variables start at 0'})")
    suspects = negative_definite(space)
    if suspects:
        cause += (f"; the bounds of {', '.join(map(repr, suspects))} are all <= 0, where a "
                  f"conductance, capacitance or time constant must be positive")
    kept = f" The round is stored in {location}." if location else ""
    return SimulationError(
        f"Every one of the {n_samples} simulations of the first round diverged (NaN or "
        f"inf), so no later round can learn anything: {cause}. Check param_init, the "
        f"bounds and the units of the equations, or a smaller dt / another method= "
        f"(e.g. method='exponential_euler').{kept}")
