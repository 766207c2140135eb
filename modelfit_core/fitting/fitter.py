"""Fitter: a fitting problem, the parts that fit it, and the state of the fit.

The classic classes (``TraceFitter``, ``SpikeFitter``, ``OnlineTraceFitter``)
turn the manual's arguments into a
:class:`~modelfit_core.fitting.problem.FittingProblem`; a :class:`Fitter`
validates each ``fit()`` call, prepares the simulation once, and hands the
rounds to :func:`~modelfit_core.fitting.loop.run_rounds`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelfit_core.contracts.errors import ConfigurationError, FitStateError
from modelfit_core.contracts.units import error_quantity
from modelfit_core.fitting import generation
from modelfit_core.fitting.loop import FitState, run_rounds
from modelfit_core.fitting.objective import Objective
from modelfit_core.fitting.problem import GENERATE_ITERATION, FittingProblem
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.registry.parts import DEFAULT, Parts
from modelfit_core.results.history import History, RoundRecord
from modelfit_core.results.storage import FitStore, StudyDescription


def check_count(value, name: str, minimum: int, meaning: str = "") -> int:
    """``value`` as an int, if it is an integer >= ``minimum`` (bools are not counts)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}"
                                 f"{f' ({meaning})' if meaning else ''}; got {value!r}.")
    return int(value)


def _from_problem(name: str, doc: str) -> property:
    return property(lambda self: getattr(self.problem, name), doc=doc)


