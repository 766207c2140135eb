"""Fitter: a fitting problem, the parts that fit it, and the state of the fit.

The classic classes (``TraceFitter``, ``SpikeFitter``, ``OnlineTraceFitter``)
turn the manual's arguments into a
:class:`~modelfit_core.fitting.problem.FittingProblem`; a :class:`Fitter`
validates each ``fit()`` call, prepares the simulation once, and hands the
rounds to :func:`~modelfit_core.fitting.loop.run_rounds`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from modelfit_core.contracts.errors import ArgumentTypeError, ConfigurationError, FitStateError
from modelfit_core.contracts.kinds import kind_named
from modelfit_core.contracts.protocols import RemoteScoring
from modelfit_core.contracts.metric_bases import SPIKES
from modelfit_core.contracts.units import error_quantity, with_unit
from modelfit_core.fitting import generation
from modelfit_core.fitting.loop import FitState, run_rounds
from modelfit_core.fitting.objective import Objective
from modelfit_core.fitting.problem import GENERATE_ITERATION, FittingProblem
from modelfit_core.fitting.replay import initialize_optimizer, replay_rounds
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.registry.parts import DEFAULT, Parts
from modelfit_core.results.history import History, RoundRecord
from modelfit_core.results.storage import FitStore, StudyDescription
from modelfit_core.results.study_description import stable_repr


def check_count(value, name: str, minimum: int, meaning: str = "") -> int:
    """``value`` as an int, if it is an integer >= ``minimum`` (bools are not counts)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}"
                                 f"{f' ({meaning})' if meaning else ''}; got {value!r}.")
    return int(value)


