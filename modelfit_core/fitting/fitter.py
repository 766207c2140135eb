"""Fitter: a fitting problem, the parts that fit it, and the state of the fit.

The classic classes (``TraceFitter``, ``SpikeFitter``, ``OnlineTraceFitter``)
turn the manual's arguments into a
:class:`~modelfit_core.fitting.problem.FittingProblem`; a :class:`Fitter`
validates each ``fit()`` call, prepares the simulation once, and hands the
rounds to :func:`~modelfit_core.fitting.loop.run_rounds`.
"""

from __future__ import annotations

from typing import Any

from modelfit_core.fitting import generation
from modelfit_core.fitting.fit_arguments import check_count
from modelfit_core.fitting.fit_results import FitResults
from modelfit_core.fitting.fit_setup import FitSetup
from modelfit_core.fitting.fitter_attributes import ProblemAttributes
from modelfit_core.fitting.loop import FitState, run_rounds
from modelfit_core.fitting.multiobjective import MultiObjectiveResults
from modelfit_core.fitting.objective import Objective
from modelfit_core.fitting.problem import GENERATE_ITERATION, FittingProblem
from modelfit_core.fitting.round_building_blocks import RoundBuildingBlocks
from modelfit_core.model.data import as_named
from modelfit_core.registry.parts import DEFAULT, Parts
from modelfit_core.results.storage import FitStore


class Fitter(ProblemAttributes, FitSetup, FitResults, RoundBuildingBlocks,
             MultiObjectiveResults):
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
        Where batches are simulated; default ``"runtime"``.
    pipeline : Parts or Pipeline, optional
        Supplies the registry, the default optimizer, metric and feedback.
    namespace : dict, optional
        Constants of the model; default: looked up in the caller's namespace.
    storage, study : str, optional
        Stream every round to SQLite (``"sqlite:///fit.db"``) under ``study``;
        ``storage`` may also be a ``FitStore`` (e.g. with ``pickle_optimizer=True``).
    level : int
        How many frames above the caller to look up the model's constants.
    """

    fitter_name = "Fitter"

    def __init__(self, dt, model, input, output, n_samples, input_var=None, output_var=None,
                 threshold=None, reset=None, refractory=None, method=None, param_init=None,
                 penalty=None, use_units=True, *, backend=None, pipeline: Parts | None = None,
                 namespace=None, storage=None, study=None, level=0):
        pipeline = pipeline if pipeline is not None else Parts.lazy_default()
        problem = FittingProblem.from_user(
            model, input, self.named_outputs(output, output_var), dt,
            backend=pipeline.resolve_backend(backend), input_var=input_var,
            threshold=threshold, reset=reset,
            refractory=False if refractory is None else refractory,
            method=self.default_method if method is None else method, param_init=param_init,
            penalty=penalty, namespace=namespace, level=level, owner=self.fitter_name)
        self.attach(problem, n_samples, pipeline=pipeline, use_units=use_units,
                    storage=storage, study=study)

    default_method = None
    """The integration method when none is given (None: Brian's choice)."""

    @staticmethod
    def named_outputs(output, output_var) -> dict[str, Any]:
        """The recorded outputs as ``{name: recordings}`` (the old form: ``output`` an
        array or list of arrays and ``output_var`` their names)."""
        return as_named(output, output_var, "output")

    @classmethod
    def from_problem(cls, problem: FittingProblem, n_samples: int, *,
                     pipeline: Parts | None = None, use_units: bool = True,
                     storage=None, study=None) -> "Fitter":
        """A fitter of an existing :class:`FittingProblem` (e.g. one shared with
        generation or an Inferencer), without parsing the model again."""
        fitter = cls.__new__(cls)
        fitter.attach(problem, n_samples, pipeline=pipeline, use_units=use_units,
                      storage=storage, study=study)
        return fitter

    def attach(self, problem: FittingProblem, n_samples: int, *, pipeline: Parts | None,
               use_units: bool, storage, study) -> None:
        """Set up the fitter's state for ``problem`` (what every constructor does)."""
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

    def objective_for(self, metric, penalty: str | None, **options) -> Objective:
        """Check ``metric`` against the recordings (see :class:`Objective`)."""
        return Objective.build(self.problem, metric, penalty=penalty, owner=self.fitter_name,
                               **options)

    # -- fit ----------------------------------------------------------------------------
    def fit(self, optimizer=None, metric=None, n_rounds=1, callback=DEFAULT, restart=False,
            start_iteration=None, penalty=None, resume=False, level=0, objectives=None,
            **params):
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
        n_rounds = check_count(n_rounds, "n_rounds", 0)
        continuing = self.state is not None and not restart
        optimizer, metric = self._chosen_parts(optimizer, metric, objectives, continuing)
        if penalty is not None:
            self.problem.penalty = penalty
        # a fit continued without bounds keeps its own, as in brian2modelfitting
        space = self.state.space if continuing and not params and not resume \
            else self.problem.parameter_space(params)
        objective = self.objective_with(metric, optimizer, objectives, continuing)
        if resume:
            self._resume(optimizer, metric, objective, space, restart)
            n_rounds = max(n_rounds - len(self.history.rounds), 0)
        elif continuing:
            self._continue(optimizer, metric, objective, space, start_iteration)
        else:
            self._start(optimizer, metric, objective, space, n_rounds, start_iteration,
                        restart)
        simulation = self._prepare(objective, space, level)
        feedback = self.pipeline.resolve_feedback(callback)
        if hasattr(feedback, "start"):
            feedback.start(n_rounds)
        try:
            run_rounds(self.state, simulation, self.n_samples, n_rounds,
                       hook=self.pipeline.registry.hook, subject=self,
                       notify=None if feedback is None else
                       (lambda record: self.notify_feedback(feedback, record)),
                       persist=None if self.store is None else self.store.session())
        finally:
            if hasattr(feedback, "finish"):
                feedback.finish()
        return self.best_params, self.best_error

    rounds_of_fit = fit
    """:meth:`Fitter.fit` itself, which ``optimization_iter`` continues a fit with: the
    options a subclass's ``fit()`` adds (``online_error``) keep their values."""

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
        if params is None:
            self.require_fit()
        best = self.history.best_vector if self.has_best() else None
        space, vector = generation.parameter_point(self.problem, self.space, best, params)
        return generation.generate_outputs(self.problem, space, vector, output_var=output_var,
                                           param_init=param_init, iteration=iteration,
                                           level=level, use_units=self.use_units)
