"""The fitting loop shared by every fitter: ask -> simulate -> metric -> tell.

A :class:`Fitter` holds the recorded data, the model description, the
prepared simulation (built once, on the first ``fit``) and the history of
every evaluated parameter set. Subclasses say what is recorded and how
errors are computed (:mod:`modelfit_core.fitting.trace_fitter`).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping

import attrs
import numpy as np
from brian2 import Quantity, second
from brian2.units.fundamentalunits import DIMENSIONLESS

from modelfit_core.model.data import as_named
from modelfit_core.contracts.errors import ConfigurationError, FitStateError, UnitMismatchError
from modelfit_core.results.history import History, RoundRecord
from modelfit_core.contracts.metric_bases import error_quantity
from modelfit_core.model.equations import check_units, describe_model, initial_values
from modelfit_core.model.namespace import identifiers_in, select
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.model.recordings import SPIKES, ErrorsWhereSimulated, Recordings
from modelfit_core.contracts.simulation import SimulationSpec, online_error_variable

_DEFAULT = object()
GENERATE_ITERATION = 1e9


def _backend_of_active_device() -> str | None:
    """"cpp_standalone" after ``set_device('cpp_standalone')`` (the manual's way to
    fit in standalone mode), looked up by name in the registry; else None."""
    from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
    from brian2.devices.device import get_device
    return "cpp_standalone" if isinstance(get_device(), CPPStandaloneDevice) else None


def _user_frame_namespace(level: int) -> dict[str, Any]:
    """Namespace of the first frame outside modelfit, plus ``level`` frames up."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(
            ("modelfit_core", "modelfit_plugins")):
        frame = frame.f_back
    for _ in range(level):
        if frame is not None and frame.f_back is not None:
            frame = frame.f_back
    if frame is None:
        return {}
    namespace = dict(frame.f_globals)
    namespace.update(frame.f_locals)
    return namespace


