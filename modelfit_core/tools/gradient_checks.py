"""Does the gradient of a fit agree with finite differences of its error?

:func:`check_gradient` simulates, in one gradient round (the simulation the
``gradient`` optimizer's rounds run), a point and its neighbours one step
``h`` up and down along every parameter: the point's normal equations give the
analytic gradient, the neighbours' errors the central difference
``(E(u + h) - E(u - h)) / 2h``. Both are in the coordinates the optimizer
uses (each parameter scaled to its bounds). Used by the tests and by
``docs/gradient.md``'s agreement table::

    from modelfit_core.tools.gradient_checks import check_gradient
    check = check_gradient(fitter, {"gl": 10*nS, "C": 50*pF}, metric=MSEMetric(),
                           bounds={"gl": [1*nS, 100*nS], "C": [10*pF, 500*pF]})
    print(check.table())
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from modelfit_core.fitting.objective import Objective
from modelfit_core.fitting.problem import GENERATE_ITERATION
from modelfit_core.fitting.sensitivity_round import SensitivityRound


@attrs.frozen
class GradientCheck:
    """The analytic and finite-difference gradients of the error at one point."""

    names: tuple[str, ...]
    error: float
    """The error at the point."""
    analytic: np.ndarray
    """dE/du from the sensitivities (u: each parameter scaled to its bounds)."""
    finite_difference: np.ndarray
    """The central difference of the error, same coordinates."""
    step: float
    """h, in units of each parameter's range."""

    @property
    def relative_difference(self) -> np.ndarray:
        """|analytic - finite difference| / max(|analytic|, |finite difference|) per
        parameter (0 where both are 0)."""
        scale = np.maximum(np.abs(self.analytic), np.abs(self.finite_difference))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(scale > 0, np.abs(self.analytic - self.finite_difference) / scale,
                            0.0)

    def table(self) -> str:
        """One line per parameter: analytic, finite difference, relative difference."""
        lines = [f"{'parameter':<12} {'analytic':>14} {'finite diff.':>14} {'rel. diff.':>10}"]
        for name, a, f, r in zip(self.names, self.analytic, self.finite_difference,
                                 self.relative_difference):
            lines.append(f"{name:<12} {a:>14.6e} {f:>14.6e} {r:>10.2e}")
        return "\n".join(lines)


def check_gradient(fitter, params: Mapping[str, Any], bounds: Mapping[str, Any], *,
                   metric, step: float = 1e-5, spike_jumps: bool = True,
                   level: int = 0) -> GradientCheck:
    """The gradient of ``fitter``'s error at ``params`` (with units), from the
    sensitivities and from central differences of step ``step`` (a fraction of
    each range given by ``bounds``), simulated together in one gradient round, with
    the error of ``metric`` (a least-squares metric such as ``MSEMetric()``).
    ``spike_jumps=False`` leaves out the shift of spike times from the sensitivities'
    jumps at spikes (to show what it changes).
    """
    problem = fitter.problem
    objective = Objective.build(problem, metric, penalty=problem.penalty)
    space = problem.parameter_space(bounds)
    gradients = SensitivityRound.build(problem, objective, space, spike_jumps=spike_jumps)
    p = len(space.names)
    center = (space.vector_from(dict(params)) - space.lower) / (space.upper - space.lower)
    points = [center]
    for k in range(p):
        for sign in (1, -1):
            shifted = center.copy()
            shifted[k] += sign * step
            points.append(shifted)
    units = np.vstack(points)
    vectors = space.lower + units * (space.upper - space.lower)
    namespace = problem.resolve_namespace(level)
    simulation = problem.backend.prepare(gradients.spec(problem, len(units), namespace))
    try:
        result = simulation.run(space.columns(vectors), iteration=GENERATE_ITERATION)
    finally:
        simulation.close()
    normal = gradients.complete(result, len(units), problem.n_traces)
    errors = objective.score(result, len(units)).total
    difference = np.array([(errors[1 + 2 * k] - errors[2 + 2 * k]) / (2 * step)
                           for k in range(p)])
    return GradientCheck(names=tuple(space.names), error=float(errors[0]),
                         analytic=normal.gradient()[0], finite_difference=difference,
                         step=step)
