"""The fitting loop: ask -> simulate -> score -> tell -> record -> announce.

:func:`run_rounds` is the whole loop. It knows the optimizer, the prepared
simulation, the :class:`~modelfit_core.fitting.objective.Objective` and the
history (together a :class:`FitState`), and announces each round through the
lifecycle hooks and the feedback; it knows nothing of fitters, storage or
plugins by name.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import attrs
import numpy as np

from modelfit_core.fitting.objective import Objective
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.results.history import History, RoundRecord


@attrs.define(eq=False)
class FitState:
    """Everything that changes while a fit runs, and that ``fit()`` continues from."""

    optimizer: Any
    metric: Any
    """The metric as the user gave it (one, or a dict per output)."""
    objective: Objective
    space: ParameterSpace
    history: History
    iteration: int = 0
    """Value of the model's ``iteration`` variable in the next round."""


def errors_for_optimizer(errors: np.ndarray, diverged: np.ndarray, history: History) -> np.ndarray:
    """Diverged sets are told as 10x the worst finite error seen: bad, but not inf/NaN,
    which optimizers do not all survive."""
    if not diverged.any():
        return errors
    worst = history.worst_finite_error()
    finite_now = errors[~diverged]
    candidates = [w for w in (worst, finite_now.max() if finite_now.size else None)
                  if w is not None]
    penalty = 10.0 * max(candidates) + 1.0 if candidates else 1e10
    return np.where(diverged, penalty, errors)


def run_rounds(state: FitState, simulation, n_samples: int, n_rounds: int, *, hook,
               subject: Any, notify: Callable[[RoundRecord], bool] | None = None) -> None:
    """Run up to ``n_rounds`` rounds of ``n_samples`` parameter sets.

    Parameters
    ----------
    state : FitState
        Changed in place: the history grows and the iteration advances.
    simulation : PreparedSimulation
        Prepared for ``n_samples`` sets and the objective's recordings.
    hook : pluggy hook relay
        Lifecycle hooks (``modelfit_round_finished``, ...), called with
        ``fitter=subject``.
    notify : callable, optional
        Told each finished round; returning True stops the fit.
    """
    try:
        for _ in range(n_rounds):
            started = time.perf_counter()
            vectors = [np.asarray(v, dtype=float) for v in state.optimizer.ask(n_samples)]
            matrix = np.vstack(vectors)
            result = simulation.run(state.space.columns(matrix), iteration=state.iteration)
            scores = state.objective.score(result, n_samples)
            state.optimizer.tell(vectors, errors_for_optimizer(scores.total, scores.diverged,
                                                               state.history))
            record = RoundRecord(index=len(state.history.rounds), parameters=matrix,
                                 errors=scores.total, diverged=scores.diverged,
                                 objective_errors=scores.per_output,
                                 duration_s=time.perf_counter() - started)
            improved = state.history.add(record)
            state.iteration += 1
            hook.modelfit_round_finished(fitter=subject, round_record=record)
            if improved:
                hook.modelfit_best_improved(fitter=subject, params=state.history.best_vector,
                                            error=state.history.best_error)
            if notify is not None and notify(record):
                break
    finally:
        if state.history.best_vector is not None:
            hook.modelfit_fit_finished(fitter=subject, best_params=state.history.best_vector,
                                       best_error=state.history.best_error)