class Fitter:
    """Common machinery of TraceFitter and friends (see their docstrings)."""

    def __init__(self, dt, model, input, output, n_samples, input_var=None, output_var=None,
                 threshold=None, reset=None, refractory=False, method=None, param_init=None,
                 penalty=None, use_units=True, backend=None, pipeline=None, namespace=None,
                 storage=None, study=None, level=0):
        from modelfit_core.fitting.pipeline import Pipeline

        if not isinstance(n_samples, (int, np.integer)) or isinstance(n_samples, bool) \
                or n_samples < 1:
            raise ConfigurationError(f"n_samples must be an integer >= 1 (parameter sets "
                                     f"simulated per round); got {n_samples!r}.")
        if not isinstance(dt, Quantity) or dt.dim is not second.dim or float(dt) <= 0:
            raise UnitMismatchError(f"dt must be a positive time with units, e.g. "
                                    f"dt=0.01*ms; got {dt!r}.")
        self.pipeline = pipeline if pipeline is not None else Pipeline.lazy_default()
        self.dt = dt
        self.n_samples = int(n_samples)
        self.threshold, self.reset, self.refractory = threshold, reset, refractory
        self.method = method
        self.penalty = penalty
        self.use_units = use_units
        if backend is None and self.pipeline.backend is None:
            backend = _backend_of_active_device()
        self.backend = self.pipeline.resolve_backend(backend)
        self._set_data(input, output, input_var, output_var)
        self.model = describe_model(model, self.input_signals, self.output_names,
                                    extra_code=(threshold, reset, refractory, param_init,
                                                penalty))
        self._check_outputs_against_model()
        self.param_init = dict(param_init or {})
        self._user_namespace = _user_frame_namespace(level)
        self._explicit_namespace = dict(namespace or {})
        self._reset_fit_state()
        self._prepared = None
        self._prepared_key = None
        self._generators: dict = {}
        self._store = None
        storage = storage if storage is not None else self.pipeline.storage
        if storage is not None:
            from modelfit_core.results.storage import FitStore
            self._store = FitStore(storage, study or self.pipeline.study or "default")
            self._store.attach(self)

    # -- hooks for subclasses -----------------------------------------------
    fitter_name = "Fitter"

    def _named_outputs(self, output, output_var) -> dict[str, Any]:
        """The outputs as {name: recorded values}; SpikeFitter accepts a bare list."""
        return as_named(output, output_var, "output")

    def _set_data(self, input, output, input_var, output_var):
        self.recordings = Recordings.from_user(input, self._named_outputs(output, output_var),
                                               input_var=input_var)
        self.input_signals = self.recordings.inputs
        self.output_signals = self.recordings.traces
        self.output_names = self.recordings.output_names
        self._n_traces, self._n_steps = self.recordings.n_traces, self.recordings.n_steps
        names = list(self.input_signals)
        self.input_var = names[0] if len(names) == 1 else names
        self.output_var = self.output_names[0] if len(self.output_names) == 1 \
            else self.output_names

    def _check_outputs_against_model(self):
        self.output_dims = self.recordings.output_dims(self.model)
        if SPIKES in self.output_names and self.threshold is None:
            raise ConfigurationError(f"Fitting spikes needs a threshold: pass threshold= "
                                     f"(e.g. threshold='v > -50*mV') to {self.fitter_name}.")

    def _record(self) -> tuple[tuple[str, ...], bool]:
        """(state variables to record, whether to record spikes) while fitting."""
        return tuple(self.output_signals), SPIKES in self.output_names

    def _objective_errors(self, result, metrics) -> dict[str, np.ndarray]:
        """Normalized error per output variable, each of shape (n_samples,)."""
        return self.recordings.objective_errors(result, metrics, self.dt)

    def _check_metric_kinds(self, metrics):
        self.recordings.check_metric_kinds(metrics, self.fitter_name)
        self.recordings.validate_for(metrics, self.dt)

    def _default_metric(self):
        return self.pipeline.default_metric()

    def _online_error_spec(self) -> dict[str, float]:
        """Outputs whose error is accumulated during the simulation instead of
        recorded, with their t_start in seconds (see ``TraceFitter.fit(online_error=)``)."""
        return {}

    # -- state ----------------------------------------------------------------
    def _reset_fit_state(self):
        self.optimizer = None
        self.metric = None
        self.space: ParameterSpace | None = None
        self.history: History | None = None
        self.iteration = 0

    @property
    def n_traces(self) -> int:
        return self._n_traces

    @property
    def n_neurons(self) -> int:
        return self.n_samples * self._n_traces

    def _namespace(self, extra_level_namespace=None) -> dict[str, Any]:
        namespace = dict(self._user_namespace)
        if extra_level_namespace:
            namespace.update(extra_level_namespace)
        namespace.update(self._explicit_namespace)
        names = set(self.model.equations.identifiers) | identifiers_in(
            self.threshold, self.reset, self.refractory, self.param_init, self.penalty)
        return select(namespace, names)

    def _spec(self, n_samples, record, record_spikes, parameter_names, constants, initial,
              namespace, name, record_final=(), online_error=None) -> SimulationSpec:
        online_error = dict(online_error or {})
        targets = {n: self.output_signals[n] for n in self.model.uses_targets
                   if n in self.output_signals}
        targets.update({n: self.output_signals[n] for n in online_error})
        record_final = tuple(record_final) + tuple(online_error_variable(n)
                                                   for n in online_error)
        return SimulationSpec(
            model=self.model.text, parameter_names=tuple(parameter_names),
            n_samples=n_samples, n_traces=self._n_traces, n_steps=self._n_steps,
            dt=float(self.dt), inputs=self.input_signals, record=tuple(record),
            record_spikes=record_spikes, method=self.method, threshold=self.threshold,
            reset=self.reset, refractory=self.refractory, param_init=initial,
            namespace=namespace, constants=constants, targets=targets,
            uses_iteration=self.model.uses_iteration, record_final=tuple(record_final),
            name=name, online_error=online_error)

    # -- metrics ----------------------------------------------------------------
    def _metrics_for_outputs(self, metric) -> dict[str, Any]:
        names = self.output_names
        if isinstance(metric, Mapping):
            unknown = set(metric) - set(names)
            missing = set(names) - set(metric)
            if unknown or missing:
                raise ConfigurationError(
                    f"The metric dictionary must have one metric per output variable "
                    f"({', '.join(names)}); " +
                    (f"unknown: {', '.join(sorted(unknown))}. " if unknown else "") +
                    (f"missing: {', '.join(sorted(missing))}." if missing else ""))
            metrics = dict(metric)
        else:
            metrics = {name: metric for name in names}
        for name, m in metrics.items():
            if not callable(getattr(m, "calc", None)):
                raise ConfigurationError(f"The metric for {name!r} ({m!r}) has no calc() "
                                         f"method; pass a Metric such as MSEMetric().")
        self._check_metric_kinds(metrics)
        dims = {name: m.get_normalized_dimensions(self.output_dims[name])
                if hasattr(m, "get_normalized_dimensions") else DIMENSIONLESS
                for name, m in metrics.items()}
        if len(set(map(id, dims.values()))) > 1 and len({str(d) for d in dims.values()}) > 1:
            listing = ", ".join(f"{n}: {d if d is not DIMENSIONLESS else '1'}"
                                for n, d in dims.items())
            raise UnitMismatchError(
                f"The errors of the outputs have different units ({listing}) and cannot be "
                f"added. Give one metric per output with a normalization that makes them "
                f"compatible, e.g. metric={{'v': MSEMetric(normalization=10*mV), "
                f"'w': MSEMetric(normalization=0.1*nA)}}.")
        self._error_dim = next(iter(dims.values()))
        return metrics

    # -- fit ----------------------------------------------------------------------
    def fit(self, optimizer=None, metric=None, n_rounds=1, callback=_DEFAULT, restart=False,
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
        **params
            Bounds of the fitted parameters: ``name=[lower, upper]`` with units.

        Returns
        -------
        best_params : dict
            Best parameter set found so far (with units unless ``use_units=False``).
        error : Quantity or float
            Its error.
        """
        if not isinstance(n_rounds, (int, np.integer)) or n_rounds < 0:
            raise ConfigurationError(f"n_rounds must be a non-negative integer; got {n_rounds!r}.")
        optimizer = optimizer if optimizer is not None else (
            self.optimizer if self.optimizer is not None and not restart
            else self.pipeline.default_optimizer())
        metric = metric if metric is not None else (
            self.metric if self.metric is not None and not restart else self._default_metric())
        if optimizer is None:
            raise ConfigurationError("No optimizer: pass optimizer=NevergradOptimizer() or "
                                     "use a Pipeline.")
        if penalty is not None:
            self.penalty = penalty
        declared = {k: v for k, v in self.model.parameters.items()}
        fixed = [n for n in self.param_init if n in declared]
        space = ParameterSpace.from_bounds(declared, params, fixed=fixed)
        metrics = self._metrics_for_outputs(metric)
        if resume:
            return self._resume(optimizer, metric, metrics, space, int(n_rounds), callback,
                                restart, level)
        first = restart or self.history is None
        if not first:
            if optimizer is not self.optimizer or metric is not self.metric:
                raise ConfigurationError(
                    "The optimizer or metric changed since the last fit() call; continuing "
                    "a fit needs the same ones. Pass restart=True to start a new fit.")
            if not space.same_as(self.space):
                raise ConfigurationError("The parameter bounds changed since the last fit() "
                                         "call; pass restart=True to fit with new bounds.")
        if first:
            self._reset_fit_state()
            optimizer.initialize(list(space.names), popsize=self.n_samples,
                                 rounds=max(int(n_rounds), 1), **space.bounds_dict())
            self.optimizer, self.metric, self.space = optimizer, metric, space
            self.history = History(space=space, error_dim=self._error_dim)
            self.iteration = 0 if start_iteration is None else int(start_iteration)
            if self._store is not None:
                self._store.start(self, restart=restart)
        elif start_iteration is not None:
            self.iteration = int(start_iteration)
        self._metrics = metrics
        prepared = self._prepare_fit(space, level)
        feedback = self.pipeline.resolve_feedback(callback)
        return self._run_rounds(prepared, metrics, int(n_rounds), feedback)

    def _resume(self, optimizer, metric, metrics, space, n_rounds, callback, restart, level):
        if self._store is None:
            raise ConfigurationError("resume=True needs a storage: create the fitter with "
                                     "storage='sqlite:///fit.db' (and the same study=).")
        if restart:
            raise ConfigurationError("resume=True and restart=True contradict each other.")
        stored_optimizer, records, iteration = self._store.load_for_resume(space)
        self._reset_fit_state()
        self.optimizer, self.metric, self.space = stored_optimizer, metric, space
        self.history = History(space=space, error_dim=self._error_dim)
        for record in records:
            self.history.add(record)
        self.iteration = int(iteration)
        self._metrics = metrics
        remaining = max(n_rounds - len(records), 0)
        prepared = self._prepare_fit(space, level)
        feedback = self.pipeline.resolve_feedback(callback)
        return self._run_rounds(prepared, metrics, remaining, feedback)

    def _prepare_fit(self, space, level):
        record, record_spikes = self._record()
        record_final = (self.penalty,) if self.penalty else ()
        initial, constants = initial_values(self.param_init, self.model, set(space.names))
        online_error = self._online_error_spec()
        key = (space.names, record, record_spikes, record_final,
               tuple(sorted(online_error.items())))
        if self._prepared is None or self._prepared_key != key:
            if self._prepared is not None:
                self._prepared.close()
            namespace = self._namespace(_user_frame_namespace(level))
            check_units(self.model, self.input_signals,
                        {n: self.output_signals[n] for n in self.model.uses_targets
                         if n in self.output_signals}, namespace)
            spec = self._spec(self.n_samples, record, record_spikes, space.names, constants,
                              initial, namespace, name="modelfit_fit",
                              record_final=record_final, online_error=online_error)
            self._prepared = self.backend.prepare(spec)
            self._prepared_key = key
        return self._prepared

    def _round_errors(self, result):
        objective = self._objective_errors(result, self._metrics)
        total = np.zeros(self.n_samples)
        for values in objective.values():
            total = total + np.asarray(values, dtype=float)
        if self.penalty:
            penalty = np.asarray(result.final[self.penalty], dtype=float).reshape(
                self.n_samples, self._n_traces).mean(axis=1)
            total = total + penalty
        diverged = result.diverged(self.n_samples) | ~np.isfinite(total)
        total = np.where(diverged, np.inf, total)
        return total, diverged, objective

    def _hand_errors_to_backend(self, prepared) -> None:
        """Let a simulation that runs elsewhere (dask workers) compute the errors
        there: it then sends back errors instead of traces. Optional for backends:
        only those whose prepared simulation has ``compute_errors_with``."""
        hand_over = getattr(prepared, "compute_errors_with", None)
        if hand_over is None:
            return
        online = self._online_error_spec()
        offline = [name for name in self.output_names if name not in online]
        if not offline:
            hand_over(None)
            return
        # only what scoring needs: the inputs are in the specification already
        recorded = attrs.evolve(self.recordings, output_names=offline, inputs={},
                                traces={n: self.recordings.traces[n] for n in offline
                                        if n != SPIKES})
        hand_over(ErrorsWhereSimulated(recorded, {n: self._metrics[n] for n in offline},
                                       self.dt))

    def _run_rounds(self, prepared, metrics, n_rounds, feedback):
        hook = self.pipeline.registry.hook
        self._hand_errors_to_backend(prepared)
        if hasattr(feedback, "start"):
            feedback.start(n_rounds)
        try:
            for _ in range(n_rounds):
                started = time.perf_counter()
                vectors = [np.asarray(v, dtype=float) for v in self.optimizer.ask(self.n_samples)]
                matrix = np.vstack(vectors)
                result = prepared.run(self.space.columns(matrix), iteration=self.iteration)
                errors, diverged, objective = self._round_errors(result)
                self.optimizer.tell(vectors, self._errors_for_optimizer(errors, diverged))
                record = RoundRecord(index=len(self.history.rounds), parameters=matrix,
                                     errors=errors, diverged=diverged,
                                     objective_errors=objective,
                                     duration_s=time.perf_counter() - started)
                improved = self.history.add(record)
                self.iteration += 1
                hook.modelfit_round_finished(fitter=self, round_record=record)
                if improved:
                    hook.modelfit_best_improved(fitter=self, params=self.history.best_vector,
                                                error=self.history.best_error)
                if feedback is not None and self._notify(feedback, record):
                    break
        finally:
            if hasattr(feedback, "finish"):
                feedback.finish()
            if self.history.best_vector is not None:
                hook.modelfit_fit_finished(fitter=self, best_params=self.history.best_vector,
                                           best_error=self.history.best_error)
        return self.best_params, self.best_error

    def _errors_for_optimizer(self, errors, diverged):
        """Diverged sets are told as 10x the worst finite error: bad, but not inf/NaN."""
        if not diverged.any():
            return errors
        worst = self.history.worst_finite_error()
        finite_now = errors[~diverged]
        candidates = [w for w in (worst, finite_now.max() if finite_now.size else None)
                      if w is not None]
        penalty = 10.0 * max(candidates) + 1.0 if candidates else 1e10
        return np.where(diverged, penalty, errors)

    def _notify(self, feedback, record) -> bool:
        use_units = self.use_units
        params = [self.space.to_dict(row, use_units) for row in record.parameters]
        errors = record.errors
        best_params = self.best_params
        info = {"best_params_text": self.space.describe(self.history.best_vector)
                if self.history.best_vector is not None else "(none yet: all diverged)",
                "diverged": record.diverged, "objective_errors": record.objective_errors}
        return bool(feedback(params, errors, best_params, self.best_error, record.index, info))

    # -- results ------------------------------------------------------------------
    def _require_fit(self):
        if self.history is None or self.history.best_vector is None:
            raise FitStateError("No fit result yet: call fit() first (and check that not "
                                "every simulation diverged).")

    @property
    def best_params(self) -> dict[str, Any] | None:
        """Best parameter set so far, with units unless ``use_units=False``."""
        if self.history is None or self.history.best_vector is None:
            return None
        return self.space.to_dict(self.history.best_vector, self.use_units)

    @property
    def best_error(self):
        """Error of :attr:`best_params` (a Quantity when it has units)."""
        if self.history is None or self.history.best_vector is None:
            return None
        value = self.history.best_error
        return error_quantity(value, self._error_dim) if self.use_units else value

    @property
    def best_objective_errors_normalized(self) -> dict[str, Any] | None:
        """Normalized error of each output variable for the best parameters."""
        if self.history is None or self.history.best_vector is None:
            return None
        return {name: (error_quantity(value, self._metrics[name].get_normalized_dimensions(
            self.output_dims[name])) if self.use_units else value)
            for name, value in self.history.best_objective_errors.items()}

    @property
    def best_objective_errors(self) -> dict[str, Any] | None:
        """Error of each output variable for the best parameters, before normalization."""
        if self.history is None or self.history.best_vector is None:
            return None
        out = {}
        for name, value in self.history.best_objective_errors.items():
            metric = self._metrics[name]
            raw = metric.revert_normalization(value)
            out[name] = error_quantity(float(raw), metric.get_dimensions(
                self.output_dims[name])) if self.use_units else float(raw)
        return out

    def results(self, format="list", use_units=None):
        """All evaluated parameter sets and errors; see :meth:`History.results`."""
        if self.history is None:
            raise FitStateError("No results yet: call fit() first.")
        return self.history.results(format=format,
                                    use_units=self.use_units if use_units is None else use_units)

    # -- generate -----------------------------------------------------------------
    def _generation_backend(self):
        """Generation runs in this process (runtime device), whatever fits the batches."""
        if getattr(self.backend, "name", None) == "runtime":
            return self.backend
        return self.pipeline.registry.lookup("backends", "runtime")()

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
        from modelfit_core.fitting.generation import generate_outputs
        return generate_outputs(self, output_var, params, param_init, iteration, level)