class Fitter:
    """What TraceFitter, SpikeFitter and OnlineTraceFitter share (see their docstrings).

    Parameters
    ----------
    problem : FittingProblem
        The model, the recordings and the backend.
    n_samples : int
        Parameter sets simulated per round.
    pipeline : Parts or Pipeline, optional
        Supplies the registry, the default optimizer, metric and feedback.
    use_units : bool
        Return parameters and errors with units (default True).
    storage, study : str, optional
        Stream every round to SQLite (``"sqlite:///fit.db"``) under ``study``.
    """

    fitter_name = "Fitter"

    def __init__(self, problem: FittingProblem, n_samples: int, *, pipeline: Parts | None = None,
                 use_units: bool = True, storage: str | None = None, study: str | None = None):
        self.problem = problem
        self.n_samples = check_count(n_samples, "n_samples", 1,
                                     "parameter sets simulated per round")
        self.pipeline = pipeline if pipeline is not None else Parts.lazy_default()
        self.use_units = use_units
        self.state: FitState | None = None
        """The state of the fit (None before the first ``fit()``)."""
        self.simulation = None
        """The simulation prepared for fitting (None before the first ``fit()``)."""
        self._simulation_key = None
        self.store: FitStore | None = None
        storage = storage if storage is not None else self.pipeline.storage
        if storage is not None:
            self.store = FitStore(storage, study or self.pipeline.study or "default")
            self.store.attach(self, self.pipeline.registry)

    # -- the problem, as the manual's attributes ------------------------------------------
    dt = _from_problem("dt", "Time step of the recordings and simulations.")
    model = _from_problem("model", "The parsed model (ModelDescription).")
    threshold = _from_problem("threshold", "Spike condition, or None.")
    reset = _from_problem("reset", "Statements executed after a spike, or None.")
    refractory = _from_problem("refractory", "Refractoriness, as given.")
    method = _from_problem("method", "Brian integration method, or None.")
    param_init = _from_problem("param_init", "Initial values and fixed parameters.")
    backend = _from_problem("backend", "The backend that simulates the rounds.")
    recordings = _from_problem("recordings", "Validated inputs and outputs.")
    output_names = _from_problem("output_names", "Output variables, 'spikes' included.")
    output_dims = _from_problem("output_dims", "Dimensions of each output.")
    n_traces = _from_problem("n_traces", "Number of input traces.")

    @property
    def penalty(self) -> str | None:
        """Model variable added to the error, or None."""
        return self.problem.penalty

    @property
    def input_signals(self):
        return self.problem.recordings.inputs

    @property
    def output_signals(self):
        """Recorded trace outputs (not spikes) by name."""
        return self.problem.recordings.traces

    @property
    def input_var(self):
        names = list(self.input_signals)
        return names[0] if len(names) == 1 else names

    @property
    def output_var(self):
        names = self.output_names
        return names[0] if len(names) == 1 else names

    @property
    def n_neurons(self) -> int:
        return self.n_samples * self.n_traces

    # -- the fit state ------------------------------------------------------------------
    optimizer = property(lambda self: self.state.optimizer if self.state else None,
                         doc="The optimizer of the current fit.")
    metric = property(lambda self: self.state.metric if self.state else None,
                      doc="The metric of the current fit, as given.")
    space = property(lambda self: self.state.space if self.state else None,
                     doc="The fitted parameters and their bounds (ParameterSpace).")
    history = property(lambda self: self.state.history if self.state else None,
                       doc="Every evaluated parameter set (History).")

    @property
    def iteration(self) -> int:
        """Value of the model's ``iteration`` variable in the next round."""
        return self.state.iteration if self.state else 0

    # -- what subclasses specialise -----------------------------------------------------
    def default_metric(self):
        """The metric of a fit that names none."""
        return self.pipeline.default_metric()

    def objective_for(self, metric, penalty: str | None) -> Objective:
        """Check ``metric`` against the recordings (see :class:`Objective`)."""
        return Objective.build(self.problem, metric, penalty=penalty, owner=self.fitter_name)

    # -- fit ----------------------------------------------------------------------------
    def fit(self, optimizer=None, metric=None, n_rounds=1, callback=DEFAULT, restart=False,
            start_iteration=None, penalty=None, resume=False, level=0, **params):
        """Run ``n_rounds`` rounds of ask -> simulate -> metric -> tell.

        Parameters
        ----------
        optimizer : Optimizer, optional
            Any object with initialize/ask/tell/recommend; default: the pipeline's.
        metric : Metric or dict, optional
            One metric for all outputs or one per output variable.
        n_rounds : int
            Rounds to run (each simulates ``n_samples`` parameter sets).
        callback : "text", "progressbar", None or callable
            Feedback after each round; a callable returning True stops the fit.
        restart : bool
            Start from scratch (new optimizer state, empty history); needed to
            change optimizer, metric or bounds.
        start_iteration : int, optional
            Value of the model's ``iteration`` variable in the first round.
        penalty : str, optional
            Model variable added to the error (its value at the end of the run).
        resume : bool
            Continue the study stored in ``storage`` (after a crash or a kill):
            the optimizer state and every stored round are loaded, and only the
            rounds missing to reach ``n_rounds`` in total are run.
        level : int
            How many frames above the caller to look up the model's constants.
        **params
            Bounds of the fitted parameters: ``name=[lower, upper]`` with units.

        Returns
        -------
        best_params : dict
            Best parameter set found so far (with units unless ``use_units=False``).
        error : Quantity or float
            Its error.
        """
        n_rounds = check_count(n_rounds, "n_rounds", 0)
        continuing = self.state is not None and not restart
        if optimizer is None:
            optimizer = self.state.optimizer if continuing else self.pipeline.default_optimizer()
        if metric is None:
            metric = self.state.metric if continuing else self.default_metric()
        if penalty is not None:
            self.problem.penalty = penalty
        space = self.problem.parameter_space(params)
        objective = self.objective_for(metric, self.problem.penalty)
        if resume:
            self._resume(optimizer, metric, objective, space, restart)
            n_rounds = max(n_rounds - len(self.history.rounds), 0)
        elif continuing:
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
        else:
            optimizer.initialize(list(space.names), popsize=self.n_samples,
                                 rounds=max(n_rounds, 1), **space.bounds_dict())
            self.state = FitState(optimizer=optimizer, metric=metric, objective=objective,
                                  space=space, history=History(space, objective.error_dim),
                                  iteration=0 if start_iteration is None else int(start_iteration))
            if self.store is not None:
                self.store.start(self.study_description(), restart=restart)
        simulation = self._prepare(objective, space, level)
        feedback = self.pipeline.resolve_feedback(callback)
        if hasattr(feedback, "start"):
            feedback.start(n_rounds)
        try:
            run_rounds(self.state, simulation, self.n_samples, n_rounds,
                       hook=self.pipeline.registry.hook, subject=self,
                       notify=None if feedback is None else
                       (lambda record: self._notify(feedback, record)))
        finally:
            if hasattr(feedback, "finish"):
                feedback.finish()
        return self.best_params, self.best_error

    def _resume(self, optimizer, metric, objective, space, restart) -> None:
        if self.store is None:
            raise ConfigurationError("resume=True needs a storage: create the fitter with "
                                     "storage='sqlite:///fit.db' (and the same study=).")
        if restart:
            raise ConfigurationError("resume=True and restart=True contradict each other.")
        stored_optimizer, records, iteration = self.store.load_for_resume(space)
        history = History(space, objective.error_dim)
        for record in records:
            history.add(record)
        self.state = FitState(optimizer=stored_optimizer, metric=metric, objective=objective,
                              space=space, history=history, iteration=int(iteration))

    def study_description(self) -> StudyDescription:
        """What the storage records about this fit."""
        return StudyDescription(space=self.space, n_samples=self.n_samples,
                                error_dim=self.state.objective.error_dim,
                                output_names=tuple(self.output_names),
                                optimizer=repr(self.optimizer), metric=repr(self.metric))

    def _prepare(self, objective: Objective, space: ParameterSpace, level: int):
        """The fit's simulation: prepared (and compiled) once per configuration."""
        key = ("fit", space.names, objective.record, objective.record_spikes,
               objective.record_final, tuple(sorted(objective.online_spec.items())))
        if key != self._simulation_key:
            if self._simulation_key is not None:
                self.problem.release(self._simulation_key)
            namespace = self.problem.resolve_namespace(level)
            self.problem.check_units(namespace)
            self.simulation = self.problem.prepared(key, lambda: self.problem.simulation_spec(
                self.n_samples, space.names, namespace, name="modelfit_fit",
                record=objective.record, record_spikes=objective.record_spikes,
                record_final=objective.record_final, online_error=objective.online_spec))
            self._simulation_key = key
        if hasattr(self.simulation, "compute_errors_with"):
            self.simulation.compute_errors_with(objective.where_simulated())
        return self.simulation

    def _notify(self, feedback, record: RoundRecord) -> bool:
        params = [self.space.to_dict(row, self.use_units) for row in record.parameters]
        history = self.history
        info = {"best_params_text": self.space.describe(history.best_vector)
                if history.best_vector is not None else "(none yet: all diverged)",
                "diverged": record.diverged, "objective_errors": record.objective_errors}
        return bool(feedback(params, record.errors, self.best_params, self.best_error,
                             record.index, info))

    # -- results ------------------------------------------------------------------------
    def _best_known(self) -> bool:
        return self.state is not None and self.state.history.best_vector is not None

    def require_fit(self) -> None:
        """Raise :class:`FitStateError` unless a fit found a best parameter set."""
        if not self._best_known():
            raise FitStateError("No fit result yet: call fit() first (and check that not "
                                "every simulation diverged).")

    @property
    def best_params(self) -> dict[str, Any] | None:
        """Best parameter set so far, with units unless ``use_units=False``."""
        if not self._best_known():
            return None
        return self.space.to_dict(self.history.best_vector, self.use_units)

    @property
    def best_error(self):
        """Error of :attr:`best_params` (a Quantity when it has units)."""
        if not self._best_known():
            return None
        value = self.history.best_error
        return error_quantity(value, self.state.objective.error_dim) if self.use_units else value

    @property
    def best_objective_errors_normalized(self) -> dict[str, Any] | None:
        """Normalized error of each output variable for the best parameters."""
        if not self._best_known():
            return None
        return self.state.objective.normalized_errors(self.history.best_objective_errors,
                                                      self.use_units)

    @property
    def best_objective_errors(self) -> dict[str, Any] | None:
        """Error of each output variable for the best parameters, before normalization."""
        if not self._best_known():
            return None
        return self.state.objective.raw_errors(self.history.best_objective_errors,
                                               self.use_units)

    def results(self, format="list", use_units=None):
        """All evaluated parameter sets and errors; see :meth:`History.results`."""
        if self.history is None:
            raise FitStateError("No results yet: call fit() first.")
        return self.history.results(format=format,
                                    use_units=self.use_units if use_units is None else use_units)

    # -- generate -----------------------------------------------------------------------
    def generate(self, output_var=None, params=None, param_init=None,
                 iteration=GENERATE_ITERATION, level=0):
        """Simulate the inputs with the best (or given) parameters.

        Parameters
        ----------
        output_var : str or list of str, optional
            Variable(s) to record, or ``'spikes'``; default: the fitted outputs.
        params : dict, optional
            Parameter values with units; default: the best fit.
        param_init : dict, optional
            Initial values replacing those given to the fitter.
        iteration : float
            Value of the ``iteration`` variable (high by default, so that
            couplings to the target that fade with iterations are off).

        Returns
        -------
        Quantity (n_traces, n_steps), list of spike-time arrays per trace, or a
        dict of those when several names were given.
        """
        if params is None:
            self.require_fit()
        best = self.history.best_vector if self._best_known() else None
        space, vector = generation.parameter_point(self.problem, self.space, best, params)
        return generation.generate_outputs(self.problem, space, vector, output_var=output_var,
                                           param_init=param_init, iteration=iteration,
                                           level=level, use_units=self.use_units)
