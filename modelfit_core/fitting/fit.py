"""A fit: one search on one fitting problem.

A :class:`Fit` is what a ``fit()`` call starts, continues or resumes: the
optimizer, the metric and the :class:`~modelfit_core.fitting.objective.Objective`
built from it, the parameter space, the history of every evaluated point, the
storage, the rounds done, and the simulation prepared for its rounds. It knows
nothing of fitters: a :class:`~modelfit_core.fitting.fitter.Fitter` builds one
from a user's arguments and delegates to it, and anything else (a benchmark,
a notebook, a test) can drive one directly.

:meth:`Fit.run_rounds` is the whole fitting loop, read top to bottom:

    ask -> simulate -> score -> tell -> store -> record -> announce

Telling the optimizer, storing the round and adding it to the history happen
together, with Ctrl-C held back until all three are done, so a fit stopped at
any moment continues (or resumes from its storage) exactly.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, TypeGuard

import attrs
import numpy as np

from modelfit_core.contracts.errors import ConfigurationError, FitStateError
from modelfit_core.contracts.protocols import (AsynchronousOptimizer, AsynchronousSimulation,
                                               KeepsDisplayData, PreparedSimulation,
                                               RemoteScoring, ReportsWorkerActivity,
                                               StudyStorage)
from modelfit_core.fitting.sensitivity_round import SensitivityRound, wants_gradients
from modelfit_core.fitting.events import FitEvents
from modelfit_core.fitting.interrupts import interrupts_deferred
from modelfit_core.fitting.objective import Objective, Scores
from modelfit_core.fitting.problem import FIT_SIMULATION, FittingProblem
from modelfit_core.fitting.replay import (AskedPoints, ask_points, initialize_optimizer,
                                          replay_rounds, tell_round)
from modelfit_core.fitting.divergence import all_diverged_error
from modelfit_core.fitting.study_identity import describe_study
from modelfit_core.fitting.told_errors import errors_for_optimizer, objectives_for_optimizer
from modelfit_core.model.namespace import user_stacklevel
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.results.history import History, RoundRecord
from modelfit_core.results.study_description import StudyDescription


@attrs.define(eq=False)
class Fit:
    """One search on one :class:`FittingProblem`.

    Make one with :meth:`start` (a new search) or :meth:`resume` (a stored
    study); :meth:`continue_with` checks a later ``fit()`` call against it, and
    :meth:`run_rounds` runs it.
    """

    problem: FittingProblem
    optimizer: Any
    metric: Any
    """The metric as the user gave it (one, or a dict per output)."""
    objective: Objective
    space: ParameterSpace
    history: History
    requested_n_samples: int
    """Parameter sets per round asked for by the user."""
    n_samples: int
    """Parameter sets per round simulated: the optimizer's population."""
    store: StudyStorage | None = None
    """Where every round is written as it finishes (None: in memory only)."""
    iteration: int = 0
    """Value of the model's ``iteration`` variable in the next round."""
    optimizer_rounds: int = 1
    """The ``rounds`` the optimizer was initialized with (a replay repeats it)."""
    pending: AskedPoints | None = None
    """Points asked for a round that did not finish (interrupted, or its simulation
    failed): the next round evaluates them instead of asking again, so the optimizer
    sees the same sequence as in an uninterrupted fit."""
    last_result: Any = None
    """The simulation result of the last round (what the manual's ``calc_errors``
    scores); dropped when the next round starts, so a round's memory is not doubled."""
    optimizer_ahead: bool = False
    """The optimizer was told a round that could not be stored, so the history lacks
    it: the next ``continue_with`` rebuilds the optimizer from the history first."""
    display: Any = None
    """What the storage keeps for a dashboard (a FitDisplay), if it can (None: nothing)."""
    gradient_round: SensitivityRound | None = None
    """With a gradient optimizer: how its rounds simulate sensitivities (None: plain
    rounds, no sensitivities simulated)."""
    simulation: Any = attrs.field(default=None, init=False)
    """The simulation prepared for the rounds (None until :meth:`prepared_simulation`)."""
    _simulation_key: Any = attrs.field(default=None, init=False, repr=False)

    # -- beginnings ---------------------------------------------------------------------
    @classmethod
    def start(cls, problem: FittingProblem, *, optimizer, metric, objective: Objective,
              space: ParameterSpace, n_samples: int, n_rounds: int,
              start_iteration: int | None = None, store: StudyStorage | None = None,
              restart: bool = False, warn_population: bool = True) -> "Fit":
        """A new search: the optimizer initialized over ``space``, an empty history,
        and (with a ``store``) a new study planned, written when the rounds start.

        ``restart`` allows replacing a stored study of the same name;
        ``warn_population=False`` leaves unsaid that the optimizer simulates another
        number of points per round than ``n_samples`` (an optimizer the fit chose
        itself, which says so in its choice's reason).
        """
        gradient_round = _gradient_round(problem, optimizer, objective, space)
        used = initialize_optimizer(optimizer, space, n_samples, max(n_rounds, 1))
        fit = cls(problem=problem, optimizer=optimizer, metric=metric, objective=objective,
                  space=space, history=History(space, objective.error_dim),
                  requested_n_samples=n_samples,
                  n_samples=_population(used, n_samples, optimizer) if warn_population
                  else used,
                  store=store, iteration=0 if start_iteration is None else int(start_iteration),
                  optimizer_rounds=max(n_rounds, 1), gradient_round=gradient_round)
        if store is not None:
            store.start(fit.description(), restart=restart)
        return fit

    @classmethod
    def resume(cls, problem: FittingProblem, *, optimizer, metric, objective: Objective,
               space: ParameterSpace, n_samples: int, store: StudyStorage | None,
               warn_population: bool = True) -> "Fit":
        """The study stored in ``store``, continued: checked to be this search (a
        StorageError lists each difference), its rounds loaded and replayed into
        ``optimizer`` (nothing is unpickled unless the store was made to pickle;
        ``warn_population`` as in :meth:`start`)."""
        if store is None:
            raise ConfigurationError("resume=True needs a storage: create the fitter with "
                                     "storage='sqlite:///fit.db' (and the same study=).")
        gradient_round = _gradient_round(problem, optimizer, objective, space)
        stored = store.load_for_resume(describe_study(
            problem, n_samples, optimizer=optimizer, metric=metric, space=space,
            objective=objective, optimizer_rounds=1, first_iteration=0))
        used = n_samples
        if stored.optimizer is not None:
            optimizer = stored.optimizer
            if stored.records:
                used = len(stored.records[-1].errors)
        else:
            asynchronous = bool(getattr(problem.backend, "asynchronous", False)) \
                and isinstance(optimizer, AsynchronousOptimizer)
            used = replay_rounds(
                optimizer, space, n_samples, stored.optimizer_rounds, stored.records,
                source=f"study {store.location}", as_they_came=asynchronous)
            if warn_population:
                used = _population(used, n_samples, optimizer)
        history = History(space, objective.error_dim)
        for record in stored.records:
            history.add(record)
        return cls(problem=problem, optimizer=optimizer, metric=metric, objective=objective,
                   space=space, history=history, requested_n_samples=n_samples,
                   n_samples=used, store=store, iteration=stored.next_iteration,
                   optimizer_rounds=stored.optimizer_rounds, gradient_round=gradient_round)

    def continue_with(self, optimizer, metric, objective: Objective, space: ParameterSpace,
                      start_iteration: int | None = None) -> None:
        """Check that a later ``fit()`` call continues this search (same optimizer,
        metric and bounds) and take its objective; an optimizer told a round that
        could not be stored is first rebuilt from the history."""
        if optimizer is not self.optimizer or metric is not self.metric:
            raise ConfigurationError(
                "The optimizer or metric changed since the last fit() call; continuing "
                "a fit needs the same ones. Pass restart=True to start a new fit.")
        if not space.same_as(self.space):
            raise ConfigurationError("The parameter bounds changed since the last fit() "
                                     "call; pass restart=True to fit with new bounds.")
        self.gradient_round = _gradient_round(self.problem, optimizer, objective, space)
        self.objective = objective
        if start_iteration is not None:
            self.iteration = int(start_iteration)
        if self.optimizer_ahead:
            replay_rounds(optimizer, space, self.requested_n_samples, self.optimizer_rounds,
                          self.history.rounds, source="this fitter's history",
                          error_type=FitStateError)
            self.optimizer_ahead = False

    def description(self) -> StudyDescription:
        """What a storage records about this search, and what resuming it must match."""
        return describe_study(self.problem, self.requested_n_samples,
                              optimizer=self.optimizer, metric=self.metric, space=self.space,
                              objective=self.objective,
                              optimizer_rounds=self.optimizer_rounds,
                              first_iteration=self.iteration)

    # -- what the rounds simulate ---------------------------------------------------------
    def prepared_simulation(self, level: int = 0) -> PreparedSimulation:
        """The simulation of the rounds, prepared (and compiled) once per configuration:
        sample count, parameters and what the objective needs recorded.

        ``level`` says how many frames above the first frame outside modelfit the
        model's constants are looked up when it is prepared.
        """
        problem, objective, gradients = self.problem, self.objective, self.gradient_round
        remote = getattr(problem.backend, "scores_remotely", False)
        if gradients is None:
            key: tuple = ("fit", self.n_samples, self.space.names, objective.record,
                          objective.record_spikes, objective.record_final,
                          tuple(sorted(objective.online_spec.items())))

            def check_memory() -> None:
                problem.check_memory(self.n_samples, objective.record, remote=remote)

            def spec(namespace):
                return problem.simulation_spec(
                    self.n_samples, self.space.names, namespace, name=FIT_SIMULATION,
                    record=objective.record, record_spikes=objective.record_spikes,
                    record_final=objective.record_final, online_error=objective.online_spec)
        else:
            # gradient rounds: the model with its sensitivities, the sums of residuals and
            # sensitivities accumulated while simulating, nothing recorded
            key = ("gradient", self.n_samples, self.space.names, gradients.model_text,
                   gradients.running_code, str(gradients.reset))

            def check_memory() -> None:
                gradients.check_memory(self.n_samples, problem.n_traces, remote=remote)

            def spec(namespace):
                return gradients.spec(problem, self.n_samples, namespace)
        if key != self._simulation_key:
            if self._simulation_key is not None:
                problem.release(self._simulation_key)
            namespace = problem.resolve_namespace(level)
            problem.check_units(namespace)
            check_memory()
            self.simulation = problem.prepared(key, lambda: spec(namespace))
            self._simulation_key = key
        simulation: PreparedSimulation = self.simulation
        if isinstance(simulation, RemoteScoring):
            # gradient rounds record nothing: their sums travel back
            simulation.compute_errors_with(
                None if gradients is not None else objective.where_simulated())
        return self.simulation

    def take_simulation_of(self, other: "Fit") -> None:
        """Take over the simulation ``other`` (an earlier fit of the same problem)
        prepared: reused if it suits this fit, released when this one prepares
        another."""
        if other.problem is self.problem and self._simulation_key is None:
            self.simulation, self._simulation_key = other.simulation, other._simulation_key
            other.simulation = other._simulation_key = None

    # -- the loop -------------------------------------------------------------------------
    def run_rounds(self, n_rounds: int, events: FitEvents, *, level: int = 0) -> None:
        """Run up to ``n_rounds`` rounds of :attr:`n_samples` parameter sets.

        Each round: ask (or take the points of an unfinished round), simulate,
        score, then tell the optimizer, store the round and add it to the history
        together, with Ctrl-C held back until all three are done; then announce
        it (``events``; a listener returning True stops the fit). An interruption
        (``KeyboardInterrupt``, which the backends raise when a simulation was
        stopped early) or any error stops the fit with every finished round kept,
        and this fit can be run again from there.
        """
        simulation = self.prepared_simulation(level)
        if self.evaluates_asynchronously(simulation):
            return self.run_rounds_asynchronously(n_rounds, events, simulation)
        events.started(n_rounds)
        try:
            with self._storage_session() as store_round:
                for _ in range(n_rounds):
                    started = time.perf_counter()
                    if self.pending is None:
                        with interrupts_deferred() as asking:
                            self.pending = ask_points(self.optimizer, self.n_samples,
                                                      self.space)
                        asking.reraise()
                    asked = self.pending
                    self.last_result = None
                    result = simulation.run(self.space.columns(asked.matrix),
                                            iteration=self.iteration)
                    self.last_result = result
                    objective, normal_equations = self.objective, None
                    if self.gradient_round is not None:  # the errors come with the sums
                        normal_equations = self.gradient_round.complete(
                            result, self.n_samples, self.problem.n_traces)
                        objective = attrs.evolve(objective, online={})
                    scores = objective.score(result, self.n_samples)
                    told = (objectives_for_optimizer(scores.objectives, scores.diverged,
                                                     self.history) if scores.objectives
                            else errors_for_optimizer(scores.total, scores.diverged,
                                                      self.history))
                    record = RoundRecord(
                        index=len(self.history.rounds), parameters=asked.matrix,
                        errors=scores.total, diverged=scores.diverged,
                        objective_errors=scores.per_output, objectives=scores.objectives,
                        told_errors=told, iteration=self.iteration,
                        duration_s=time.perf_counter() - started,
                        normal_equations=normal_equations,
                        workers=(tuple(simulation.round_activity())
                                 if isinstance(simulation, ReportsWorkerActivity) else ()))
                    with interrupts_deferred() as committing:
                        improved, location = self._commit(record, asked.as_given, store_round)
                    stop = events.round_finished(record)
                    if location is not None:
                        events.checkpoint_written(location)
                    if improved:
                        events.best_improved(self.history.best_vector, self.history.best_error)
                    committing.reraise()  # the round is complete everywhere: stop after it
                    if record.index == 0 and record.diverged.all():
                        raise all_diverged_error(result, self.space, self.problem.param_init,
                                                 float(self.problem.dt), len(record.errors),
                                                 location)
                    if stop:
                        break
        finally:
            events.finished(self.history.best_vector, self.history.best_error)

    def evaluates_asynchronously(self, simulation: PreparedSimulation
                                 ) -> TypeGuard[AsynchronousSimulation]:
        """Whether the rounds run asynchronously: the backend was asked to, and can, and
        the optimizer takes errors as they come.

        Raises
        ------
        ConfigurationError
            The backend was asked to, but the optimizer needs whole generations (or
            gradients), or the fit has several objectives: before anything is simulated.
        """
        if not (isinstance(simulation, AsynchronousSimulation) and simulation.asynchronous):
            return False
        name = type(self.optimizer).__name__
        if self.gradient_round is not None or not isinstance(self.optimizer,
                                                             AsynchronousOptimizer):
            raise ConfigurationError(
                f"The backend evaluates asynchronously (asynchronous=True), but {name} "
                f"learns from whole rounds and cannot take errors as they come. Use an "
                f"optimizer that can, e.g. optimizer='nevergrad' (DE, TwoPointsDE, NGOpt, "
                f"CMA), or leave asynchronous out: rounds are then split into several "
                f"chunks per worker, so a slow worker still does not hold a round.")
        if self.objective.objective_names:
            raise ConfigurationError(
                "Asynchronous evaluation fits one error, not several objectives: leave "
                "objectives= out, or asynchronous=True off.")
        return True

    def run_rounds_asynchronously(self, n_rounds: int, events: FitEvents,
                                  simulation: AsynchronousSimulation) -> None:
        """Run ``n_rounds`` rounds of :attr:`n_samples` evaluations, asynchronously.

        The simulation keeps ``capacity()`` chunks running; each time one finishes,
        its errors are told to the optimizer at once and new points are asked for
        the freed worker. A round is the next :attr:`n_samples` evaluations to finish,
        in the order they finished: stored and announced as a synchronous round is.
        Every asked point is simulated once and told once; the points in flight when
        the fit stops (the last round complete, a listener, Ctrl-C, an error) are
        dropped, never told. The order in which chunks finish decides what is asked
        next, so a seed does not repeat such a fit exactly (the synchronous mode does).
        """
        optimizer, space, per_round = self.optimizer, self.space, self.n_samples
        self.last_result = None  # a round is made of many chunks' results: none is its
        in_flight_limit = max(1, int(optimizer.points_in_flight()))
        chunk = max(1, min(simulation.chunk_size, per_round, in_flight_limit))
        to_ask = n_rounds * per_round
        running: dict[Any, AskedPoints] = {}
        waiting_points = 0
        finished_rounds = 0
        done: list[tuple[AskedPoints, Any, np.ndarray]] = []
        started = time.perf_counter()

        def refill() -> None:
            nonlocal to_ask, waiting_points
            while (to_ask > 0 and len(running) < simulation.capacity()
                   and waiting_points + min(chunk, to_ask) <= max(in_flight_limit, chunk)):
                size = min(chunk, to_ask)
                with interrupts_deferred() as asking:
                    asked = ask_points(optimizer, size, space)
                asking.reraise()
                running[simulation.submit(space.columns(asked.matrix),
                                          iteration=self.iteration)] = asked
                to_ask -= size
                waiting_points += size

        events.started(n_rounds)
        try:
            with self._storage_session() as store_round:
                refill()
                while running:
                    handle, result = simulation.next_finished()
                    asked = running.pop(handle)
                    waiting_points -= len(asked.matrix)
                    scores = self.objective.score(result, len(asked.matrix))
                    told = errors_for_optimizer(scores.total, scores.diverged, self.history)
                    with interrupts_deferred() as telling:
                        optimizer.tell(asked.as_given, told)
                        done.append((asked, scores, told))
                    telling.reraise()
                    if sum(len(a.matrix) for a, _, _ in done) >= per_round:
                        record, done = _asynchronous_round(
                            done, per_round, len(self.history.rounds), self.iteration,
                            time.perf_counter() - started)
                        if isinstance(simulation, ReportsWorkerActivity):
                            record = attrs.evolve(record,
                                                  workers=tuple(simulation.round_activity()))
                        started = time.perf_counter()
                        with interrupts_deferred() as committing:
                            improved, location = self._commit(record, None, store_round,
                                                              told=True)
                        finished_rounds += 1
                        stop = events.round_finished(record)
                        if location is not None:
                            events.checkpoint_written(location)
                        if improved:
                            events.best_improved(self.history.best_vector,
                                                 self.history.best_error)
                        committing.reraise()
                        if record.index == 0 and record.diverged.all():
                            raise all_diverged_error(result, space, self.problem.param_init,
                                                     float(self.problem.dt),
                                                     len(record.errors), location)
                        if stop or finished_rounds == n_rounds:
                            break
                    refill()
        finally:
            simulation.cancel_all()
            events.finished(self.history.best_vector, self.history.best_error)

    def _storage_session(self):
        if self.store is None:
            return _NoStorage()
        if self.display is not None and isinstance(self.store, KeepsDisplayData):
            return self.store.display_session(self.display)
        return self.store.session()

    def _commit(self, record: RoundRecord, as_given, store_round,
                told: bool = False) -> tuple[bool, str | None]:
        """Tell (unless ``told`` already), store, then record one finished round: the
        storage always holds at least what the history holds."""
        try:
            if not told:
                tell_round(self.optimizer, as_given, record)
            location = store_round(record, self.optimizer) if store_round is not None \
                else None
        except BaseException:
            # the optimizer took (part of) a round the history will not have
            self.optimizer_ahead = True
            raise
        finally:
            self.pending = None
        improved = self.history.add(record)
        self.iteration += 1
        return improved, location

    # -- results --------------------------------------------------------------------------
    @property
    def has_best(self) -> bool:
        """Whether a best parameter set was found (not every simulation diverged)."""
        return self.history.best_vector is not None

    @property
    def best_vector(self) -> np.ndarray | None:
        """The best parameter set so far (SI values ordered as :attr:`space`), or None."""
        return self.history.best_vector

    @property
    def best_error(self) -> float | None:
        """Its error (SI, without units), or None."""
        return self.history.best_error if self.has_best else None


