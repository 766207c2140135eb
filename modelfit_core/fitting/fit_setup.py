"""How a ``fit()`` call starts, continues or resumes a fit, and prepares its simulation.

:class:`FitSetup` is one of the bases of :class:`~modelfit_core.fitting.fitter.Fitter`:
it turns the arguments of ``fit()`` into the optimizer and metric, the
:class:`~modelfit_core.fitting.loop.FitState` (new, continued, or rebuilt from a
stored study by replaying its rounds) and the prepared simulation. It uses
``self.problem``, ``self.pipeline``, ``self.store``, ``self.state`` and the
sample counts of the fitter.
"""

from __future__ import annotations

import warnings

from modelfit_core.contracts.errors import ConfigurationError, FitStateError
from modelfit_core.contracts.protocols import RemoteScoring
from modelfit_core.fitting.fit_arguments import require_optimizer_methods
from modelfit_core.fitting.loop import FitState
from modelfit_core.fitting.objective import Objective
from modelfit_core.fitting.problem import FIT_SIMULATION
from modelfit_core.fitting.replay import initialize_optimizer, replay_rounds
from modelfit_core.fitting.study_identity import describe_study
from modelfit_core.model.namespace import user_stacklevel
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.results.history import History
from modelfit_core.results.storage import StudyDescription


class FitSetup:
    """The optimizer, metric, fit state and prepared simulation of a ``fit()`` call."""

    def _chosen_parts(self, optimizer, metric, objectives, continuing: bool):
        """The optimizer and metric of a fit() call: objects, plugin names, or None
        (the current fit's when continuing, else the pipeline's defaults)."""
        if optimizer is None:
            optimizer = self.state.optimizer if continuing else self.optimizer_for(objectives)
        elif isinstance(optimizer, str):  # a plugin's name, as Pipeline.from_names takes it
            optimizer = self.pipeline.make("optimizers", optimizer)
        if metric is None:
            metric = self.state.metric if continuing else self.default_metric()
        elif isinstance(metric, str):
            metric = self.pipeline.make("metrics", metric)
        require_optimizer_methods(optimizer)
        return optimizer, metric

    def _continue(self, optimizer, metric, objective, space, start_iteration) -> None:
        """Go on with the current fit: same optimizer, metric and bounds."""
        if optimizer is not self.state.optimizer or metric is not self.state.metric:
            raise ConfigurationError(
                "The optimizer or metric changed since the last fit() call; continuing "
                "a fit needs the same ones. Pass restart=True to start a new fit.")
        if not space.same_as(self.state.space):
            raise ConfigurationError("The parameter bounds changed since the last fit() "
                                     "call; pass restart=True to fit with new bounds.")
        self.state.objective = objective
        if start_iteration is not None:
            self.state.iteration = int(start_iteration)
        if self.state.optimizer_ahead:  # told a round that could not be stored
            replay_rounds(optimizer, space, self.requested_n_samples,
                          self.state.optimizer_rounds, self.history.rounds,
                          source="this fitter's history", error_type=FitStateError)
            self.state.optimizer_ahead = False

    def _start(self, optimizer, metric, objective, space, n_rounds, start_iteration,
               restart) -> None:
        """A new fit: initialize the optimizer, an empty history, a new study."""
        self._use_population(initialize_optimizer(optimizer, space, self.requested_n_samples,
                                                  max(n_rounds, 1)), optimizer)
        self.state = FitState(optimizer=optimizer, metric=metric, objective=objective,
                              space=space, history=History(space, objective.error_dim),
                              iteration=0 if start_iteration is None else int(start_iteration),
                              optimizer_rounds=max(n_rounds, 1))
        if self.store is not None:
            self.store.start(self.study_description(), restart=restart)

    def _use_population(self, used: int, optimizer) -> None:
        """Simulate the population the optimizer uses, as the reference does (a
        population method may need more points per round than were asked for)."""
        if used != self.requested_n_samples:
            warnings.warn(f"Sample size {self.requested_n_samples} requested, but "
                          f"{type(optimizer).__name__} will use {used}: each round "
                          f"simulates {used} parameter sets.", UserWarning,
                          stacklevel=user_stacklevel())
        self.n_samples = used

    def _resume(self, optimizer, metric, objective, space, restart) -> None:
        """Continue the stored study: check that it is this fit, reload its rounds and
        rebuild the optimizer by replaying them (nothing is unpickled unless the store
        was created with ``pickle_optimizer=True``)."""
        if self.store is None:
            raise ConfigurationError("resume=True needs a storage: create the fitter with "
                                     "storage='sqlite:///fit.db' (and the same study=).")
        if restart:
            raise ConfigurationError("resume=True and restart=True contradict each other.")
        stored = self.store.load_for_resume(
            self.study_description(optimizer, metric, space, objective))
        if stored.optimizer is not None:
            optimizer = stored.optimizer
            if stored.records:
                self.n_samples = len(stored.records[-1].errors)
        else:
            self._use_population(replay_rounds(
                optimizer, space, self.requested_n_samples, stored.optimizer_rounds,
                stored.records, source=f"study {self.store.study!r} in {self.store.path}"),
                optimizer)
        history = History(space, objective.error_dim)
        for record in stored.records:
            history.add(record)
        self.state = FitState(optimizer=optimizer, metric=metric, objective=objective,
                              space=space, history=history, iteration=stored.next_iteration,
                              optimizer_rounds=stored.optimizer_rounds)

    def study_description(self, optimizer=None, metric=None, space=None,
                          objective=None) -> StudyDescription:
        """What the storage records about this fit, and what resuming it must match.

        Parameters
        ----------
        optimizer, metric, space, objective : optional
            The parts of the fit to describe; default: those of the current fit.
        """
        state = self.state
        return describe_study(
            self.problem, self.requested_n_samples, state,
            optimizer=optimizer if optimizer is not None else state.optimizer,
            metric=metric if metric is not None else state.metric,
            space=space if space is not None else state.space,
            objective=objective if objective is not None else state.objective)

    def _prepare(self, objective: Objective, space: ParameterSpace, level: int):
        """The fit's simulation: prepared (and compiled) once per configuration."""
        key = ("fit", self.n_samples, space.names, objective.record, objective.record_spikes,
               objective.record_final, tuple(sorted(objective.online_spec.items())))
        if key != self._simulation_key:
            if self._simulation_key is not None:
                self.problem.release(self._simulation_key)
            namespace = self.problem.resolve_namespace(level)
            self.problem.check_units(namespace)
            self.problem.check_memory(self.n_samples, objective.record, remote=getattr(
                self.problem.backend, "scores_remotely", False))
            self.simulation = self.problem.prepared(key, lambda: self.problem.simulation_spec(
                self.n_samples, space.names, namespace, name=FIT_SIMULATION,
                record=objective.record, record_spikes=objective.record_spikes,
                record_final=objective.record_final, online_error=objective.online_spec))
            self._simulation_key = key
        if isinstance(self.simulation, RemoteScoring):
            self.simulation.compute_errors_with(objective.where_simulated())
        return self.simulation
