"""The fitting loop: ask -> simulate -> score -> tell -> persist -> record -> announce.

:func:`run_rounds` is the whole loop. It knows the optimizer, the prepared
simulation, the :class:`~modelfit_core.fitting.objective.Objective` and the
history (together a :class:`FitState`), and announces each round through the
lifecycle hooks and the feedback; it knows nothing of fitters, storage or
plugins by name: the storage is a ``persist`` step given by the fitter.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Any, Callable

import attrs
import numpy as np

from modelfit_core.fitting.multiobjective import objectives_for_optimizer
from modelfit_core.fitting.objective import Objective
from modelfit_core.fitting.replay import AskedPoints, ask_points
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
    optimizer_rounds: int = 1
    """The ``rounds`` the optimizer was initialized with (a replay repeats it)."""
    pending: AskedPoints | None = None
    """Points asked for a round that did not finish (interrupted, or its simulation
    failed): the next round evaluates them instead of asking again, so the optimizer
    sees the same sequence as in an uninterrupted fit."""
    last_result: Any = None
    """The simulation result of the last round (what the manual's ``calc_errors`` scores);
    dropped when the next round starts, so that a round's memory is not doubled."""
    optimizer_ahead: bool = False
    """The optimizer was told a round that could not be stored, so the history lacks it:
    the next ``fit()`` rebuilds the optimizer from the history first."""


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


class DeferredInterrupt:
    """Whether Ctrl-C came while it was held back (see :func:`interrupts_deferred`)."""

    def __init__(self):
        self.received = False

    def reraise(self) -> None:
        """Raise the KeyboardInterrupt that was held back, if any."""
        if self.received:
            self.received = False
            raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_deferred():
    """Hold Ctrl-C (SIGINT) back inside the block; yields a :class:`DeferredInterrupt`
    whose ``reraise()`` raises it once the caller is ready.

    Asking, and telling-storing-recording a round, must happen whole or not at
    all: a round half told to the optimizer, or in memory but not on disk, could
    not be continued exactly. Signals reach only the main thread; elsewhere
    (and where SIGINT is ignored or not handled by Python) nothing is held back.
    """
    deferred = DeferredInterrupt()
    previous = signal.getsignal(signal.SIGINT)
    # SIGINT ignored, left to the OS, or handled outside Python: nothing to hold back
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield deferred
        return

    def hold(signum, frame):
        deferred.received = True

    signal.signal(signal.SIGINT, hold)
    try:
        yield deferred
    finally:
        signal.signal(signal.SIGINT, previous)


def _commit_round(state: FitState, record: RoundRecord, vectors, store_round) -> tuple:
    """Tell, store, then record one finished round: the storage always holds at least
    what the history holds."""
    try:
        state.optimizer.tell(vectors, record.told_errors)
        location = store_round(record, state.optimizer) if store_round is not None else None
    except BaseException:
        # the optimizer took (part of) a round the history will not have
        state.optimizer_ahead = True
        raise
    finally:
        state.pending = None
    improved = state.history.add(record)
    state.iteration += 1
    return improved, location


def run_rounds(state: FitState, simulation, n_samples: int, n_rounds: int, *, hook,
               subject: Any, notify: Callable[[RoundRecord], bool] | None = None,
               persist=None) -> None:
    """Run up to ``n_rounds`` rounds of ``n_samples`` parameter sets.

    Each round: ask (or take the points of an unfinished round), simulate, score,
    then tell the optimizer, persist the round and add it to the history
    together, with Ctrl-C held back until all three are done; then announce it.
    An interruption (``KeyboardInterrupt``, which the backends raise when a
    simulation was stopped early) or any error stops the fit with every finished
    round kept; ``state`` can be continued by another ``run_rounds``.

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
    persist : context manager, optional
        The storage. Entered before the first round, exited when the rounds end
        (normally or not); what it yields is called as ``(record, optimizer)``
        after the optimizer was told a round and before the round joins the
        history, and returns where it was written (reported through
        ``modelfit_checkpoint_written``) or None. If it raises, the fit stops
        and the round is not in the history.
    """
    with persist if persist is not None else contextlib.nullcontext() as store_round:
        try:
            for _ in range(n_rounds):
                started = time.perf_counter()
                if state.pending is None:
                    with interrupts_deferred() as asking:
                        state.pending = ask_points(state.optimizer, n_samples, state.space)
                    asking.reraise()
                asked = state.pending
                matrix = asked.matrix
                state.last_result = None
                result = simulation.run(state.space.columns(matrix), iteration=state.iteration)
                state.last_result = result
                scores = state.objective.score(result, n_samples)
                record = RoundRecord(
                    index=len(state.history.rounds), parameters=matrix, errors=scores.total,
                    diverged=scores.diverged, objective_errors=scores.per_output,
                    objectives=scores.objectives,
                    told_errors=objectives_for_optimizer(scores.objectives, scores.diverged,
                                                         state.history) if scores.objectives
                    else errors_for_optimizer(scores.total, scores.diverged, state.history),
                    iteration=state.iteration, duration_s=time.perf_counter() - started)
                with interrupts_deferred() as committing:
                    improved, location = _commit_round(state, record, asked.as_given,
                                                       store_round)
                hook.modelfit_round_finished(fitter=subject, round_record=record)
                if location is not None:
                    hook.modelfit_checkpoint_written(fitter=subject, location=location)
                if improved:
                    hook.modelfit_best_improved(fitter=subject, params=state.history.best_vector,
                                                error=state.history.best_error)
                committing.reraise()  # the round is complete everywhere: stop after it
                if notify is not None and notify(record):
                    break
        finally:
            if state.history.best_vector is not None:
                hook.modelfit_fit_finished(fitter=subject, best_params=state.history.best_vector,
                                           best_error=state.history.best_error)