class _NoStorage:
    """The storage session of a fit without storage: nothing to write."""

    def __enter__(self):
        return None

    def __exit__(self, *exc_info):
        return False


def _gradient_round(problem: FittingProblem, optimizer, objective: Objective,
                    space: ParameterSpace) -> SensitivityRound | None:
    """How the rounds simulate sensitivities, for an optimizer that wants them (checked
    here, before anything is simulated or stored); None for any other optimizer."""
    if not wants_gradients(optimizer):
        return None
    return SensitivityRound.build(problem, objective, space,
                                  optimizer_name=f"The optimizer {type(optimizer).__name__}")


def _asynchronous_round(done: list, per_round: int, index: int, iteration: int,
                        duration_s: float) -> tuple[RoundRecord, list]:
    """The first ``per_round`` evaluations of ``done`` (chunks in the order they
    finished: points, scores, told errors) as one round, and what is left over."""
    parameters = np.vstack([asked.matrix for asked, _, _ in done])
    errors = np.concatenate([scores.total for _, scores, _ in done])
    diverged = np.concatenate([scores.diverged for _, scores, _ in done])
    told = np.concatenate([np.asarray(t, dtype=float) for _, _, t in done])
    outputs = {name: np.concatenate([scores.per_output[name] for _, scores, _ in done])
               for name in done[0][1].per_output}
    record = RoundRecord(index=index, parameters=parameters[:per_round],
                         errors=errors[:per_round], diverged=diverged[:per_round],
                         objective_errors={n: v[:per_round] for n, v in outputs.items()},
                         told_errors=told[:per_round], iteration=iteration,
                         duration_s=duration_s)
    left = []
    if len(parameters) > per_round:  # a chunk straddles two rounds: its tail goes on
        rest = slice(per_round, None)
        tail = AskedPoints(as_given=[], matrix=parameters[rest])
        left = [(tail, Scores(total=errors[rest], diverged=diverged[rest],
                              per_output={n: v[rest] for n, v in outputs.items()},
                              objectives={}), told[rest])]
    return record, left


def _population(used: int, requested: int, optimizer) -> int:
    """Simulate the population the optimizer uses, as the reference does (a population
    method may need more points per round than were asked for), and say so."""
    if used != requested:
        warnings.warn(f"Sample size {requested} requested, but {type(optimizer).__name__} "
                      f"will use {used}: each round simulates {used} parameter sets.",
                      UserWarning, stacklevel=user_stacklevel())
    return used
