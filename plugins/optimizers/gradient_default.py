"""The gradient optimizer as the default of the fits it can do (a hook plugin).

A fit that names no optimizer asks the plugins which to use
(:mod:`modelfit_core.contracts.default_optimizer`). This plugin claims the fits
of one error whose rounds can be simulated with their sensitivity equations
(the MSE of traces, a differentiable model, an integration method named) and
leaves every other fit (spike trains, eFEL features, several objectives, a
penalty, an analytic integration method, asynchronous evaluation) to the
default, pymoo's DE.

The suite of fitting problems is the evidence (docs/benchmark.md, "The default
optimizer"): on its six MSE trace problems the gradient optimizer reached the
targets with several times fewer simulations than every derivative-free method,
provided it runs a few starts, each taking many steps; with a population's
worth of starts it did no better than DE. A default fit therefore keeps the
user's rounds and spends at most the user's ``n_samples`` simulations per round:
it runs as many starts as fit in ``n_samples`` (each point with its sensitivities
costs ``1 + n_parameters`` plain simulations), at most :data:`MAX_STARTS`, so a
round may cost less than ``n_samples``.
"""

from __future__ import annotations

from modelfit_core.contracts.default_optimizer import FitToOptimize, OptimizerChoice
from modelfit_core.contracts.hookspecs import hookimpl

PLUGIN = "gradient"
"""The optimizer plugin this module chooses (its entry point in ``modelfit.optimizers``)."""

MAX_STARTS = 4
"""The most starts of a default gradient fit. Fewer starts take more steps each within a
budget: on the suite's MSE problems (10 seeds, 2,000 simulations) the default with up to
8 starts had an ECDF area of 0.201, with up to 4 0.219 (docs/benchmark.md)."""


def default_starts(n_samples: int, n_parameters: int) -> int:
    """Starts of a default gradient fit: as many as ``n_samples`` plain simulations pay
    for (``1 + n_parameters`` each), between 1 and :data:`MAX_STARTS`."""
    return max(1, min(MAX_STARTS, n_samples // (1 + n_parameters)))


@hookimpl
def modelfit_default_optimizer(fit: FitToOptimize) -> OptimizerChoice | None:
    if fit.gradients_refused is not None or fit.objectives is not None or fit.asynchronous:
        return None
    starts = default_starts(fit.n_samples, fit.n_parameters)
    return OptimizerChoice(
        PLUGIN, {"starts": starts},
        reason=(f"the {fit.metric} of this fit can be differentiated: {starts} "
                f"Levenberg-Marquardt starts per round, each simulated with its "
                f"sensitivities (worth {1 + fit.n_parameters} plain simulations: "
                f"{starts * (1 + fit.n_parameters)} per round, within n_samples="
                f"{fit.n_samples}; name an optimizer to choose another)"))
