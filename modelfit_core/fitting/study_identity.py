"""What a stored study records about its fit, and what resuming it must match."""

from __future__ import annotations

from modelfit_core.fitting.problem import FittingProblem
from modelfit_core.results.storage import StudyDescription
from modelfit_core.results.study_description import stable_repr


def describe_study(problem: FittingProblem, n_samples: int, *, optimizer, metric, space,
                   objective, optimizer_rounds: int = 1,
                   first_iteration: int = 0) -> StudyDescription:
    """The description of a fit of ``problem`` with ``n_samples`` requested per round
    by ``optimizer`` and ``metric`` over ``space`` (the optimizer initialized for
    ``optimizer_rounds``, the first round's ``iteration`` value ``first_iteration``)."""
    model = "\n".join([problem.model.text.strip(), f"threshold: {problem.threshold!r}",
                       f"reset: {problem.reset!r}", f"refractory: {problem.refractory!r}",
                       f"method: {problem.method!r}", f"penalty: {objective.penalty!r}",
                       f"initial values: {sorted(problem.param_init.items())!r}"])
    kind = type(optimizer)
    return StudyDescription(
        space=space, n_samples=n_samples, error_dim=objective.error_dim,
        output_names=tuple(problem.output_names), optimizer=stable_repr(optimizer),
        metric=stable_repr(metric), model=model,
        optimizer_class=f"{kind.__module__}.{kind.__qualname__}",
        seed=repr(getattr(optimizer, "seed", None)),
        optimizer_rounds=optimizer_rounds, first_iteration=first_iteration,
        objectives=tuple(getattr(objective, "objective_names", ())))
