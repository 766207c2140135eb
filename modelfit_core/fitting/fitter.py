"""Fitter: the user's face of a fit, in brian2modelfitting's shape.

A :class:`Fitter` composes the two objects of a fit and delegates to them:

* its :class:`~modelfit_core.fitting.problem.FittingProblem` (``fitter.problem``):
  the model, the recordings, the namespace, the backend, built once from the
  manual's arguments;
* the :class:`~modelfit_core.fitting.fit.Fit` of its last ``fit()`` call
  (``fitter.current_fit``): optimizer, metric, history, storage, rounds.

Each ``fit()`` call checks its arguments against the problem (before anything
is simulated), starts, continues or resumes a :class:`Fit`, and runs its
rounds. The manual's other methods read that fit (``results``, ``best_params``,
``generate``, ``calc_errors``, ...); the classic subclasses (``TraceFitter``,
``SpikeFitter``, ``OnlineTraceFitter``) add what differs.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from modelfit_core.contracts.default_optimizer import OptimizerChoice
from modelfit_core.contracts.errors import ArgumentTypeError, ConfigurationError, FitStateError
from modelfit_core.fitting import generation, manual_network, pareto_results
from modelfit_core.fitting.dashboard_launch import watch_with_dashboard
from modelfit_core.fitting.default_choice import describe_fit
from modelfit_core.fitting.events import FitEvents
from modelfit_core.fitting.feedback_listener import FeedbackListener
from modelfit_core.fitting.fit import Fit
from modelfit_core.fitting.fit_arguments import check_count, require_optimizer_methods
from modelfit_core.fitting.fit_display import FitDisplay
from modelfit_core.fitting.fit_results import FitResults
from modelfit_core.fitting.fitter_attributes import ManualAttributes
from modelfit_core.fitting.multiobjective import (DEFAULT_OPTIMIZER, check_mode,
                                                  check_objectives, objectives_of_call)
from modelfit_core.fitting.objective import Objective
from modelfit_core.fitting.problem import GENERATE_ITERATION, FittingProblem
from modelfit_core.model.data import as_named
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.registry.parts import DEFAULT, Parts
from modelfit_core.results.history import History

logger = logging.getLogger("modelfit")


class Fitter(ManualAttributes):
    """Fit the free parameters of a model to recordings: what TraceFitter, SpikeFitter
    and OnlineTraceFitter share (see their docstrings for the arguments).

    ``Fitter(...)`` itself fits like a TraceFitter. The manual's arguments come
    first; the keyword-only ones are modelfit's.

    Parameters
    ----------
    dt, model, input, output, n_samples, input_var, output_var, threshold, reset,
    refractory, method, param_init, penalty, use_units
        As in the manual (see :class:`~modelfit_core.fitting.trace_fitter.TraceFitter`).
    backend : str or SimulationBackend, optional
        Where batches are simulated; default: the backends' choice (``"runtime"``,
        or ``"cpp_standalone"`` after ``set_device('cpp_standalone')``).
    pipeline : Parts or Pipeline, optional
        Supplies the registry, the default optimizer, metric and feedback.
    namespace : dict, optional
        Constants of the model; default: looked up in the caller's namespace.
    storage, study : optional
        Stream every round to a study storage (``"sqlite:///fit.db"`` or a path)
        under ``study``; ``storage`` may also be a storage object (e.g.
        ``FitStore(..., pickle_optimizer=True)``).
    level : int
        How many frames above the caller to look up the model's constants.
    """

    _owner = "Fitter"
    """The class named in messages."""
    _default_method: Any = None
    """The integration method when none is given (None: Brian's choice)."""

    def __init__(self, dt, model, input, output, n_samples, input_var=None, output_var=None,
                 threshold=None, reset=None, refractory=None, method=None, param_init=None,
                 penalty=None, use_units=True, *, backend=None, pipeline: Parts | None = None,
                 namespace=None, storage=None, study=None, level=0):
        self._parts = pipeline if pipeline is not None else Parts.lazy_default()
        self.problem: FittingProblem = FittingProblem.from_user(
            model, input, self._named_outputs(output, output_var), dt,
            backend=self._parts.resolve_backend(backend), input_var=input_var,
            threshold=threshold, reset=reset,
            refractory=False if refractory is None else refractory,
            method=self._default_method if method is None else method,
            param_init=param_init, penalty=penalty, namespace=namespace, level=level,
            owner=self._owner)
        """What is fitted to what: the model, the recordings, the backend."""
        self.requested_n_samples = check_count(n_samples, "n_samples", 1,
                                               "parameter sets simulated per round")
        """Parameter sets per round asked for (``n_samples`` is what a fit uses)."""
        self.use_units = use_units
        """Whether parameters and errors are returned with units."""
        self.current_fit: Fit | None = None
        """The fit of the last ``fit()`` call (None before the first)."""
        self._store = self._parts.resolve_storage(storage, study)
        self.dashboard = None
        """The dashboard ``fit(dashboard=True)`` started (``url``, ``stop()``), or None."""
        self.optimizer_choice: OptimizerChoice | None = None
        """What the plugins chose for the last fit that named no optimizer (plugin,
        options and why), None before one."""

    @staticmethod
    def _named_outputs(output, output_var) -> dict[str, Any]:
        """The recorded outputs as ``{name: recordings}`` (the old form: ``output`` an
        array or list of arrays and ``output_var`` their names)."""
        return as_named(output, output_var, "output")

    # -- fit ----------------------------------------------------------------------------
    def fit(self, optimizer=None, metric=None, n_rounds=1, callback=DEFAULT, restart=False,
            start_iteration=None, penalty=None, resume=False, level=0, objectives=None,
            dashboard=False, **params):
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
        objectives : {"separate", "features"}, optional
            A Pareto front of several objectives, see docs/multiobjective.md.
        dashboard : bool, str or Dashboard
            Serve the study's pages while it runs (needs ``storage``) and print
            their address: True for the ``web`` dashboard on a free port of
            127.0.0.1, see docs/dashboard.md.
        **params
            Bounds of the fitted parameters: ``name=[lower, upper]`` with units (a
            continued fit may leave them out: it keeps its bounds).

        Returns
        -------
        best_params : dict
            Best parameter set found so far (with units unless ``use_units=False``).
        error : Quantity or float
            Its error.
        """
        return self._fit(optimizer, metric, n_rounds, callback, restart=restart,
                         start_iteration=start_iteration, penalty=penalty, resume=resume,
                         level=level, objectives=objectives, online_error=False,
                         bounds=params, dashboard=dashboard)

    def _fit(self, optimizer, metric, n_rounds, callback, *, restart, start_iteration,
             penalty, resume, level, objectives, online_error, bounds, dashboard=False):
        """What every ``fit()`` does: check the call, start, continue or resume the
        :class:`Fit`, run its rounds."""
        n_rounds = check_count(n_rounds, "n_rounds", 0)
        if resume and restart:
            raise ConfigurationError("resume=True and restart=True contradict each other.")
        previous = self.current_fit
        current = None if restart else previous
        metric = self._metric_of_call(metric, current)
        if penalty is not None:
            self.problem.penalty = penalty
        # a fit continued without bounds keeps its own, as in brian2modelfitting
        space = current.space if current is not None and not bounds and not resume \
            else self.problem.parameter_space(bounds)
        mode = objectives_of_call(objectives, current.objective if current else None)
        objective = self._objective(metric, online=online_error, objectives=mode)
        optimizer, chosen = self._optimizer_of_call(optimizer, objectives, current,
                                                    objective, space)
        check_objectives(optimizer, objective)
        if resume:
            fit = Fit.resume(self.problem, optimizer=optimizer, metric=metric,
                             objective=objective, space=space,
                             n_samples=self.requested_n_samples, store=self._store,
                             warn_population=not chosen)
            n_rounds = max(n_rounds - len(fit.history.rounds), 0)
        elif current is not None:
            fit = current
            fit.continue_with(optimizer, metric, objective, space, start_iteration)
        else:
            fit = Fit.start(self.problem, optimizer=optimizer, metric=metric,
                            objective=objective, space=space,
                            n_samples=self.requested_n_samples, n_rounds=n_rounds,
                            start_iteration=start_iteration, store=self._store,
                            restart=restart, warn_population=not chosen)
        if fit is not previous and previous is not None:
            fit.take_simulation_of(previous)  # compiled once per configuration
        self.current_fit = fit
        self.dashboard = watch_with_dashboard(self._parts, self._store, dashboard,
                                              self.dashboard)
        fit.display = FitDisplay(self.problem, lambda: fit)
        feedback = self._parts.resolve_feedback(callback)
        listeners = () if feedback is None else \
            (FeedbackListener(feedback, fit, self.use_units),)
        fit.run_rounds(n_rounds, FitEvents(self._parts.registry.hook, self, listeners),
                       level=level)
        return self.best_params, self.best_error

    def _metric_of_call(self, metric, current: Fit | None):
        """The metric of a ``fit()`` call: an object, a plugin name, or None (the current
        fit's when continuing, else the pipeline's default)."""
        if metric is None:
            return current.metric if current is not None else self._default_metric()
        if isinstance(metric, str):
            return self._parts.make("metrics", metric)
        return metric

    def _optimizer_of_call(self, optimizer, objectives, current: Fit | None,
                           objective: Objective, space: ParameterSpace) -> tuple[Any, bool]:
        """The optimizer of a ``fit()`` call (an object, a plugin name, or None: the
        current fit's when continuing, else the pipeline's, else chosen for this fit),
        and whether the plugins chose it for this fit."""
        chosen = False
        if optimizer is None and current is not None:
            optimizer = current.optimizer
        elif optimizer is None:
            optimizer, chosen = self._default_optimizer(objectives, objective, space)
        elif isinstance(optimizer, str):  # a plugin's name, as Pipeline.from_names takes it
            optimizer = self._parts.named_optimizer(optimizer)
        require_optimizer_methods(optimizer)
        return optimizer, chosen

    def _default_optimizer(self, objectives, objective: Objective,
                           space: ParameterSpace) -> tuple[Any, bool]:
        """The optimizer of a fit that names none, and whether the plugins chose it: the
        pipeline's if it has one (a single-objective one is then refused with
        ``objectives``); with ``objectives``, NSGA-II; else the one the plugins choose
        for this fit (docs/optimizers.md, "The default optimizer"), which
        :attr:`optimizer_choice` records."""
        parts = self._parts
        if parts.optimizer is not None:
            return parts.optimizer, False
        if check_mode(objectives) is not None:
            options = {"seed": parts.seed} if parts.seed is not None else {}
            return parts.make("optimizers", DEFAULT_OPTIMIZER, options), False
        choice = parts.optimizer_choice(
            describe_fit(self.problem, objective, space, self.requested_n_samples))
        optimizer = parts.make_choice(choice)
        self.optimizer_choice = choice
        logger.info("No optimizer named: fitting with %r, %s.", optimizer, choice.reason)
        return optimizer, True

    def _default_metric(self):
        """The metric of a fit that names none."""
        return self._parts.default_metric()

    def _objective(self, metric, *, online: bool = False, objectives=None) -> Objective:
        """``metric`` checked against the recordings (see :class:`Objective`)."""
        return Objective.build(self.problem, metric, online=online,
                               penalty=self.problem.penalty, owner=self._owner,
                               objectives=objectives, use_units=self.use_units)

    # -- the manual's round building blocks ----------------------------------------------
    def optimization_iter(self, optimizer, metric=None, penalty=None):
        """Run one round of the current fit, driven by the caller: ask, simulate,
        score, tell (the round joins the history, as in ``fit()``).

        Call ``fit(optimizer, metric, n_rounds=0, **bounds)`` first: it
        initializes the optimizer with the bounds and prepares the simulation.

        Returns
        -------
        results : list
            The optimizer's recommended parameters (``optimizer.recommend()``).
        parameters : list of list
            The parameter sets simulated (SI values, one list per set).
        errors : ndarray
            Their errors (the sum over outputs, plus the penalty).
        """
        fit = self.current_fit
        if fit is None:
            raise FitStateError("optimization_iter() runs a round of a started fit: call "
                                "fit(optimizer, metric, n_rounds=0, **bounds) first.")
        # checked before the round runs, so that a wrong argument stores nothing
        if optimizer is None or not hasattr(optimizer, "recommend"):
            raise ArgumentTypeError(f"optimization_iter(optimizer, metric): optimizer must "
                                    f"be the fit's optimizer ({fit.optimizer!r}); got "
                                    f"{optimizer!r}.")
        if optimizer is not fit.optimizer:
            raise ConfigurationError(f"optimization_iter(optimizer, metric): optimizer "
                                     f"{optimizer!r} is not the one the fit was started with "
                                     f"({fit.optimizer!r}); pass that one, or start a fit "
                                     f"with this one (fit(..., n_rounds=0, restart=True)).")
        metric = fit.metric if metric is None else metric  # None: the fit's own
        if metric is not fit.metric:
            raise ConfigurationError(f"optimization_iter(optimizer, metric): metric "
                                     f"{metric!r} is not the fit's ({fit.metric!r}); pass "
                                     f"that one (or None).")
        self._fit(optimizer, metric, 1, None, restart=False, start_iteration=None,
                  penalty=penalty, resume=False, level=0, objectives=None,
                  online_error=bool(fit.objective.online), bounds={})
        record = fit.history.rounds[-1]
        return optimizer.recommend(), record.parameters.tolist(), np.array(record.errors)

    def calc_errors(self, metric=None):
        """The errors of the last round's simulations under ``metric`` (default: the
        fit's): an array (n_outputs, n_samples) of normalized errors, one row per
        output variable in ``output_var`` order, without the penalty."""
        fit = self.current_fit
        if fit is None or fit.last_result is None:
            raise FitStateError("No simulated round to score: call fit() or "
                                "optimization_iter() first.")
        last = fit.last_result
        if metric is None or metric is fit.metric:
            objective = fit.objective
        elif last.errors:
            raise FitStateError(f"The last round was scored where it was simulated "
                                f"({self.problem.backend!r}): its traces are not here, so "
                                f"calc_errors() can only return the fit's own errors "
                                f"(call it without a metric).")
        else:
            objective = self._objective(metric)
        scores = objective.score(last, len(fit.history.rounds[-1].errors))
        return np.array([scores.per_output[name] for name in self.problem.output_names])

    def setup_neuron_group(self, n_neurons, namespace, calc_gradient=False, optimize=True,
                           online_error=False, name="neurons"):
        """The model's ``NeuronGroup`` for ``n_neurons`` neurons (a multiple of the
        number of input traces), inputs wired in, constants and numeric initial
        values set; see :func:`~modelfit_core.fitting.manual_network.neuron_group`.
        ``namespace``: the constants the model refers to."""
        return manual_network.neuron_group(
            self.problem, self._parts.registry, n_neurons, namespace, self._space(),
            calc_gradient=calc_gradient, optimize=optimize, online_error=online_error,
            t_start=float(getattr(self, "t_start", 0.0)), name=name)

    def setup_simulator(self, network_name, n_neurons, output_var, param_init,
                        calc_gradient=False, optimize=True, online_error=False, level=1):
        """A ``Simulator`` (runtime or C++ standalone, as Brian's active device) with
        the network of :meth:`setup_neuron_group` and its monitors ``statemonitor``
        / ``spikemonitor`` for ``output_var``; ``param_init`` is set before each
        run. ``level=1`` (the default) takes the constants from the caller's
        namespace, higher values from frames further up."""
        namespace = self.problem.resolve_namespace(max(int(level) - 1, 0))
        return manual_network.simulator(
            self.problem, self._parts.registry, network_name, n_neurons, output_var,
            param_init, namespace, self._space(), calc_gradient=calc_gradient,
            optimize=optimize, online_error=online_error,
            t_start=float(getattr(self, "t_start", 0.0)))

    def _space(self):
        """The parameters of the current fit, or every free parameter before one."""
        return self.current_fit.space if self.current_fit is not None \
            else self.problem.free_parameters()

    # -- results --------------------------------------------------------------------------
    def _results(self, use_units: bool | None = None) -> FitResults | None:
        if self.current_fit is None:
            return None
        return FitResults(self.current_fit, self.use_units if use_units is None else use_units)

    @property
    def best_params(self) -> dict[str, Any] | None:
        """Best parameter set so far, with units unless ``use_units=False``."""
        results = self._results()
        return results.best_params if results is not None else None

    @property
    def best_error(self):
        """Error of :attr:`best_params` (a Quantity when it has units)."""
        results = self._results()
        return results.best_error if results is not None else None

    @property
    def best_objective_errors(self) -> dict[str, Any] | None:
        """Error of each output variable for the best parameters, before normalization."""
        results = self._results()
        return results.best_objective_errors if results is not None else None

    @property
    def best_objective_errors_normalized(self) -> dict[str, Any] | None:
        """Normalized error of each output variable for the best parameters."""
        results = self._results()
        return results.best_objective_errors_normalized if results is not None else None

    def results(self, format="list", use_units=None):
        """All evaluated parameter sets and errors, as ``'list'`` (of dicts), ``'dict'``
        (of arrays) or ``'dataframe'``; with several outputs, each output's errors
        too (see :meth:`~modelfit_core.results.history.History.results`)."""
        results = self._results(use_units)
        if results is None:
            raise FitStateError("No results yet: call fit() first.")
        return results.results(format)

    @property
    def storage(self):
        """Where this fitter's fits write their rounds (a StudyStorage), or None."""
        return self._store

    @property
    def history(self) -> History | None:
        """Every evaluated parameter set of the current fit (None before a fit)."""
        return self.current_fit.history if self.current_fit is not None else None

    @property
    def optimizer(self):
        """The optimizer of the current fit."""
        return self.current_fit.optimizer if self.current_fit is not None else None

    @property
    def metric(self):
        """The metric of the current fit, as given."""
        return self.current_fit.metric if self.current_fit is not None else None

    @property
    def n_samples(self) -> int:
        """Parameter sets per round: the optimizer's population (which ``initialize``
        returns) once a fit started, ``requested_n_samples`` before."""
        return self.current_fit.n_samples if self.current_fit is not None \
            else self.requested_n_samples

    @property
    def n_neurons(self) -> int:
        """Neurons simulated per round: ``n_samples`` x the number of traces."""
        return self.n_samples * self.problem.n_traces

    @property
    def iteration(self) -> int:
        """Value of the model's ``iteration`` variable in the next round."""
        return self.current_fit.iteration if self.current_fit is not None else 0

    @property
    def simulator(self):
        """The simulation prepared for fitting (None before the first ``fit()``): its
        ``run(parameters, iteration)`` simulates a batch. Not a brian2modelfitting
        ``Simulator``; :meth:`setup_simulator` makes one of those."""
        return self.current_fit.simulation if self.current_fit is not None else None

    # -- several objectives ---------------------------------------------------------------
    @property
    def objective_names(self) -> tuple[str, ...]:
        """The objectives of the current fit (empty for a single-objective fit)."""
        return pareto_results.objective_names(self.current_fit)

    @property
    def best_objectives(self) -> dict[str, Any] | None:
        """With several objectives: each objective's value for :attr:`best_params`."""
        return pareto_results.best_objectives(self.current_fit, self.use_units)

    def select(self, weights=None):
        """Choose the front member that ``best_params`` (and ``generate()``, the
        feedback, the hooks) report, and return its parameters.

        Parameters
        ----------
        weights : dict or sequence of float, optional
            ``{objective: weight}`` or one weight per objective (in the order of
            :attr:`objective_names`), finite and >= 0: the member with the
            smallest weighted sum of its objectives scaled to [0, 1] over the
            front. None (the default): the member closest to the ideal point
            after that scaling. The choice holds for later rounds too.
        """
        pareto_results.select(self.current_fit, weights)
        return self.best_params

    def pareto_front(self, format="list", use_units=None):
        """The non-dominated parameter sets of every evaluation so far, sorted by the
        first objective, then the next ones.

        ``'list'`` (of dicts: the parameters, ``objectives`` ({name: value}),
        ``errors`` (their sum), ``round``), ``'dict'`` (of arrays, ``objectives``
        a dict of arrays) or ``'dataframe'`` (no units; a column ``objective_<name>``
        per objective), with units unless ``use_units=False``, as :meth:`results`.
        """
        return pareto_results.pareto_front(self.current_fit, format,
                                           self.use_units if use_units is None else use_units)

    # -- generate -----------------------------------------------------------------------
    def generate(self, output_var=None, params=None, param_init=None,
                 iteration=GENERATE_ITERATION, level=0):
        """Simulate the inputs with the best (or given) parameters.

        After a fit, the point runs on the fit's compiled simulation when that records
        what is asked with the same initial values (nothing is compiled again); the
        model's constants are those the simulation was prepared with.

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
        fit = self.current_fit
        if params is None and (fit is None or not fit.has_best):
            raise FitStateError("No fit result yet: call fit() first (and check that not "
                                "every simulation diverged).")
        best = fit.best_vector if fit is not None else None
        space, vector = generation.parameter_point(self.problem,
                                                   fit.space if fit is not None else None,
                                                   best, params)
        return generation.generate_outputs(self.problem, space, vector, output_var=output_var,
                                           param_init=param_init, iteration=iteration,
                                           level=level, use_units=self.use_units)