def check_optimizer(optimizer) -> None:
    """An optimizer needs the methods of the Optimizer Protocol: a TypeError (as the
    reference raises) naming the missing ones, before anything runs."""
    missing = kind_named("optimizers").missing_methods(optimizer)
    if missing:
        raise ArgumentTypeError(
            f"{optimizer!r} cannot be used as an optimizer: it has no "
            f"{', '.join(f'{m}()' for m in missing)}. An optimizer needs initialize(), "
            f"ask(), tell() and recommend() (e.g. NevergradOptimizer()).")


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
        Stream every round to SQLite (``"sqlite:///fit.db"``) under ``study``;
        ``storage`` may also be a ``FitStore`` (e.g. with ``pickle_optimizer=True``).
    """

    fitter_name = "Fitter"

    def __init__(self, problem: FittingProblem, n_samples: int, *, pipeline: Parts | None = None,
                 use_units: bool = True, storage: str | None = None, study: str | None = None):
        self.problem = problem
        self.requested_n_samples = check_count(n_samples, "n_samples", 1,
                                               "parameter sets simulated per round")
        self.n_samples = self.requested_n_samples
        """Parameter sets per round: the optimizer's population (which ``initialize``
        returns) once a fit started, ``requested_n_samples`` before."""
        self.pipeline = pipeline if pipeline is not None else Parts.lazy_default()
        self.use_units = use_units
        self.state: FitState | None = None
        """The state of the fit (None before the first ``fit()``)."""
        self.simulation = None
        """The simulation prepared for fitting (None before the first ``fit()``)."""
        self._simulation_key = None
        self.store: FitStore | None = None
        storage = storage if storage is not None else self.pipeline.storage
        if isinstance(storage, FitStore):  # made by the caller, e.g. with pickle_optimizer
            self.store = storage
        elif storage is not None:
            self.store = FitStore(storage, study or self.pipeline.study or "default")

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

    @property
    def parameter_names(self) -> list[str]:
        """The fitted parameters (in the order of the model's declarations)."""
        if self.space is not None:
            return list(self.space.names)
        return [n for n in self.model.parameters if n not in self.param_init]

    @property
    def duration(self):
        """Length of the recordings (a Quantity in seconds)."""
        return self.problem.n_steps * self.dt

    @property
    def input(self):
        """The input traces (n_traces, n_steps), with units: the first input variable's."""
        signal = next(iter(self.input_signals.values()))
        return with_unit(signal.values, signal.dim)

    @property
    def output(self) -> list:
        """The recorded outputs, one entry per output variable (spike trains in seconds)."""
        return [self.recordings.spikes if name == SPIKES else
                with_unit(self.output_signals[name].values, self.output_signals[name].dim)
                for name in self.output_names]

    @property
    def output_dim(self) -> list:
        """Dimensions of each output variable (spikes: seconds)."""
        return [self.output_dims[name] for name in self.output_names]

    @property
    def input_traces(self):
        """The first input as a Brian ``TimedArray`` over (time, trace), as the manual's
        fitters build it for their NeuronGroup."""
        from brian2 import TimedArray
        return TimedArray(self.input.T, dt=self.dt)

    @property
    def bounds(self) -> dict[str, list] | None:
        """The bounds of the last ``fit()``: ``{name: [lower, upper]}`` with units."""
        if self.space is None:
            return None
        return {name: [with_unit(float(lo), dim), with_unit(float(hi), dim)]
                for name, lo, hi, dim in zip(self.space.names, self.space.lower,
                                             self.space.upper, self.space.dims)}

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
        optimizer : Optimizer or str, optional
            Any object with initialize/ask/tell/recommend, or the name of an optimizer
            plugin (``"nevergrad"``); default: the pipeline's.
        metric : Metric, str or dict, optional
            One metric (or metric plugin name) for all outputs, or one per output.
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
            Continue the study stored in ``storage`` (after a crash, a kill or
            Ctrl-C): the study must be this fit (a StorageError lists each
            difference), its rounds are loaded and replayed into ``optimizer``
            (which must be the first fit's: same class, options and seed), and
            only the rounds missing to reach ``n_rounds`` in total are run.
            (Ctrl-C during a fit raises KeyboardInterrupt once every finished
            round is kept, in memory and storage; fit() again, or resume=True,
            continues exactly.)
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
        elif isinstance(optimizer, str):  # a plugin's name, as Pipeline.from_names takes it
            optimizer = self.pipeline.make("optimizers", optimizer)
        if metric is None:
            metric = self.state.metric if continuing else self.default_metric()
        elif isinstance(metric, str):
            metric = self.pipeline.make("metrics", metric)
        check_optimizer(optimizer)
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
            if self.state.optimizer_ahead:  # told a round that could not be stored
                replay_rounds(optimizer, space, self.requested_n_samples,
                              self.state.optimizer_rounds, self.history.rounds,
                              source="this fitter's history", error_type=FitStateError)
                self.state.optimizer_ahead = False
        else:
            self._use_population(initialize_optimizer(optimizer, space,
                                                      self.requested_n_samples,
                                                      max(n_rounds, 1)), optimizer)
            self.state = FitState(optimizer=optimizer, metric=metric, objective=objective,
                                  space=space, history=History(space, objective.error_dim),
                                  iteration=0 if start_iteration is None else int(start_iteration),
                                  optimizer_rounds=max(n_rounds, 1))
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
                       (lambda record: self._notify(feedback, record)),
                       persist=None if self.store is None else self.store.session())
        finally:
            if hasattr(feedback, "finish"):
                feedback.finish()
        return self.best_params, self.best_error

    def _use_population(self, used: int, optimizer) -> None:
        """Simulate the population the optimizer uses, as the reference does (a
        population method may need more points per round than were asked for)."""
        if used != self.requested_n_samples:
            warnings.warn(f"Sample size {self.requested_n_samples} requested, but "
                          f"{type(optimizer).__name__} will use {used}: each round "
                          f"simulates {used} parameter sets.", UserWarning, stacklevel=4)
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
        optimizer = optimizer if optimizer is not None else state.optimizer
        metric = metric if metric is not None else state.metric
        space = space if space is not None else state.space
        objective = objective if objective is not None else state.objective
        problem = self.problem
        model = "\n".join([problem.model.text.strip(), f"threshold: {problem.threshold!r}",
                           f"reset: {problem.reset!r}", f"refractory: {problem.refractory!r}",
                           f"method: {problem.method!r}", f"penalty: {problem.penalty!r}",
                           f"initial values: {sorted(problem.param_init.items())!r}"])
        kind = type(optimizer)
        return StudyDescription(
            space=space, n_samples=self.requested_n_samples, error_dim=objective.error_dim,
            output_names=tuple(self.output_names), optimizer=stable_repr(optimizer),
            metric=stable_repr(metric), model=model,
            optimizer_class=f"{kind.__module__}.{kind.__qualname__}",
            seed=repr(getattr(optimizer, "seed", None)),
            optimizer_rounds=state.optimizer_rounds if state is not None else 1,
            first_iteration=state.iteration if state is not None else 0)

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
                self.n_samples, space.names, namespace, name="modelfit_fit",
                record=objective.record, record_spikes=objective.record_spikes,
                record_final=objective.record_final, online_error=objective.online_spec))
            self._simulation_key = key
        if isinstance(self.simulation, RemoteScoring):
            self.simulation.compute_errors_with(objective.where_simulated())
        return self.simulation

    def _notify(self, feedback, record: RoundRecord) -> bool:
        """Call the feedback as the manual says: ``(params, errors, best_params,
        best_error, index, additional_info)``, ``errors`` a list."""
        params = [self.space.to_dict(row, self.use_units) for row in record.parameters]
        history = self.history
        dim = self.state.objective.error_dim
        errors = [error_quantity(float(e), dim) if self.use_units else float(e)
                  for e in record.errors]
        raw = self.best_objective_errors or {}
        normalized = self.best_objective_errors_normalized or {}
        info = {"objective_errors": tuple(raw.get(n) for n in self.output_names),
                "objective_errors_normalized": tuple(normalized.get(n)
                                                     for n in self.output_names),
                "output_var": list(self.output_names),
                "best_params_text": self.space.describe(history.best_vector)
                if history.best_vector is not None else "(none yet: all diverged)",
                "diverged": record.diverged,
                "round_objective_errors": record.objective_errors}
        return bool(feedback(params, errors, self.best_params, self.best_error,
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
        """All evaluated parameter sets and errors, as ``'list'`` (of dicts), ``'dict'``
        (of arrays) or ``'dataframe'``; with several outputs, each output's errors
        too (see :meth:`~modelfit_core.results.history.History.results`)."""
        if self.history is None:
            raise FitStateError("No results yet: call fit() first.")
        return self.history.results(
            format=format, use_units=self.use_units if use_units is None else use_units,
            per_output=self.state.objective.output_errors(self.history))

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
