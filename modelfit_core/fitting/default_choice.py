"""A fit that names no optimizer, described for the plugins that choose one.

:func:`describe_fit` answers, before anything is simulated, what a plugin needs to
know to claim the fit (:class:`~modelfit_core.contracts.default_optimizer.FitToOptimize`):
chiefly whether the fit can be simulated with its sensitivity equations, by
running the very checks a gradient optimizer's fit runs
(:meth:`~modelfit_core.fitting.sensitivity_round.SensitivityRound.build`).
"""

from __future__ import annotations

from modelfit_core.contracts.default_optimizer import FitToOptimize
from modelfit_core.contracts.errors import ConfigurationError, ModelDefinitionError
from modelfit_core.fitting.objective import Objective
from modelfit_core.fitting.problem import FittingProblem
from modelfit_core.fitting.sensitivity_round import SensitivityRound
from modelfit_core.model.parameters import ParameterSpace


def describe_fit(problem: FittingProblem, objective: Objective, space: ParameterSpace,
                 n_samples: int) -> FitToOptimize:
    """What a fit of ``problem`` with ``objective`` over ``space``, ``n_samples``
    parameter sets per round, tells the plugins choosing its optimizer."""
    try:
        SensitivityRound.build(problem, objective, space, optimizer_name="A gradient fit",
                               implicit_method=False)
        refused = None
    except (ConfigurationError, ModelDefinitionError) as refusal:
        refused = str(refusal)
    metrics = ", ".join(dict.fromkeys(type(m).__name__ for m in objective.metrics.values()))
    return FitToOptimize(parameter_names=tuple(space.names), n_samples=int(n_samples),
                         metric=metrics, objectives=objective.mode,
                         gradients_refused=refused,
                         asynchronous=bool(getattr(problem.backend, "asynchronous", False)))
